/**
 * Parameter counts from a description alone, by component: total, routed experts, and active per
 * token (all but the unchosen routed experts: total − routed · (E − K) / E, and likewise for a mixture of attention
 * heads' routed q / o projections with its own E and K). Independent of the
 * tensor tables; tests hold it to real checkpoints' headers and to published model sizes.
 */
import type { ModelDesc } from './desc.js';

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
}

export function paramCounts(d: ModelDesc): ParamCounts {
  const H = d.hidden, a = d.attention, m = d.moe;
  let attn = 0, norms = 0, dense = 0, router = 0, routed = 0, shared = 0, attnExperts = 0;
  const normSize = d.norm === 'layer' ? 2 * H : H; // LayerNorm: weight and bias
  for (const layer of d.layers) {
    norms += 2 * normSize;
    if (layer.mixer === 'deltanet') {
      // Gated DeltaNet: in_proj_qkvz, in_proj_ba, conv1d, A_log, dt_bias, the gated norm, out_proj
      const g = d.deltanet!, kd = g.nK * g.Dk, vd = g.nV * g.Dv;
      attn += H * (2 * kd + 2 * vd) + H * 2 * g.nV + (2 * kd + vd) * g.convKernel + 2 * g.nV + g.Dv + vd * H;
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
    if (layer.mlp === 'dense') {
      dense += 3 * H * d.denseFfn + (d.denseBias ? 2 * d.denseFfn + H : 0);
    } else {
      // (JetMoE's bias after the combine counted here)
      router += m.experts * H + (m.routerBias ? m.experts : 0) + (m.selectionBias ? m.experts : 0) + (m.outputBias ? H : 0);
      const bias = m.expertBias || d.denseBias;
      routed += m.experts * (3 * H * m.expertFfn + (bias ? 2 * m.expertFfn + H : 0));
      if (m.sharedFfn > 0) shared += 3 * H * m.sharedFfn + (d.denseBias ? 2 * m.sharedFfn + H : 0) + (m.sharedGated ? H : 0);
    }
  }
  norms += normSize; // final norm
  const embedding = d.vocab * H;
  const lmHead = (d.tieEmbeddings ? 0 : d.vocab * H) + (d.lmHeadBias ? d.vocab : 0);
  const total = embedding + lmHead + attn + attnExperts + norms + dense + router + routed + shared;
  const idleAttn = a.moa ? (attnExperts * (a.moa.experts - a.moa.topK)) / a.moa.experts : 0;
  const activePerToken = total - (m.experts > 0 ? (routed * (m.experts - m.topK)) / m.experts : 0) - idleAttn;
  return { embedding, lmHead, attention: attn, norms, denseFfn: dense, router, routedExperts: routed, attentionExperts: attnExperts, sharedExperts: shared, total, activePerToken };
}
