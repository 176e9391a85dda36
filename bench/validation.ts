/**
 * Benchmark figure (not a test): how long validating a typical step input takes with the cached
 * validator, as every node does it for every step it proposes or receives.
 * Run with `npm run bench:validation`.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadDefinitionFile } from '../src/definitions/load';
import { findStep } from '../src/process/rules';
import { validateStepData } from '../src/process/step-data';

const loaded = loadDefinitionFile(join(__dirname, '..', '..', 'definitions', 'healthcare-claim.yaml'));
const step = findStep(loaded.definition, 'send-remittance');
const input = { paymentRef: 'EFT-20261121-0001', paidAmount: 412.5, member: { memberId: 'M-4471-22', plan: 'gold' } };

function measure(iterations: number): number {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) validateStepData(loaded.hash, loaded.definition, step, { input });
  return ((performance.now() - start) * 1000) / iterations;
}

const first = performance.now();
validateStepData(loaded.hash, loaded.definition, step, { input }); // compiles and caches the validator
console.log(`first validation (compiles the schema): ${((performance.now() - first) * 1000).toFixed(0)} µs`);
measure(10_000); // warm-up
const runs = [measure(100_000), measure(100_000), measure(100_000)].sort((a, b) => a - b);
console.log(`cached validation of a typical input (${step.id}, healthcare-claim): ${runs[1]!.toFixed(2)} µs per validation (median of 3 runs of 100,000)`);
