/**
 * Parameter counts from a description alone, by component: total, routed experts, and active per
 * token (all but the unchosen routed experts: total − routed · (E − K) / E, and likewise for a mixture of attention
 * heads' routed q / o projections with its own E and K). Independent of the
 * tensor tables; tests hold it to real checkpoints' headers and to published model sizes.
 * With zero-computation experts (MoeDesc.zeroExperts, LongCat-Flash) the routed experts a token runs vary: from
 * max(0, K − Z) (its K choices on zero experts as far as they go) to min(K, E_r); activePerToken counts K · E_r / E
 * of them, the share of its K choices that fall on the E_r routed experts when the router spreads its load evenly over
 * all E = E_r + Z (LongCat-Flash's "~27B on average" is this basis: activeExperts).
 */
import { routedExperts, type MoeDesc } from '../moe/types.js';
import type { ModelDesc } from './desc.js';

/** routed experts (with weights) a token runs: the least, the even-load expectation (activePerToken's basis), the most */
export function activeExperts(m: MoeDesc): { min: number; mean: number; max: number } {
  const Er = routedExperts(m), Z = m.experts - Er, K = m.topK;
  if (m.experts === 0) return { min: 0, mean: 0, max: 0 };
  return { min: Math.max(0, K - Z), mean: (K * Er) / m.experts, max: Math.min(K, Er) };
}

export interface ParamCounts {
  embedding: number;
  lmHead: number;
  attention: number;
  norms: number;
  denseFfn: number;
  router: number;
  routedExperts: number;
  /** the routed query and output projections of a mixture of attention heads (JetMoE), beside `attention` */
  attentionExperts: number;
  sharedExperts: number;
  total: number;
  activePerToken: number;
  /** active per token with the fewest and the most routed experts a token can run (activeExperts: equal without zero experts) */
  activeMin: number;
  activeMax: number;
}

export function paramCounts(d: ModelDesc): ParamCounts {
  const H = d.hidden, a = d.attention, m = d.moe;
  let attn = 0, norms = 0, dense = 0, router = 0, routed = 0, shared = 0, attnExperts = 0;
  const normSize = d.norm === 'layer' ? 2 * H : H; // LayerNorm: weight and bias
  for (const layer of d.layers) {
    // a shortcut-MoE layer (LongCat-Flash) has two attention + dense-MLP sublayers beside its MoE
    const subs = layer.shortcutMoe ? 2 : 1, attn0 = attn;
    norms += 2 * normSize * subs;
    if (layer.mixer === 'deltanet') {
      // Gated DeltaNet: in_proj_qkvz, in_proj_ba, conv1d, A_log, dt_bias, the gated norm, out_proj
      const g = d.deltanet!, kd = g.nK * g.Dk, vd = g.nV * g.Dv;
      attn += H * (2 * kd + 2 * vd) + H * 2 * g.nV + (2 * kd + vd) * g.convKernel + 2 * g.nV + g.Dv + vd * H;
    } else if (layer.mixer === 'lightning') {
      // lightning attention: qkv_proj, output_gate, out_proj, the norm over the heads (its decay tables are buffers)
      const hd = d.lightning!.nHeads * d.lightning!.headDim;
      attn += 3 * hd * H + hd * H + H * hd + hd;
    } else if (layer.mixer === 'mamba2') {
      // Mamba-2: in_proj [I + C + nH, H], conv1d [C, K] (+ bias), dt_bias, A_log, D [nH], the gated norm [I], out_proj [H, I]
      const s = d.mamba2!, I = s.nHeads * s.headDim, C = I + 2 * s.nGroups * s.dState, P = I + C + s.nHeads;
      attn += H * P + C * s.convKernel + (s.convBias ? C : 0) + 3 * s.nHeads + I + I * H + (s.projBias ? P + H : 0);
    } else if (a.moa) {
      // JetMoE: the shared kv_proj, the attention router, the bias after the combine; the experts' q and o apart
      const W = a.nKvHeads * a.headDim, E = a.moa.experts;
      attn += 2 * W * H + E * H + (a.oBias ? H : 0);
      attnExperts += E * 2 * W * H;
    } else if (a.kind === 'mla') {
      const x = a.mla!;
      const qOut = a.nHeads * a.headDim;
      attn += x.qLoraRank !== null ? H * x.qLoraRank + x.qLoraRank + x.qLoraRank * qOut : H * qOut;
      attn += H * (x.kvLoraRank + x.qkRopeDim) + x.kvLoraRank + x.kvLoraRank * a.nHeads * (x.qkNopeDim + x.vHeadDim);
      attn += a.nHeads * x.vHeadDim * H;
      if (a.qkvBias) attn += (x.qLoraRank ?? qOut) + x.kvLoraRank + x.qkRopeDim + H;
    } else {
      const q = a.nHeads * a.headDim, kv = a.nKvHeads * a.headDim;
      attn += H * (q + 2 * kv) + q * H + (a.outputGate ? H * q : 0);
      if (a.qkvBias) attn += q + 2 * kv + (a.outputGate ? q : 0);
      if (a.oBias) attn += H;
      if (a.qkNorm === 'head') attn += 2 * a.headDim;
      if (a.qkNorm === 'full') attn += q + kv;
      if (a.sinks) attn += a.nHeads;
    }
    attn = attn0 + subs * (attn - attn0);
    if (layer.mlp === 'dense' || layer.shortcutMoe) {
      dense += subs * (3 * H * d.denseFfn + (d.denseBias ? 2 * d.denseFfn + H : 0));
    }
    if (layer.mlp === 'moe') {
      // the router scores all E choices, zero-computation experts included; only routed ones have weights
      router += m.experts * H + (m.routerBias ? m.experts : 0) + (m.selectionBias ? m.experts : 0) + (m.outputBias ? H : 0); // (JetMoE's bias after the combine counted here)
      const bias = m.expertBias || d.denseBias;
      routed += routedExperts(m) * (3 * H * m.expertFfn + (bias ? 2 * m.expertFfn + H : 0));
      if (m.sharedFfn > 0) shared += 3 * H * m.sharedFfn + (d.denseBias ? 2 * m.sharedFfn + H : 0) + (m.sharedGated ? H : 0);
    }
  }
  norms += normSize; // final norm
  const embedding = d.vocab * H;
  const lmHead = (d.tieEmbeddings ? 0 : d.vocab * H) + (d.lmHeadBias ? d.vocab : 0);
  const total = embedding + lmHead + attn + attnExperts + norms + dense + router + routed + shared;
  const Er = routedExperts(m), act = activeExperts(m);
  const idleAttn = a.moa ? (attnExperts * (a.moa.experts - a.moa.topK)) / a.moa.experts : 0;
  const activeWith = (k: number) => total - (Er > 0 ? (routed * (Er - k)) / Er : 0) - idleAttn;
  return {
    embedding, lmHead, attention: attn, norms, denseFfn: dense, router, routedExperts: routed, attentionExperts: attnExperts, sharedExperts: shared, total,
    activePerToken: activeWith(act.mean), activeMin: activeWith(act.min), activeMax: activeWith(act.max),
  };
}
