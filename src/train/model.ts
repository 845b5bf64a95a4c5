/**
 * TrainableModel: a checkpoint's weights as f32, the decoder forward with saved activations, and
 * the backward over a batch of token ids [B, T], returning the mean next-token cross-entropy and
 * the gradient of every trainable parameter, keyed by its name in the checkpoint.
 * The parameters are the very arrays of `model.weights` (an engine MoeModel), so an optimizer
 * step on `params` changes what `model.forward` computes.
 */
import fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint } from '../io/checkpoint.js';
import { f32ToBf16Array } from '../io/dtypes.js';
import { writeShardedSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { readConfig } from '../io/config.js';
import { MoeModel } from '../models/model.js';
import { linearFwd } from '../models/ops.js';
import { archFor } from '../models/registry.js';
import { checkpointSource, fp8BlockSize } from '../models/source.js';
import type { LayerWeights, TensorSource } from '../models/weights.js';
import { getKernels, type Kernels } from '../tensor/index.js';
import { MoekitError } from '../util/errors.js';
import { attentionBackward, attentionForward, type AttnCtx, type AttnSaved } from './attention.js';
import { Grads, f32, linearBackward } from './linear.js';
import { crossEntropyBackward, crossEntropyForward, nextTokenTargets, type CeSaved } from './loss.js';
import { ffnBackward, ffnForward, loadBalancingLoss, moeBackward, moeForward, type FfnSaved, type MoeSaved } from './moe.js';
import { rmsnormBackward, rmsnormForward, type NormSaved } from './norm.js';
import { TrainRope } from './rope.js';
import { toCheckpoint } from './names.js';

export interface LayerTape {
  n1: NormSaved; // attention norm input x [N, H]
  h1: Float32Array; // [N, H] normalised
  attn: AttnSaved;
  n2: NormSaved; // FFN norm input [N, H]
  moe?: MoeSaved;
  dense?: FfnSaved;
}

export interface Tape {
  ids: Int32Array; // [B, T]
  B: number;
  T: number;
  layers: LayerTape[];
  nf: NormSaved; // final norm input [N, H]
  hf: Float32Array; // [N, H] final normalised hidden states, input of lm_head
  ce: CeSaved;
}

/**
 * Experts the engine holds as copies rather than as (views of) checkpoint tensors (gpt-oss de-interleaves its fused
 * gate_up_proj [E, H, 2I]): the copies become the parameters, named per expert
 * (`…mlp.experts.<e>.{gate,up,down}_proj.{weight,bias}`, fused back by names.ts), and the fused checkpoint tensors,
 * which nothing reads after loading, leave the parameter set.
 */
function nameCopiedExperts(named: Map<string, Float32Array>, layers: LayerWeights[]): void {
  const buffers = new Set([...named.values()].map((q) => q.buffer));
  const owned = (w: Float32Array) => buffers.has(w.buffer);
  layers.forEach((lw, l) => {
    const ex = lw.moe?.experts;
    if (!ex || ex.every((f) => !f || owned(f.gate.w as Float32Array))) return;
    const x = `model.layers.${l}.mlp.experts`;
    for (const suffix of ['gate_up_proj', 'gate_up_proj_bias', 'down_proj', 'down_proj_bias']) named.delete(`${x}.${suffix}`);
    ex.forEach((f, e) => {
      if (!f) return;
      for (const [proj, L] of [['gate_proj', f.gate], ['up_proj', f.up], ['down_proj', f.down]] as const) {
        named.set(`${x}.${e}.${proj}.weight`, L.w as Float32Array);
        if (L.b) named.set(`${x}.${e}.${proj}.bias`, L.b);
      }
    });
  });
}

export class TrainableModel {
  /** trainable parameters by checkpoint name (selection-only biases are buffers, left out) */
  readonly params: Map<string, Float32Array>;
  private readonly k: Kernels = getKernels();
  private ropes = new Map<number, TrainRope>();

  constructor(readonly model: MoeModel, params: Map<string, Float32Array>) {
    this.params = params;
  }

  /** load a model directory with every weight as f32, recording each tensor's name */
  static load(dir: string): TrainableModel {
    const cfg = readConfig(dir);
    const arch = archFor(cfg);
    const desc = arch.describe(cfg);
    const ck = Checkpoint.open(path.dirname(cfg.file));
    const named = new Map<string, Float32Array>();
    try {
      const inner = checkpointSource(ck, fp8BlockSize(cfg), false);
      const src: TensorSource = {
        has: (n) => inner.has(n),
        getU8: () => { throw new MoekitError('the trainer does not load quantised weights'); },
        getMatrix: (n, s) => src.get(n, s),
        get(n, s) {
          const t = inner.get(n, s).slice(); // own copy: the optimizer updates it in place
          named.set(n, t);
          return t;
        },
      };
      const H = desc.hidden, V = desc.vocab;
      const embed = src.get('model.embed_tokens.weight', [V, H]);
      const layers: LayerWeights[] = [];
      for (let l = 0; l < desc.nLayers; l++) layers.push(arch.loadLayer(src, desc, l));
      const norm = src.get('model.norm.weight', [H]);
      const tied = !src.has('lm_head.weight'); // as the engine: the checkpoint's lm_head when it has one
      const lmHead = { w: tied ? embed : src.get('lm_head.weight', [V, H]), b: null, out: V, in: H };
      const buffers = new Set(layers.map((l) => l.moe?.selectionBias).filter((b) => b));
      for (const [n, t] of named) if (buffers.has(t)) named.delete(n);
      nameCopiedExperts(named, layers);
      const model = new MoeModel(desc, { embed, norm, lmHead, layers }, arch, path.dirname(cfg.file));
      return new TrainableModel(model, named);
    } finally {
      ck.close();
    }
  }

  /**
   * Write the model as a checkpoint moekit and transformers load: every tensor of the checkpoint it was loaded from,
   * the trained parameters with their current values (in `dtype`, f32 by default or bf16 rounded to nearest even),
   * the buffers (selection biases) as loaded; config.json and the tokenizer / generation files copied. Files are
   * written atomically (temporary name, then rename); shards of at most `maxShardBytes`.
   */
  save(dir: string, opts: { dtype?: 'F32' | 'BF16'; maxShardBytes?: number } = {}): string[] {
    const dtype = opts.dtype ?? 'F32';
    const src = this.model.dir;
    const ck = Checkpoint.open(src);
    try {
      const trained = toCheckpoint(this.params);
      const entries: SafetensorsEntry[] = ck.names().map((name) => {
        const info = ck.info(name);
        const t = trained.get(name);
        if (!t) {
          // a buffer (or a tensor the trainer does not hold): as loaded, in its own dtype
          return { name, dtype: info.dtype, shape: info.shape, data: () => ck.readRaw(name) };
        }
        const n = info.shape.reduce((a, b) => a * b, 1);
        if (n !== t.length) throw new MoekitError(`${name}: the trainer holds ${t.length} values, the checkpoint ${n}`, src);
        return { name, dtype, shape: info.shape, data: () => (dtype === 'BF16' ? f32ToBf16Array(t) : t) };
      });
      for (const n of trained.keys()) if (!ck.has(n)) throw new MoekitError(`${n}: a trained tensor the checkpoint does not have`, src);
      const { files } = writeShardedSafetensors(dir, entries, { maxShardBytes: opts.maxShardBytes ?? 5 * 2 ** 30 });
      for (const f of fs.readdirSync(src)) {
        if (f === 'config.json' || /^(tokenizer.*|special_tokens_map|generation_config|chat_template.*)\.(json|jinja|model|txt)$/.test(f)) {
          const tmp = path.join(dir, `.${f}.tmp-${process.pid}`);
          fs.copyFileSync(path.join(src, f), tmp);
          fs.renameSync(tmp, path.join(dir, f));
          files.push(path.join(dir, f));
        }
      }
      return files;
    } finally {
      ck.close();
    }
  }

  private ropeFor(T: number): TrainRope {
    let r = this.ropes.get(T);
    if (!r) { r = new TrainRope(this.model.desc.rope, T); this.ropes.set(T, r); }
    return r;
  }

  /** forward over ids [B, T] with every activation the backward needs */
  forward(ids: Int32Array, B: number, T: number): { loss: number; tape: Tape } {
    const k = this.k, d = this.model.desc, w = this.model.weights, H = d.hidden, V = d.vocab, N = B * T;
    if (ids.length !== N) throw new MoekitError(`input_ids has ${ids.length} ids, expected B·T = ${N}`);
    // embed: x [N, H]
    let x = new Float32Array(N * H);
    const E = f32(w.embed);
    for (let n = 0; n < N; n++) {
      const id = ids[n];
      if (!(id >= 0 && id < V)) throw new MoekitError(`token id ${id} is outside the vocabulary [0, ${V})`);
      x.set(E.subarray(id * H, (id + 1) * H), n * H);
    }
    // Granite: embedding · m_e; each block's output · m_r before the residual add; logits / s
    const me = d.embeddingMultiplier, rm = d.residualMultiplier;
    if (me !== 1) for (let i = 0; i < N * H; i++) x[i] *= me;
    const layers: LayerTape[] = [];
    for (let l = 0; l < d.nLayers; l++) {
      const lw = w.layers[l];
      const c: AttnCtx = { k, d, rope: this.ropeFor(T), B, T, window: d.layers[l].slidingWindow };
      // attention block: x + attn(norm(x))
      const h1 = new Float32Array(N * H);
      const n1 = rmsnormForward(h1, x, lw.attnNorm, N, H, d.rmsEps);
      const { y: a, s: attn } = attentionForward(c, lw.attn, h1);
      const xm = new Float32Array(N * H); // [N, H]
      for (let i = 0; i < N * H; i++) xm[i] = x[i] + rm * a[i];
      // FFN block: x + mlp(norm(x))
      const h2 = new Float32Array(N * H);
      const n2 = rmsnormForward(h2, xm, lw.ffnNorm, N, H, d.rmsEps);
      const tape: LayerTape = { n1, h1, attn, n2 };
      let m: Float32Array;
      if (lw.moe) {
        const r = moeForward(k, d.moe, lw.moe, h2, N, H);
        m = r.y; tape.moe = r.s;
      } else {
        const r = ffnForward(k, lw.dense!, h2, N);
        m = r.y; tape.dense = r.s;
      }
      const xo = new Float32Array(N * H);
      for (let i = 0; i < N * H; i++) xo[i] = xm[i] + rm * m[i];
      layers.push(tape);
      x = xo;
    }
    const hf = new Float32Array(N * H);
    const nf = rmsnormForward(hf, x, w.norm, N, H, d.rmsEps);
    const logits = linearFwd(k, hf, N, w.lmHead); // [N, V]
    if (d.logitsScale !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= d.logitsScale;
    const { loss, s: ce } = crossEntropyForward(logits, nextTokenTargets(ids, B, T), N, V);
    return { loss, tape: { ids, B, T, layers, nf, hf, ce } };
  }

  /**
   * the load-balancing auxiliary loss of a tape's routing (transformers' load_balancing_loss_func,
   * unscaled), for reporting: it is not in the loss and gets no gradient. null for sigmoid routers.
   */
  auxLoss(tape: Tape): number | null {
    const routes = tape.layers.flatMap((l) => (l.moe ? [l.moe.r] : []));
    return loadBalancingLoss(this.model.desc.moe, routes, tape.B * tape.T);
  }

  /** the loss only */
  loss(ids: Int32Array, B: number, T: number): number {
    return this.forward(ids, B, T).loss;
  }

  /** backward of a tape: gradients of every trainable parameter, by checkpoint name */
  backward(tape: Tape): Map<string, Float32Array> {
    const k = this.k, d = this.model.desc, w = this.model.weights, H = d.hidden, V = d.vocab;
    const { B, T } = tape, N = B * T;
    const g = new Grads(this.params.values());
    // loss → LM head → final norm
    const dlogits = new Float32Array(N * V); // [N, V]
    crossEntropyBackward(dlogits, tape.ce);
    if (d.logitsScale !== 1) for (let i = 0; i < dlogits.length; i++) dlogits[i] /= d.logitsScale;
    const rm = d.residualMultiplier;
    // the gradient reaching a block's output: m_r · dx (dx itself when m_r = 1)
    const branch = (dx: Float32Array) => (rm === 1 ? dx : dx.map((v) => v * rm));
    const dhf = new Float32Array(N * H);
    linearBackward(k, w.lmHead, tape.hf, dlogits, N, dhf, g);
    const dx = new Float32Array(N * H); // [N, H] gradient of the residual stream
    rmsnormBackward(dx, dhf, tape.nf, w.norm, g.of(w.norm));
    for (let l = d.nLayers - 1; l >= 0; l--) {
      const lw = w.layers[l], lt = tape.layers[l];
      const c: AttnCtx = { k, d, rope: this.ropeFor(T), B, T, window: d.layers[l].slidingWindow };
      // FFN block: dx flows through the residual and through mlp(norm(x))
      const dh = new Float32Array(N * H);
      const dm = branch(dx);
      if (lw.moe) moeBackward(k, d.moe, lw.moe, lt.moe!, dm, dh, H, g);
      else ffnBackward(k, lw.dense!, lt.dense!, dm, dh, g);
      rmsnormBackward(dx, dh, lt.n2, lw.ffnNorm, g.of(lw.ffnNorm));
      // attention block
      dh.fill(0);
      attentionBackward(c, lw.attn, lt.attn, branch(dx), dh, g);
      rmsnormBackward(dx, dh, lt.n1, lw.attnNorm, g.of(lw.attnNorm));
    }
    // embedding: scatter-add the rows
    const dE = g.of(w.embed);
    for (let n = 0; n < N; n++) {
      const o = tape.ids[n] * H;
      for (let j = 0; j < H; j++) dE[o + j] += d.embeddingMultiplier * dx[n * H + j];
    }
    const out = new Map<string, Float32Array>();
    for (const [name, p] of this.params) out.set(name, g.get(p) ?? new Float32Array(p.length));
    return out;
  }

  /** loss and gradients for ids [B, T] */
  forwardBackward(ids: Int32Array, B: number, T: number): { loss: number; grads: Map<string, Float32Array> } {
    const { loss, tape } = this.forward(ids, B, T);
    return { loss, grads: this.backward(tape) };
  }
}
