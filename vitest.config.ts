import { defineConfig } from 'vitest/config';

// Tests import packages by name, which resolves to their built dist/ (npm test runs `tsc -b` first),
// so tests exercise exactly the code that child processes and enclave workers run.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'modules/*/test/**/*.test.ts', 'tests/**/*.test.ts', 'examples/tas/*/test/**/*.test.ts'],
    pool: 'forks',
    reporters: ['default', './tests/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
