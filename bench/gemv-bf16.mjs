#!/usr/bin/env node
// Decode-shaped GEMV with bf16 weights: y[N] = W[N,K] · x[K] through the native sgemvBf16
// (hand-written AVX2/FMA, weights read as bf16, native/bf16.cc) vs its peer, OpenBLAS sgemv on
// the same weights widened to f32 (the addon's sgemv). Decode is memory-bound, so the figure of
// merit is GB/s of weights read (bf16: 2·N·K bytes, f32: 4·N·K bytes) and the time ratio.
// Each format cycles through enough copies of its weights (--ws-mb, default 1536 MiB per format)
// that every call streams them from DRAM, as decode does for a model larger than the L3
// (--ws-mb=0: one copy, cache-hot where it fits).
// Standalone; needs only the addon (`npm run build:native`):
//   MOEKIT_THREADS=2 OPENBLAS_NUM_THREADS=2 node bench/gemv-bf16.mjs [--shapes=4096x4096,14336x4096]
//     [--reps=30] [--ws-mb=1536] [--header]
// Prints one markdown table row per shape on stdout (header with --header); details to stderr.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const shapes = arg('shapes', '4096x4096,14336x4096').split(',').map((s) => s.split('x').map(Number));
const reps = Number(arg('reps', '30'));
const wsBytes = Number(arg('ws-mb', '1536')) * 2 ** 20;
// thread count must be in the environment before OpenBLAS loads (with the addon, below)
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;

const require = createRequire(import.meta.url);
let addon;
try {
  addon = require('../build/Release/moekit_native.node');
} catch (e) {
  console.error(`bench/gemv-bf16: native addon unavailable (npm run build:native): ${e.message}`);
  process.exit(1);
}
if (typeof addon.sgemvBf16 !== 'function') {
  console.error('bench/gemv-bf16: the addon predates sgemvBf16; run `npm run build:native`');
  process.exit(1);
}
addon.setThreads(Number(process.env.MOEKIT_THREADS));
const info = addon.info();

/** len random bf16 weights (bits of floats in [-1, 1), truncated) from a fixed LCG */
function randBf16(len, seed) {
  const a = new Uint16Array(len); // [N, K]
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[0] = s / 2147483648 - 1;
    a[i] = u[0] >>> 16;
  }
  return a;
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

/** copies of `w` (distinct buffers, same contents) totalling at least wsBytes */
function copies(w) {
  const n = Math.max(1, Math.ceil(wsBytes / w.byteLength));
  const out = [w];
  for (let i = 1; i < n; i++) out.push(w.slice());
  return out;
}

/** median seconds per call of f(copy) cycling through copies, after one warm-up pass */
function time(ws, f) {
  for (const w of ws) f(w);
  const t = [];
  for (let r = 0; r < reps; r++) {
    const w = ws[r % ws.length];
    const t0 = performance.now();
    f(w);
    t.push((performance.now() - t0) / 1e3);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

if (process.argv.includes('--header')) {
  console.log('| GEMV N×K | threads | bf16 native ms | bf16 GB/s | f32 OpenBLAS sgemv ms | ' +
    'f32 GB/s | bf16 speed-up |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
}
for (const [N, K] of shapes) {
  const wb = randBf16(N * K, 1);
  const wf = new Float32Array(N * K); // the same weights widened, for the f32 peer
  addon.bf16ToF32(wf, wb, N * K);
  const x = randF32(K, 2);
  const yb = new Float32Array(N), yf = new Float32Array(N);

  const wbs = copies(wb);
  const tB = time(wbs, (w) => addon.sgemvBf16(N, K, 1, w, x, 0, yb));
  wbs.length = 0;
  const wfs = copies(wf);
  const tF = time(wfs, (w) => addon.sgemv(N, K, 1, w, x, 0, yf));
  wfs.length = 0;

  // sanity: the two agree (same weights, f32 accumulation in both)
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < N; i++) {
    maxErr = Math.max(maxErr, Math.abs(yb[i] - yf[i]));
    maxRef = Math.max(maxRef, Math.abs(yf[i]));
  }
  if (!(maxErr <= 1e-4 * Math.max(1, maxRef))) {
    console.error(`bench/gemv-bf16: bf16 and f32 GEMV disagree (max |diff| ${maxErr})`);
    process.exit(1);
  }
  const gbB = (2 * N * K) / tB / 1e9, gbF = (4 * N * K) / tF / 1e9;
  console.error(`bench/gemv-bf16: N=${N} K=${K}, threads=${info.threads}, simd=${info.simd} ` +
    `(${info.blasConfig.trim()}), working set ${(wsBytes / 2 ** 20).toFixed(0)} MiB per format, ` +
    `median of ${reps}; max |diff| ${maxErr.toExponential(2)}`);
  console.log(`| ${N}×${K} | ${info.threads} | ${(tB * 1e3).toFixed(2)} | ${gbB.toFixed(1)} | ` +
    `${(tF * 1e3).toFixed(2)} | ${gbF.toFixed(1)} | ${(tF / tB).toFixed(2)}× |`);
}
