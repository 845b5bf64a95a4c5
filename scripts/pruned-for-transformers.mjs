#!/usr/bin/env node
// Pruned checkpoints made by `moekit experts prune`, for scripts/check_pruned_with_transformers.py: the mixtral,
// qwen3_moe and deepseek_v3 fixtures pruned with the keep sets (and top-k) of the transformers sub-model
// references (fixtures/hf-tiny-moe-submodels; every layer kept), and the demo model pruned to 8 of 16 experts by
// the TCESS of its 'draw' task; each OUTDIR/<name>/check.safetensors holds input_ids [B, T], moekit's logits
// [B, T, V] and greedy ids (8 prompt ids + 8 new, no eos stop).
//   npm run build && node scripts/pruned-for-transformers.mjs OUTDIR
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? 'pruned-check');
const { MoeModel } = await import('../dist/models/model.js');
const { SafetensorsFile } = await import('../dist/io/safetensors.js');
const { writeSafetensors } = await import('../dist/io/safetensors-write.js');
const { generate } = await import('../dist/runtime/generate.js');
const moekit = (...args) => execFileSync(process.execPath, [path.join(root, 'bin/moekit.js'), ...args], { encoding: 'utf8' });
fs.mkdirSync(out, { recursive: true });

function check(dir, ids, B, T) {
  const m = MoeModel.load(dir, { dtype: 'f32' });
  const logits = m.forward(ids, B, T);
  const gen = generate(m, Array.from(ids.subarray(0, 8)), { maxNewTokens: 8, greedy: true, stopAtEos: false }).ids;
  writeSafetensors(path.join(dir, 'check.safetensors'), [
    { name: 'input_ids', dtype: 'I32', shape: [B, T], data: ids },
    { name: 'logits', dtype: 'F32', shape: [B, T, m.desc.vocab], data: logits },
    { name: 'generated_ids', dtype: 'I32', shape: [1, gen.length], data: Int32Array.from(gen) },
  ]);
  console.log(`${dir}: ${m.desc.moe.experts} experts per MoE layer, top-${m.desc.moe.topK}; wrote check.safetensors`);
}

for (const arch of ['mixtral', 'qwen3_moe', 'deepseek_v3']) {
  const ref = SafetensorsFile.open(path.join(root, 'fixtures/hf-tiny-moe-submodels', `${arch}.safetensors`));
  const src = path.join(root, 'fixtures/hf-tiny-moe', arch);
  const layers = Array.from(ref.readI32('layers'));
  const allowed = ref.readI32('allowed');
  const [nMoe, E] = ref.info('allowed').shape;
  const d = MoeModel.load(src, { experts: 'lazy' }).desc;
  const moe = d.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
  const kept = moe.findIndex((l) => layers.includes(l));
  const keep = {};
  for (let q = 0; q < nMoe; q++) {
    const from = layers.includes(moe[q]) ? q : kept;
    keep[moe[q]] = [...Array(E).keys()].filter((e) => allowed[from * E + e] === 1);
  }
  const keepFile = path.join(out, `${arch}.keep.json`);
  fs.writeFileSync(keepFile, JSON.stringify({ layers: keep }) + '\n');
  const dir = path.join(out, arch);
  moekit('experts', 'prune', src, '--keep', keepFile, '--top-k', String(ref.readI32('top_k')[kept]), '--out', dir);
  check(dir, ref.readI32('input_ids'), ...ref.info('input_ids').shape);
}

const demo = path.join(root, 'examples/demo-moe'), store = path.join(out, 'demo.store.json');
fs.rmSync(store, { force: true });
moekit('experts', 'profile', demo, '--store', store, '--tasks', 'draw', '--n', '32');
const dir = path.join(out, 'demo-draw-8');
moekit('experts', 'prune', demo, '--task', 'draw', '--keep-experts', '8', '--score', 'tcess', '--store', store, '--out', dir);
const { tokenizeExample } = await import('../dist/tasks/corpus.js');
const ex = tokenizeExample('draw', { prompt: 'draw 42=', answer: '' });
const T = 12, ids = new Int32Array(2 * T);
for (let t = 0; t < 2 * T; t++) ids[t] = ex.ids[t % ex.ids.length];
check(dir, ids, 2, T);
