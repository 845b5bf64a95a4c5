#!/usr/bin/env node
// GEMM benchmark: C[n,n] = A[n,n] · B[n,n] in fp32 on the native core (OpenBLAS via the addon)
// vs a peer in plain JavaScript: a naive i-k-j triple loop (default) or the TypeScript
// reference kernel (--peer=reference, i-j-k with float64 dot products: much slower).
// Standalone; run after `npm run build`:
//   MOEKIT_THREADS=2 OPENBLAS_NUM_THREADS=2 node bench/gemm.mjs [--n=1024] [--peer=naive|reference]
// Prints one markdown table row on stdout (header with --header); details go to stderr.
import { performance } from 'node:perf_hooks';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const n = Number(arg('n', '1024'));
const peerName = arg('peer', 'naive');
const reps = Number(arg('reps', '10'));
// thread count must be in the environment before OpenBLAS loads (with the addon, below)
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;

const { nativeAddon, nativeKernels, nativeLoadError } = await import('../dist/tensor/native.js');
const { referenceKernels } = await import('../dist/tensor/ref/index.js');
if (!nativeKernels) {
  console.error(`bench/gemm: native kernels unavailable: ${nativeLoadError}`);
  process.exit(1);
}

/** n·n random floats in [-1, 1) from a fixed LCG, so runs are comparable */
function rand(len, seed) {
  const a = new Float32Array(len); // [n, n]
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2147483648 - 1;
  }
  return a;
}

/** the peer: C[n,n] = A[n,n] · B[n,n], i-k-j order (streams rows of B and C), fp32 storage */
function naiveGemm(n, A, B, C) {
  C.fill(0);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let k = 0; k < n; k++) {
      const a = A[i * n + k];
      const bk = k * n;
      for (let j = 0; j < n; j++) C[ci + j] += a * B[bk + j];
    }
  }
}

const A = rand(n * n, 1), B = rand(n * n, 2); // [n, n] each
const Cn = new Float32Array(n * n), Cp = new Float32Array(n * n); // [n, n]
const flop = 2 * n ** 3;

// native: one warm-up, then the median of `reps` runs
const nativeRun = () => nativeKernels.sgemm(false, false, n, n, n, 1, A, n, B, n, 0, Cn, n);
nativeRun();
const times = [];
for (let r = 0; r < reps; r++) {
  const t0 = performance.now();
  nativeRun();
  times.push((performance.now() - t0) / 1e3);
}
times.sort((a, b) => a - b);
const tNative = times[Math.floor(times.length / 2)];

// peer: a single run (it takes seconds)
const peer = peerName === 'reference'
  ? () => referenceKernels.sgemm(false, false, n, n, n, 1, A, n, B, n, 0, Cp, n)
  : () => naiveGemm(n, A, B, Cp);
if (peerName !== 'reference') naiveGemm(Math.min(n, 64), A, B, Cp); // JIT warm-up
const t0 = performance.now();
peer();
const tPeer = (performance.now() - t0) / 1e3;

// sanity: the two results agree
let maxErr = 0, maxRef = 0;
for (let i = 0; i < n * n; i += 97) {
  maxErr = Math.max(maxErr, Math.abs(Cn[i] - Cp[i]));
  maxRef = Math.max(maxRef, Math.abs(Cp[i]));
}
if (!(maxErr <= 1e-4 * Math.max(1, maxRef))) {
  console.error(`bench/gemm: native and ${peerName} disagree (max |diff| ${maxErr})`);
  process.exit(1);
}

const gNative = flop / tNative / 1e9, gPeer = flop / tPeer / 1e9;
const info = nativeAddon.info();
console.error(`bench/gemm: n=${n}, OpenBLAS threads=${info.threads} (${info.blasConfig.trim()}), ` +
  `row kernels=${info.simd}; native median of ${reps}: ${(tNative * 1e3).toFixed(1)} ms, ` +
  `${peerName} peer: ${(tPeer * 1e3).toFixed(0)} ms; max |diff| ${maxErr.toExponential(2)}`);
const peerLabel = peerName === 'reference' ? 'TS reference (i-j-k, f64 dot)' : 'naive JS i-k-j';
if (process.argv.includes('--header')) {
  console.log('| benchmark | threads | native GFLOP/s | peer | peer GFLOP/s | speed-up |');
  console.log('|---|---:|---:|---|---:|---:|');
}
console.log(`| sgemm ${n}³ fp32 | ${info.threads} | ${gNative.toFixed(1)} | ${peerLabel} | ` +
  `${gPeer.toFixed(2)} | ${(gNative / gPeer).toFixed(0)}× |`);
