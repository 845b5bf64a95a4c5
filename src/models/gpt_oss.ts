/**
 * gpt-oss: attention sinks, sliding-window layers alternating with full ones (`layer_types`),
 * YaRN RoPE, biases on every projection; router = linear with bias → top-k → softmax over the k;
 * fused experts stored (in, out): gate_up_proj [E, H, 2I] with gate and up interleaved along
 * the last dim, down_proj [E, I, H]; clamped SwiGLU with (up + 1).
 */
import type { ArchSpec } from './arch.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms, windows } from './common.js';
import { dequantMxfp4 } from '../io/quant.js';
import { EagerExperts, f32Linear, linear, type Ffn, type TensorSource } from './weights.js';

/**
 * Experts stored as MXFP4 (the published gpt-oss checkpoints): `gate_up_proj_blocks`
 * [E, 2I, H/32, 16] + `_scales` [E, 2I, H/32] dequantise to [E, 2I, H], i.e. W [out, in] per
 * expert with gate and up rows interleaved; `down_proj_blocks` [E, H, I/32, 16] to [E, H, I].
 */
function mxfp4Experts(src: TensorSource, x: string, E: number, H: number, I: number,
                      guB: Float32Array, dnB: Float32Array): Ffn[] {
  const gu = dequantMxfp4(src.getU8(`${x}.gate_up_proj_blocks`, [E, 2 * I, H / 32, 16]),
    src.getU8(`${x}.gate_up_proj_scales`, [E, 2 * I, H / 32]), E * 2 * I, H / 32); // [E, 2I, H]
  const dn = dequantMxfp4(src.getU8(`${x}.down_proj_blocks`, [E, H, I / 32, 16]),
    src.getU8(`${x}.down_proj_scales`, [E, H, I / 32]), E * H, I / 32); // [E, H, I]
  return Array.from({ length: E }, (_, e) => {
    const gate = new Float32Array(I * H), up = new Float32Array(I * H); // [I, H]
    for (let i = 0; i < I; i++) {
      gate.set(gu.subarray((e * 2 * I + 2 * i) * H, (e * 2 * I + 2 * i + 1) * H), i * H);
      up.set(gu.subarray((e * 2 * I + 2 * i + 1) * H, (e * 2 * I + 2 * i + 2) * H), i * H);
    }
    const gb = new Float32Array(I), ub = new Float32Array(I);
    for (let i = 0; i < I; i++) { gb[i] = guB[e * 2 * I + 2 * i]; ub[i] = guB[e * 2 * I + 2 * i + 1]; }
    return {
      gate: f32Linear(gate, gb, I, H),
      up: f32Linear(up, ub, I, H),
      down: f32Linear(dn.slice(e * H * I, (e + 1) * H * I), dnB.slice(e * H, (e + 1) * H), H, I),
    };
  });
}

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
    const H = d.hidden;
    const { experts: E, expertFfn: I } = d.moe;
    const x = `${p}.mlp.experts`;
    const guB = src.get(`${x}.gate_up_proj_bias`, [E, 2 * I]); // [E, 2I]
    const dnB = src.get(`${x}.down_proj_bias`, [E, H]); // [E, H]
    if (src.has(`${x}.gate_up_proj_blocks`)) return { ...norms(src, d, p), attn: loadGqa(src, d, p), moe: { router: linear(src, `${p}.mlp.router`, E, H, true), selectionBias: null, experts: new EagerExperts(mxfp4Experts(src, x, E, H, I, guB, dnB)), shared: null, sharedGate: null } };
    const gu = src.get(`${x}.gate_up_proj`, [E, H, 2 * I]); // [E, H, 2I]
    const dn = src.get(`${x}.down_proj`, [E, I, H]); // [E, I, H]
    const experts: Ffn[] = [];
    for (let e = 0; e < E; e++) {
      const t = deinterleaveExpert(gu, guB, dn, dnB, e, H, I);
      experts.push({
        gate: f32Linear(t.gate, t.gateBias, I, H),
        up: f32Linear(t.up, t.upBias, I, H),
        down: f32Linear(t.down, t.downBias, H, I),
      });
    }
    return {
      ...norms(src, d, p),
      attn: loadGqa(src, d, p),
      moe: { router: linear(src, `${p}.mlp.router`, E, H, true), selectionBias: null, experts: new EagerExperts(experts), shared: null, sharedGate: null },
    };
  },
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
