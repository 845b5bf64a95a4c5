#!/usr/bin/env node
// `npm run bench`: builds, then runs every benchmark in turn; results go in docs/benchmarks.md.
// MOEKIT_BENCH_BEFORE=DIR (a built checkout of an earlier commit) adds the before/after comparison.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

const node = process.execPath;
const sh = (file, args = []) => execFileSync(node, [file, ...args], { stdio: 'inherit' });
execFileSync('npm', ['run', '--silent', 'build:ts'], { stdio: 'inherit' });
console.log('\n## GEMM 1024³ fp32 (bench/gemm.mjs)\n');
sh('bench/gemm.mjs', ['--header']);
console.log('\n## GEMV with bf16 weights (bench/gemv-bf16.mjs)\n');
sh('bench/gemv-bf16.mjs', ['--header']);
console.log('\n## GEMV with q8_0 / q4_0 weights (bench/gemv-quant.mjs)\n');
sh('bench/gemv-quant.mjs', ['--header']);
console.log('\n## Linear layers through each kernel path: AVX2, AVX-512 (VNNI, BF16), AMX (bench/gemm-paths.mjs)\n');
sh('bench/gemm-paths.mjs', ['--header', '--threads=1']);
console.log('\n## moekit vs llama.cpp (node-llama-cpp), bf16 / q8_0 / q4_0 (bench/vs-llamacpp.mjs)\n');
sh('bench/vs-llamacpp.mjs');
console.log('\n## Engine prefill/decode (bench/engine.mjs)\n');
sh('bench/engine.mjs');
console.log('\n## Continuous batching (bench/sessions.mjs)\n');
sh('bench/sessions.mjs');
console.log('\n## Batched decode steps on the demo model (bench/decode-batch.mjs)\n');
sh('bench/decode-batch.mjs', process.env.MOEKIT_BENCH_BEFORE ? [`--before=${process.env.MOEKIT_BENCH_BEFORE}`] : []);
console.log('\n## Serving load: 64 concurrent streams on moekit serve (bench/serve-load.mjs)\n');
sh('bench/serve-load.mjs', ['--clients=64', '--tokens=128', '--repeat=3']);
for (const f of ['bench/plan/search_speed.mjs']) {
  if (fs.existsSync(f)) {
    console.log(`\n## Planner (${f})\n`);
    sh(f);
  }
}
console.log('\n## Training throughput (bench/train.mjs)\n');
sh('bench/train.mjs'); // the demo model's shape; with MOEKIT_BENCH_BEFORE also that build side by side
// this build against an earlier one, side by side (MOEKIT_BENCH_BEFORE: a built checkout of the earlier commit)
if (process.env.MOEKIT_BENCH_BEFORE) {
  console.log(`\n## Before / after (bench/before-after.mjs, before = ${process.env.MOEKIT_BENCH_BEFORE})\n`);
  sh('bench/before-after.mjs', [`--before=${process.env.MOEKIT_BENCH_BEFORE}`, '--runs=9']);
}
