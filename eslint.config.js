// Lint: typed rules everywhere (no floating promises), and workflow code kept deterministic:
// no Node built-ins or I/O libraries may be imported from workflows/.
'use strict';
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const { builtinModules } = require('node:module');

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);
const ioLibraries = ['ethers', 'mongodb', 'express', 'pino', 'yaml', 'canonicalize', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'];

module.exports = tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'contracts/build/**', 'test-output/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: __dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts', 'bench/baseline/workflows.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...nodeBuiltins, ...ioLibraries].map((name) => ({ name, message: 'workflow code must be deterministic: do I/O in activities/' })),
          patterns: [{ group: ['../activities', '../activities/*'], allowTypeImports: true, message: 'workflows import activities with `import type` only' }],
        },
      ],
    },
  },
  {
    // FerretDB 1.24 (the local default store) stalls on unordered bulk writes of ~100 updates (every
    // pool connection held, nothing served) and leaks a connection per findAndModify:
    // docs/performance.md, "FerretDB and bulk writes". The node sends single commands.
    files: ['src/**/*.ts', 'activities/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { property: 'bulkWrite', message: 'FerretDB stalls on large bulk writes: send single writes (docs/performance.md)' },
        ...['findOneAndUpdate', 'findOneAndReplace', 'findOneAndDelete'].map((property) => ({
          property,
          message: 'FerretDB leaks a connection per findAndModify: write, then read (docs/performance.md)',
        })),
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', parserOptions: { projectService: false, project: null }, globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
