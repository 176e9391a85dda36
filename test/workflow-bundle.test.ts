/**
 * The modules every workflow of a worker shares (WORKFLOW_BUNDLER_OPTIONS.preloadModules): they are evaluated once,
 * before any workflow exists, so nothing they load may hold a workflow's state — above all not the
 * Temporal SDK, whose module state is each workflow's own.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLER_OPTIONS } from '../src/node/workflow-source';

/** The bundle's modules by id, each with the ids it requires. */
function moduleGraph(code: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  // The modules' table ends where webpack's runtime, and the entry point requiring the SDK, begin.
  const end = code.indexOf('\n/******/ \t});');
  expect(end).toBeGreaterThan(0);
  code = code.slice(0, end);
  const headers = [...code.matchAll(/^\/\*\*\*\/ "([^"]+)"$/gm)];
  headers.forEach((header, i) => {
    const body = code.slice(header.index, headers[i + 1]?.index ?? code.length);
    graph.set(header[1]!, requiredIds(body));
  });
  return graph;
}

function requiredIds(text: string): string[] {
  return [...text.matchAll(/__webpack_require__\((?:\/\*[^*]*\*\/ )*"([^"]+)"\)/g)].map((m) => m[1]!);
}

function closure(graph: Map<string, string[]>, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (id: string): void => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const next of graph.get(id) ?? []) visit(next);
  };
  roots.forEach(visit);
  return seen;
}

let graph: Map<string, string[]>;
/** What the worker evaluates before any workflow exists: the preloaded modules and all they load. */
let shared: Set<string>;
let preloaded: string[];

beforeAll(async () => {
  const silent = (): void => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    ...WORKFLOW_BUNDLER_OPTIONS,
    logger: { log: silent, trace: silent, debug: silent, info: silent, warn: silent, error: silent },
  });
  const preload = /exports\.preloadModules = function preloadModules\(\) \{([^}]*)\}/.exec(code);
  expect(preload).not.toBeNull();
  preloaded = requiredIds(preload![1]!);
  graph = moduleGraph(code);
  shared = closure(graph, preloaded);
}, 120_000);

test('the worker evaluates the step-data validator (ajv), canonical hashing and the guard evaluator once, for every workflow to share', () => {
  expect(preloaded).toHaveLength(WORKFLOW_BUNDLER_OPTIONS.preloadModules.length);
  expect([...shared]).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/src\/process\/step-data\.ts$/),
      expect.stringMatching(/node_modules\/ajv\/dist\/2020\.js$/),
      expect.stringMatching(/src\/envelope\/canonical\.ts$/),
      expect.stringMatching(/node_modules\/json-logic-js\//),
    ]),
  );
});

test('nothing the shared modules load is part of the Temporal SDK, whose module state is per workflow', () => {
  expect([...shared].filter((id) => /@temporalio|\/workflows\//.test(id))).toEqual([]);
  // The check sees the SDK where it is loaded: the workflows' own modules do load it.
  const instance = [...graph.keys()].filter((id) => /workflows\/instance\.ts$/.test(id));
  expect([...closure(graph, instance)].some((id) => id.includes('@temporalio/workflow'))).toBe(true);
});
