#!/usr/bin/env node
// Mutation testing of the pure-TypeScript modules with StrykerJS (docs/testing.md): `npm run mutate -- --module moe`
// (one of runtime, train, io, moe, plan; `--module all` runs them one after the other). Each module is mutated with
// only its own test files (vitest.mutate.config.ts), per-test coverage, and an incremental file under reports/
// (gitignored), so a rerun tests only the mutants whose code or tests changed. Not part of `npm test`: it is slow.
//   --concurrency N   test runner processes (default 2; the machine has 2 cores)
//   --full            ignore the incremental file (retest every mutant)
//   --files a.ts,b.ts mutate only these files of the module (a quick look at one file)
//   --isolate yes|no  import src/ afresh for every test file (vitest's isolate), or share one module graph per run;
//                     default: the module's `isolate` (yes unless it says false)
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * Per module: the files mutated and the test files run against them. Left out, and why (docs/testing.md):
 * runtime/worker.ts and train/worker.ts run only inside worker threads, which load the compiled dist/ copy
 * (src/util/worker-file.ts), so no mutant of src/ can reach them. Test files that search published-scale
 * layouts (test/plan/search.test.ts: 20 s a run), refit the framework constants or search Pangu's assumptions
 * (test/plan/reference-fit.test.ts: 7 s), import the whole command line (test/plan/cli.test.ts: the engine, the
 * server and the trainer, seconds a mutant run with modules fresh per run) or drive the compiled worker (test/sessions.test.ts) are left to
 * `npm test`; small brute-force cases (test/plan/search-small.test.ts) and the in-process scheduler
 * (test/scheduler.test.ts) hold the same code here.
 */
export const MODULES = {
  moe: {
    mutate: ['src/moe/**/*.ts'],
    tests: ['test/moe-reference.test.ts', 'test/moe-backward.test.ts', 'test/moe-route.test.ts', 'test/balance.test.ts'],
  },
  runtime: {
    mutate: ['src/runtime/**/*.ts', '!src/runtime/worker.ts'],
    tests: ['test/runtime.test.ts', 'test/sampling.test.ts', 'test/scheduler.test.ts', 'test/eval.test.ts', 'test/remote.test.ts'],
  },
  train: {
    mutate: ['src/train/**/*.ts', '!src/train/worker.ts'],
    tests: ['test/train-units.test.ts', 'test/train-config.test.ts', 'test/trainer.test.ts', 'test/adamw.test.ts', 'test/bf16.test.ts', 'test/train-micro.test.ts', 'test/train-sources.test.ts', 'test/train-names.test.ts', 'test/mtp-grad.test.ts', 'test/train-model-save.test.ts', 'test/trainer-step.test.ts', 'test/train-recipes.test.ts', 'test/trainer-setup.test.ts', 'test/doc-mask.test.ts'],
  },
  io: {
    mutate: ['src/io/**/*.ts'],
    tests: ['test/safetensors.test.ts', 'test/checkpoint.test.ts', 'test/quant.test.ts', 'test/bf16.test.ts', 'test/tensor-table.test.ts', 'test/validation.test.ts', 'test/tokenizer.test.ts', 'test/dtypes.test.ts', 'test/io-read.test.ts',
            'test/gguf.test.ts', 'test/config-json.test.ts', 'test/params.test.ts', 'test/errors.test.ts', 'test/io-config.test.ts',
            'test/gguf-format.test.ts', 'test/model-dir.test.ts', 'test/safetensors-write.test.ts',
            'test/tokenizer-files.test.ts', 'test/io-read-edges.test.ts', 'test/config-json-text.test.ts'],
  },
  plan: {
    mutate: ['src/plan/**/*.ts'],
    tests: ['test/plan/flops.test.ts', 'test/plan/memory.test.ts', 'test/plan/simulate.test.ts', 'test/plan/terms.test.ts',
            'test/plan/op.test.ts', 'test/plan/fitted.test.ts', 'test/plan/models.test.ts', 'test/plan/search-small.test.ts',
            'test/plan/spec.test.ts', 'test/plan/review.test.ts', 'test/plan/graphs.test.ts', 'test/plan/kernels.test.ts',
            'test/plan/reference.test.ts', 'test/plan/balance.test.ts', 'test/plan/band.test.ts', 'test/plan/schedule.test.ts', 'test/plan/memory-hand.test.ts', 'test/plan/sweep.test.ts',
            'test/plan/export.test.ts', 'test/plan/op-hand.test.ts', 'test/plan/fit-hand.test.ts', 'test/plan/calibration.test.ts', 'test/plan/pangu.test.ts',
            'test/plan/hardware.test.ts', 'test/plan/reference-hand.test.ts', 'test/plan/fitted-hand.test.ts', 'test/plan/simulate-hand.test.ts',
            'test/plan/spec-fields.test.ts', 'test/plan/models-hand.test.ts', 'test/plan/sweep-hand.test.ts', 'test/plan/flops-hand.test.ts'],
    isolate: false,
  },
};

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) fail(`--${name} needs a value`);
  return v;
}

function fail(msg) {
  process.stderr.write(`npm run mutate: ${msg}\n`);
  process.exit(2);
}

const which = arg('module');
if (!which) fail(`name a module: --module ${Object.keys(MODULES).join('|')}|all`);
const names = which === 'all' ? Object.keys(MODULES) : [which];
for (const n of names) if (!MODULES[n]) fail(`unknown module '${n}' (one of ${Object.keys(MODULES).join(', ')}, all)`);
const concurrency = Number(arg('concurrency', '2'));
if (!Number.isInteger(concurrency) || concurrency < 1) fail('--concurrency must be a positive integer');
const only = arg('files');
const full = process.argv.includes('--full');
const isolateArg = arg('isolate');
if (isolateArg !== undefined && isolateArg !== 'yes' && isolateArg !== 'no') fail('--isolate must be yes or no');

const { Stryker } = await import('@stryker-mutator/core');
const scores = [];
for (const name of names) {
  const m = MODULES[name];
  process.env.MOEKIT_MUTATE_TESTS = m.tests.join(',');
  process.env.MOEKIT_MUTATE_ISOLATE = (isolateArg ?? (m.isolate === false ? 'no' : 'yes')) === 'no' ? '0' : '1';
  const mutate = only ? only.split(',') : m.mutate;
  const stryker = new Stryker({
    packageManager: 'npm',
    testRunner: 'vitest',
    plugins: ['@stryker-mutator/vitest-runner'],
    vitest: { configFile: 'vitest.mutate.config.ts', related: false },
    mutate,
    coverageAnalysis: 'perTest',
    ignoreStatic: true,
    // i++ → i-- turns a loop counter into an endless loop: each such mutant costs a timeout and a test-runner restart
    // (seconds on the shared 2-core machine) and is "detected" by the timeout; leaving them out only lowers the score
    mutator: { excludedMutations: ['UpdateOperator'] },
    concurrency,
    incremental: !full,
    incrementalFile: `reports/stryker-incremental-${name}.json`,
    reporters: ['clear-text', 'progress-append-only', 'json'],
    jsonReporter: { fileName: `reports/mutation-${name}.json` },
    clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
    tempDirName: `.stryker-tmp-${name}`, // one per module: two modules can run at once
    cleanTempDir: true,
    timeoutMS: 10_000,
    dryRunTimeoutMinutes: 20,
    timeoutFactor: 2,
    thresholds: { high: 90, low: 80, break: null },
    ignorePatterns: ['dist/web', 'test-artifacts', 'reports', 'tmp', 'bench', '.stryker-tmp*'],
    disableTypeChecks: true,
  });
  const results = await stryker.runMutationTest();
  const killed = results.filter((r) => r.status === 'Killed' || r.status === 'Timeout').length;
  const survived = results.filter((r) => r.status === 'Survived' || r.status === 'NoCoverage').length;
  const score = killed + survived > 0 ? (100 * killed) / (killed + survived) : NaN;
  scores.push({ name, killed, survived, score });
}
for (const s of scores) {
  process.stdout.write(`mutation score ${s.name}: ${s.score.toFixed(2)}% (${s.killed} killed or timed out, ${s.survived} survived or uncovered)\n`);
}
