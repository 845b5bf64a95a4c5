#!/usr/bin/env node
// Fit the few global constants of src/plan/op.ts (gemm_eff of the H200 preset, scatter_eff, launch_s,
// flash_fwd_eff, flash_bwd_eff) to docs/plan-op-measurements.json by Nelder-Mead on the sum of squared
// log errors of fwd_ms and fwd_bwd_ms over every MoE-layer (grouped GEMM) and attention row.
// bw_eff is not fitted: it is the measured copy bandwidth. Usage (after `npx tsc -p tsconfig.json`):
//   node bench/plan/fit_op_model.mjs
import { readFileSync } from 'node:fs';
import { hardwarePreset } from '../../dist/plan/hardware.js';
import { predictMoeLayer, predictAttention, OP_CONSTANTS } from '../../dist/plan/op.js';

// The committed constants are fitted on the fit set of lease A (docs/plan-op-measurements.json), the default.
// `--data docs/x.json` (repeatable) fits/evaluates other files instead; rows with "set": "holdout" are skipped
// unless --with-holdout is given (they are for validation: docs/plan-op-holdout-predictions.json was written first).
const argv = process.argv.slice(2);
const files = argv.flatMap((a, i) => (argv[i - 1] === '--data' ? [a] : []));
const sets = (files.length ? files : ['docs/plan-op-measurements.json']).map((f) => JSON.parse(readFileSync(new URL('../../' + f, import.meta.url), 'utf8')));
const keep = (r) => argv.includes('--with-holdout') || r.set !== 'holdout';
const moe = sets.flatMap((m) => m.moe_layer.filter((r) => r.impl === 'grouped' && keep(r)));
const attn = sets.flatMap((m) => m.attention.filter(keep));
const hw0 = hardwarePreset('h200');

function model(x) {
  const [alpha, scat, lam, ff, fb] = x.map(Math.exp);
  const hw = { ...hw0, gemm_eff: alpha };
  const c = { scatter_eff: scat, launch_s: lam, flash_fwd_eff: ff, flash_bwd_eff: fb };
  return { hw, c };
}
function rows(x) {
  const { hw, c } = model(x);
  const out = [];
  for (const r of moe) {
    const p = predictMoeLayer({ tokens: r.tokens, hidden: r.hidden, experts: r.experts, top_k: r.top_k, expert_ffn: r.expert_ffn }, hw, c);
    out.push({ name: r.name, kind: 'moe', fwd: [p.fwd_ms, r.fwd_ms], fwd_bwd: [p.fwd_bwd_ms, r.fwd_bwd_ms] });
  }
  for (const r of attn) {
    const p = predictAttention({ batch: r.batch, seq: r.seq, hidden: r.hidden, heads: r.heads, kv_heads: r.kv_heads, head_dim: r.head_dim }, hw, c);
    out.push({ name: r.name, kind: 'attention', fwd: [p.fwd_ms, r.fwd_ms], fwd_bwd: [p.fwd_bwd_ms, r.fwd_bwd_ms] });
  }
  return out;
}
function loss(x) {
  let s = 0;
  for (const r of rows(x)) for (const [p, m] of [r.fwd, r.fwd_bwd]) s += Math.log(p / m) ** 2;
  return s;
}
function nelderMead(f, x0, iters = 4000) {
  const n = x0.length;
  let simplex = [x0, ...x0.map((_, i) => x0.map((v, j) => (i === j ? v + 0.3 : v)))].map((x) => ({ x, f: f(x) }));
  for (let it = 0; it < iters; it++) {
    simplex.sort((a, b) => a.f - b.f);
    const c = Array(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[j] += simplex[i].x[j] / n;
    const w = simplex[n];
    const pt = (t) => c.map((v, j) => v + t * (w.x[j] - v));
    const r = { x: pt(-1) }; r.f = f(r.x);
    if (r.f < simplex[0].f) { const e = { x: pt(-2) }; e.f = f(e.x); simplex[n] = e.f < r.f ? e : r; }
    else if (r.f < simplex[n - 1].f) simplex[n] = r;
    else { const k = { x: pt(0.5) }; k.f = f(k.x); if (k.f < w.f) simplex[n] = k; else simplex = simplex.map((s, i) => (i === 0 ? s : { x: s.x.map((v, j) => simplex[0].x[j] + 0.5 * (v - simplex[0].x[j])), f: 0 })).map((s) => ({ x: s.x, f: f(s.x) })); }
  }
  simplex.sort((a, b) => a.f - b.f);
  return simplex[0];
}
const x0 = [hw0.gemm_eff, OP_CONSTANTS.scatter_eff, OP_CONSTANTS.launch_s, OP_CONSTANTS.flash_fwd_eff, OP_CONSTANTS.flash_bwd_eff].map(Math.log);
const best = nelderMead(loss, x0);
const [alpha, scat, lam, ff, fb] = best.x.map(Math.exp);
console.log(JSON.stringify({ gemm_eff: +alpha.toFixed(3), scatter_eff: +scat.toFixed(4), launch_s: +lam.toExponential(2), flash_fwd_eff: +ff.toFixed(3), flash_bwd_eff: +fb.toFixed(3), rms_log_err: Math.sqrt(best.f / (2 * (moe.length + attn.length))) }));
console.log('\nwith the constants now in src/plan/op.ts / hardware.ts:');
const cur = rows(x0);
for (const r of cur) console.log(`${r.kind.padEnd(9)} ${r.name.padEnd(18)} fwd ${r.fwd[0].toFixed(2)} vs ${r.fwd[1].toFixed(2)} (${(100 * (r.fwd[0] / r.fwd[1] - 1)).toFixed(1)}%)  fwd+bwd ${r.fwd_bwd[0].toFixed(2)} vs ${r.fwd_bwd[1].toFixed(2)} (${(100 * (r.fwd_bwd[0] / r.fwd_bwd[1] - 1)).toFixed(1)}%)`);
