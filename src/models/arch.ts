/**
 * What one architecture file provides: which config.json it reads, how it normalises it, and
 * its tensor-name table (as a loader over a TensorSource, so the same code lists, validates
 * and loads). Everything else (forward, generation, tracing) is shared.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchName, ModelDesc } from './desc.js';
import type { Ffn, LayerTensors, TensorSource } from './weights.js';

export interface ArchSpec {
  name: ArchName;
  /** config.json `model_type` values this file handles */
  modelTypes: string[];
  describe(c: ConfigReader): ModelDesc;
  /** the weights of decoder layer l, read by Hugging Face name, all but its routed experts (see `expert`) */
  loadLayer(src: TensorSource, d: ModelDesc, l: number): LayerTensors;
  /**
   * routed expert e of MoE layer l, read by itself: its own tensors, or its rows [e, e + 1) of fused ones
   * (quantised ones dequantised alone). The eager and the lazy expert store both read experts with it.
   */
  expert(src: TensorSource, d: ModelDesc, l: number, e: number): Ffn;
  /**
   * the tensors that hold expert e of MoE layer l alone: a checkpoint with none of them has pruned it.
   * [] for fused layouts (one tensor for all experts: never pruned by name).
   */
  expertTensors(d: ModelDesc, l: number, e: number): string[];
  /**
   * what precedes every name of the language model's tensors in this architecture's checkpoints: Llama 4's
   * multimodal checkpoints hold `language_model.model.layers…`, `language_model.lm_head.weight` beside the vision
   * tower's tensors (unset: the names as written)
   */
  tensorPrefix?: string;
  /**
   * the buffers the reference saves beside decoder layer l's parameters (MiniMax's lightning decay tables), with the
   * values it computes for them: listed in the tensor table and written so into random checkpoints, not counted as
   * parameters; the loader reads what it needs of them where a checkpoint holds them (absent: none)
   */
  buffers?(d: ModelDesc, l: number): BufferSpec[];
  /**
   * tensors of decoder layer l the reference implementation saves but no forward reads (LongCat-Flash: transformers
   * 5.17's fused gate_up_proj has rows for the zero-computation experts too, saved as their gate/up projections): the
   * tensor table lists them, inspect counts them as unused, the loaders never read them
   */
  unreadTensors?(d: ModelDesc, l: number): { name: string; shape: number[] }[];
  /**
   * the checkpoint names (without `.weight`) of the embedding and the final norm, when they are not Llama's
   * `model.embed_tokens` and `model.norm` (DBRX: `transformer.wte`, `transformer.norm_f`); the LM head is `lm_head`
   */
  globalNames?: GlobalNames;
}

export interface BufferSpec {
  name: string;
  shape: number[];
  value(): Float32Array;
}

export interface GlobalNames { embed: string; norm: string }

/** the embedding's and the final norm's names in this architecture's checkpoints (ArchSpec.globalNames) */
export function globalNames(a: Pick<ArchSpec, 'globalNames'>): GlobalNames {
  return a.globalNames ?? { embed: 'model.embed_tokens', norm: 'model.norm' };
}
