/**
 * A node's settings from its environment: the workflow cache size is the SDK's unless set, the
 * heap growth has a default, and a value out of range is refused naming the variable (a unit test
 * of src/config.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNodeConfig } from '../src/config';

const networkFile = join(mkdtempSync(join(tmpdir(), 'lockstep-config-test-')), 'network.json');
writeFileSync(
  networkFile,
  JSON.stringify({
    chain: { rpcUrl: 'http://127.0.0.1:8545', chainId: 31337, sequencer: '0x0000000000000000000000000000000000000001', deployBlock: 0, confirmations: 1 },
    temporal: { address: '127.0.0.1:7233' },
    mongodb: { uri: 'mongodb://127.0.0.1:27017' },
    parties: { alpha: { address: '0x0000000000000000000000000000000000000002', namespace: 'alpha', apiUrl: 'http://127.0.0.1:4001', dxUrl: 'http://127.0.0.1:5001' } },
  }),
);
const load = (env: NodeJS.ProcessEnv) => loadNodeConfig({ party: 'alpha', networkFile }, env).config;

test('the workflow cache size is left to the SDK unless LOCKSTEP_WORKFLOW_CACHE_SIZE sets it', () => {
  expect(load({}).workflowCacheSize).toBeUndefined();
  expect(load({ LOCKSTEP_WORKFLOW_CACHE_SIZE: '200' }).workflowCacheSize).toBe(200);
});

test('a workflow cache size out of range is refused, naming the variable', () => {
  expect(() => load({ LOCKSTEP_WORKFLOW_CACHE_SIZE: '1' })).toThrow('LOCKSTEP_WORKFLOW_CACHE_SIZE must be an integer between 2 and 100000, got "1"');
  expect(() => load({ LOCKSTEP_WORKFLOW_CACHE_SIZE: 'many' })).toThrow(/LOCKSTEP_WORKFLOW_CACHE_SIZE must be an integer/);
});

test('heap growth is 20 % unless LOCKSTEP_HEAP_GROWTH_PERCENT sets it; 0 leaves it to V8', () => {
  expect(load({}).heapGrowthPercent).toBe(20);
  expect(load({ LOCKSTEP_HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent).toBe(0);
  expect(load({ LOCKSTEP_HEAP_GROWTH_PERCENT: '100' }).heapGrowthPercent).toBe(100);
  expect(() => load({ LOCKSTEP_HEAP_GROWTH_PERCENT: '-5' })).toThrow('LOCKSTEP_HEAP_GROWTH_PERCENT must be an integer between 0 and 400, got "-5"');
});

test('webhooks may go anywhere allowed unless LOCKSTEP_WEBHOOK_ALLOW lists where; a bad entry is refused, naming the variable', () => {
  expect(load({}).webhooks.allow).toBeUndefined();
  expect(load({ LOCKSTEP_WEBHOOK_ALLOW: ' ' }).webhooks.allow).toBeUndefined();
  expect(load({ LOCKSTEP_WEBHOOK_ALLOW: 'hooks.example.com,10.0.0.0/8' }).webhooks.allow).toEqual({ hosts: ['hooks.example.com'], ranges: [[expect.anything(), 8]] });
  expect(() => load({ LOCKSTEP_WEBHOOK_ALLOW: 'hooks.example.com,a_b' })).toThrow('LOCKSTEP_WEBHOOK_ALLOW: "a_b" is neither a host name');
});

test('a run continues as new once its history has grown 16 MiB, unless LOCKSTEP_MAX_HISTORY_BYTES_PER_RUN says otherwise', () => {
  expect(load({}).runLimits.maxHistoryBytes).toBe(16 * 1_048_576);
  expect(load({ LOCKSTEP_MAX_HISTORY_BYTES_PER_RUN: '1048576' }).runLimits.maxHistoryBytes).toBe(1_048_576);
  expect(() => load({ LOCKSTEP_MAX_HISTORY_BYTES_PER_RUN: '1000' })).toThrow('LOCKSTEP_MAX_HISTORY_BYTES_PER_RUN must be an integer between 65536 and 41943040, got "1000"');
});
