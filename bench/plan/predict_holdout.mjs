#!/usr/bin/env node
// Predictions for the held-out shapes of bench/plan/measure_ops.py --set holdout, written BEFORE measuring them
// (docs/plan-op-holdout-predictions.json), with the constants as committed. Usage: node bench/plan/predict_holdout.mjs
import { writeFileSync } from 'node:fs';
import { hardwarePreset } from '../../dist/plan/hardware.js';
import { predictAttention, predictMoeLayer } from '../../dist/plan/op.js';
const hw = hardwarePreset('h200');
const moe = [['deepseek-v2', 4096, 5120, 160, 6, 1536], ['e32-k4-t16k', 16384, 4096, 32, 4, 4096], ['olmoe-t1k', 1024, 2048, 64, 8, 1024],
  ['e64-k4-h6144', 8192, 6144, 64, 4, 3072], ['e8-k2-t32k', 32768, 2048, 8, 2, 8192], ['e128-k8-h3072', 8192, 3072, 128, 8, 1024]];
const attn = [['gqa-4096-s16k', 1, 16384, 4096, 32, 8, 128], ['mha-4096-s512', 16, 512, 4096, 32, 32, 128], ['gqa-7168-s4k', 2, 4096, 7168, 56, 8, 128]];
const out = { note: 'predicted before measurement, constants of commit HEAD', moe_layer: [], attention: [] };
for (const [name, T, H, E, K, I] of moe) {
  const p = predictMoeLayer({ tokens: T, hidden: H, experts: E, top_k: K, expert_ffn: I }, hw);
  out.moe_layer.push({ name, fwd_ms: p.fwd_ms, fwd_bwd_ms: p.fwd_bwd_ms });
}
for (const [name, B, S, H, N, G, D] of attn) {
  const p = predictAttention({ batch: B, seq: S, hidden: H, heads: N, kv_heads: G, head_dim: D }, hw);
  out.attention.push({ name, fwd_ms: p.fwd_ms, fwd_bwd_ms: p.fwd_bwd_ms });
}
writeFileSync(new URL('../../docs/plan-op-holdout-predictions.json', import.meta.url), JSON.stringify(out, null, 1));
console.log(JSON.stringify(out));
