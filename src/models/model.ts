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
import { linearFwd } from '../tensor/linear.js';
import { weightRows } from '../tensor/weight.js';
import { moeForward } from '../moe/layer.js';
import { ffnForward, SWIGLU } from '../moe/experts.js';
import { globalNames, type ArchSpec } from './arch.js';
import { attentionForward, type AttnCall } from './attention.js';
import { mlaLatentForward } from './attention-mla.js';
import { deltanetForward } from './deltanet.js';
import { lightningForward } from './lightning.js';
import { mamba2Forward } from './mamba2.js';
import { cachesKv, type LayerDesc, type ModelDesc } from './desc.js';
import { eagerExperts, LazyExperts, withExperts } from './expert-store.js';
import { KvCache, SeqCache, type LayerKv } from './kv-cache.js';
import { layernormForward, rmsnormForward, type NormSaved } from './norm.js';
import { resolveSub, type LayerTape, type Pass, type ShortcutTape, type Tracer } from './pass.js';
import { describeModel } from './registry.js';
import { GgufFile, isGgufPath } from '../io/gguf.js';
import { loadGgufWeights } from './gguf.js';
import { lmHeadIsEmbedding } from './validate.js';
import { RopeTable } from './rope.js';
import { checkpointSource, fp8BlockSize, prefixedSource } from './source.js';
import { quantizeWeight, quantizingArch, quantPlan } from './quantize.js';
import { isQuantType, type QuantType } from '../tensor/quant.js';
import type { LayerWeights, Linear, ModelWeights } from './weights.js';

export type { MoeEvent, Pass, SubModel, Tracer } from './pass.js';

export type LoadDtype = 'auto' | 'f32' | QuantType;
export const LOAD_DTYPES: readonly LoadDtype[] = ['auto', 'f32', 'q8_0', 'q4_0'];

export interface LoadOptions {
  onProgress?: ProgressCallback;
  /** 'auto' keeps bf16 (and stored q8_0/q4_0) weights as they are, 'f32' widens everything, q8_0 / q4_0 quantise at load (models/quantize.ts) */
  dtype?: LoadDtype;
  /** how the routed experts are held: all read at load (default), or read on first use under a byte budget */
  experts?: 'eager' | 'lazy';
  /** lazy only: the most bytes of routed experts held at once (default: no limit) */
  expertBudgetBytes?: number;
}

export class MoeModel {
  readonly rope: RopeTable;
  readonly moeLayerIndex: number[]; // decoder layer → MoE layer index (−1 for dense)
  /** how MLA caches keys and values (see latentMla) */
  mlaCache: 'latent' | 'expanded' = 'latent';

  /**
   * `expertStore`: the lazy store the routed experts are read through (null: every expert in memory,
   * `weights.layers[l].moe.experts` are EagerExperts)
   */
  constructor(readonly desc: ModelDesc, readonly weights: ModelWeights, readonly arch: ArchSpec, readonly dir = '',
              readonly expertStore: LazyExperts | null = null) {
    this.rope = new RopeTable(desc.rope);
    let m = 0;
    this.moeLayerIndex = desc.layers.map((l) => (l.mlp === 'moe' ? m++ : -1));
  }

  /**
   * Load a model directory. dtype 'auto' keeps BF16 weight matrices as bf16 (computing in f32:
   * the same results as upcasting at load, with half the memory); 'f32' upcasts everything.
   * experts 'eager' (the default) reads every routed expert now; 'lazy' keeps the checkpoint open
   * and reads an expert on first use, holding at most expertBudgetBytes of experts (default: no
   * limit) and evicting the least recently used (see LazyExperts); close() the model when done.
   */
  static load(dir: string, opts: LoadOptions = {}): MoeModel {
    const t0 = Date.now();
    const mode = opts.experts ?? 'eager';
    if (mode !== 'eager' && mode !== 'lazy') throw new MoekitError(`experts must be 'eager' or 'lazy', got '${String(mode)}'`);
    const budget = opts.expertBudgetBytes;
    if (budget !== undefined) {
      if (!(typeof budget === 'number' && budget >= 0)) throw new MoekitError(`expertBudgetBytes must be a number of bytes ≥ 0, got ${String(budget)}`);
      if (mode !== 'lazy') throw new MoekitError(`expertBudgetBytes needs experts: 'lazy'`);
    }
    const dtype = opts.dtype ?? 'auto';
    if (!LOAD_DTYPES.includes(dtype)) throw new MoekitError(`dtype must be one of ${LOAD_DTYPES.join(', ')}, got '${String(dtype)}'`);
    if (isGgufPath(dir)) {
      if (mode !== 'eager') throw new MoekitError(`a GGUF model loads eagerly (experts: 'lazy' reads safetensors checkpoints)`, dir);
      return MoeModel.loadGguf(dir, opts);
    }
    const cfg = readConfig(dir);
    const { arch: archSpec, desc } = describeModel(cfg);
    const k = getKernels();
    const plan = isQuantType(dtype) ? quantPlan(dtype) : null;
    const arch = plan ? quantizingArch(k, archSpec, plan) : archSpec;
    const ck = Checkpoint.open(path.dirname(cfg.file));
    let keepOpen = false;
    try {
      const src = prefixedSource(checkpointSource(ck, fp8BlockSize(cfg), dtype !== 'f32'), archSpec.tensorPrefix);
      const store = mode === 'lazy' ? new LazyExperts(ck, src, arch, desc, budget ?? Infinity, opts.onProgress) : null;
      const H = desc.hidden, V = desc.vocab;
      const total = desc.nLayers + 2;
      const task = `load ${path.basename(path.resolve(dir))}`;
      opts.onProgress?.({ status: 'initiate', task, total });
      const gn = globalNames(archSpec);
      const embed = quantizeWeight(k, src.getMatrix(`${gn.embed}.weight`, [V, H]), V, H, plan?.lmHead ?? null);
      opts.onProgress?.({ status: 'progress', task, loaded: 1, total, item: 'embeddings' });
      const layers = [];
      for (let l = 0; l < desc.nLayers; l++) {
        const t = arch.loadLayer(src, desc, l);
        layers.push(withExperts(t, () => (store ? store.layer(l) : eagerExperts(arch, src, desc, l))));
        opts.onProgress?.({ status: 'progress', task, loaded: l + 2, total, item: `layer ${l}` });
      }
      const normW = src.get(`${gn.norm}.weight`, [H]);
      // zero-centred (Qwen3-Next): the norm multiplies by 1 + w
      const norm = desc.normPlusOne ? normW.map((v) => Math.fround(1 + v)) : normW;
      const normBias = desc.norm === 'layer' ? src.get(`${gn.norm}.bias`, [H]) : undefined;
      // the checkpoint's own lm_head when it has one, whatever tie_word_embeddings says (as transformers loads it);
      // the embedding when tied; an error when the config says it is not
      const tied = lmHeadIsEmbedding(src.has('lm_head.weight'), desc, ck.dir);
      const lmHead: Linear = { w: tied ? embed : quantizeWeight(k, src.getMatrix('lm_head.weight', [V, H]), V, H, plan?.lmHead ?? null), b: desc.lmHeadBias ? src.get('lm_head.bias', [V]) : null, out: V, in: H };
      opts.onProgress?.({ status: 'done', task, total });
      opts.onProgress?.({ status: 'ready', task, seconds: (Date.now() - t0) / 1000 });
      keepOpen = store !== null;
      return new MoeModel(desc, { embed, norm, normBias, lmHead, layers }, archSpec, path.dirname(cfg.file), store);
    } finally {
      if (!keepOpen) ck.close();
    }
  }

  /**
   * Load a GGUF file (models/gguf.ts: llama.cpp's names and metadata for qwen3moe, olmoe, llama/Mixtral,
   * deepseek2, gpt-oss). dtype as for load: 'auto' keeps BF16 / Q8_0 / Q4_0 tensors as they are stored.
   */
  static loadGguf(file: string, opts: LoadOptions = {}): MoeModel {
    const t0 = Date.now();
    const dtype = opts.dtype ?? 'auto';
    const task = `load ${path.basename(file)}`;
    const g = GgufFile.open(file);
    try {
      opts.onProgress?.({ status: 'initiate', task, total: 1 });
      const { desc, weights, spec } = loadGgufWeights(getKernels(), g, { keep: dtype !== 'f32', plan: isQuantType(dtype) ? quantPlan(dtype) : null });
      opts.onProgress?.({ status: 'done', task, total: 1 });
      opts.onProgress?.({ status: 'ready', task, seconds: (Date.now() - t0) / 1000 });
      return new MoeModel(desc, weights, spec, file);
    } finally {
      g.close();
    }
  }

  /** release what the model holds open (a lazy expert store's checkpoint); idempotent. Eager models hold nothing. */
  close(): void {
    this.expertStore?.close();
  }

  /**
   * MLA keeps the compressed cache (latent + shared rope key per position) unless the model was
   * loaded with mlaCache: 'expanded' (per-head keys and values: the reference path).
   */
  get latentMla(): boolean {
    return this.desc.attention.kind === 'mla' && this.mlaCache === 'latent';
  }

  /** the cache of one sequence (for sessions that join a batch on their own) */
  newSeqCache(capacity = 64): SeqCache {
    const a = this.desc.attention;
    const per = this.latentMla
      ? { nKv: 1, dk: a.mla!.kvLoraRank + a.mla!.qkRopeDim, dv: 0 }
      : { nKv: a.kind === 'mla' ? a.nHeads : a.nKvHeads, dk: a.headDim, dv: a.vHeadDim };
    // a Gated DeltaNet, lightning or Mamba-2 layer keeps a state of fixed size instead (models/deltanet.ts, lightning.ts, mamba2.ts), made on first use;
    // a shortcut-MoE layer (LongCat-Flash) a second cache for its second attention sublayer
    return new SeqCache(this.desc.layers.map((l) => (!cachesKv(l) ? { nKv: 0, dk: 0, dv: 0 } : l.shortcutMoe ? { ...per, second: true } : per)), capacity, this.latentMla);
  }

  /** B fresh sequence caches */
  newCache(B: number, capacity = 64): KvCache {
    return new KvCache(Array.from({ length: B }, () => this.newSeqCache(capacity)));
  }

  /**
   * ids [B, T] → logits [B, T, V] (or [B, V] with lastOnly). The one decoder loop: `pass` says what the
   * call is for (see Pass): sequence b's tokens go at its cache's length and are appended to it; a tape
   * records every block's backward inputs (training: fresh sequences only); the tracer sees every MoE
   * layer's routing and the residual stream; a sub-model skips layers, masks experts and changes top-k.
   */
  forward(ids: Int32Array, B: number, T: number, pass: Pass = {}): Float32Array {
    const k: Kernels = getKernels();
    const d = this.desc, w = this.weights, H = d.hidden, V = d.vocab, N = B * T;
    if (ids.length !== N) throw new MoekitError(`input_ids has ${ids.length} ids, expected B·T = ${N}`);
    const tape = pass.tape, save = tape !== undefined, trace = pass.trace;
    const latent = this.latentMla && !save;
    const cache = pass.cache ?? (latent ? this.newCache(B, T) : this.expandedCache(B, T));
    if (cache.B !== B) throw new MoekitError(`KV cache holds ${cache.B} sequences, got ${B}`);
    if (cache.seqs.some((q) => q.latent !== latent)) throw new MoekitError(`the KV cache has MLA's ${latent ? 'expanded' : 'compressed'} layout; this pass needs the ${latent ? 'compressed' : 'expanded'} one`);
    const pos0 = cache.seqs.map((q) => q.length);
    const sub = resolveSub(d, pass.sub);
    if (pass.docStart && (latent || pos0.some((p) => p !== 0))) throw new MoekitError('document starts (packed training rows) need an expanded-cache forward from position 0');
    if (tape) { tape.ids = ids; tape.B = B; tape.T = T; tape.layers = []; tape.docStart = pass.docStart; }
    // embed: x [N, H]
    const x = new Float32Array(N * H);
    for (let n = 0; n < N; n++) {
      const id = ids[n];
      if (!(id >= 0 && id < V)) throw new MoekitError(`token id ${id} is outside the vocabulary [0, ${V}) (vocab_size)`, this.dir ? path.join(this.dir, 'config.json') : undefined);
      const dst = x.subarray(n * H, (n + 1) * H);
      weightRows(k, w.embed, H, id, id + 1, dst);
      if (d.embeddingMultiplier !== 1) for (let j = 0; j < H; j++) dst[j] *= d.embeddingMultiplier;
    }
    trace?.hidden?.(0, x, N);
    for (let l = 0; l < d.nLayers; l++) {
      if (!sub.run[l]) {
        tape?.layers.push(null);
        if (l < d.nLayers - 1) trace?.hidden?.(l + 1, x, N);
        continue;
      }
      const moeLayer = this.moeLayerIndex[l];
      const lt = this.decoderLayer(w.layers[l], d.layers[l], x, B, T, pos0, cache.seqs.map((q) => q.layers[l]), save, latent,
        { allowed: sub.allowed[moeLayer] ?? null, topK: sub.topK[moeLayer] ?? d.moe.topK, moeLayer, layer: l }, trace, pass.docStart);
      tape?.layers.push(lt);
      if (l < d.nLayers - 1) trace?.hidden?.(l + 1, x, N);
    }
    for (const q of cache.seqs) q.length += T;
    // final norm, LM head
    const hf = save ? new Float32Array(N * H) : x;
    const nf = this.norm(hf, x, w.norm, w.normBias, N, save);
    if (tape) { tape.nf = nf!; tape.hf = hf; }
    trace?.hidden?.(d.nLayers, hf, N);
    let rows = hf, R = N;
    if (pass.lastOnly) {
      R = B;
      rows = new Float32Array(B * H);
      for (let b = 0; b < B; b++) rows.set(hf.subarray(((b + 1) * T - 1) * H, (b + 1) * T * H), b * H);
    }
    const logits = linearFwd(k, rows, R, w.lmHead); // [R, V]
    if (d.logitsScale !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= d.logitsScale;
    return logits;
  }

  /**
   * One decoder layer in place on the residual stream x [N, H] (B sequences of T tokens at positions pos0[b] + t):
   * x += m_r · attn(norm(x)), then x += m_r · mlp(norm(x)) (with `normPlacement` 'post': x += m_r · norm(attn(x)),
   * then x += m_r · norm(mlp(x))), the MLP dense or MoE (routed among `route.allowed` with
   * `route.topK`). Returns what its backward needs (train/backward.ts layerBackward) when `save`. The main loop runs
   * it for layers 0 .. L − 1; multi-token prediction modules (models/mtp.ts) run their own layer through it.
   * MiniMax (`residualNormed`, LayerDesc.residualScale [α, β]): x = α · norm(x) + β · attn(norm(x)), then the same
   * with the MLP (training refuses these: src/train/model.ts untrainable).
   */
  decoderLayer(lw: LayerWeights, ld: LayerDesc, x: Float32Array, B: number, T: number, pos0: number[], kv: LayerKv[],
               save: boolean, latent: boolean, route: { allowed: Uint8Array | null; topK: number; moeLayer: number; layer: number },
               trace?: Tracer, docStart?: Int32Array): LayerTape {
    const k: Kernels = getKernels();
    const d = this.desc, H = d.hidden, N = B * T, rm = d.residualMultiplier;
    const post = d.normPlacement === 'post';
    const eps = d.layerNormEps ?? d.rmsEps;
    // attention block: x + m_r · attn(norm(x)), or (post) x + m_r · norm(attn(x)); h1 [N, H] is the attention's input
    const h1 = post ? x.slice() : new Float32Array(N * H);
    let n1 = post ? undefined : this.norm(h1, save ? x.slice() : x, lw.attnNorm, lw.attnNormBias, N, save, eps);
    let a: Float32Array, attn: LayerTape['attn'] | undefined, mamba2: LayerTape['mamba2'];
    if (ld.mixer === 'deltanet') {
      if (save) throw new MoekitError('the Gated DeltaNet layers (Qwen3-Next) have no backward in the trainer');
      a = deltanetForward(k, d, lw.deltanet!, h1, B, T, kv);
    } else if (ld.mixer === 'lightning') {
      if (save) throw new MoekitError('the lightning attention layers (MiniMax) have no backward in the trainer');
      a = lightningForward(k, d, lw.lightning!, h1, B, T, kv);
    } else if (ld.mixer === 'mamba2') {
      if (docStart) throw new MoekitError('intra-document masking (data.doc_mask) needs attention layers: the Mamba-2 layers carry their state across the packed documents of a row; set data.doc_mask: false');
      ({ y: a, s: mamba2 } = mamba2Forward(k, d, lw.mamba2!, h1, B, T, kv, save));
    } else {
      const call: AttnCall = {
        k, d, w: lw.attn!, rope: this.rope, x: h1, B, T, pos0, kv, window: ld.slidingWindow, save, layer: ld, docStart,
        onRoute: trace?.moa && ((ev) => trace.moa!({ ...ev, moeLayer: route.moeLayer, layer: route.layer })),
      };
      ({ y: a, s: attn } = latent ? { y: mlaLatentForward(call), s: undefined } : attentionForward(call));
    }
    if (post) {
      const an = new Float32Array(N * H); // [N, H] norm(attn(x))
      n1 = this.norm(an, a, lw.attnNorm, lw.attnNormBias, N, save, eps);
      a = an;
    }
    const sc = ld.residualScale;
    if (d.residualNormed || sc) residual(x, d.residualNormed ? h1 : x, a, sc?.mixer ?? [1, 1], rm);
    else for (let i = 0; i < N * H; i++) x[i] += a[i] * rm;
    // FFN block: x + m_r · mlp(norm(x)), or (post) x + m_r · norm(mlp(x)), dense or MoE; h2 [N, H] is the MLP's input
    const h2 = post ? x.slice() : new Float32Array(N * H);
    const n2 = post ? undefined : this.norm(h2, save ? x.slice() : x, lw.ffnNorm, lw.ffnNormBias, N, save, eps);
    let m: Float32Array;
    const lt: Partial<LayerTape> = { n1, h1, attn, n2, ...(mamba2 ? { mamba2 } : {}) };
    if (lw.moe) {
      const { moeLayer, layer } = route;
      const r = moeForward({
        k, m: d.moe, w: lw.moe, x: h2, N, H, save, allowed: route.allowed, topK: route.topK,
        expertOutputs: trace?.expertOutputs, onRoute: trace?.moe && ((ev) => trace.moe!({ ...ev, moeLayer, layer })),
      });
      m = r.y; lt.moe = r.s;
    } else {
      const r = ffnForward(k, lw.dense!, h2, N, SWIGLU, save);
      m = r.y; lt.dense = r.s;
    }
    if (ld.shortcutMoe) {
      // LongCat-Flash: the MoE output m waits; the first dense MLP on the same input, then the second sublayer
      lt.second = this.shortcutRest(lw, ld, x, h2, m, B, T, pos0, kv, latent, save, docStart);
      return lt as LayerTape;
    }
    if (post) {
      const mn = new Float32Array(N * H); // [N, H] norm(mlp(x))
      lt.n2 = this.norm(mn, m, lw.ffnNorm, lw.ffnNormBias, N, save, eps);
      m = mn;
    }
    if (d.residualNormed || sc) residual(x, d.residualNormed ? h2 : x, m, sc?.mlp ?? [1, 1], rm);
    else for (let i = 0; i < N * H; i++) x[i] += m[i] * rm;
    return lt as LayerTape;
  }

  /**
   * The rest of a shortcut-MoE layer (LayerDesc.shortcutMoe, LongCat-Flash) after its first attention and its MoE,
   * in place on x [N, H]: x += mlp₀(h) (h [N, H]: the first sublayer's normalised MLP input, the MoE's too); the
   * second sublayer x += attn₁(n₂(x)), x += mlp₁(n₃(x)) (its own cache: LayerKv.second); then x += y, the MoE output
   * [N, H] (transformers: residual + mlp₁ + shortcut, summed in that order). What the backward needs when `save`
   * (train/backward.ts shortcutBackward).
   */
  private shortcutRest(lw: LayerWeights, ld: LayerDesc, x: Float32Array, h: Float32Array, y: Float32Array, B: number, T: number,
                       pos0: number[], kv: LayerKv[], latent: boolean, save: boolean, docStart?: Int32Array): ShortcutTape | undefined {
    const k: Kernels = getKernels();
    const d = this.desc, H = d.hidden, N = B * T, s2 = lw.second;
    if (!lw.dense || !lw.moe || !s2) throw new MoekitError('a shortcut-MoE layer needs its MoE, its two dense MLPs and its second sublayer');
    const r0 = ffnForward(k, lw.dense, h, N, SWIGLU, save); // [N, H]
    for (let i = 0; i < N * H; i++) x[i] += r0.y[i];
    const h3 = new Float32Array(N * H); // [N, H]
    const n3 = this.norm(h3, save ? x.slice() : x, s2.attnNorm, undefined, N, save);
    const kv2 = kv.map((q) => {
      if (!q.second) throw new MoekitError('the KV cache has no second-sublayer cache for a shortcut-MoE layer (made by another model?)');
      return q.second;
    });
    const call: AttnCall = { k, d, w: s2.attn, rope: this.rope, x: h3, B, T, pos0, kv: kv2, window: ld.slidingWindow, save, layer: ld, docStart };
    const { y: a, s: attn } = latent ? { y: mlaLatentForward(call), s: undefined } : attentionForward(call); // [N, H]
    for (let i = 0; i < N * H; i++) x[i] += a[i];
    const h4 = new Float32Array(N * H); // [N, H]
    const n4 = this.norm(h4, save ? x.slice() : x, s2.ffnNorm, undefined, N, save);
    const r1 = ffnForward(k, s2.dense, h4, N, SWIGLU, save); // [N, H]
    for (let i = 0; i < N * H; i++) x[i] += r1.y[i];
    for (let i = 0; i < N * H; i++) x[i] += y[i];
    return save ? { dense0: r0.s!, n3: n3!, h3, attn: attn!, n4: n4!, dense1: r1.s! } : undefined;
  }


  /**
   * out[N, H] = the description's norm of x (RMSNorm, or LayerNorm with its bias), with eps (default rmsEps); what the
   * RMSNorm backward needs when `save`
   */
  norm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | undefined, N: number, save: boolean,
       eps = this.desc.rmsEps): NormSaved | undefined {
    const d = this.desc;
    if (d.norm === 'rms') return rmsnormForward(getKernels(), out, x, w, N, d.hidden, eps, save);
    if (save) throw new MoekitError('LayerNorm (PhiMoE, DBRX) has no backward in the trainer');
    layernormForward(out, x, w, b ?? null, N, d.hidden, eps);
    return undefined;
  }

  /** fresh caches in the expanded layout (training and the MLA reference path) */
  expandedCache(B: number, capacity: number): KvCache {
    const saved = this.mlaCache;
    this.mlaCache = 'expanded';
    try { return this.newCache(B, capacity); } finally { this.mlaCache = saved; }
  }
}

/** x = α · base + β · m_r · y, elementwise (base: x itself or the block's normalised input; MiniMax's residual) */
function residual(x: Float32Array, base: Float32Array, y: Float32Array, [alpha, beta]: [number, number], rm: number): void {
  for (let i = 0; i < x.length; i++) x[i] = alpha * base[i] + beta * rm * y[i];
}
