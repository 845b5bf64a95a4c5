// The vitest configuration `npm run mutate` (scripts/mutate.mjs) gives StrykerJS: only the test files of the module
// under mutation (MOEKIT_MUTATE_TESTS, comma-separated), so each mutant runs the few tests that can see it.
import { defineConfig } from 'vitest/config';

const files = (process.env.MOEKIT_MUTATE_TESTS ?? '').split(',').filter(Boolean);
if (files.length === 0) throw new Error('vitest.mutate.config.ts: MOEKIT_MUTATE_TESTS names no test files (run it through npm run mutate)');
export default defineConfig({
  test: {
    include: files,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
