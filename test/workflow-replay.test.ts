/**
 * The determinism guard: recorded histories of real instance workflows (two parties, with
 * continue-as-new mid-process; and an approval whose human task was completed from the Temporal
 * UI, under the `human-task-search-attributes` patch; and the two-party instance again under the
 * `decisions-recorded-in-task` patch, its decisions recorded by local activities, and once more
 * under `one-activity-for-all-peers` too, one activity pinning and delivering each step; and
 * once more with each peer's step told in the final pin's signal, not in an envelope signal of
 * its own; and the purchase order and the approval once more under `envelope-built-in-task`,
 * each proposal sent through the REST API built in its Update's workflow task and signed and
 * stored by publishStep, the approval's step completed in the Temporal UI sealed by sealStep; and
 * both once more under `history-bytes-per-run`, as the code of 23 November records them)
 * must replay against the current workflow code. A change that would break running instances fails here; make it with Temporal's
 * patching API, then record new fixtures (two-party-step.test.ts and human-tasks-ui.test.ts
 * write fresh ones to test-output/histories/).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { WORKFLOW_BUNDLER_OPTIONS } from '../src/node/workflow-source';
import { quietTemporalRuntime } from './support/quiet-runtime';

const dir = join(__dirname, 'fixtures', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.pb')).sort();

beforeAll(() => quietTemporalRuntime());

test('recorded instance histories replay without nondeterminism', async () => {
  expect(files.length).toBeGreaterThanOrEqual(4);
  const histories = files.map((f) => ({ workflowId: f, history: temporal.api.history.v1.History.decode(readFileSync(join(dir, f))) }));
  const results: { file: string; error?: unknown }[] = [];
  for await (const r of Worker.runReplayHistories({ workflowsPath: require.resolve('../workflows'), bundlerOptions: WORKFLOW_BUNDLER_OPTIONS }, histories)) {
    results.push({ file: r.workflowId, error: r.error });
  }
  expect(results.map((r) => r.file).sort()).toEqual(files);
  expect(results.filter((r) => r.error !== undefined)).toEqual([]);
});
