#!/usr/bin/env node
// Prints, for every tiny fixture, how far moekit is from the reference implementation:
// max |Δ| of logits, router logits and hidden states, experts chosen, greedy ids.
// Run after `npm run build`:  node scripts/check-fixtures.mjs [--kernels=native|reference]
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const k = process.argv.find((a) => a.startsWith('--kernels='));
if (k) process.env.MOEKIT_KERNELS = k.split('=')[1];
const { SafetensorsFile } = await import('../dist/io/safetensors.js');
const { MoeModel } = await import('../dist/models/model.js');
const { generate } = await import('../dist/runtime/generate.js');
const { kernelsInfo } = await import('../dist/tensor/index.js');

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/hf-tiny-moe');
const maxd = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
console.log(`kernels: ${kernelsInfo().name}\n`);
console.log('| fixture | logits max |Δ| | router logits max |Δ| | hidden max |Δ| | experts same | greedy ids same |');
console.log('|---|---:|---:|---:|---:|---:|');
function topkOf(lg, N, E, K) {
  const out = new Int32Array(N * K);
  for (let n = 0; n < N; n++) {
    const row = Array.from(lg.subarray(n * E, (n + 1) * E));
    [...row.keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, K).forEach((e, j) => { out[n * K + j] = e; });
  }
  return out;
}

for (const arch of ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v3', 'deepseek_v2', 'ernie4_5_moe', 'gpt_oss', 'granitemoe',
  'granitemoeshared', 'glm4_moe', 'dots1', 'hunyuan_v1_moe', 'phimoe', 'llama4_text', 'qwen3_next', 'minimax']) {
  const dir = path.join(root, arch);
  const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
  const rr = SafetensorsFile.open(path.join(dir, 'router_reference.safetensors'));
  const m = MoeModel.load(dir);
  const ids = ref.readI32('input_ids');
  const routers = [], hidden = new Map();
  const logits = m.forward(ids, 2, 24, { trace: { moe: (e) => routers.push({ ...e, logits: e.logits.slice(), experts: e.experts.slice() }), hidden: (i, x) => hidden.set(i, x.slice()) } });
  let dr = 0, dh = 0, same = 0, total = 0;
  for (const e of routers) {
    dr = Math.max(dr, maxd(e.logits, rr.readF32(`router_logits.${e.moeLayer}`)));
    // Llama 4's block hands its experts weighted inputs, no indices: the top-k of the reference's router logits
    // (its router's rule) stands in
    const want = rr.names().includes(`router_experts.${e.moeLayer}`) ? rr.readI32(`router_experts.${e.moeLayer}`)
      : topkOf(rr.readF32(`router_logits.${e.moeLayer}`), e.N, e.E, e.K);
    for (let t = 0; t < e.N; t++) {
      const a = Array.from(e.experts.subarray(t * e.K, (t + 1) * e.K)).sort().join();
      const b = Array.from(want.subarray(t * e.K, (t + 1) * e.K)).sort().join();
      total++; if (a === b) same++;
    }
  }
  for (const [i, x] of hidden) dh = Math.max(dh, maxd(x, ref.readF32(`hidden_states.${i}`)));
  const want = Array.from(ref.readI32('generated_ids'));
  const got = generate(m, want.slice(0, 8), { maxNewTokens: want.length - 8, greedy: true, stopAtEos: false }).ids;
  console.log(`| ${arch} | ${maxd(logits, ref.readF32('logits')).toExponential(1)} | ${dr.toExponential(1)} | ${dh.toExponential(1)} | ${same}/${total} | ${got.join() === want.join() ? 'yes' : 'NO'} |`);
}
