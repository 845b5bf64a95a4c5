// The vitest configuration `npm run mutate` (scripts/mutate.mjs) gives StrykerJS: only the test files of the module
// under mutation (MOEKIT_MUTATE_TESTS, comma-separated), so each mutant runs the few tests that can see it.
import { defineConfig } from 'vitest/config';

const files = (process.env.MOEKIT_MUTATE_TESTS ?? '').split(',').filter(Boolean);
if (files.length === 0) throw new Error('vitest.mutate.config.ts: MOEKIT_MUTATE_TESTS names no test files (run it through npm run mutate)');
export default defineConfig({
  test: {
    include: files,
    // MOEKIT_MUTATE_ISOLATE=0 (a module's `isolate: false` in scripts/mutate.mjs): the test files of one mutant run
    // share one module graph instead of importing src/ afresh per file (about a second a file on this machine, the
    // bulk of a run when a mutant is covered by ten files). Mutant switching reads the active mutant at run time, so
    // sharing is sound for every mutant but the static ones, which the run ignores (ignoreStatic).
    isolate: process.env.MOEKIT_MUTATE_ISOLATE !== '0',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
