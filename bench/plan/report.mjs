#!/usr/bin/env node
// Print the markdown tables of docs/planner.md from the current model:
//   npx tsc -p tsconfig.json && node bench/plan/report.mjs
import { readFileSync } from 'node:fs';
import { calibrationTable } from '../../dist/cli/plan.js';
import { CALIBRATION } from '../../dist/plan/calibration.js';
import { hardwarePreset } from '../../dist/plan/hardware.js';
import { predictAttention, predictMoeLayer } from '../../dist/plan/op.js';
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
let worstC = 0;
for (const r of Object.values(C)) {
  const p = 'experts' in r ? predictMoeLayer(r, hw) : predictAttention(r, hw);
  worstC = Math.max(worstC, Math.abs(p.fwd_ms / r.fwd_ms - 1), Math.abs(p.fwd_bwd_ms / r.fwd_bwd_ms - 1));
}
console.log(`\nlease C, all ${Object.keys(C).length} shapes (fit set re-measured + held-out): worst error ${(100 * worstC).toFixed(1)}%\n`);

console.log('### Calibration table\n');
console.log('| run | compared on | predicted | published | error | target | memory GiB/device (fits) |');
console.log('|---|---|---:|---:|---:|---|---|');
for (const r of calibrationTable()) {
  const extra = r.metric === 'throughput' ? ` (MFU ${(100 * r.predicted_mfu).toFixed(1)}%${r.published_mfu ? ` vs ${(100 * r.published_mfu).toFixed(1)}% published` : ''})` : ` (${r.predicted_tokens_per_s_per_device.toFixed(0)} tokens/s/device)`;
  console.log(`| ${r.name} | ${r.metric} | ${r.predicted_text}${extra} | ${r.published_text} | ${r.error_text} | ${r.within ? 'within' : '**miss**'} | ${r.memory_gib_per_device.toFixed(1)} (${r.fits ? 'yes' : 'no'}) |`);
}

console.log('\n### Pangu Ultra MoE layout search (6,144 x 910B)\n');
const row = CALIBRATION.find((r) => r.id === 'pangu-ultra-moe');
const s = resolveSpec(structuredClone(row.spec), 'pangu', { template: true });
const rk = rankOf(s, { tp: 8, pp: 16, vpp: 2, ep: 4, etp: 8, cp: 1 });
console.log(`published layout TP8 PP16 VPP2 EP4 (ETP8): rank ${rk.rank} of ${rk.of} fitting layouts (${rk.result.layouts_enumerated} enumerated, ${rk.result.simulations} simulations, ${rk.result.elapsed_s.toFixed(2)} s)\n`);
console.log('| rank | layout | recompute | tokens/s/device | MFU | GiB/device |');
console.log('|---:|---|---|---:|---:|---:|');
rk.result.top.slice(0, 5).forEach((x, i) => console.log(`| ${i + 1} | ${x.layout} | ${JSON.stringify(x.parallel.recompute)} | ${x.result.tokens_per_s_per_device.toFixed(0)} | ${(100 * x.result.mfu).toFixed(1)}% | ${x.result.memory_gib_per_device.toFixed(1)} |`));
const pub = rk.result.top[rk.rank - 1];
if (pub) console.log(`| ${rk.rank} | ${pub.layout} | ${JSON.stringify(pub.parallel.recompute)} | ${pub.result.tokens_per_s_per_device.toFixed(0)} | ${(100 * pub.result.mfu).toFixed(1)}% | ${pub.result.memory_gib_per_device.toFixed(1)} |`);

console.log('\n### Pangu Ultra MoE shape sweep\n');
const sw = sweep(loadSpec(new URL('../../test/plan/fixtures/pangu-sweep.yaml', import.meta.url).pathname, { template: true }));
console.log(`${sw.shapes_in_budget} of ${sw.shapes_considered} shapes in budget, ${sw.elapsed_s.toFixed(1)} s; * = Pareto front (total params, MFU)\n`);
console.log('| shape | total B | active B | best layout | MFU | tokens/s | Pareto |');
console.log('|---|---:|---:|---|---:|---:|---|');
for (const x of sw.rows) {
  const h = x.shape;
  console.log(`| L${h.layers} H${h.hidden} E${h.experts} k${h.top_k} I${h.expert_ffn} | ${x.total_params_b.toFixed(0)} | ${x.active_params_b.toFixed(1)} | ${x.best?.layout ?? '-'} | ${x.best ? (100 * x.best.mfu).toFixed(1) + '%' : '-'} | ${x.best ? Math.round(x.best.tokens_per_s).toLocaleString('en-US') : '-'} | ${x.pareto ? '*' : ''} |`);
}
