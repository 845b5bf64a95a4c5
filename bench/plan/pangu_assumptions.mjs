#!/usr/bin/env node
// Pangu Ultra MoE over its unpublished numbers (src/plan/pangu.ts): the published layout's rank in the search and
// its predicted throughput at every combination of the named assumptions. Usage (after npx tsc -p tsconfig.json):
//   node bench/plan/pangu_assumptions.mjs [--json]
import { PANGU_ASSUMPTIONS, panguOverAssumptions } from '../../dist/plan/pangu.js';

const t0 = Date.now();
const pts = panguOverAssumptions();
if (process.argv.includes('--json')) { console.log(JSON.stringify({ assumptions: PANGU_ASSUMPTIONS, points: pts }, null, 1)); process.exit(0); }
for (const a of PANGU_ASSUMPTIONS) console.log(`${a.name}: ${a.values.join(', ')} (${a.why})`);
console.log('\n| seq | global batch | NPUs | peak TFLOPS | rank of published | of | published layout M tokens/s | best layout | its M tokens/s |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---|---:|');
for (const p of pts) {
  const a = p.assumptions;
  console.log(`| ${a.seq_len} | ${a.global_batch} | ${a.devices} | ${a.peak_bf16_tflops} | ${p.rank} | ${p.of} | ${(p.tokens_per_s / 1e6).toFixed(2)} | ${p.best_layout} | ${(p.best_tokens_per_s / 1e6).toFixed(2)} |`);
}
const ranks = pts.map((p) => p.rank).filter((r) => r > 0);
const tps = pts.map((p) => p.tokens_per_s).filter(Number.isFinite);
console.log(`\nrank ${Math.min(...ranks)}-${Math.max(...ranks)}; published layout ${(Math.min(...tps) / 1e6).toFixed(2)}-${(Math.max(...tps) / 1e6).toFixed(2)}M tokens/s (published 1.46M); ${pts.length} points, ${((Date.now() - t0) / 1e3).toFixed(0)} s`);
