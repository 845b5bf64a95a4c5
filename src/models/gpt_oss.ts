/**
 * gpt-oss: attention sinks, sliding-window layers alternating with full ones (`layer_types`),
 * YaRN RoPE, biases on every projection; router = linear with bias → top-k → softmax over the k;
 * fused experts stored (in, out): gate_up_proj [E, H, 2I] with gate and up interleaved along
 * the last dim, down_proj [E, I, H]; clamped SwiGLU with (up + 1).
 */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms, windows } from './common.js';
import { dequantMxfp4 } from '../io/quant.js';
import { f32Linear, linear, type Ffn } from './weights.js';

export const gptOss: ArchSpec = {
  name: 'gpt_oss',
  modelTypes: ['gpt_oss'],
  describe(c) {
    const bias = c.bool('attention_bias', true);
    const attention = gqa(c, { qkvBias: bias, oBias: bias, sinks: true });
    const L = c.int('num_hidden_layers');
    const win = windows(c, L, null);
    return baseDesc(c, 'gpt_oss', attention, c.rope(attention.headDim, false), {
      layers: win.map((w) => ({ mlp: 'moe' as const, slidingWindow: w })),
      denseFfn: c.int('intermediate_size'),
      moe: moeDefaults({
        experts: c.int('num_local_experts'), topK: c.int('num_experts_per_tok'),
        expertFfn: c.int('intermediate_size'), router: 'topk_softmax', routerBias: true,
        act: 'swiglu_clamped', expertBias: true,
        swigluLimit: c.num('swiglu_limit', 7),
      }),
    });
  },
  loadLayer(src, d, l) {
    const p = `model.layers.${l}`;
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: { router: linear(src, `${p}.mlp.router`, d.moe.experts, d.hidden, true), selectionBias: null, shared: null, sharedGate: null },
    };
  },
  /**
   * expert e's rows [e, e + 1) of the fused tensors: gate_up_proj [E, H, 2I] + gate_up_proj_bias [E, 2I],
   * down_proj [E, I, H] + down_proj_bias [E, H]; or, as published, MXFP4: `gate_up_proj_blocks`
   * [E, 2I, H/32, 16] + `_scales` [E, 2I, H/32] dequantise to W [2I, H] (out, in) with gate and up rows
   * interleaved, `down_proj_blocks` [E, H, I/32, 16] + `_scales` to [H, I]
   */
  expert(src, d, l, e) {
    const H = d.hidden;
    const { experts: E, expertFfn: I } = d.moe;
    const x = `model.layers.${l}.mlp.experts`;
    const one = [e, e + 1] as const;
    const guB = src.get(`${x}.gate_up_proj_bias`, [E, 2 * I], one); // [2I]
    const dnB = src.get(`${x}.down_proj_bias`, [E, H], one); // [H]
    if (src.has(`${x}.gate_up_proj_blocks`)) {
      const gu = dequantMxfp4(src.getU8(`${x}.gate_up_proj_blocks`, [E, 2 * I, H / 32, 16], one),
        src.getU8(`${x}.gate_up_proj_scales`, [E, 2 * I, H / 32], one), 2 * I, H / 32); // [2I, H]
      const dn = dequantMxfp4(src.getU8(`${x}.down_proj_blocks`, [E, H, I / 32, 16], one),
        src.getU8(`${x}.down_proj_scales`, [E, H, I / 32], one), H, I / 32); // [H, I]
      const gate = new Float32Array(I * H), up = new Float32Array(I * H); // [I, H]
      const gb = new Float32Array(I), ub = new Float32Array(I);
      for (let i = 0; i < I; i++) {
        gate.set(gu.subarray(2 * i * H, (2 * i + 1) * H), i * H);
        up.set(gu.subarray((2 * i + 1) * H, (2 * i + 2) * H), i * H);
        gb[i] = guB[2 * i]; ub[i] = guB[2 * i + 1];
      }
      return { gate: f32Linear(gate, gb, I, H), up: f32Linear(up, ub, I, H), down: f32Linear(dn, dnB, H, I) };
    }
    const gu = src.get(`${x}.gate_up_proj`, [E, H, 2 * I], one); // [H, 2I]
    const dn = src.get(`${x}.down_proj`, [E, I, H], one); // [I, H]
    const t = deinterleaveExpert(gu, guB, dn, dnB, 0, H, I);
    return {
      gate: f32Linear(t.gate, t.gateBias, I, H),
      up: f32Linear(t.up, t.upBias, I, H),
      down: f32Linear(t.down, t.downBias, H, I),
    } satisfies Ffn;
  },
  expertTensors: () => [], // fused: every expert is in the same tensors
};

/**
 * Expert e of gpt-oss's fused tensors, de-interleaved into Linear layouts: gate_up_proj [E, H, 2I] with gate and up in
 * alternate columns → gate, up [I, H]; gate_up_proj_bias [E, 2I] → gate, up bias [I]; down_proj [E, I, H] → [H, I];
 * down_proj_bias [E, H] → [H]. Fresh copies.
 */
export function deinterleaveExpert(gu: Float32Array, guB: Float32Array, dn: Float32Array, dnB: Float32Array, e: number, H: number, I: number) {
  const gate = new Float32Array(I * H), up = new Float32Array(I * H); // [I, H]
  const gateBias = new Float32Array(I), upBias = new Float32Array(I);
  const down = new Float32Array(H * I); // [H, I]
  const g0 = e * H * 2 * I;
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < I; i++) {
      gate[i * H + h] = gu[g0 + h * 2 * I + 2 * i];
      up[i * H + h] = gu[g0 + h * 2 * I + 2 * i + 1];
    }
  }
  for (let i = 0; i < I; i++) {
    gateBias[i] = guB[e * 2 * I + 2 * i];
    upBias[i] = guB[e * 2 * I + 2 * i + 1];
    for (let h = 0; h < H; h++) down[h * I + i] = dn[e * I * H + i * H + h];
  }
  return { gate, up, gateBias, upBias, down, downBias: dnB.slice(e * H, (e + 1) * H) };
}
