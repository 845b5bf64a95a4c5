/**
 * `moekit experts prune` on every fixture architecture. A pruned checkpoint with the keep set of the reference
 * sub-model (fixtures/hf-tiny-moe-submodels: made by transformers from the same sliced tensors) gives, with the
 * reference's dropped layer skipped, the reference's logits and greedy ids; over all layers it equals the engine's
 * masked pass over the source model. Pruning by a stored score keeps exactly the pattern's experts. Keep sets the
 * architecture cannot express and stores from other models are refused on one line; nothing half written remains.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { MoeModel } from '../src/models/model.js';
import { generate } from '../src/runtime/generate.js';
import { builtinSource, profileTasks } from '../src/experts/profile.js';
import { keepSub } from '../src/experts/select.js';
import { keepOf, newStore } from '../src/experts/store.js';
import { taskByName } from '../src/tasks/registry.js';
import { maxAbsDiff, runCli, scratchDir } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const SUB = path.resolve(__dirname, '../fixtures/hf-tiny-moe-submodels');
const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v3', 'deepseek_v2', 'ernie4_5_moe', 'gpt_oss', 'granitemoe'];
const tmp = scratchDir('moekit-premoe-prune-');

describe.each(ARCHS)('%s: experts prune --keep', (arch) => {
  it('the reference sub-model\'s logits and greedy ids; all layers = the masked pass', async () => {
    const ref = SafetensorsFile.open(path.join(SUB, `${arch}.safetensors`));
    const layers = Array.from(ref.readI32('layers'));
    const allowed = ref.readI32('allowed');
    const [nMoe, E] = ref.info('allowed').shape;
    const src = MoeModel.load(path.join(FIX, arch));
    const moeLayers = src.desc.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
    const keptMoe = moeLayers.findIndex((l) => layers.includes(l));
    const K = ref.readI32('top_k')[keptMoe];
    // the reference's keep set for its kept MoE layers; its dropped MoE layer keeps the first kept layer's set
    const keep: Record<number, number[]> = {};
    for (let m = 0; m < nMoe; m++) {
      const q = layers.includes(moeLayers[m]) ? m : keptMoe;
      keep[moeLayers[m]] = [...Array(E).keys()].filter((e) => allowed[q * E + e] === 1);
    }
    const keepFile = path.join(tmp(), `${arch}.keep.json`), out = path.join(tmp(), `${arch}-pruned`);
    fs.writeFileSync(keepFile, JSON.stringify({ layers: keep }));
    const r = await runCli(['experts', 'prune', path.join(FIX, arch), '--keep', keepFile, '--top-k', String(K), '--out', out, '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ keep: keep[moeLayers[0]].length, top_k: K });
    const m = MoeModel.load(out);
    expect(m.desc.nLayers).toBe(src.desc.nLayers);
    expect(m.desc.moe.experts).toBe(keep[moeLayers[0]].length);
    const ids = ref.readI32('input_ids');
    const [B, T] = ref.info('input_ids').shape;
    const refLogits = ref.readF32('logits');
    expect(maxAbsDiff(m.forward(ids, B, T, { sub: { layers } }), refLogits)).toBeLessThanOrEqual(1e-4);
    const want = Array.from(ref.readI32('generated_ids'));
    expect(generate(m, want.slice(0, 8), { maxNewTokens: want.length - 8, greedy: true, stopAtEos: false, sub: { layers } }).ids).toEqual(want);
    // every layer: the pruned checkpoint = the full model with the pattern's mask
    const masked = src.forward(ids, B, T, { sub: keepSub(src.desc, keep, K) });
    expect(maxAbsDiff(m.forward(ids, B, T), masked)).toBeLessThanOrEqual(1e-5);
    expect(fs.readdirSync(tmp()).filter((f) => f.includes('.tmp-') || f.includes('.old-'))).toEqual([]);
  });
});

describe('experts prune by a stored score', () => {
  it.each(['qwen3_moe', 'deepseek_v3', 'gpt_oss'])('%s: --task --keep-experts --score --store keeps the pattern; = the masked pass', async (arch) => {
    const dir = path.join(FIX, arch);
    const model = MoeModel.load(dir);
    const file = path.join(tmp(), `${arch}.store.json`);
    const s = newStore(dir);
    await profileTasks(model, model.desc, file, s, [builtinSource(taskByName('reverse'))], { n: 3 });
    const M = 4;
    for (const score of ['tcess', 'reap'] as const) {
      const out = path.join(tmp(), `${arch}-${score}`);
      const r = await runCli(['experts', 'prune', dir, '--task', 'reverse', '--keep-experts', String(M), '--score', score, '--store', file, '--out', out, '--json']);
      expect(r.err).toBe('');
      const j = JSON.parse(r.out);
      const keep = keepOf(s, model.desc, s.tasks.reverse, score, M);
      expect(j.layers).toEqual(Object.fromEntries(Object.entries(keep).map(([k, v]) => [k, v])));
      const K = Math.min(model.desc.moe.topK, M);
      expect(j.top_k).toBe(K);
      const pruned = MoeModel.load(out);
      const ids = Int32Array.from([1, 5, 9, 12, 7, 3, 30, 2]);
      expect(maxAbsDiff(pruned.forward(ids, 1, 8), model.forward(ids, 1, 8, { sub: keepSub(model.desc, keep, K) }))).toBeLessThanOrEqual(1e-5);
    }
  });
});

describe('experts prune refuses what it cannot do, on one line', () => {
  const one = (r: { code: number; err: string }, re: RegExp) => {
    expect(r.code).toBe(1);
    expect(r.err).toMatch(re);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  };
  it('keep sets: a missing MoE layer, unequal counts per layer or per routing group, a dense layer, a budget off the groups', async () => {
    const k = (name: string, layers: Record<number, number[]>) => { const f = path.join(tmp(), name); fs.writeFileSync(f, JSON.stringify({ layers })); return f; };
    const out = path.join(tmp(), 'bad');
    one(await runCli(['experts', 'prune', path.join(FIX, 'mixtral'), '--keep', k('a.json', { 0: [0, 1], 1: [0, 1] }), '--out', out]), /no list for MoE layer 2/);
    one(await runCli(['experts', 'prune', path.join(FIX, 'mixtral'), '--keep', k('b.json', { 0: [0, 1], 1: [0, 1], 2: [0, 1, 2] }), '--out', out]), /keeps \[2, 2, 3\] experts/);
    one(await runCli(['experts', 'prune', path.join(FIX, 'deepseek_v3'), '--keep', k('c.json', { 1: [0, 1, 2, 4], 2: [0, 1, 4, 5] }), '--out', out]), /routing groups; group-limited routing needs the same number in each/);
    one(await runCli(['experts', 'prune', path.join(FIX, 'deepseek_v3'), '--keep', k('d.json', { 0: [0, 1], 1: [0, 4], 2: [0, 4] }), '--out', out]), /layer 0, which is not a MoE layer/);
    one(await runCli(['experts', 'prune', path.join(FIX, 'mixtral'), '--keep', k('e.json', { 0: [0, 1], 1: [0, 1], 2: [0, 1] }), '--top-k', '3', '--out', out]), /top-k must be an integer in \[1, 2\]/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp()).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
  it('a store from another model; --keep-experts the groups cannot split; flags', async () => {
    const dir = path.join(FIX, 'deepseek_v3');
    const model = MoeModel.load(dir);
    const file = path.join(tmp(), 'ds.store.json');
    await profileTasks(model, model.desc, file, newStore(dir), [builtinSource(taskByName('add'))], { n: 2 });
    const out = path.join(tmp(), 'bad2');
    one(await runCli(['experts', 'prune', dir, '--task', 'add', '--keep-experts', '3', '--store', file, '--out', out]), /--keep-experts 3 is not a multiple of the 2 routing groups/);
    one(await runCli(['experts', 'prune', dir, '--task', 'add', '--keep-experts', '2', '--store', file, '--out', out]), /needs ≥ 2 per group/);
    one(await runCli(['experts', 'prune', path.join(FIX, 'deepseek_v2'), '--task', 'add', '--keep-experts', '4', '--store', file, '--out', out]), /profiled on another model \(deepseek_v3/);
    one(await runCli(['experts', 'prune', dir, '--task', 'sort', '--keep-experts', '4', '--store', file, '--out', out]), /no pattern for task 'sort' \(complete: add/);
    one(await runCli(['experts', 'prune', dir, '--task', 'add', '--keep-experts', '4', '--score', 'magic', '--store', file, '--out', out]), /--score must be one of tcess, frequency, soft, reap/);
    one(await runCli(['experts', 'prune', dir, '--keep-experts', '4', '--out', out]), /needs --task T, --keep-experts M and --store STORE/);
    one(await runCli(['experts', 'prune', dir, '--out', out]), /give either --keep KEEP.json or --task/);
  });
});
