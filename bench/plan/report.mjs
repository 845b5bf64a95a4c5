#!/usr/bin/env node
// Print the markdown tables of docs/planner.md from the current model:
//   npx tsc -p tsconfig.json && node bench/plan/report.mjs
import { readFileSync } from 'node:fs';
import { calibrationTable } from '../../dist/cli/plan.js';
import { CALIBRATION } from '../../dist/plan/calibration.js';
import { hardwarePreset } from '../../dist/plan/hardware.js';
import { predictAttention, predictMoeLayer } from '../../dist/plan/op.js';
import { OP_MEASUREMENT_SETS } from '../../dist/plan/fitted.js';
import { errorStats, opErrors, selectOpRows } from '../../dist/plan/fit-op.js';
import { rankOf } from '../../dist/plan/search.js';
import { loadSpec, resolveSpec } from '../../dist/plan/spec.js';
import { sweep } from '../../dist/plan/sweep.js';

const pct = (x) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;
const meas = JSON.parse(readFileSync(new URL('../../docs/plan-op-measurements.json', import.meta.url), 'utf8'));
const hw = hardwarePreset('h200');

console.log('### plan op vs H200 measurements\n');
console.log('| shape | T | H | E | k | I | fwd measured ms | fwd predicted ms | error | fwd+bwd measured ms | fwd+bwd predicted ms | error |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
let worst = 0;
for (const r of meas.moe_layer.filter((x) => x.impl === 'grouped')) {
  const p = predictMoeLayer({ tokens: r.tokens, hidden: r.hidden, experts: r.experts, top_k: r.top_k, expert_ffn: r.expert_ffn }, hw);
  const e1 = p.fwd_ms / r.fwd_ms - 1, e2 = p.fwd_bwd_ms / r.fwd_bwd_ms - 1;
  worst = Math.max(worst, Math.abs(e1), Math.abs(e2));
  console.log(`| ${r.name} | ${r.tokens} | ${r.hidden} | ${r.experts} | ${r.top_k} | ${r.expert_ffn} | ${r.fwd_ms.toFixed(2)} | ${p.fwd_ms.toFixed(2)} | ${pct(e1)} | ${r.fwd_bwd_ms.toFixed(2)} | ${p.fwd_bwd_ms.toFixed(2)} | ${pct(e2)} |`);
}
console.log('\n| attention | B | S | H | heads | kv | D | fwd measured ms | fwd predicted ms | error | fwd+bwd measured ms | fwd+bwd predicted ms | error |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of meas.attention) {
  const p = predictAttention({ batch: r.batch, seq: r.seq, hidden: r.hidden, heads: r.heads, kv_heads: r.kv_heads, head_dim: r.head_dim }, hw);
  const e1 = p.fwd_ms / r.fwd_ms - 1, e2 = p.fwd_bwd_ms / r.fwd_bwd_ms - 1;
  worst = Math.max(worst, Math.abs(e1), Math.abs(e2));
  console.log(`| ${r.name} | ${r.batch} | ${r.seq} | ${r.hidden} | ${r.heads} | ${r.kv_heads} | ${r.head_dim} | ${r.fwd_ms.toFixed(2)} | ${p.fwd_ms.toFixed(2)} | ${pct(e1)} | ${r.fwd_bwd_ms.toFixed(2)} | ${p.fwd_bwd_ms.toFixed(2)} | ${pct(e2)} |`);
}
console.log(`\nworst error: ${(100 * worst).toFixed(1)}%\n`);

// held-out shapes: blind predictions vs lease B and lease C
const pred = JSON.parse(readFileSync(new URL('../../docs/plan-op-holdout-predictions.json', import.meta.url), 'utf8'));
const lb = JSON.parse(readFileSync(new URL('../../docs/plan-op-holdout.json', import.meta.url), 'utf8'));
const lc = JSON.parse(readFileSync(new URL('../../docs/plan-op-measurements-lease3.json', import.meta.url), 'utf8'));
const byName = (m) => Object.fromEntries([...m.moe_layer.filter((r) => r.impl === 'grouped'), ...m.attention].map((r) => [r.name, r]));
const B = byName(lb), C = byName(lc);
console.log('### held-out shapes (predicted before measuring)\n');
console.log('| shape | predicted fwd / fwd+bwd ms | lease B measured | error | lease C measured | error |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const p of [...pred.moe_layer, ...pred.attention]) {
  const b = B[p.name], c = C[p.name];
  const e = (x, y) => `${pct(x / y - 1)}`;
  console.log(`| ${p.name} | ${p.fwd_ms.toFixed(2)} / ${p.fwd_bwd_ms.toFixed(2)} | ${b.fwd_ms.toFixed(2)} / ${b.fwd_bwd_ms.toFixed(2)} | ${e(p.fwd_ms, b.fwd_ms)} / ${e(p.fwd_bwd_ms, b.fwd_bwd_ms)} | ${c.fwd_ms.toFixed(2)} / ${c.fwd_bwd_ms.toFixed(2)} | ${e(p.fwd_ms, c.fwd_ms)} / ${e(p.fwd_bwd_ms, c.fwd_bwd_ms)} |`);
}
// fit set vs check set (src/plan/fitted.ts OP_MEASUREMENT_SETS): RMS and worst relative error of fwd and fwd+bwd
const rowsOf = (sets) => sets.flatMap((x) => selectOpRows(JSON.parse(readFileSync(new URL('../../' + x.file, import.meta.url), 'utf8')), x));
const check = rowsOf(OP_MEASUREMENT_SETS.check);
const abs1 = (x) => `${(100 * x).toFixed(1)}%`;
console.log('\n| set | shapes x leases | numbers | RMS | worst |');
console.log('|---|---|---:|---:|---:|');
for (const [label, rows, what] of [
  ['fit (constants fitted on it)', rowsOf(OP_MEASUREMENT_SETS.fit), '17 x lease A'],
  ['check (never fitted)', check, '9 x leases B, C'],
  ['check, lease B', check.filter((r) => r.lease === 'B'), '9 x lease B'],
  ['check, lease C', check.filter((r) => r.lease === 'C'), '9 x lease C'],
  ['repeat of the fit shapes (not a check)', rowsOf(OP_MEASUREMENT_SETS.repeat), '17 x lease C'],
]) {
  const st = errorStats(opErrors(rows, hw));
  console.log(`| ${label} | ${what} | ${st.numbers} | ${abs1(st.rms)} | ${abs1(st.worst)} (${st.worst_at}) |`);
}
console.log('');

console.log('### Calibration table\n');
console.log('| run | compared on | predicted | published | error | target | memory GiB/device (fits) |');
console.log('|---|---|---:|---:|---:|---|---|');
for (const r of calibrationTable()) {
  const extra = r.metric === 'throughput' ? ` (MFU ${(100 * r.predicted_mfu).toFixed(1)}%${r.published_mfu ? ` vs ${(100 * r.published_mfu).toFixed(1)}% published` : ''})` : ` (${r.predicted_tokens_per_s_per_device.toFixed(0)} tokens/s/device)`;
  const acc = r.accounting_factor !== 1 ? `; steady state ${r.steady_tokens_per_s_per_device.toFixed(0)} x ${r.accounting_factor.toFixed(3)} (ramp-up, goodput)` : '';
  console.log(`| ${r.name} | ${r.metric} | ${r.predicted_text}${extra}${acc} | ${r.published_text} | ${r.error_text} | ${r.within ? 'within' : '**miss**'} | ${r.memory_gib_per_device.toFixed(1)} (${r.fits ? 'yes' : 'no'}) |`);
}

console.log('\n### Pangu Ultra MoE layout search (6,144 x 910B)\n');
const row = CALIBRATION.find((r) => r.id === 'pangu-ultra-moe');
const PUB = { tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, cp: 1 };
const s = resolveSpec(structuredClone(row.spec), 'pangu', { template: true });
const rk = rankOf(s, PUB);
console.log(`published layout TP8 PP16 VPP2 EP4 as TP-extend-EP (experts over 32 NPUs: EP32 ETP1 here): rank ${rk.rank} of ${rk.of} fitting layouts (${rk.result.layouts_enumerated} enumerated, ${rk.result.simulations} simulations, ${rk.result.elapsed_s.toFixed(2)} s)\n`);
console.log('| rank | layout | all-to-all | recompute | tokens/s/device | MFU | GiB/device |');
console.log('|---:|---|---|---|---:|---:|---:|');
const line = (i, x) => console.log(`| ${i} | ${x.layout} | ${x.parallel.a2a} | ${JSON.stringify(x.parallel.recompute)} | ${x.result.tokens_per_s_per_device.toFixed(0)} | ${(100 * x.result.mfu).toFixed(1)}% | ${x.result.memory_gib_per_device.toFixed(1)} |`);
rk.result.top.slice(0, 5).forEach((x, i) => line(i + 1, x));
if (rk.result.top[rk.rank - 1]) line(rk.rank, rk.result.top[rk.rank - 1]);
const old = rankOf(s, { tp: 8, pp: 16, vpp: 2, ep: 4, etp: 8, cp: 1 });
if (old.result.top[old.rank - 1]) line(old.rank, old.result.top[old.rank - 1]);

console.log('\nSensitivity (rank of the published layout when one assumption changes):\n');
console.log('| change | rank | published layout tokens/s/NPU | best layout | its tokens/s/NPU |');
console.log('|---|---:|---:|---|---:|');
const cases = [
  ['none (as calibrated)', {}],
  ['910B peak 313 TFLOPS (the preset) instead of the implied 220', { hardware: { peak_bf16_tflops: 313 } }],
  ['usable HBM 48 GB', { hardware: { hbm_gb: 48 } }],
  ['HCCL efficiency 0.35 (all collectives)', { hardware: { coll_eff: 0.35 } }],
  ['inter-node 12.5 GB/s per NPU', { hardware: { inter_gbps: 12.5 } }],
  ['expert_load_cv 0.3', { training: { expert_load_cv: 0.3 } }],
  ['no EP overlap', { parallel: { ep_overlap: 'none' } }],
];
for (const [name, mods] of cases) {
  const raw = structuredClone(row.spec);
  for (const [k, v] of Object.entries(mods)) raw[k] = { ...raw[k], ...v };
  const r2 = rankOf(resolveSpec(raw, 'p', { template: true }), PUB);
  const p = r2.result.top[r2.rank - 1], b = r2.result.top[0];
  console.log(`| ${name} | ${r2.rank.toLocaleString('en-US')} of ${r2.of.toLocaleString('en-US')} | ${p ? p.result.tokens_per_s_per_device.toFixed(0) : '-'} | ${b.layout} (${b.parallel.a2a}) | ${b.result.tokens_per_s_per_device.toFixed(0)} |`);
}

console.log('\n### Pangu Ultra MoE shape sweep\n');
const sw = sweep(loadSpec(new URL('../../test/plan/fixtures/pangu-sweep.yaml', import.meta.url).pathname, { template: true }));
console.log(`${sw.shapes_in_budget} of ${sw.shapes_considered} shapes in budget, ${sw.elapsed_s.toFixed(1)} s; ranked by MFU; * = Pareto front (total params, MFU); days = time-to-quality\n`);
console.log('| shape | total B | active B | best layout | MFU | tokens/s | Pareto | G | loss at 13.2T | tokens to target | days to target |');
console.log('|---|---:|---:|---|---:|---:|---|---:|---:|---:|---:|');
for (const x of sw.rows) {
  const h = x.shape, q = x.quality;
  console.log(`| L${h.layers} H${h.hidden} E${h.experts} k${h.top_k} I${h.expert_ffn} | ${x.total_params_b.toFixed(0)} | ${x.active_params_b.toFixed(1)} | ${x.best?.layout ?? '-'} | ${x.best ? (100 * x.best.mfu).toFixed(1) + '%' : '-'} | ${x.best ? Math.round(x.best.tokens_per_s).toLocaleString('en-US') : '-'} | ${x.pareto ? '*' : ''} | ${q ? q.granularity.toFixed(2) : '-'} | ${q ? q.loss_at_budget.toFixed(4) : '-'} | ${q ? (q.tokens_to_target / 1e12).toFixed(2) + 'T' : '-'} | ${q ? q.days_to_target.toFixed(1) : '-'} |`);
}
if (sw.quality_target) {
  console.log(`\ntarget loss ${sw.quality_target.loss.toFixed(4)} (base shape L61 H7680 E256 after ${(sw.quality_target.tokens / 1e12).toFixed(1)}T tokens); by time-to-quality:\n`);
  sw.by_time_to_quality.forEach((x, i) => console.log(`${i + 1}. L${x.shape.layers} H${x.shape.hidden} E${x.shape.experts}: ${x.quality.days_to_target.toFixed(1)} days`));
}
