/**
 * The one typed description every architecture's config.json is normalised into. The shared
 * forward pass (src/models/transformer.ts) reads only this, never raw config keys.
 * Dimension names: H hidden, V vocab, L layers, nH query heads, nKV key/value heads, D head dim,
 * E routed experts, K experts per token, I expert (or dense) FFN width.
 */

export type ArchName =
  | 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe' | 'deepseek_v3' | 'deepseek_v2'
  | 'ernie4_5_moe' | 'gpt_oss' | 'granitemoe' | 'glm4_moe' | 'dots1' | 'granitemoeshared' | 'hunyuan_v1_moe' | 'phimoe' | 'llama4_text' | 'qwen3_next' | 'minimax'
  | 'longcat_flash' | 'flex_olmo' | 'aria_text' | 'granitemoehybrid' | 'dbrx' | 'jetmoe';

export type { RopeDesc } from '../io/config.js';
import type { RopeDesc } from '../io/config.js';

export interface MlaDesc {
  /** null: q is one projection q_proj [nH·(nope+rope), H] */
  qLoraRank: number | null;
  kvLoraRank: number;
  qkNopeDim: number;
  qkRopeDim: number;
  vHeadDim: number;
  /**
   * LongCat-Flash's LoRA scaling (absent: 1): the query (after q_b_proj, nope and rope parts) times qScale =
   * √(H / q_lora_rank); the normalised latent times kvScale = √(H / kv_lora_rank), so keys' nope parts and values
   * (and the latent cache) carry it, the shared rope key not
   */
  qScale?: number;
  kvScale?: number;
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
  /** RMSNorm on q and k: per head (Qwen3), over the whole projection (OLMoE), or per head without a weight (Llama 4's L2 norm) */
  qkNorm: 'none' | 'head' | 'full' | 'l2';
  /** the q/k norms act on the rotated q and k (HunYuan) instead of before RoPE */
  qkNormAfterRope?: boolean;
  /** gpt-oss: one learned sink logit per head joins the softmax */
  sinks: boolean;
  /** softmax scale of q·k */
  scale: number;
  /** OLMoE clip_qkv: clamp q, k, v to ±clip */
  clipQkv: number | null;
  /**
   * Llama 4's attention temperature tuning on the layers that set `tempTuned`: q at position p scaled by
   * log(1 + floor((p + 1) / floorScale)) · attnScale + 1
   */
  tempTuning?: { floorScale: number; attnScale: number };
  /**
   * Qwen3-Next's gated attention: q_proj gives per head [q (D) | gate (D)]; the heads' output is scaled by
   * σ(gate) before o_proj
   */
  outputGate?: boolean;
  /**
   * JetMoE's mixture of attention heads (models/moa.ts): the query and output projections are `moa.experts` experts,
   * `moa.topK` routed per token by its router ('topk_softmax'; expertFfn = nKvHeads · headDim, one expert's query
   * width); nHeads = topK · nKvHeads, head h = j · topK + s (key/value head j, slot s); `oBias`: the bias after the combine
   */
  moa?: MoeDesc;
  mla?: MlaDesc;
}

export type { MoeDesc, RouterKind } from '../moe/types.js';
import type { MoeDesc } from '../moe/types.js';

export interface LayerDesc {
  mlp: 'dense' | 'moe';
  /** attention window in tokens (null: full causal) */
  slidingWindow: number | null;
  /** chunked attention (Llama 4): a query sees only the keys of its own chunk of this many positions */
  chunk?: number;
  /** a layer without RoPE (Llama 4's NoPE layers) */
  noRope?: boolean;
  /** the description's q/k norm is not applied in this layer */
  noQkNorm?: boolean;
  /** the attention temperature tuning (AttentionDesc.tempTuning) applies in this layer */
  tempTuned?: boolean;
  /**
   * the token mixer: attention (default), a Gated DeltaNet linear attention (ModelDesc.deltanet), a lightning linear
   * attention (ModelDesc.lightning) or a Mamba-2 (ModelDesc.mamba2)
   */
  mixer?: 'attention' | 'deltanet' | 'lightning' | 'mamba2';
  /**
   * MiniMax's residual scalings: a block's output is α · residual + β · block(…), [α, β] for the token mixer and for the
   * MLP (absent: [1, 1])
   */
  residualScale?: { mixer: [number, number]; mlp: [number, number] };
  /**
   * LongCat-Flash's layer (shortcut-connected MoE): two sublayers, each attention then a dense MLP (denseFfn) with
   * their own norms — the second's weights in LayerWeights.second, its cache in LayerKv.second — and the MoE
   * (mlp 'moe') reads the first sublayer's MLP input; its output joins the residual after the second sublayer:
   *   x += attn₀(n₀(x)); h = n₁(x); y = moe(h); x += mlp₀(h); x += attn₁(n₂(x)); x += mlp₁(n₃(x)); x += y
   */
  shortcutMoe?: boolean;
}

/** whether a layer's token mixer keeps keys and values per position (attention) rather than a state of fixed size */
export function cachesKv(l: LayerDesc): boolean {
  return (l.mixer ?? 'attention') === 'attention';
}

/** lightning attention (MiniMax `linear_attention` layers): models/lightning.ts */
export interface LightningDesc {
  /** nH heads of width D each for q, k and v (the qkv projection [nH·3D, H]) */
  nHeads: number;
  headDim: number;
  /** the block length of the prefill form (config block_size) */
  blockSize: number;
}

/** a layer whose mixer keeps a recurrent state of fixed size (no keys and values in the cache) */
export const recurrentMixer = (l: LayerDesc): boolean => !cachesKv(l);

/** Gated DeltaNet linear attention (Qwen3-Next `linear_attention` layers): models/deltanet.ts */
export interface DeltaNetDesc {
  /** key heads nK of width Dk, value heads nV of width Dv (nV a multiple of nK) */
  nK: number;
  nV: number;
  Dk: number;
  Dv: number;
  /** the causal depthwise conv1d's kernel width over the mixed q, k, v */
  convKernel: number;
}

/** the Mamba-2 mixer (Granite 4.0-H `linear_attention` layers): models/mamba2.ts */
export interface Mamba2Desc {
  /** nH heads of width P (nH·P = mamba_expand · hidden), G groups of B and C of width N (the state size) */
  nHeads: number;
  headDim: number;
  nGroups: number;
  dState: number;
  /** the causal depthwise conv1d's kernel width over x, B, C; its bias */
  convKernel: number;
  convBias: boolean;
  /** in_proj and out_proj have biases (mamba_proj_bias) */
  projBias: boolean;
  /** Δ after softplus is clamped to [dtMin, dtMax] (time_step_limit) */
  dtMin: number;
  dtMax: number;
}

export interface ModelDesc {
  arch: ArchName;
  /** config.json `architectures[0]` (or the model_type when absent) */
  hfClass: string;
  vocab: number;
  hidden: number;
  nLayers: number;
  rmsEps: number;
  /**
   * the decoder layers' norms' eps where it is not rmsEps, the final norm's (JetMoE: transformers builds its layers'
   * RMSNorms with the default 1e-6, only the final norm reads rms_norm_eps)
   */
  layerNormEps?: number;
  /**
   * every norm of the decoder (and the final one): RMSNorm [H], LayerNorm with weight and bias [H] (PhiMoE), or
   * LayerNorm with a weight only (DBRX: nn.LayerNorm(bias=False))
   */
  norm: 'rms' | 'layer' | 'layer_nobias';
  tieEmbeddings: boolean;
  /** the LM head has a bias [V] (PhiMoE lm_head_bias) */
  lmHeadBias: boolean;
  /** the Gated DeltaNet of the layers whose mixer is 'deltanet' */
  deltanet?: DeltaNetDesc;
  /** the lightning attention of the layers whose mixer is 'lightning' */
  lightning?: LightningDesc;
  /**
   * MiniMax: the residual each block adds to is its normalised input (h = α · norm(x) + β · block(norm(x))), not x
   */
  residualNormed?: boolean;
  /** the Mamba-2 of the layers whose mixer is 'mamba2' */
  mamba2?: Mamba2Desc;
  /**
   * zero-centred RMSNorm weights (Qwen3-Next): the checkpoint stores w and the norm multiplies by 1 + w; the loader
   * adds the 1 (the decoder, final and q/k norms)
   */
  normPlusOne?: boolean;
  /**
   * where each block's norm sits (LayerWeights attnNorm / ffnNorm): before the block, on its input ('pre', the
   * default: x + f(norm(x))), or on its output ('post', OLMo 2 / FlexOlmo: x + norm(f(x)), no input norm)
   */
  normPlacement?: 'pre' | 'post';
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
  /**
   * multi-token prediction modules the config declares (DeepSeek-V3's `num_nextn_predict_layers`; 0: none). Module k
   * (1-based) is stored as decoder layer nLayers + k − 1; checkpoints converted by transformers often declare it
   * without holding its tensors, so what a loader finds decides (src/models/mtp.ts)
   */
  nextnLayers: number;
  /** next-group-of-tokens heads (moekit's config key `next_group_heads`; 0: none), src/models/mtp.ts */
  groupHeads: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}
