/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Tests start real servers (Temporal dev server, FerretDB, anvil) and party nodes.
  testTimeout: 120000,
  // Suites each start their own stack; on a 2-core machine two at a time is the sweet spot.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/support/results-reporter.js'],
};
