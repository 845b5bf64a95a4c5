#!/usr/bin/env node
// Training throughput on the demo model's shape: forward + backward (+ AdamW) of a qwen3_moe that moekit builds
// itself (4 layers, hidden 256, 16 experts of width 256, top-2, 8 × 128 tokens per step), in tokens/s and achieved
// GFLOP/s against this machine's measured sgemm peak (1024³, same threads). FLOPs: 6 · active parameters per token
// (matrix multiplies, forward + backward) + attention 12 · L · T · H per token (causal: half of the 6 · 2 · T · H).
// Run after `npm run build`:  node bench/train.mjs [--steps=5] [--hidden=256] [--experts=16] [--layers=4] [--tokens=128] [--batch=8]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const arg = (n, d) => { const a = process.argv.find((s) => s.startsWith(`--${n}=`)); return a ? Number(a.slice(n.length + 3)) : d; };
const steps = arg('steps', 5), H = arg('hidden', 256), E = arg('experts', 16), L = arg('layers', 4), T = arg('tokens', 128), B = arg('batch', 8);
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;
const { writeRandomCheckpoint } = await import('../dist/models/synth.js');
const { TrainableModel } = await import('../dist/train/model.js');
const { AdamW } = await import('../dist/train/adamw.js');
const { getKernels } = await import('../dist/tensor/index.js');
const { activeParams } = await import('../dist/models/params.js').catch(() => ({}));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-bench-train-'));
const V = 512;
const cfg = {
  architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', vocab_size: V, hidden_size: H, intermediate_size: H,
  moe_intermediate_size: H, num_hidden_layers: L, num_attention_heads: H / 32, num_key_value_heads: H / 64, head_dim: 32,
  num_experts: E, num_experts_per_tok: 2, norm_topk_prob: true, max_position_embeddings: 1024, rms_norm_eps: 1e-6,
  rope_theta: 10000, bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
};
writeRandomCheckpoint(dir, cfg, 1, 'F32', { std: 0.02 });
const tm = TrainableModel.load(dir);
const opt = new AdamW(tm.params, { lr: 1e-3 });
const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % V);
// FLOPs per token: the matrices a token passes through (attention q/k/v/o, router, 2 of E experts, lm head)
const D = 32, nH = H / 32, nKV = H / 64;
const perTokMat = L * (H * nH * D + 2 * H * nKV * D + nH * D * H + H * E + 2 * 3 * H * H) + H * V;
const flopsPerTok = 6 * perTokMat + 12 * L * T * nH * D / 2;
// the sgemm peak, same threads
const k = getKernels();
const n = 1024, A = new Float32Array(n * n).fill(0.5), Bm = new Float32Array(n * n).fill(0.25), C = new Float32Array(n * n);
k.sgemm(false, false, n, n, n, 1, A, n, Bm, n, 0, C, n);
let best = Infinity;
for (let i = 0; i < 5; i++) { const t = performance.now(); k.sgemm(false, false, n, n, n, 1, A, n, Bm, n, 0, C, n); best = Math.min(best, performance.now() - t); }
const peak = (2 * n ** 3) / (best / 1000) / 1e9;
tm.forwardBackward(ids, B, T); // warm-up
const times = [];
for (let s = 0; s < steps; s++) {
  const t = performance.now();
  const { grads } = tm.forwardBackward(ids, B, T);
  opt.step(grads);
  times.push(performance.now() - t);
}
fs.rmSync(dir, { recursive: true, force: true });
const med = times.slice().sort((a, b) => a - b)[Math.floor(times.length / 2)] / 1000;
const tps = (B * T) / med, gf = (tps * flopsPerTok) / 1e9;
console.log('| shape | tokens/step | step s | tokens/s | achieved GFLOP/s | sgemm peak GFLOP/s | of peak |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
console.log(`| qwen3_moe L${L} H${H} E${E} top-2 | ${B}×${T} | ${med.toFixed(3)} | ${tps.toFixed(0)} | ${gf.toFixed(1)} | ${peak.toFixed(1)} | ${(100 * gf / peak).toFixed(1)} % |`);
console.log(`\nmedian of ${steps} steps (forward + backward + AdamW); threads ${process.env.MOEKIT_THREADS}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
void activeParams;
