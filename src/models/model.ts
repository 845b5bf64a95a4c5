/**
 * A loaded MoE causal LM: description + weights + the shared decoder forward pass.
 * forward() runs B sequences of T new tokens each, at positions cache.length .. + T − 1.
 */
import * as path from 'node:path';
import { Checkpoint } from '../io/checkpoint.js';
import { readConfig } from '../io/config.js';
import { getKernels, type Kernels } from '../tensor/index.js';
import { MoekitError } from '../util/errors.js';
import type { ProgressCallback } from '../util/progress.js';
import { KvCache } from '../runtime/kv-cache.js';
import { moeForward, type RouterEvent } from '../moe/layer.js';
import { ffnForward } from '../moe/experts.js';
import type { ArchSpec } from './arch.js';
import { attentionForward } from './attention.js';
import { mlaLatentForward } from './attention-mla.js';
import type { ModelDesc } from './desc.js';
import { linearFwd } from './ops.js';
import { archFor } from './registry.js';
import { RopeTable } from './rope.js';
import { checkpointSource, fp8BlockSize } from './source.js';
import type { ModelWeights } from './weights.js';

/** Named intermediates: one hook the runtime, profilers and tests attach to. */
export interface Tracer {
  /** every MoE layer's routing */
  router?(ev: RouterEvent): void;
  /** residual stream [N, H]: i = 0 after the embedding, i = l + 1 after decoder layer l */
  hidden?(i: number, x: Float32Array, N: number): void;
}

export interface ForwardOptions {
  trace?: Tracer;
  /** compute logits only for the last position of each sequence: [B, V] */
  lastOnly?: boolean;
}

export class MoeModel {
  readonly rope: RopeTable;
  readonly moeLayerIndex: number[]; // decoder layer → MoE layer index (−1 for dense)
  /** how MLA caches keys and values (see latentMla) */
  mlaCache: 'latent' | 'expanded' = 'latent';

  constructor(readonly desc: ModelDesc, readonly weights: ModelWeights, readonly arch: ArchSpec, readonly dir = '') {
    this.rope = new RopeTable(desc.rope);
    let m = 0;
    this.moeLayerIndex = desc.layers.map((l) => (l.mlp === 'moe' ? m++ : -1));
  }

  /**
   * Load a model directory. dtype 'auto' keeps BF16 weight matrices as bf16 (computing in f32:
   * the same results as upcasting at load, with half the memory); 'f32' upcasts everything.
   */
  static load(dir: string, opts: { onProgress?: ProgressCallback; dtype?: 'auto' | 'f32' } = {}): MoeModel {
    const t0 = Date.now();
    const cfg = readConfig(dir);
    const arch = archFor(cfg);
    const desc = arch.describe(cfg);
    const ck = Checkpoint.open(path.dirname(cfg.file));
    try {
      const src = checkpointSource(ck, fp8BlockSize(cfg), (opts.dtype ?? 'auto') === 'auto');
      const H = desc.hidden, V = desc.vocab;
      const total = desc.nLayers + 2;
      const task = `load ${path.basename(path.resolve(dir))}`;
      opts.onProgress?.({ status: 'initiate', task, total });
      const embed = src.getMatrix('model.embed_tokens.weight', [V, H]);
      opts.onProgress?.({ status: 'progress', task, loaded: 1, total, item: 'embeddings' });
      const layers = [];
      for (let l = 0; l < desc.nLayers; l++) {
        layers.push(arch.loadLayer(src, desc, l));
        opts.onProgress?.({ status: 'progress', task, loaded: l + 2, total, item: `layer ${l}` });
      }
      const norm = src.get('model.norm.weight', [H]);
      // the checkpoint's own lm_head when it has one, whatever tie_word_embeddings says (as transformers loads it);
      // the embedding otherwise
      const tied = !src.has('lm_head.weight');
      const lmHead = { w: tied ? embed : src.getMatrix('lm_head.weight', [V, H]), b: null, out: V, in: H };
      opts.onProgress?.({ status: 'done', task, total });
      opts.onProgress?.({ status: 'ready', task, seconds: (Date.now() - t0) / 1000 });
      return new MoeModel(desc, { embed, norm, lmHead, layers }, arch, path.dirname(cfg.file));
    } finally {
      ck.close();
    }
  }

  /**
   * MLA keeps the compressed cache (latent + shared rope key per position) unless the model was
   * loaded with mlaCache: 'expanded' (per-head keys and values: the reference path).
   */
  get latentMla(): boolean {
    return this.desc.attention.kind === 'mla' && this.mlaCache === 'latent';
  }

  newCache(B: number, capacity = 64): KvCache {
    const a = this.desc.attention;
    const per = this.latentMla
      ? { nKv: 1, dk: a.mla!.kvLoraRank + a.mla!.qkRopeDim, dv: 0 }
      : { nKv: a.nKvHeads, dk: a.headDim, dv: a.vHeadDim };
    return new KvCache(B, this.desc.layers.map(() => per), capacity);
  }

  /**
   * ids [B, T] → logits [B, T, V] (or [B, V] with lastOnly). Appends to `cache` (a fresh one
   * when omitted).
   */
  forward(ids: Int32Array, B: number, T: number, cache: KvCache = this.newCache(B, T), opts: ForwardOptions = {}): Float32Array {
    const k: Kernels = getKernels();
    const d = this.desc, w = this.weights, H = d.hidden, V = d.vocab, N = B * T;
    if (ids.length !== N) throw new MoekitError(`input_ids has ${ids.length} ids, expected B·T = ${N}`);
    if (cache.B !== B) throw new MoekitError(`KV cache holds ${cache.B} sequences, got ${B}`);
    const pos0 = cache.length;
    // embed: x [N, H]
    const x = new Float32Array(N * H);
    for (let n = 0; n < N; n++) {
      const id = ids[n];
      if (!(id >= 0 && id < V)) throw new MoekitError(`token id ${id} is outside the vocabulary [0, ${V})`);
      const dst = x.subarray(n * H, (n + 1) * H);
      if (w.embed instanceof Uint16Array) k.bf16ToF32(dst, w.embed.subarray(id * H, (id + 1) * H), H);
      else dst.set(w.embed.subarray(id * H, (id + 1) * H));
      if (d.embeddingMultiplier !== 1) for (let j = 0; j < H; j++) dst[j] *= d.embeddingMultiplier;
    }
    opts.trace?.hidden?.(0, x, N);
    const h = new Float32Array(N * H);
    const rm = d.residualMultiplier;
    for (let l = 0; l < d.nLayers; l++) {
      const lw = w.layers[l];
      // attention block
      k.rmsnorm(h, x, lw.attnNorm, N, H, d.rmsEps);
      const call = { k, d, w: lw.attn, rope: this.rope, x: h, B, T, pos0, kv: cache.layers[l], window: d.layers[l].slidingWindow };
      const a = this.latentMla ? mlaLatentForward(call) : attentionForward(call);
      for (let i = 0; i < N * H; i++) x[i] += a[i] * rm;
      // FFN block: dense or MoE
      k.rmsnorm(h, x, lw.ffnNorm, N, H, d.rmsEps);
      let m: Float32Array;
      if (lw.moe) {
        const moeLayer = this.moeLayerIndex[l];
        const tr = opts.trace?.router;
        m = moeForward(k, d.moe, lw.moe, h, N, H, tr && ((logits, experts, weights) =>
          tr({ moeLayer, layer: l, N, E: d.moe.experts, K: d.moe.topK, logits, experts, weights })));
      } else {
        m = ffnForward(k, h, N, lw.dense!);
      }
      for (let i = 0; i < N * H; i++) x[i] += m[i] * rm;
      if (l < d.nLayers - 1) opts.trace?.hidden?.(l + 1, x, N);
    }
    cache.length = pos0 + T;
    // final norm, LM head
    k.rmsnorm(x, x, w.norm, N, H, d.rmsEps);
    opts.trace?.hidden?.(d.nLayers, x, N);
    let rows = x, R = N;
    if (opts.lastOnly) {
      R = B;
      rows = new Float32Array(B * H);
      for (let b = 0; b < B; b++) rows.set(x.subarray(((b + 1) * T - 1) * H, (b + 1) * T * H), b * H);
    }
    const logits = linearFwd(k, rows, R, w.lmHead); // [R, V]
    if (d.logitsScale !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= d.logitsScale;
    return logits;
  }
}
