#!/usr/bin/env node
// Decode-shaped GEMV over block-quantised weights: y[N] = W[N,K] · x[K] through the native qgemm (M = 1;
// native/quant.cc: x quantised to 8 bits per block, integer block dots) for q8_0 (1.0625 B/weight) and q4_0
// (0.5625 B/weight), beside sgemvBf16 (2 B/weight) on the same shape. Decode is memory-bound, so the figures are
// GB/s of weight bytes read and weights/s; the ratio column is the time of bf16 over the format's. Each format
// cycles through enough copies of its weights (--ws-mb, default 1024 MiB per format) that every call streams them
// from DRAM. A plain read of a --ws-mb buffer (the bf16 widening kernel over it, bf16ToF32 into a small ring)
// gives the machine's streaming bandwidth for comparison.
//   MOEKIT_THREADS=2 OPENBLAS_NUM_THREADS=2 node bench/gemv-quant.mjs [--shapes=2048x2048,1024x2048] [--reps=20]
//     [--ws-mb=1024] [--header]
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const shapes = arg('shapes', '2048x2048,1024x2048,151936x2048').split(',').map((s) => s.split('x').map(Number));
const reps = Number(arg('reps', '20'));
const wsBytes = Number(arg('ws-mb', '1024')) * 2 ** 20;
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;
const require = createRequire(import.meta.url);
let addon;
try { addon = require('../build/Release/moekit_native.node'); } catch (e) {
  console.error(`bench/gemv-quant: native addon unavailable (npm run build:native): ${e.message}`);
  process.exit(1);
}
if (typeof addon.qgemm !== 'function') { console.error('bench/gemv-quant: the addon predates qgemm; run `npm run build:native`'); process.exit(1); }
addon.setThreads(Number(process.env.MOEKIT_THREADS));

/** random bytes from an LCG; for blocks, every block's scale set to a finite binary16 (0x2c00 = 1/16) */
function randBlocks(bytes, bs, seed) {
  const a = new Uint8Array(bytes);
  let s = seed >>> 0;
  for (let i = 0; i < bytes; i += 4) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s; a[i + 1] = s >>> 8; a[i + 2] = s >>> 16; a[i + 3] = s >>> 24;
  }
  if (bs) for (let b = 0; b < bytes; b += bs) { a[b] = 0x00; a[b + 1] = 0x2c; }
  return a;
}
const median = (xs) => { const s = [...xs].sort((p, q) => p - q); return s[s.length >> 1]; };

function run(N, K, fmt) {
  const bpw = fmt === 'bf16' ? 2 : fmt === 'q8_0' ? 34 / 32 : 18 / 32;
  const bytes = N * K * bpw;
  const copies = Math.max(1, Math.floor(wsBytes / bytes));
  const Ws = Array.from({ length: copies }, (_, c) => {
    const raw = randBlocks(bytes, fmt === 'bf16' ? 0 : fmt === 'q8_0' ? 34 : 18, 7 + c);
    return fmt === 'bf16' ? new Uint16Array(raw.buffer) : raw;
  });
  const x = new Float32Array(K).map((_, i) => Math.sin(i)), y = new Float32Array(N);
  const call = (W) => (fmt === 'bf16' ? addon.sgemvBf16(N, K, 1, W, x, 0, y) : addon.qgemm(fmt, 1, N, K, x, K, W, y, N));
  for (let i = 0; i < Math.min(copies, 3); i++) call(Ws[i]);
  const t = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    call(Ws[r % copies]);
    t.push(performance.now() - t0);
  }
  const ms = median(t);
  return { ms, gbs: bytes / ms / 1e6, gw: (N * K) / ms / 1e6 };
}

function bandwidth() {
  const n = wsBytes / 2;
  const src = new Uint16Array(n);
  for (let i = 0; i < n; i += 4096) src[i] = i;
  const ring = new Float32Array(1 << 18), chunk = 1 << 18;
  const t = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let o = 0; o + chunk <= n; o += chunk) addon.bf16ToF32(ring, src.subarray(o, o + chunk), chunk);
    t.push(performance.now() - t0);
  }
  return (n * 2) / median(t) / 1e6;
}

if (process.argv.includes('--header')) {
  console.log('| shape N×K | bf16 ms (GB/s) | q8_0 ms (GB/s, Gweights/s) | q4_0 ms (GB/s, Gweights/s) | bf16/q8_0 | bf16/q4_0 |');
  console.log('|---|---|---|---|---|---|');
}
for (const [N, K] of shapes) {
  const b = run(N, K, 'bf16'), q8 = run(N, K, 'q8_0'), q4 = run(N, K, 'q4_0');
  console.log(`| ${N}×${K} | ${b.ms.toFixed(3)} (${b.gbs.toFixed(1)}) | ${q8.ms.toFixed(3)} (${q8.gbs.toFixed(1)}, ${q8.gw.toFixed(1)}) | ` +
    `${q4.ms.toFixed(3)} (${q4.gbs.toFixed(1)}, ${q4.gw.toFixed(1)}) | ×${(b.ms / q8.ms).toFixed(2)} | ×${(b.ms / q4.ms).toFixed(2)} |`);
}
console.error(`streaming read (bf16ToF32 over ${wsBytes / 2 ** 20} MiB): ${bandwidth().toFixed(1)} GB/s; threads ${addon.info().threads}, simd ${addon.info().simd}`);
