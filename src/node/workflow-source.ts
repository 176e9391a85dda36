/**
 * Where the worker gets its workflow code: the bundle made at build time when present (fast
 * start), otherwise the sources, bundled on the fly; either way with the same bundler options.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../paths';

/**
 * Modules the worker evaluates once, when its V8 context starts, and every workflow then shares
 * (the Temporal SDK's `preloadModules`). Each workflow otherwise evaluates every module it loads
 * in module state of its own, and this code is most of the bundle: ajv alone is about 2.2 of its
 * 2.9 MB, so every cached workflow held a copy, and compiled each step schema it validated again.
 *
 * Only modules whose state is the same whichever workflow runs may be here, or one workflow would
 * see another's (the SDK also deep-freezes what they export):
 * - step-data: ajv and the validators it compiles, cached by definition hash, step and part;
 *   a validator is a pure function of its schema, the same whichever workflow compiled it;
 * - canonical: canonical JSON and keccak-256, pure functions;
 * - json-logic-js: the guard evaluator (its table of operations is never changed).
 * None of them, nor what they import, may import the Temporal SDK (test/workflow-bundle.test.ts).
 * Specifiers are resolved from the workflows folder, as the bundle's entry point sits there.
 */
export const WORKFLOW_BUNDLER_OPTIONS = { preloadModules: ['../src/process/step-data', '../src/envelope/canonical', 'json-logic-js'] };

export function workflowBundlePath(): string {
  return join(repoRoot(), 'dist', 'workflow-bundle.js');
}

export function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string; bundlerOptions: typeof WORKFLOW_BUNDLER_OPTIONS } {
  const bundle = workflowBundlePath();
  if (existsSync(bundle)) return { workflowBundle: { codePath: bundle } };
  return { workflowsPath: require.resolve('../../workflows'), bundlerOptions: WORKFLOW_BUNDLER_OPTIONS };
}
