#!/usr/bin/env node
// This build against an earlier one, side by side in one process: prefill and decode (greedy, KV cache)
// of models moekit builds itself, and a training step (forward + backward), alternating the two builds
// run after run and reporting medians, so machine noise hits both alike.
// The earlier build is a checkout with its own `npm ci` (native addon + dist/):
//   git worktree add /tmp/moekit-before <commit> && (cd /tmp/moekit-before && npm ci)
//   npm run build && node bench/before-after.mjs --before=/tmp/moekit-before [--runs=5] [--prompt=64] [--decode=32]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const beforeDir = arg('before', process.env.MOEKIT_BENCH_BEFORE);
if (!beforeDir) { console.error('usage: node bench/before-after.mjs --before=DIR (a built checkout of the earlier commit)'); process.exit(2); }
const RUNS = Number(arg('runs', '5')), P = Number(arg('prompt', '64')), D = Number(arg('decode', '32'));
process.env.MOEKIT_THREADS ??= '2';
process.env.OPENBLAS_NUM_THREADS ??= process.env.MOEKIT_THREADS;

const load = async (root) => {
  const u = (f) => pathToFileURL(path.join(root, 'dist', f)).href;
  return {
    MoeModel: (await import(u('models/model.js'))).MoeModel,
    generate: (await import(u('runtime/generate.js'))).generate,
    TrainableModel: (await import(u('train/model.js'))).TrainableModel,
  };
};
const after = await load(process.cwd());
const before = await load(path.resolve(beforeDir));
const { writeRandomCheckpoint } = await import('../dist/models/synth.js');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-ba-'));
const MODELS = {
  'Mixtral-shape f32 (110M, top-2 of 8)': [{
    architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 8192, hidden_size: 512, intermediate_size: 1024,
    num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2, num_local_experts: 8, num_experts_per_tok: 2,
    max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 1e6, tie_word_embeddings: false,
  }, 'F32'],
  'Mixtral-shape bf16 kept bf16': ['same', 'BF16'],
  'DeepSeek-V3-shape f32 (MLA latent cache, 32 experts top-4)': [{
    architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', vocab_size: 8192, hidden_size: 512, intermediate_size: 1024,
    moe_intermediate_size: 256, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 8, n_routed_experts: 32,
    num_experts_per_tok: 4, n_shared_experts: 1, first_k_dense_replace: 1, n_group: 4, topk_group: 2, q_lora_rank: 128,
    kv_lora_rank: 64, qk_nope_head_dim: 32, qk_rope_head_dim: 16, v_head_dim: 32, routed_scaling_factor: 2.5, norm_topk_prob: true,
    max_position_embeddings: 4096, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false,
  }, 'F32'],
};
const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// the best of the runs: on a shared machine the least-disturbed run is the stable figure (rates: max, times: min)
const best = (xs) => Math.max(...xs);
const prompt = Array.from({ length: P }, (_, i) => (i * 7919) % 8192);
const rows = [];
let last = null;
for (const [name, [cfg0, dtype]] of Object.entries(MODELS)) {
  const cfg = cfg0 === 'same' ? last : cfg0;
  last = cfg;
  const dir = path.join(tmp, name.replace(/[^a-z0-9]+/gi, '_'));
  writeRandomCheckpoint(dir, cfg, 1, dtype);
  const res = { before: { pre: [], dec: [] }, after: { pre: [], dec: [] } };
  const models = { before: before.MoeModel.load(dir), after: after.MoeModel.load(dir) };
  for (let r = 0; r < RUNS; r++) {
    for (const side of r % 2 ? ['after', 'before'] : ['before', 'after']) {
      const lib = side === 'before' ? before : after;
      lib.generate(models[side], prompt.slice(0, 4), { maxNewTokens: 2, greedy: true, stopAtEos: false }); // warm-up
      const g = lib.generate(models[side], prompt, { maxNewTokens: D, greedy: true, stopAtEos: false });
      res[side].pre.push(g.timings.prefillTokensPerS);
      res[side].dec.push(g.timings.decodeTokensPerS);
    }
  }
  rows.push([name, best(res.before.pre), best(res.after.pre), best(res.before.dec), best(res.after.dec)]);
}
// a training step: forward + backward over [2, 64] on the first model (f32)
const trainDir = path.join(tmp, 'train');
writeRandomCheckpoint(trainDir, { ...MODELS[Object.keys(MODELS)[0]][0], num_hidden_layers: 4, vocab_size: 4096 }, 2, 'F32');
const ids = Int32Array.from({ length: 2 * 64 }, (_, i) => (i * 131) % 4096);
const tms = { before: before.TrainableModel.load(trainDir), after: after.TrainableModel.load(trainDir) };
const step = { before: [], after: [] };
for (let r = 0; r < RUNS; r++) {
  for (const side of r % 2 ? ['after', 'before'] : ['before', 'after']) {
    const t0 = performance.now();
    tms[side].forwardBackward(ids, 2, 64);
    step[side].push(performance.now() - t0);
  }
}
fs.rmSync(tmp, { recursive: true, force: true });

const f = (x, d = 1) => x.toFixed(d);
console.log(`| model | prefill tok/s before | after | ratio | decode tok/s before | after | ratio |`);
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [n, pb, pa, db, da] of rows) console.log(`| ${n} | ${f(pb)} | ${f(pa)} | ×${f(pa / pb, 2)} | ${f(db)} | ${f(da)} | ×${f(da / db, 2)} |`);
const sb = Math.min(...step.before), sa = Math.min(...step.after);
console.log(`\ntraining step (forward + backward, [2, 64], 4-layer Mixtral shape): before ${f(sb)} ms, after ${f(sa)} ms (×${f(sb / sa, 2)} speed)`);
console.log(`best of ${RUNS} alternating runs; prompt ${P}, decode ${D}; threads ${process.env.MOEKIT_THREADS}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
