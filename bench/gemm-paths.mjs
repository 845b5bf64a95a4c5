#!/usr/bin/env node
// The linear layers of prefill and of the MoE experts, C[M,N] = A[M,K] · W[N,K]ᵀ with A in f32 and W in bf16
// (sgemmBf16) or q8_0 / q4_0 (qgemm), through each kernel path the CPU offers, side by side, interleaved, on the
// same data. bf16: 'avx2' (the small-M register-tile kernel for M <= 64, else W widened in panels + OpenBLAS
// sgemm), 'avx512' (VDPBF16PS, native/bf16_avx512.cc) and 'amx' (tiles, native/amx.cc), each forced whatever M
// sgemmBf16 would pick it for. q8_0 / q4_0: 'avx2' (maddubs) and 'avx512' (VNNI, native/quant_vnni.cc). Each row:
// the median GFLOP/s (2·M·N·K per call) of each path over --reps rounds, and the ratio of each to avx2. The shapes are the bench model's expert GEMMs at the row counts prefill gives
// them (128- and 512-token prompts route ~16 and ~64 rows to each of 64 experts at top-8) and whole-prompt
// projections.
// Standalone; needs only the addon (`npm run build:native`):
//   node bench/gemm-paths.mjs [--types=bf16,q8_0,q4_0] [--shapes=MxNxK,...] [--reps=7] [--threads=1|2] [--header]
// Prints one markdown table row per shape on stdout (header with --header); details to stderr.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const shapes = arg('shapes', '2x1024x2048,4x1024x2048,8x1024x2048,16x1024x2048,16x2048x1024,64x1024x2048,64x2048x1024,128x2048x2048,512x2048x2048')
  .split(',').map((s) => s.split('x').map(Number));
const reps = Number(arg('reps', '7'));
const types = arg('types', 'bf16,q8_0,q4_0').split(',');
process.env.MOEKIT_THREADS = arg('threads', process.env.MOEKIT_THREADS ?? '2');
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;

const require = createRequire(import.meta.url);
let addon;
try {
  addon = require('../build/Release/moekit_native.node');
} catch (e) {
  console.error(`bench/gemm-paths: native addon unavailable (npm run build:native): ${e.message}`);
  process.exit(1);
}
addon.setThreads(Number(process.env.MOEKIT_THREADS));
const info = addon.info();
const pathsOf = (type) => type === 'bf16'
  ? ['avx2', ...(info.avx512bf16 ? ['avx512'] : []), ...(info.amx ? ['amx'] : [])]
  : ['avx2', ...(info.avx512vnni ? ['avx512'] : [])];
function use(path) {
  addon.setSimd('avx2');
  addon.setAmx?.(path === 'amx');
  addon.setAvx512?.(path === 'avx512' || path === 'amx', path === 'avx512'); // forced: bf16 at every M
}

function randF32(len, seed) {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2147483648 - 1;
  }
  return a;
}
const toBf16 = (f) => new Uint16Array(new Uint32Array(f.buffer).map((u) => u >>> 16));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

if (process.argv.includes('--header')) {
  console.log('| weights | M×N×K | GFLOP/s per path | ratio to avx2 |');
  console.log('|---|---|---|---|');
}
console.error(`bench/gemm-paths: ${info.threads} thread(s), median of ${reps} interleaved rounds`);
for (const type of types) for (const [M, N, K] of shapes) {
  const paths = pathsOf(type);
  const A = randF32(M * K, 1), C = new Float32Array(M * N);
  let W;
  if (type === 'bf16') W = toBf16(randF32(N * K, 2));
  else {
    W = new Uint8Array((N * K) / 32 * (type === 'q8_0' ? 34 : 18));
    addon.quantize(type, W, randF32(N * K, 2), N * K);
  }
  const gemm = type === 'bf16'
    ? () => addon.sgemmBf16(M, N, K, 1, A, K, W, K, 0, C, N)
    : () => addon.qgemm(type, M, N, K, A, K, W, C, N);
  const flop = 2 * M * N * K;
  const calls = Math.max(1, Math.round(2e9 / flop)); // ~2 GFLOP per timing
  const times = Object.fromEntries(paths.map((p) => [p, []]));
  const outs = {};
  for (let r = 0; r < reps; r++) {
    for (const p of paths) {
      use(p);
      gemm(); // warm
      const t0 = performance.now();
      for (let c = 0; c < calls; c++) gemm();
      times[p].push((performance.now() - t0) / calls);
      if (r === 0) outs[p] = C.slice();
    }
  }
  use('amx');
  let maxDiff = 0; // each path's agreement with avx2 (relative to the largest |C|)
  const big = outs.avx2.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (const p of paths) for (let i = 0; i < M * N; i++) maxDiff = Math.max(maxDiff, Math.abs(outs[p][i] - outs.avx2[i]) / big);
  const gf = paths.map((p) => flop / median(times[p]) / 1e6);
  const cell = (xs) => xs.map((x, i) => `${paths[i]} ${x}`).join(', ');
  console.log(`| ${type} | ${M}×${N}×${K} | ${cell(gf.map((g) => g.toFixed(1)))} | ${cell(gf.map((g) => `×${(g / gf[0]).toFixed(2)}`)).split(', ').slice(1).join(', ') || '—'} |`);
  console.error(`  ${type} ${M}x${N}x${K}: ${calls} calls per round; paths agree with avx2 to ${maxDiff.toExponential(1)} of max |C|`);
}
