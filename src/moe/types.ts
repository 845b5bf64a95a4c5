/**
 * The MoE block's own types: its description, its weights and where its experts come from.
 * Dimension names: N tokens, H hidden, E routed experts, K experts per token, I expert FFN width.
 */
import type { Linear } from '../tensor/linear.js';

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
  | 'softmax_bias'
  /**
   * PhiMoE's sparsemixer (inference): top-2 by two rounds of argmax; round r's weight is the softmax, at its expert,
   * of the logits left in the round with those far below its maximum masked ((max − s) / max(|s|, max) > 2·jitterEps)
   */
  | 'sparsemixer'
  /** top-k of the logits, each weighed by its sigmoid (Llama 4) */
  | 'topk_sigmoid';

export interface MoeDesc {
  /** the router's choices: the routed experts with weights, then the zero-computation experts (zeroExperts) */
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
  /** sparsemixer: router_jitter_noise, the relative width of the logits kept in each round */
  jitterEps: number;
  /** the combine weight scales each expert's input instead of its output (Llama 4: expert(w · x), summed) */
  weightInput: boolean;
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
  /** a bias [H] added to the block's output after the combine (JetMoE's `mlp.bias`) */
  outputBias: boolean;
  /**
   * zero-computation experts (LongCat-Flash's `zero_expert_num` identity experts): the last zeroExperts of the
   * `experts` router choices have no weights; chosen, one returns its input, so the token gets w · x for it
   * (absent: 0). Routing, masks, top-k and trace events cover all `experts`; the expert stores hold only the first
   * routedExperts(m).
   */
  zeroExperts?: number;
}

/** experts with weights: ids [0, routedExperts(m)); the zero-computation ones follow (MoeDesc.zeroExperts) */
export function routedExperts(m: MoeDesc): number {
  return m.experts - (m.zeroExperts ?? 0);
}

/** SwiGLU FFN: down(act(gate(x)) · up(x)) */
export interface Ffn {
  gate: Linear; // [I, H]
  up: Linear; // [I, H]
  down: Linear; // [H, I]
}

/**
 * The routed experts of one MoE layer, reached through one interface whatever holds them: an
 * eager array (every expert in memory), or a lazy store that reads an expert from the checkpoint
 * on first use and evicts under a byte budget (src/models/expert-store.ts).
 */
export interface LayerExperts {
  /** E: the router's expert count */
  readonly count: number;
  /** expert e exists in this model (false: pruned from the checkpoint) */
  has(e: number): boolean;
  /** expert e's weights (loading it if needed); throws a MoekitError when it does not exist */
  get(e: number): Ffn;
  /** bytes of this layer's experts held in memory now */
  residentBytes(): number;
  /**
   * every expert stays in memory whatever is asked for (an eager array): the fused expert kernel may then
   * take all of a block's experts at once; a store under a byte budget leaves it unset (one expert at a time)
   */
  readonly held?: boolean;
}

export interface MoeWeights {
  router: Linear; // [E, H]
  selectionBias: Float32Array | null; // [E]
  experts: LayerExperts; // E × {gate [I,H], up [I,H], down [H,I]}
  shared: Ffn | null;
  sharedGate: Linear | null; // [1, H]
  /** MoeDesc.outputBias: [H] added after the combine */
  bias?: Float32Array | null;
}
