/**
 * JetMoE's mixture of attention heads (models/moa.ts) inside the one attention block, against its slow reference
 * (moaReference: route, each slot's query heads, causal softmax per head, each slot's output projection weighed, +
 * bias, as plain f64 loops), on the fixture's layers and random inputs: the full forward, and a prefill followed by
 * one-token decode steps through the KV cache, with both kernel sets.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attentionForward } from '../src/models/attention.js';
import { ConfigReader } from '../src/io/config.js';
import { extractSubModel } from '../src/models/extract.js';
import { MoeModel, type MoeEvent, type SubModel } from '../src/models/model.js';
import { describeModel } from '../src/models/registry.js';
import { TrainableModel } from '../src/train/model.js';
import { shapeFromDesc } from '../src/plan/models.js';
import { moaReference } from '../src/models/moa.js';
import type { MoeRouting } from '../src/moe/layer.js';
import { getKernels } from '../src/tensor/index.js';
import { maxAbsDiff, randomTools } from './helpers.js';

const ROOT = path.resolve(__dirname, '../fixtures');
const DIR = path.join(ROOT, 'hf-tiny-moe/jetmoe');

describe.each(['native', 'reference'])('mixture of attention heads = its slow reference (%s kernels)', (kernels) => {
  const prev = process.env.MOEKIT_KERNELS;
  beforeAll(() => { process.env.MOEKIT_KERNELS = kernels; });
  afterAll(() => { if (prev === undefined) delete process.env.MOEKIT_KERNELS; else process.env.MOEKIT_KERNELS = prev; });

  it.each([0, 1, 2])('layer %i: the full forward of 17 tokens, and prefill 5 + 12 decode steps', (l) => {
    const m = MoeModel.load(DIR);
    const d = m.desc, H = d.hidden, T = 17, w = m.weights.layers[l].attn!;
    const { randn } = randomTools(31 + l);
    const x = randn(T * H);
    const want = moaReference(d, { moa: w.moa!, k: w.k!, v: w.v! }, x, T); // [T, H]
    const call = (xs: Float32Array, n: number, pos0: number, kv = m.newSeqCache(4).layers[l], onRoute?: (r: MoeRouting) => void) =>
      attentionForward({ k: getKernels(), d, w, rope: m.rope, x: xs, B: 1, T: n, pos0: [pos0], kv: [kv], window: null, save: false, onRoute }).y;
    const routes: MoeRouting[] = [];
    const full = call(x, T, 0, undefined, (r) => routes.push(r));
    expect(maxAbsDiff(full, want)).toBeLessThan(1e-5);
    // its routing, through the router contract: K experts per token, weights summing to 1, counts per expert
    expect(routes.length).toBe(1);
    const r = routes[0];
    expect([r.N, r.E, r.K]).toEqual([T, d.attention.moa!.experts, d.attention.moa!.topK]);
    for (let t = 0; t < T; t++) expect(r.weights[2 * t] + r.weights[2 * t + 1]).toBeCloseTo(1, 6);
    expect(r.counts.reduce((s, c) => s + c, 0)).toBe(T * r.K);
    // through the cache: 5 tokens, then one at a time
    const kv = m.newSeqCache(4).layers[l];
    const P = 5;
    expect(maxAbsDiff(call(x.subarray(0, P * H), P, 0, kv), want.subarray(0, P * H))).toBeLessThan(1e-5);
    for (let t = P; t < T; t++) {
      const y = call(x.subarray(t * H, (t + 1) * H), 1, t, kv);
      expect(maxAbsDiff(y, want.subarray(t * H, (t + 1) * H)), `t=${t}`).toBeLessThan(1e-5);
    }
  });
});

describe('jetmoe', () => {
  const cfg = () => JSON.parse(fs.readFileSync(path.join(ROOT, 'configs/jetmoe-8b.json'), 'utf8')) as Record<string, unknown>;
  const desc = (raw: Record<string, unknown>) => describeModel(new ConfigReader(raw, 'config.json')).desc;

  it('reads the published config: nH = nKV · K heads of kv_channels, the attention experts\' router beside the MLP\'s, tied embeddings by default', () => {
    const c = cfg();
    delete c.tie_word_embeddings;
    const d = desc({ ...c, num_attention_heads: 5 }); // transformers sets num_attention_heads = nKV · K whatever the config says
    expect([d.attention.nHeads, d.attention.nKvHeads, d.attention.headDim, d.rope.dim]).toEqual([32, 16, 128, 128]);
    expect([d.attention.moa!.experts, d.attention.moa!.topK, d.attention.moa!.router, d.attention.oBias]).toEqual([8, 2, 'topk_softmax', true]);
    expect([d.moe.experts, d.moe.topK, d.moe.expertFfn, d.moe.router, d.moe.outputBias]).toEqual([8, 2, 5632, 'topk_softmax', true]);
    expect([d.rmsEps, d.layerNormEps, d.tieEmbeddings]).toEqual([1e-5, 1e-6, true]);
  });

  it('names a value it cannot run', () => {
    expect(() => desc({ ...cfg(), activation_function: 'gelu' })).toThrow(/'activation_function' must be 'silu'/);
    expect(() => desc({ ...cfg(), num_experts_per_tok: 9 })).toThrow(/'num_experts_per_tok' \(9\) must be ≤ num_local_experts \(8\)/);
  });

  it('a sub-model masks and re-k\'s the MLP experts only: the attention experts keep their routing', () => {
    const m = MoeModel.load(DIR);
    const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 29 + 3) % m.desc.vocab);
    const attn = (sub?: SubModel) => {
      const evs: MoeEvent[] = [];
      m.forward(ids, 1, 12, { sub, trace: { moa: (ev) => evs.push({ ...ev, experts: ev.experts.slice() }) } });
      return evs;
    };
    const full = attn(), sub = attn({ layers: [0, 2], experts: [Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 0]), null, null], topK: 1 });
    expect(sub.map((e) => e.layer)).toEqual([0, 2]);
    // layer 0's attention sees the embedding either way: the same experts, still K = 2; layer 2's input differs
    expect(Array.from(sub[0].experts)).toEqual(Array.from(full[0].experts));
    expect(sub.map((e) => e.K)).toEqual([2, 2]);
    expect(Array.from(sub[1].experts)).not.toEqual(Array.from(full[2].experts));
  });

  it('the trainer, extract and the planner refuse it, saying why', () => {
    expect(() => shapeFromDesc(MoeModel.load(DIR).desc)).toThrow(/a mixture of attention heads .*: the planner's cost model has dense attention projections only/);
    expect(() => TrainableModel.load(DIR)).toThrow(/cannot train this jetmoe model: its mixture of attention heads .* has no backward/);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-jetmoe-'));
    try {
      expect(() => extractSubModel(DIR, tmp, { experts: { 0: [0, 1, 2, 3], 1: [0, 1, 2, 3], 2: [0, 1, 2, 3] } })).toThrow(/other experts or another top-k from a jetmoe checkpoint is not supported: its attention experts/);
      expect(() => extractSubModel(DIR, tmp, { topK: 1 })).toThrow(/another top-k from a jetmoe/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('extract keeps layers: the checkpoint loads as the pass that skips the others', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-jetmoe-'));
    try {
      extractSubModel(DIR, tmp, { layers: [0, 2] });
      const src = MoeModel.load(DIR), out = MoeModel.load(tmp);
      expect(out.desc.nLayers).toBe(2);
      const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 29 + 3) % src.desc.vocab);
      expect(maxAbsDiff(out.forward(ids, 1, 12), src.forward(ids, 1, 12, { sub: { layers: [0, 2] } }))).toBe(0);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
