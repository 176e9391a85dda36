/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Tests start real servers (Temporal dev server, FerretDB, anvil) and party nodes.
  testTimeout: 120000,
  // Suites each start their own stack (servers plus party nodes): on a 2-core machine, running
  // two at once made cross-node waits flaky, so they run one after another (about 7 minutes).
  maxWorkers: 1,
  reporters: ['default', '<rootDir>/test/support/results-reporter.js'],
};
