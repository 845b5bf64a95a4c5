/**
 * What one forward call is for. The same decoder loop serves generation (a KV cache), training (a tape
 * each block records its backward's inputs on), profiling (a tracer) and sub-models (layers dropped,
 * experts masked, top-k changed: elastic training, pruning patterns, per-request patterns).
 */
import type { MoeRouting, MoeSaved } from '../moe/layer.js';
import type { FfnSaved } from '../moe/experts.js';
import { MoekitError } from '../util/errors.js';
import type { AttnSaved } from './attention.js';
import type { Mamba2Saved } from './mamba2.js';
import type { ModelDesc } from './desc.js';
import type { KvCache } from './kv-cache.js';
import type { NormSaved } from './norm.js';

/** one MoE layer's routing, as the tracer sees it */
export interface MoeEvent extends MoeRouting {
  /** index among MoE layers (0-based) and among all decoder layers */
  moeLayer: number;
  layer: number;
}

/** Named intermediates: one hook the runtime, profilers and tests attach to. */
export interface Tracer {
  /** every MoE layer's routing: logits, scores, experts, weights, per-expert counts */
  moe?(ev: MoeEvent): void;
  /** also hand each assignment's expert output to `moe` (MoeEvent.expertOutputs [N, K, H]) */
  expertOutputs?: boolean;
  /**
   * every mixture-of-attention-heads layer's routing among its attention experts (JetMoE: AttentionDesc.moa), before
   * the layer's `moe` event, with the same fields; `moeLayer` and `layer` are its layer's. Kept apart from `moe`, which
   * stays one event per MoE block (expert statistics, sub-model masks and patterns are the MLP experts')
   */
  moa?(ev: MoeEvent): void;
  /** residual stream [N, H]: i = 0 after the embedding, i = l + 1 after decoder layer l, nLayers after the final norm */
  hidden?(i: number, x: Float32Array, N: number): void;
}

/**
 * A sub-model of a loaded model: the decoder layers to run (the rest pass the residual stream through),
 * per MoE layer the experts allowed (a mask over E applied before every top-k) and the top-k. Absent
 * fields mean "as the model": all layers, all experts, the description's k.
 */
export interface SubModel {
  /** decoder layers to run, by index */
  layers?: number[];
  /**
   * per MoE layer (indexed by MoE layer): [E] 1 = allowed, or null for all. E counts every router choice: with
   * zero-computation experts (MoeDesc.zeroExperts, LongCat-Flash) the routed experts 0 … E_r − 1 then the zero ones;
   * a masked zero expert leaves the softmax like any other (a checkpoint with zero_expert_num lowered computes that)
   */
  experts?: (Uint8Array | null)[];
  /** top-k: one for every MoE layer, or per MoE layer (null: the description's) */
  topK?: number | (number | null)[];
}

/** a sub-model resolved against a description: what the decoder loop reads */
export interface ResolvedSub {
  run: boolean[]; // [L] decoder layer runs
  allowed: (Uint8Array | null)[]; // [nMoE]
  topK: number[]; // [nMoE]
}

/** check a SubModel against the description (clear errors for bad indices, masks and k) */
export function resolveSub(d: ModelDesc, sub: SubModel | undefined): ResolvedSub {
  const nMoe = d.layers.filter((l) => l.mlp === 'moe').length;
  const run = new Array<boolean>(d.nLayers).fill(sub?.layers === undefined);
  for (const l of sub?.layers ?? []) {
    if (!Number.isInteger(l) || l < 0 || l >= d.nLayers) throw new MoekitError(`sub-model layer ${l} is outside [0, ${d.nLayers})`);
    run[l] = true;
  }
  const ex = sub?.experts ?? [];
  if (ex.length > nMoe) throw new MoekitError(`sub-model experts lists ${ex.length} MoE layers, the model has ${nMoe}`);
  const allowed: (Uint8Array | null)[] = [];
  const topK: number[] = [];
  for (let m = 0; m < nMoe; m++) {
    const a = ex[m] ?? null;
    if (a && a.length !== d.moe.experts) throw new MoekitError(`sub-model expert mask of MoE layer ${m} has ${a.length} entries, expected ${d.moe.experts}`);
    allowed.push(a);
    const t = sub?.topK;
    const k = typeof t === 'number' ? t : (t?.[m] ?? d.moe.topK);
    let n = d.moe.experts;
    if (a) { n = 0; for (const v of a) if (v) n++; }
    if (!Number.isInteger(k) || k < 1 || k > n) throw new MoekitError(`sub-model top-k ${k} of MoE layer ${m} must be an integer in [1, ${n}] (its allowed experts)`);
    topK.push(k);
  }
  return { run, allowed, topK };
}

/** what a decoder layer's forward recorded for its backward */
export interface LayerTape {
  n1: NormSaved; // attention norm input [N, H] (normPlacement 'post': the attention's output)
  h1: Float32Array; // [N, H] the attention's input: normalised (post: the residual stream)
  attn: AttnSaved;
  /** a Mamba-2 layer's instead of attn */
  mamba2?: Mamba2Saved;
  n2: NormSaved; // FFN norm input [N, H] (post: the MLP's output)
  moe?: MoeSaved;
  dense?: FfnSaved;
  /** a shortcut-MoE layer (LongCat-Flash): the rest of the layer after its first attention and its MoE */
  second?: ShortcutTape;
}

/** what MoeModel.shortcutRest recorded: the first dense MLP, then the second sublayer's attention and MLP */
export interface ShortcutTape {
  dense0: FfnSaved; // mlp₀ on the first sublayer's normalised MLP input
  n3: NormSaved; // second attention norm input [N, H]
  h3: Float32Array; // [N, H] normalised
  attn: AttnSaved;
  n4: NormSaved; // second MLP norm input [N, H]
  dense1: FfnSaved;
}

/** a training forward's record: fill it by passing `tape: new Tape()` */
export class Tape {
  ids: Int32Array = new Int32Array(0); // [B, T]
  B = 0;
  T = 0;
  /** per decoder layer; null for a layer the sub-model skips */
  layers: (LayerTape | null)[] = [];
  nf: NormSaved | null = null; // final norm input [N, H]
  hf: Float32Array = new Float32Array(0); // [N, H] final normalised hidden states, input of lm_head
  /** the forward's document starts (Pass.docStart), for the multi-token prediction modules run on this tape */
  docStart?: Int32Array;
}

export interface Pass {
  /** inference: the sequences' caches, appended to (default: a fresh cache) */
  cache?: KvCache;
  /** training: each block records what its backward needs */
  tape?: Tape;
  trace?: Tracer;
  sub?: SubModel;
  /**
   * packed training rows: [B·T] the first position of each token's document in its row, so that attention stays
   * inside a document (intra-document masking; train/data.ts Batch.docStart). Needs a forward from position 0.
   */
  docStart?: Int32Array;
  /** compute logits only for the last position of each sequence: [B, V] */
  lastOnly?: boolean;
}
