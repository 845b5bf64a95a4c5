#!/usr/bin/env node
// Decode attention of one sequence (attnDecode: every head, one query over the cache) with the addon's thread count at 1
// and at 2, interleaved, median of 5: the heads are split over the pool by KV head once the cache is long enough
// (native/attn.cc). Shape: the 2.7B qwen3_moe of docs/benchmarks.md (32 heads, 8 KV heads, head dim 128).
//   node bench/attn-decode.mjs [--lengths=128,640,4096]
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const addon = createRequire(import.meta.url)('../build/Release/moekit_native.node');
const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
console.log('| cache length | 1 thread ms | 2 threads ms | ratio |');
console.log('|---:|---:|---:|---:|');
for (const S of arg('lengths', '128,640,4096').split(',').map(Number)) {
  const nH = 32, nKv = 8, D = 128, cap = S;
  const fill = (n, v) => new Float32Array(n).map((_, i) => v * Math.sin(i));
  const q = fill(nH * D, 0.1), K = fill(nKv * cap * D, 0.2), V = fill(nKv * cap * D, 0.3), o = new Float32Array(nH * D);
  const r = { 1: [], 2: [] };
  const calls = Math.max(20, Math.round(2e5 / S));
  for (let rep = 0; rep < 5; rep++) {
    for (const t of [1, 2]) {
      addon.setThreads(t);
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) addon.attnDecode(q, K, V, o, nH, nKv, cap, D, D, 0, S, 1 / Math.sqrt(D), null);
      r[t].push((performance.now() - t0) / calls);
    }
  }
  console.log(`| ${S} | ${med(r[1]).toFixed(3)} | ${med(r[2]).toFixed(3)} | ×${(med(r[1]) / med(r[2])).toFixed(2)} |`);
}
