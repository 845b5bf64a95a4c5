/**
 * Checkpoint names ↔ transformers 5 names (src/train/names.ts) on small made-up layers, every element checked
 * against a naive loop over the documented layouts: gate_up_proj [E, 2I, H] (gate rows, then up rows) and
 * down_proj [E, H, I] from per-expert tensors (Qwen's gate/up/down_proj, Mixtral's w1/w3/w2 under block_sparse_moe);
 * gpt-oss's interleaved gate_up_proj [E, H, 2I] (gate in even columns) with its biases, down_proj [E, I, H]; Granite's
 * fused names. train-save.test.ts runs the same functions on the real fixtures.
 */
import { describe, expect, it } from 'vitest';
import { loadTransformers5, t5Name, toCheckpoint, toTransformers5 } from '../src/train/names.js';
import { rng } from './helpers.js';

const E = 3, I = 2, H = 4;
const r = rng(21);
const rand = (n: number) => Float32Array.from({ length: n }, () => Math.round((r() - 0.5) * 2000) / 8);

type Style = { block: string; gate: string; up: string; down: string };
const QWEN: Style = { block: 'mlp', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };
const MIXTRAL: Style = { block: 'block_sparse_moe', gate: 'w1', up: 'w3', down: 'w2' };

/** layer l's experts in checkpoint names: gate, up [I, H], down [H, I] (and their biases [I], [I], [H]) */
function experts(l: number, st: Style, bias = false): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (let e = 0; e < E; e++) {
    const x = `model.layers.${l}.${st.block}.experts.${e}`;
    m.set(`${x}.${st.gate}.weight`, rand(I * H));
    m.set(`${x}.${st.up}.weight`, rand(I * H));
    m.set(`${x}.${st.down}.weight`, rand(H * I));
    if (bias) { m.set(`${x}.${st.gate}.bias`, rand(I)); m.set(`${x}.${st.up}.bias`, rand(I)); m.set(`${x}.${st.down}.bias`, rand(H)); }
  }
  return m;
}

/** the fused tensors of the plain layout, by a loop over every element */
function fusedRef(m: Map<string, Float32Array>, l: number, st: Style) {
  const gu = new Float32Array(E * 2 * I * H), dn = new Float32Array(E * H * I);
  for (let e = 0; e < E; e++) {
    const x = `model.layers.${l}.${st.block}.experts.${e}`;
    const g = m.get(`${x}.${st.gate}.weight`)!, u = m.get(`${x}.${st.up}.weight`)!, d = m.get(`${x}.${st.down}.weight`)!;
    for (let row = 0; row < 2 * I; row++) for (let h = 0; h < H; h++) gu[(e * 2 * I + row) * H + h] = row < I ? g[row * H + h] : u[(row - I) * H + h];
    for (let h = 0; h < H; h++) for (let i = 0; i < I; i++) dn[(e * H + h) * I + i] = d[h * I + i];
  }
  return { gu, dn };
}

/** gpt-oss's fused, interleaved tensors, by a loop over every element */
function gptOssRef(m: Map<string, Float32Array>, l: number) {
  const gu = new Float32Array(E * H * 2 * I), gub = new Float32Array(E * 2 * I), dn = new Float32Array(E * I * H), dnb = new Float32Array(E * H);
  for (let e = 0; e < E; e++) {
    const x = `model.layers.${l}.mlp.experts.${e}`;
    const g = m.get(`${x}.gate_proj.weight`)!, u = m.get(`${x}.up_proj.weight`)!, d = m.get(`${x}.down_proj.weight`)!;
    for (let h = 0; h < H; h++) for (let c = 0; c < 2 * I; c++) gu[(e * H + h) * 2 * I + c] = (c % 2 === 0 ? g : u)[Math.floor(c / 2) * H + h];
    for (let c = 0; c < 2 * I; c++) gub[e * 2 * I + c] = m.get(`${x}.${c % 2 === 0 ? 'gate' : 'up'}_proj.bias`)![Math.floor(c / 2)];
    for (let i = 0; i < I; i++) for (let h = 0; h < H; h++) dn[(e * I + i) * H + h] = d[h * I + i];
    for (let h = 0; h < H; h++) dnb[e * H + h] = m.get(`${x}.down_proj.bias`)![h];
  }
  return { gu, gub, dn, dnb };
}

const copy = (m: Map<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
const zeroed = (m: Map<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, new Float32Array(v.length)]));

describe('t5Name', () => {
  it('Mixtral\'s block_sparse_moe is mlp; Granite\'s fused experts and router get transformers 5\'s names; others unchanged', () => {
    expect(t5Name('model.layers.3.block_sparse_moe.gate.weight')).toBe('model.layers.3.mlp.gate.weight');
    expect(t5Name('model.layers.12.block_sparse_moe.input_linear.weight')).toBe('model.layers.12.block_sparse_moe.experts.gate_up_proj');
    expect(t5Name('model.layers.0.block_sparse_moe.output_linear.weight')).toBe('model.layers.0.block_sparse_moe.experts.down_proj');
    expect(t5Name('model.layers.1.block_sparse_moe.router.layer.weight')).toBe('model.layers.1.block_sparse_moe.router.weight');
    for (const n of ['model.embed_tokens.weight', 'lm_head.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.2.mlp.gate.weight',
      'xmodel.layers.1.block_sparse_moe.input_linear.weight.y']) expect(t5Name(n)).toBe(n.replace('.block_sparse_moe.', '.mlp.'));
    // anchored at both ends: a name that only contains Granite's is not Granite's
    expect(t5Name('xmodel.layers.1.block_sparse_moe.input_linear.weight')).toBe('xmodel.layers.1.mlp.input_linear.weight');
    expect(t5Name('model.layers.1.block_sparse_moe.input_linear.weight.extra')).toBe('model.layers.1.mlp.input_linear.weight.extra');
  });
});

describe('toTransformers5 / loadTransformers5 / toCheckpoint', () => {
  it.each([['Qwen names', QWEN], ['Mixtral names', MIXTRAL]] as const)('%s: experts fused as [E, 2I, H] and [E, H, I]; the rest renamed', (_, st) => {
    const attn = rand(H * H), norm = rand(H);
    const params = new Map([...experts(0, st), ['model.layers.0.self_attn.o_proj.weight', attn], ...experts(2, st), ['model.norm.weight', norm]]);
    const t5 = toTransformers5(params);
    expect([...t5.keys()].sort()).toEqual(['model.layers.0.mlp.experts.down_proj', 'model.layers.0.mlp.experts.gate_up_proj', 'model.layers.0.self_attn.o_proj.weight',
      'model.layers.2.mlp.experts.down_proj', 'model.layers.2.mlp.experts.gate_up_proj', 'model.norm.weight']);
    for (const l of [0, 2]) {
      const ref = fusedRef(params, l, st);
      expect(t5.get(`model.layers.${l}.mlp.experts.gate_up_proj`)).toEqual(ref.gu);
      expect(t5.get(`model.layers.${l}.mlp.experts.down_proj`)).toEqual(ref.dn);
    }
    expect(t5.get('model.norm.weight')).toBe(norm);
    // back: every parameter its own values again, in place
    const back = zeroed(params), arrays = new Map(back);
    loadTransformers5(back, (n) => t5.get(n));
    for (const [k, v] of params) { expect(back.get(k), k).toEqual(v); expect(back.get(k)).toBe(arrays.get(k)); }
    // not gpt-oss: the checkpoint layout is the trainer's
    expect(toCheckpoint(params)).toBe(params);
  });

  it('gpt-oss: per-expert copies fused back, interleaved, with their biases; and sliced apart again', () => {
    const sinks = rand(4);
    const params = new Map([...experts(1, QWEN, true), ['model.layers.1.self_attn.sinks', sinks]]);
    const t5 = toTransformers5(params);
    const ref = gptOssRef(params, 1);
    const x = 'model.layers.1.mlp.experts';
    expect([...t5.keys()].sort()).toEqual([`${x}.down_proj`, `${x}.down_proj_bias`, `${x}.gate_up_proj`, `${x}.gate_up_proj_bias`, 'model.layers.1.self_attn.sinks']);
    expect(t5.get(`${x}.gate_up_proj`)).toEqual(ref.gu);
    expect(t5.get(`${x}.gate_up_proj_bias`)).toEqual(ref.gub);
    expect(t5.get(`${x}.down_proj`)).toEqual(ref.dn);
    expect(t5.get(`${x}.down_proj_bias`)).toEqual(ref.dnb);
    // the checkpoint is gpt-oss's fused layout too
    const ck = toCheckpoint(params);
    expect(ck).not.toBe(params);
    expect([...ck.keys()].sort()).toEqual([...t5.keys()].sort());
    for (const [k, v] of t5) expect(ck.get(k), k).toEqual(v);
    expect(ck.get('model.layers.1.self_attn.sinks')).toBe(sinks);
    // back through the engine's de-interleaving
    const back = zeroed(params);
    loadTransformers5(back, (n) => t5.get(n));
    for (const [k, v] of params) expect(back.get(k), k).toEqual(v);
  });

  it('Granite\'s fused experts load from transformers 5\'s names', () => {
    const gu = rand(E * 2 * I * H), dn = rand(E * H * I), router = rand(E * H);
    const params = new Map([['model.layers.0.block_sparse_moe.input_linear.weight', gu], ['model.layers.0.block_sparse_moe.output_linear.weight', dn],
      ['model.layers.0.block_sparse_moe.router.layer.weight', router]]);
    const t5 = toTransformers5(params);
    expect(t5.get('model.layers.0.block_sparse_moe.experts.gate_up_proj')).toBe(gu);
    expect(t5.get('model.layers.0.block_sparse_moe.experts.down_proj')).toBe(dn);
    expect(t5.get('model.layers.0.block_sparse_moe.router.weight')).toBe(router);
    const back = zeroed(params);
    loadTransformers5(back, (n) => t5.get(n));
    for (const [k, v] of params) expect(back.get(k)).toEqual(v);
  });

  it('a missing tensor or one of another size is refused, naming it; each fused tensor is read once', () => {
    const params = new Map([...experts(0, QWEN), ['model.norm.weight', rand(H)]]);
    const t5 = toTransformers5(params);
    const reads = new Map<string, number>();
    loadTransformers5(zeroed(params), (n) => { reads.set(n, (reads.get(n) ?? 0) + 1); return t5.get(n); });
    expect(Math.max(...reads.values())).toBe(1);
    expect(() => loadTransformers5(copy(params), (n) => (n === 'model.norm.weight' ? undefined : t5.get(n)))).toThrow(/^missing model\.norm\.weight$/);
    expect(() => loadTransformers5(copy(params), (n) => (n.endsWith('down_proj') ? undefined : t5.get(n)))).toThrow(/^missing model\.layers\.0\.mlp\.experts\.down_proj$/);
    expect(() => loadTransformers5(copy(params), (n) => (n === 'model.norm.weight' ? rand(H + 1) : t5.get(n)))).toThrow(/^model\.norm\.weight: 5 elements, want 4$/);
  });
});
