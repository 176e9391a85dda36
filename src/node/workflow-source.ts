/**
 * Where the worker gets its workflow code: the bundle made at build time when present (fast
 * start), otherwise the sources, bundled on the fly.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../paths';

export function workflowBundlePath(): string {
  return join(repoRoot(), 'dist', 'workflow-bundle.js');
}

export function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  const bundle = workflowBundlePath();
  if (existsSync(bundle)) return { workflowBundle: { codePath: bundle } };
  return { workflowsPath: require.resolve('../../workflows') };
}
