/**
 * MiniMax beyond the golden checks of fixtures.test.ts and the per-family ones of families.test.ts: its residual
 * stream (each block adds to its normalised input, scaled by the config's α / β per kind of block — the fixture has
 * them all 1, so they are held here to the properties the formula implies and to a plain-loop first layer); sequences
 * of different lengths decoding together, each with its own lightning state; the decay tables as buffers, not
 * parameters; extraction keeping each lightning layer's saved slopes; the trainer's refusal.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { writeSafetensors } from '../src/io/safetensors-write.js';
import { KvCache } from '../src/models/kv-cache.js';
import { MoeModel } from '../src/models/model.js';
import { inspectModel } from '../src/models/inspect.js';
import { TrainableModel } from '../src/train/model.js';
import { maxAbsDiff } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe/minimax');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-minimax-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const CONFIG = JSON.parse(fs.readFileSync(path.join(FIX, 'config.json'), 'utf8')) as Record<string, unknown>;

/** the fixture's weights under a config with `over` set */
function withConfig(name: string, over: Record<string, unknown>): MoeModel {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(FIX, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...CONFIG, ...over }));
  return MoeModel.load(dir);
}

const factors = (mix: [number, number], full: [number, number], mlp: [number, number]) => ({
  linear_attn_alpha_factor: mix[0], linear_attn_beta_factor: mix[1], full_attn_alpha_factor: full[0], full_attn_beta_factor: full[1],
  mlp_alpha_factor: mlp[0], mlp_beta_factor: mlp[1],
});

/** logits [T, V] and the residual stream after every layer */
function run(m: MoeModel, ids: Int32Array): { logits: Float32Array; hidden: Float32Array[] } {
  const hidden: Float32Array[] = [];
  const logits = m.forward(ids, 1, ids.length, { trace: { hidden: (i, x) => { hidden[i] = x.slice(); } } });
  return { logits, hidden };
}

function rmsRows(x: Float32Array, w: Float32Array, T: number, H: number, eps: number): Float32Array {
  const y = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let j = 0; j < H; j++) ms += x[t * H + j] ** 2;
    const r = 1 / Math.sqrt(ms / H + eps);
    for (let j = 0; j < H; j++) y[t * H + j] = x[t * H + j] * r * w[j];
  }
  return y;
}

describe('MiniMax residual stream: α · norm(x) + β · block(norm(x))', () => {
  const base = MoeModel.load(FIX);
  const V = base.desc.vocab, H = base.desc.hidden, T = 12;
  const ids = Int32Array.from({ length: T }, (_, i) => (i * 19 + 4) % V);
  const ref = run(base, ids);

  it('reads the factors per kind of block: linear_attn_* on the lightning layers, full_attn_* on the softmax one, mlp_* on every MLP', () => {
    const d = withConfig('read', factors([2, 3], [4, 5], [6, 7])).desc;
    expect(d.layers.map((l) => l.residualScale)).toEqual([
      { mixer: [2, 3], mlp: [6, 7] }, { mixer: [4, 5], mlp: [6, 7] }, { mixer: [2, 3], mlp: [6, 7] },
    ]);
    // a full_attn factor leaves the first (lightning) layer alone and changes the second; a linear_attn one the first
    const full = run(withConfig('full2', factors([1, 1], [2, 1], [1, 1])), ids);
    expect(maxAbsDiff(full.hidden[1], ref.hidden[1])).toBe(0);
    expect(maxAbsDiff(full.hidden[2], ref.hidden[2])).toBeGreaterThan(1e-2);
    const lin = run(withConfig('lin2', factors([2, 1], [1, 1], [1, 1])), ids);
    expect(maxAbsDiff(lin.hidden[1], ref.hidden[1])).toBeGreaterThan(1e-2);
  });

  it('with every block off (β = 0) the first layer is its two norms of the embedding (the residual is the normalised input)', () => {
    const m = withConfig('off', factors([1, 0], [1, 0], [1, 0]));
    const w = m.weights.layers[0], x0 = run(m, ids).hidden;
    const want = rmsRows(rmsRows(x0[0], w.attnNorm, T, H, 1e-6), w.ffnNorm, T, H, 1e-6);
    expect(maxAbsDiff(x0[1], want)).toBeLessThan(1e-6);
  });

  it('a layer\'s output is affine in its MLP factors: out(2, 0.5) = 2 · out(1, 0) + 0.5 · out(0, 1)', () => {
    const a = run(withConfig('mlp10', factors([1, 1], [1, 1], [1, 0])), ids).hidden[1];
    const b = run(withConfig('mlp01', factors([1, 1], [1, 1], [0, 1])), ids).hidden[1];
    const c = run(withConfig('mlp2h', factors([1, 1], [1, 1], [2, 0.5])), ids).hidden[1];
    expect(maxAbsDiff(c, a.map((v, i) => 2 * v + 0.5 * b[i]))).toBeLessThan(1e-6);
    expect(maxAbsDiff(a, ref.hidden[1])).toBeGreaterThan(1e-3); // the MLP's part (small in the fixture: experts of std 0.02)
  });

  it('the next norm undoes a common scale: (α, β) × 2 on the mixers, or × 3 on the MLPs (every layer\'s output × 3)', () => {
    const mix = run(withConfig('mix2', factors([2, 2], [2, 2], [1, 1])), ids);
    for (let i = 1; i <= base.desc.nLayers; i++) expect(maxAbsDiff(mix.hidden[i], ref.hidden[i]), `hidden ${i}`).toBeLessThan(1e-5);
    expect(maxAbsDiff(mix.logits, ref.logits)).toBeLessThan(1e-5);
    const mlp = run(withConfig('mlp3', factors([1, 1], [1, 1], [3, 3])), ids);
    for (let i = 1; i < base.desc.nLayers; i++) expect(maxAbsDiff(mlp.hidden[i], ref.hidden[i].map((v) => 3 * v)), `layer ${i - 1}`).toBeLessThan(3e-5);
    expect(maxAbsDiff(mlp.logits, ref.logits)).toBeLessThan(1e-5);
    // a scale on α alone is no such symmetry: 3 · norm + mlp is not 3 · (norm + mlp)
    const alpha = run(withConfig('mlpa', factors([1, 1], [1, 1], [3, 1])), ids);
    expect(maxAbsDiff(alpha.hidden[1], ref.hidden[1].map((v) => 3 * v))).toBeGreaterThan(1e-3);
  });
});

describe('MiniMax decoding', () => {
  it('sequences of different lengths decode together; each one\'s lightning state gives its own full-forward logits', () => {
    const m = MoeModel.load(FIX);
    const V = m.desc.vocab, T = 20; // past the block size (8)
    const a = Int32Array.from({ length: T }, (_, i) => (i * 7 + 3) % V), b = Int32Array.from({ length: T }, (_, i) => (i * 11 + 5) % V);
    const fa = m.forward(a, 1, T), fb = m.forward(b, 1, T); // [T, V] each
    // a prefilled with 10 tokens (a full block and a partial one), b with 3, then 7 more: both at 10, then step together
    const ca = m.newSeqCache(4), cb = m.newSeqCache(4);
    m.forward(a.subarray(0, 10), 1, 10, { cache: new KvCache([ca]) });
    m.forward(b.subarray(0, 3), 1, 3, { cache: new KvCache([cb]) });
    m.forward(b.subarray(3, 10), 1, 7, { cache: new KvCache([cb]) });
    for (let t = 10; t < T; t++) {
      const lg = m.forward(Int32Array.from([a[t], b[t]]), 2, 1, { cache: new KvCache([ca, cb]) });
      expect(maxAbsDiff(lg.subarray(0, V), fa.subarray(t * V, (t + 1) * V)), `a t=${t}`).toBeLessThan(1e-5);
      expect(maxAbsDiff(lg.subarray(V, 2 * V), fb.subarray(t * V, (t + 1) * V)), `b t=${t}`).toBeLessThan(1e-5);
    }
    // the lightning state is of fixed size [nH, D, D]; only the softmax layer (1) keeps keys and values
    const { nHeads: nH, headDim: D } = m.desc.lightning!;
    for (const l of [0, 2]) { expect(ca.layers[l].rec!.length).toBe(nH * D * D); expect(ca.layers[l].k.length).toBe(0); }
    expect(ca.layers[1].rec).toBeUndefined();
    expect(ca.layers[1].cap).toBeGreaterThanOrEqual(T);
  });
});

describe('MiniMax checkpoints', () => {
  it('inspect counts transformers\' parameters: the decay tables (slope_rate, query/key/diagonal_decay) are buffers', () => {
    const r = inspectModel(FIX);
    const report = JSON.parse(fs.readFileSync(path.resolve(FIX, '../report_more.json'), 'utf8'));
    expect(r.parameters.total).toBe(report.models.minimax.n_params); // 59424 (transformers' model.parameters())
    const ck = Checkpoint.open(FIX);
    const buffers = ck.names().filter((n) => /_decay$|slope_rate$/.test(n));
    ck.close();
    expect(buffers.length).toBe(8);
    expect(r.attention.linearLayers).toBe(2);
    expect(r.memory.kvCacheBytesPerToken).toBe(4 * 2 * 2 * 8); // the one softmax layer's keys and values
  });

  it('a checkpoint without the decay tables (the slopes from the layer index) runs as the fixture', () => {
    const dir = path.join(tmp, 'nobuffers');
    fs.mkdirSync(dir, { recursive: true });
    const ck = Checkpoint.open(FIX);
    const entries = ck.names().filter((n) => !/_decay$|slope_rate$/.test(n)).map((n) => ({ name: n, dtype: 'F32' as const, shape: ck.info(n).shape, data: ck.readF32(n) }));
    ck.close();
    writeSafetensors(path.join(dir, 'model.safetensors'), entries, { format: 'pt' });
    fs.copyFileSync(path.join(FIX, 'config.json'), path.join(dir, 'config.json'));
    const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 5 + 2) % 128);
    expect(maxAbsDiff(MoeModel.load(dir).forward(ids, 1, 16), MoeModel.load(FIX).forward(ids, 1, 16))).toBeLessThan(1e-6);
  });

  it('an extracted sub-model (the softmax layer dropped, experts kept, top-1) keeps its layers\' slopes: the masked pass', async () => {
    const { extractSubModel } = await import('../src/models/extract.js');
    const out = path.join(tmp, 'extract');
    const m = MoeModel.load(FIX);
    extractSubModel(FIX, out, { layers: [0, 2], experts: { 0: [1, 2, 5, 6], 2: [0, 3, 4, 7] }, topK: 1 });
    const x = MoeModel.load(out);
    expect(x.desc.layers.map((l) => l.mixer)).toEqual(['lightning', 'lightning']);
    // layer 2's slopes, not those of index 1 of 2
    expect(Array.from(x.weights.layers[1].lightning!.slope)).toEqual(Array.from(m.weights.layers[2].lightning!.slope));
    const mask = (keep: number[]) => Uint8Array.from({ length: 8 }, (_, e) => (keep.includes(e) ? 1 : 0));
    const sub = { layers: [0, 2], experts: [mask([1, 2, 5, 6]), mask([0, 1, 2, 3, 4, 5, 6, 7]), mask([0, 3, 4, 7])], topK: 1 };
    const ids = Int32Array.from({ length: 14 }, (_, i) => (i * 9 + 1) % 128);
    expect(maxAbsDiff(x.forward(ids, 1, 14), m.forward(ids, 1, 14, { sub }))).toBeLessThan(1e-5);
  });

  it('a bad config is one line naming the key', () => {
    expect(() => withConfig('bad-types', { layer_types: ['linear_attention', 'sliding_attention', 'linear_attention'] })).toThrow(/key 'layer_types' must list 3 of 'full_attention' \/ 'linear_attention'/);
    expect(() => withConfig('bad-act', { hidden_act: 'gelu' })).toThrow(/key 'hidden_act' must be 'silu'/);
    expect(() => withConfig('bad-block', { block_size: 0 })).toThrow(/block_size/);
    expect(() => withConfig('bad-alpha', { mlp_alpha_factor: 1e9 })).toThrow(/key 'mlp_alpha_factor' \(layer 0\) must be a number with magnitude ≤ 1000000, got 1000000000/);
    // transformers' default pattern without layer_types: full attention on the even layers
    const { layer_types: _t, ...rest } = CONFIG;
    const dir = path.join(tmp, 'default-types');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(rest));
    expect(inspectModel(dir).desc.layers.map((l) => l.mixer ?? 'attention')).toEqual(['attention', 'lightning', 'attention']);
  });

  it('the trainer refuses it, naming the lightning layers', () => {
    expect(() => TrainableModel.load(FIX)).toThrow(/lightning attention layers have no backward/);
  });
});
