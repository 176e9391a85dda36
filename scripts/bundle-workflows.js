#!/usr/bin/env node
// Bundles the compiled workflow code once at build time, so party nodes start in a second
// instead of running webpack on every start.
'use strict';
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { bundleWorkflowCode } = require('@temporalio/worker');

async function main() {
  const root = join(__dirname, '..');
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(root, 'dist', 'workflows', 'index.js'),
    // The same options as a worker that bundles the sources itself (party-node.ts).
    ...require(join(root, 'dist', 'src', 'node', 'workflow-source.js')).WORKFLOW_BUNDLER_OPTIONS,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
  });
  writeFileSync(join(root, 'dist', 'workflow-bundle.js'), code);
  console.log(`workflows bundled: dist/workflow-bundle.js (${Math.round(code.length / 1024)} KiB)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
