#!/usr/bin/env node
// Decode speed against routing sparsity: the same model decoding with its top-k and with half of it (the sub-model's
// top-k through Pass.sub), alternating run after run, best of N (greedy, 64 tokens after a 4-token prompt).
//   npm run build && node bench/topk-speed.mjs [MODEL_DIR=examples/demo-moe] [--runs=9] [--tokens=64]
import * as os from 'node:os';
const args = process.argv.slice(2);
const opt = (n, d) => { const a = args.find((s) => s.startsWith(`--${n}=`)); return a ? Number(a.slice(n.length + 3)) : d; };
const dir = args.find((a) => !a.startsWith('--')) ?? 'examples/demo-moe';
const runs = opt('runs', 9), tokens = opt('tokens', 64);
process.env.MOEKIT_THREADS ??= '1';
const { MoeModel } = await import('../dist/models/model.js');
const { generate } = await import('../dist/runtime/generate.js');
const m = MoeModel.load(dir);
const K = m.desc.moe.topK, half = Math.max(1, Math.floor(K / 2));
const speeds = { [K]: [], [half]: [] };
const prompt = [1, 40, 41, 42];
for (let r = 0; r < runs + 1; r++) {
  for (const k of r % 2 ? [half, K] : [K, half]) {
    const res = generate(m, prompt, { maxNewTokens: tokens, greedy: true, stopAtEos: false, sub: { topK: k } });
    if (r > 0) speeds[k].push(res.timings.decodeTokensPerS); // run 0 warms up
  }
}
const best = (xs) => Math.max(...xs), med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`| top-k | decode tok/s (best of ${runs}) | median |`);
console.log('|---:|---:|---:|');
for (const k of [K, half]) console.log(`| ${k} | ${best(speeds[k]).toFixed(0)} | ${med(speeds[k]).toFixed(0)} |`);
console.log(`\ntop-${half} vs top-${K}: ×${(best(speeds[half]) / best(speeds[K])).toFixed(2)} (best), ×${(med(speeds[half]) / med(speeds[K])).toFixed(2)} (median); ${dir}, MOEKIT_THREADS=${process.env.MOEKIT_THREADS}, ${os.cpus()[0]?.model ?? '?'}`);
