/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Tests start real processes (anvil, Temporal dev server); startup alone can take seconds.
  testTimeout: 120000,
};
