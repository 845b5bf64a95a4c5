/**
 * The one typed description every architecture's config.json is normalised into. The shared
 * forward pass (src/models/transformer.ts) reads only this, never raw config keys.
 * Dimension names: H hidden, V vocab, L layers, nH query heads, nKV key/value heads, D head dim,
 * E routed experts, K experts per token, I expert (or dense) FFN width.
 */

export type ArchName =
  | 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe' | 'deepseek_v3' | 'deepseek_v2'
  | 'ernie4_5_moe' | 'gpt_oss' | 'granitemoe';

export interface RopeDesc {
  type: 'default' | 'linear' | 'yarn' | 'llama3';
  theta: number;
  /** rotated dims per head (≤ D; D·partial_rotary_factor, or qk_rope_head_dim for MLA) */
  dim: number;
  /** pairs (2i, 2i+1) instead of (i, i + dim/2) */
  interleaved: boolean;
  /** scaling factor (linear, yarn, llama3) */
  factor: number;
  /** YaRN / llama3 extras */
  originalMaxPositions?: number;
  betaFast?: number;
  betaSlow?: number;
  truncate?: boolean;
  mscale?: number;
  mscaleAllDim?: number;
  attentionFactor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
}

export interface MlaDesc {
  /** null: q is one projection q_proj [nH·(nope+rope), H] */
  qLoraRank: number | null;
  kvLoraRank: number;
  qkNopeDim: number;
  qkRopeDim: number;
  vHeadDim: number;
}

export interface AttentionDesc {
  kind: 'gqa' | 'mla';
  nHeads: number;
  nKvHeads: number;
  /** per-head q/k dim (MLA: nope + rope) */
  headDim: number;
  /** per-head v dim */
  vHeadDim: number;
  qkvBias: boolean;
  oBias: boolean;
  /** RMSNorm on q and k: per head (Qwen3) or over the whole projection (OLMoE) */
  qkNorm: 'none' | 'head' | 'full';
  /** gpt-oss: one learned sink logit per head joins the softmax */
  sinks: boolean;
  /** softmax scale of q·k */
  scale: number;
  /** OLMoE clip_qkv: clamp q, k, v to ±clip */
  clipQkv: number | null;
  mla?: MlaDesc;
}

export type RouterKind =
  /** softmax over E → top-k → optional renormalisation (Mixtral, Qwen, OLMoE) */
  | 'softmax_topk'
  /** top-k of the logits → softmax over those k (gpt-oss, Granite) */
  | 'topk_softmax'
  /** sigmoid scores; selection on score + bias, group-limited; weights from the scores (DeepSeek-V3) */
  | 'sigmoid_group'
  /** softmax; group-limited greedy selection (DeepSeek-V2) */
  | 'softmax_group'
  /** softmax; selection on prob + bias; weights renormalised with a floor (ERNIE 4.5) */
  | 'softmax_bias';

export interface MoeDesc {
  experts: number;
  topK: number;
  /** I of one routed expert */
  expertFfn: number;
  router: RouterKind;
  /** renormalise the k weights to sum 1 */
  normTopK: boolean;
  /** multiplies the combined routed weights (DeepSeek routed_scaling_factor) */
  routedScaling: number;
  /** group-limited selection: n_group, topk_group */
  nGroup: number;
  topkGroup: number;
  /** ERNIE moe_norm_min: floor of the renormalisation denominator */
  normMin: number;
  /** the router linear has a bias (gpt-oss) */
  routerBias: boolean;
  /** selection-only correction bias (e_score_correction_bias) */
  selectionBias: boolean;
  /** shared expert FFN width (0: none) and whether a sigmoid gate scales it (Qwen2-MoE) */
  sharedFfn: number;
  sharedGated: boolean;
  /** expert activation: SwiGLU, or gpt-oss's clamped SwiGLU with biases */
  act: 'swiglu' | 'swiglu_clamped';
  expertBias: boolean;
  swigluLimit: number;
  swigluAlpha: number;
}

export interface LayerDesc {
  mlp: 'dense' | 'moe';
  /** attention window in tokens (null: full causal) */
  slidingWindow: number | null;
}

export interface ModelDesc {
  arch: ArchName;
  /** config.json `architectures[0]` (or the model_type when absent) */
  hfClass: string;
  vocab: number;
  hidden: number;
  nLayers: number;
  rmsEps: number;
  tieEmbeddings: boolean;
  attention: AttentionDesc;
  rope: RopeDesc;
  layers: LayerDesc[];
  /** dense FFN width (dense layers) */
  denseFfn: number;
  denseBias: boolean;
  moe: MoeDesc;
  /** Granite: x·embedding; residual branch·residual; logits / logitsScale */
  embeddingMultiplier: number;
  residualMultiplier: number;
  logitsScale: number;
  maxPositions: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}
