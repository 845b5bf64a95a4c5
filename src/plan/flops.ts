/**
 * Parameter counts and FLOPs of an MoE transformer, per token.
 *
 * Parameters (norms and biases ignored, < 0.01%):
 *  - GQA attention: h*n*d (Q) + 2*h*g*d (K, V) + n*d*h (O)
 *  - MLA attention (DeepSeek-V2, arXiv 2405.04434 sec. 2.1): h*q_lora + q_lora*n*(d_nope+d_rope) (Q; h*n*(d_nope+d_rope)
 *    without a q LoRA), h*(kv_lora + d_rope) (compressed KV + decoupled RoPE key), kv_lora*n*(d_nope + d_v) (K/V up), n*d_v*h (O)
 *  - SwiGLU FFN of width f: 3*h*f; a routed or shared expert of width I: 3*h*I; router: h*E
 *  - embedding V*h, LM head V*h unless tied; an MTP module (DeepSeek-V3 sec. 2.2) = one MoE layer + a 2h x h projection,
 *    sharing embedding and head with the main model
 *
 * FLOPs (forward; training = 3x forward, the backward being two GEMMs per forward GEMM):
 *  - every weight matmul: 2 FLOPs per parameter per token (so 6*N_active per token for training, Kaplan et al. 2020)
 *  - causal attention core: QK^T and PV, 2*n*(d_qk + d_v) FLOPs per (query, key) pair, each query seeing (S+1)/2 keys on
 *    average under the causal mask (the convention of FlashAttention's benchmarks; Megatron's MFU formula counts all S)
 *  - the LM head once per token, and once more per MTP module
 */
import type { ModelShape } from './models.js';

export interface ParamCounts {
  attention: number; // per layer
  dense_ffn: number; // per dense layer
  expert: number; // one routed expert
  shared: number; // all shared experts of one MoE layer
  router: number; // per MoE layer
  embedding: number;
  head: number;
  mtp: number; // all MTP modules
  moe_layers: number;
  /** total, excluding MTP modules (the figure model cards quote) */
  total: number;
  /** activated per token, including embedding and head, excluding MTP (the figure model cards quote) */
  active: number;
  /** parameters whose matmuls run per token in training: active - embedding + MTP modules (+ their head pass) */
  active_matmul: number;
}

export function attentionParams(m: ModelShape): number {
  const { hidden: h, heads: n } = m;
  if (m.attention === 'mla') {
    const dqk = m.qk_nope_head_dim + m.qk_rope_head_dim;
    const q = m.q_lora_rank > 0 ? h * m.q_lora_rank + m.q_lora_rank * n * dqk : h * n * dqk;
    const kvA = h * (m.kv_lora_rank + m.qk_rope_head_dim);
    const kvB = m.kv_lora_rank * n * (m.qk_nope_head_dim + m.v_head_dim);
    return q + kvA + kvB + n * m.v_head_dim * h;
  }
  return h * n * m.head_dim + 2 * h * m.kv_heads * m.head_dim + n * m.head_dim * h;
}

/** (d_qk, d_v) of the attention core */
export function attnHeadDims(m: ModelShape): [number, number] {
  if (m.attention === 'mla') return [m.qk_nope_head_dim + m.qk_rope_head_dim, m.v_head_dim];
  return [m.head_dim, m.head_dim];
}

/** total intermediate width of a layer's shared experts */
export function sharedWidth(m: ModelShape): number {
  if (m.shared_experts === 0) return 0;
  return m.shared_ffn && m.shared_ffn > 0 ? m.shared_ffn : m.shared_experts * m.expert_ffn;
}

export function paramCounts(m: ModelShape): ParamCounts {
  const h = m.hidden;
  const attention = attentionParams(m);
  const dense_ffn = 3 * h * m.dense_ffn;
  const expert = 3 * h * m.expert_ffn;
  const moe_layers = m.experts > 0 ? m.layers - m.dense_layers : 0;
  const shared = sharedWidth(m) * 3 * h;
  const router = m.experts > 0 ? h * m.experts : 0;
  const embedding = m.vocab * h;
  const head = m.tied_embeddings ? 0 : m.vocab * h;
  const moeLayerTotal = attention + shared + router + m.experts * expert;
  const moeLayerActive = attention + shared + router + m.top_k * expert;
  const mtpLayer = (m.experts > 0 ? moeLayerTotal : attention + dense_ffn) + 2 * h * h;
  const mtpLayerActive = (m.experts > 0 ? moeLayerActive : attention + dense_ffn) + 2 * h * h;
  const total = embedding + head + m.dense_layers * (attention + dense_ffn) + moe_layers * moeLayerTotal;
  const active = embedding + head + m.dense_layers * (attention + dense_ffn) + moe_layers * moeLayerActive;
  // the LM head's matmul runs per token whether or not its weight is tied to the embedding (head = 0 when tied)
  const active_matmul = active - embedding + (m.tied_embeddings ? m.vocab * h : 0) + m.mtp_layers * (mtpLayerActive + m.vocab * h);
  return { attention, dense_ffn, expert, shared, router, embedding, head, mtp: m.mtp_layers * mtpLayer, moe_layers, total, active, active_matmul };
}

/** Forward FLOPs of one token's causal attention core in one layer, at sequence length `seq`. */
/**
 * Keys a query attends to, averaged over the positions of a causal sequence of `seq` tokens and over the layers: a
 * full layer (seq + 1) / 2; a sliding-window layer of window w min(i + 1, w) at position i, i.e.
 * (w (w + 1) / 2 + (seq - w) w) / seq when seq > w (FlashAttention skips the blocks outside the window).
 */
export function meanKeys(m: Pick<ModelShape, 'layers' | 'sliding_window' | 'window_layers'>, seq: number): number {
  const full = (seq + 1) / 2;
  const w = m.sliding_window ?? 0;
  const nw = Math.min(m.window_layers ?? 0, m.layers);
  if (w <= 0 || nw <= 0 || w >= seq) return full;
  const win = (w * (w + 1) / 2 + (seq - w) * w) / seq;
  return ((m.layers - nw) * full + nw * win) / m.layers;
}

export function attnCoreFlopsPerToken(m: ModelShape, seq: number): number {
  const [dqk, dv] = attnHeadDims(m);
  return 2 * m.heads * (dqk + dv) * meanKeys(m, seq);
}

/**
 * Model FLOPs per token for training (forward + backward, no recompute): 6*N_active_matmul plus 3x the attention core
 * of every layer (MTP modules included). MFU = tokens/s * this / (devices * peak_bf16).
 */
export function modelFlopsPerToken(m: ModelShape, seq: number): number {
  const pc = paramCounts(m);
  return 6 * pc.active_matmul + 3 * (m.layers + m.mtp_layers) * attnCoreFlopsPerToken(m, seq);
}

/** Forward FLOPs per token of each part of one layer (for op-level timing and recompute accounting); MoE parts by engine phase. */
export interface LayerFlops {
  attn_linear: number;
  attn_core: number;
  /** dense FFN, or the MoE block's `experts` phase: routed experts + shared experts */
  ffn: number;
  /** the MoE block's `route` phase: the router GEMM */
  route: number;
}

export function layerFwdFlops(m: ModelShape, seq: number, moe: boolean): LayerFlops {
  const pc = paramCounts(m);
  return {
    attn_linear: 2 * pc.attention,
    attn_core: attnCoreFlopsPerToken(m, seq),
    ffn: moe ? 2 * (m.top_k * pc.expert + pc.shared) : 2 * pc.dense_ffn,
    route: moe ? 2 * pc.router : 0,
  };
}
