// Writes jest's aggregated results to test-output/jest-results.json on every run, so CI can
// print a one-line summary without passing extra flags to the README's `npm test`.
'use strict';
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

class ResultsFileReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const dir = join(this.rootDir, 'test-output');
    mkdirSync(dir, { recursive: true });
    const { numPassedTests, numFailedTests, numPendingTests, numTotalTests, numFailedTestSuites, numRuntimeErrorTestSuites } = results;
    writeFileSync(join(dir, 'jest-results.json'), JSON.stringify({ numPassedTests, numFailedTests, numPendingTests, numTotalTests, numFailedTestSuites, numRuntimeErrorTestSuites }, null, 2));
  }
}

module.exports = ResultsFileReporter;
