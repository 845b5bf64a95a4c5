/**
 * TrainableModel: a checkpoint's weights as f32, the decoder forward with saved activations, and
 * the backward over a batch of token ids [B, T], returning the mean next-token cross-entropy and
 * the gradient of every trainable parameter, keyed by its name in the checkpoint.
 * The parameters are the very arrays of `model.weights` (an engine MoeModel), so an optimizer
 * step on `params` changes what `model.forward` computes.
 */
import * as path from 'node:path';
import { Checkpoint, copySideFiles } from '../io/checkpoint.js';
import { f32ToBf16Array } from '../io/dtypes.js';
import { writeShardedSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { readConfig } from '../io/config.js';
import { EagerExperts, eagerExperts, withExperts } from '../models/expert-store.js';
import { MoeModel } from '../models/model.js';
import { Tape, type SubModel } from '../models/pass.js';
import { hasMtp, loadMtp, mtpCopies, type MtpKind, type MtpWeights } from '../models/mtp.js';
import { describeModel } from '../models/registry.js';
import { lmHeadIsEmbedding } from '../models/validate.js';
import { checkpointSource, fp8BlockSize } from '../models/source.js';
import type { LayerWeights, Linear, TensorSource } from '../models/weights.js';
import { loadBalancingLoss } from '../moe/layer.js';
import { Grads } from '../tensor/grads.js';
import { getKernels } from '../tensor/index.js';
import { f32Weight } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';
import type { ModelDesc } from '../models/desc.js';
import { decoderBackward } from './backward.js';
import { microStep } from './micro.js';
import { crossEntropyBackward, crossEntropyForward, nextTokenTargets, type CeSaved } from './loss.js';
import { toCheckpoint } from './names.js';

export { Tape };

/**
 * Experts the engine holds as copies rather than as (views of) checkpoint tensors (gpt-oss de-interleaves its fused
 * gate_up_proj [E, H, 2I], Aria transposes its fc1 [E, H, 2I] and fc2 [E, I, H]): the copies become the parameters,
 * named per expert (`…mlp.experts.<e>.{gate,up,down}_proj.{weight,bias}`, fused back by names.ts), and the fused
 * checkpoint tensors, which nothing reads after loading, leave the parameter set.
 */
function nameCopiedExperts(named: Map<string, Float32Array>, layers: LayerWeights[]): void {
  const buffers = new Set([...named.values()].map((q) => q.buffer));
  const owned = (w: Float32Array) => buffers.has(w.buffer);
  layers.forEach((lw, l) => {
    const store = lw.moe?.experts;
    if (!(store instanceof EagerExperts)) return;
    const ex = store.list;
    if (ex.every((f) => !f || owned(f.gate.w.data as Float32Array))) return;
    const x = `model.layers.${l}.mlp.experts`;
    for (const suffix of ['gate_up_proj', 'gate_up_proj_bias', 'down_proj', 'down_proj_bias', 'fc1.weight', 'fc2.weight']) named.delete(`${x}.${suffix}`);
    ex.forEach((f, e) => {
      if (!f) return;
      for (const [proj, L] of [['gate_proj', f.gate], ['up_proj', f.up], ['down_proj', f.down]] as const) {
        named.set(`${x}.${e}.${proj}.weight`, L.w.data as Float32Array);
        if (L.b) named.set(`${x}.${e}.${proj}.bias`, L.b);
      }
    });
  });
}

/**
 * What the trainer's backward does not cover in a description (null: it covers all): PhiMoE's LayerNorm and
 * sparsemixer routing have forward passes only.
 */
export function untrainable(d: ModelDesc): string | null {
  if (d.norm !== 'rms') return 'its LayerNorms have no backward here (RMSNorm only)';
  if (d.layers.some((l) => l.mixer === 'deltanet')) return 'its Gated DeltaNet layers have no backward here';
  if (d.layers.some((l) => l.mixer === 'lightning')) return 'its lightning attention layers have no backward here';
  if (d.residualNormed || d.layers.some((l) => l.residualScale)) return 'its residual stream (MiniMax: α · norm(x) + β · block) has no backward here';
  if (d.attention.outputGate) return 'its gated attention has no backward here';
  if (d.attention.moa) return 'its mixture of attention heads (routed query and output projections) has no backward here';
  if (d.normPlusOne) return 'its zero-centred norms are loaded as 1 + w, which the trainer would save as w';
  if (d.moe.router === 'sparsemixer') return 'the sparsemixer router has no backward here';
  if (d.moe.weightInput || d.moe.router === 'topk_sigmoid') return 'its MoE blocks (sigmoid top-k weights on the experts\' inputs) have no backward here';
  return null;
}

export class TrainableModel {
  /** trainable parameters by checkpoint name (selection-only biases are buffers, left out) */
  readonly params: Map<string, Float32Array>;
  /** buffers by checkpoint name: the selection-only biases (auxiliary-loss-free balancing updates them; save writes them) */
  readonly buffers: Map<string, Float32Array>;

  /** checkpoint tensors that are copies of a parameter (MTP modules' shared head and embedding): saved with its values */
  readonly copies: Map<string, Float32Array>;

  constructor(readonly model: MoeModel, params: Map<string, Float32Array>, buffers = new Map<string, Float32Array>(),
              copies = new Map<string, Float32Array>()) {
    this.params = params;
    this.buffers = buffers;
    this.copies = copies;
  }

  /**
   * load a model directory with every weight as f32, recording each tensor's name; with `mtp`, also the multi-token
   * prediction modules (heads) of that kind (models/mtp.ts), which the checkpoint must hold; without, they are not
   * read (saved as loaded)
   */
  static load(dir: string, opts: { mtp?: MtpKind } = {}): TrainableModel {
    const cfg = readConfig(dir);
    const { arch, desc } = describeModel(cfg);
    const why = untrainable(desc);
    if (why) throw new MoekitError(`the trainer cannot train this ${desc.arch} model: ${why}`, cfg.file);
    const ck = Checkpoint.open(path.dirname(cfg.file));
    const named = new Map<string, Float32Array>();
    try {
      const inner = checkpointSource(ck, fp8BlockSize(cfg), false);
      const src: TensorSource = {
        has: (n) => inner.has(n),
        getU8: () => { throw new MoekitError('the trainer does not load quantised weights'); },
        getMatrix: (n, s, rows) => f32Weight(src.get(n, s, rows)),
        get(n, s, rows) {
          // own copy of the whole tensor, read once: the optimizer updates it in place, and rows of a fused
          // tensor (one expert's) are views of it, so the parameter stays the checkpoint's tensor
          let t = named.get(n);
          if (!t) {
            t = inner.get(n, s).slice();
            named.set(n, t);
          }
          if (!rows) return t;
          const row = s.slice(1).reduce((a, b) => a * b, 1);
          return t.subarray(rows[0] * row, rows[1] * row);
        },
      };
      const H = desc.hidden, V = desc.vocab;
      const embed = f32Weight(src.get('model.embed_tokens.weight', [V, H]));
      const layers: LayerWeights[] = [];
      for (let l = 0; l < desc.nLayers; l++) layers.push(withExperts(arch.loadLayer(src, desc, l), () => eagerExperts(arch, src, desc, l)));
      const norm = src.get('model.norm.weight', [H]);
      const tied = lmHeadIsEmbedding(src.has('lm_head.weight'), desc, ck.dir); // as the engine
      const lmHead: Linear = { w: tied ? embed : f32Weight(src.get('lm_head.weight', [V, H])), b: null, out: V, in: H };
      let mtp: MtpWeights | undefined;
      const copies = new Map<string, Float32Array>();
      if (opts.mtp) {
        const what = opts.mtp === 'deepseek' ? `${desc.nextnLayers} MTP module(s) (num_nextn_predict_layers; eh_proj, enorm, hnorm, shared_head.norm under model.layers.${desc.nLayers}…)` : `${desc.groupHeads} next-group head(s) (next_group_heads; model.next_group.*)`;
        if (!hasMtp(inner, desc, opts.mtp)) throw new MoekitError(`mtp.kind ${opts.mtp}: the checkpoint does not hold the ${what} its config declares`, ck.dir);
        mtp = loadMtp(arch, src, desc, opts.mtp);
        mtp.modules.forEach((m, i) => {
          const c = mtpCopies(desc, i + 1);
          copies.set(c.head, lmHead.w.data as Float32Array);
          copies.set(c.embed, embed.data as Float32Array);
        });
      }
      const all = [...layers, ...(mtp?.modules.map((m) => m.layer) ?? [])]; // decoder layer index = position (MTP: L + k − 1)
      const biases = new Set(all.map((l) => l.moe?.selectionBias).filter((b) => b));
      const buffers = new Map<string, Float32Array>();
      for (const [n, t] of named) if (biases.has(t)) { named.delete(n); buffers.set(n, t); }
      nameCopiedExperts(named, all);
      const model = new MoeModel(desc, { embed, norm, lmHead, layers, mtp }, arch, path.dirname(cfg.file));
      return new TrainableModel(model, named, buffers, copies);
    } finally {
      ck.close();
    }
  }

  /**
   * Write the model as a checkpoint moekit and transformers load: every tensor of the checkpoint it was loaded from,
   * the trained parameters with their current values (in `dtype`, f32 by default or bf16 rounded to nearest even),
   * the buffers (selection biases) with their current values; config.json and the tokenizer / generation files copied. Files are
   * written atomically (temporary name, then rename); shards of at most `maxShardBytes`. `source`: the checkpoint
   * whose names, shapes and untrained tensors to use (default: the one the model was loaded from).
   */
  save(dir: string, opts: { dtype?: 'F32' | 'BF16'; maxShardBytes?: number; source?: string } = {}): string[] {
    const dtype = opts.dtype ?? 'F32';
    const src = opts.source ?? this.model.dir;
    const ck = Checkpoint.open(src);
    try {
      const trained = toCheckpoint(this.params, (n) => ck.has(n));
      const entries: SafetensorsEntry[] = ck.names().map((name) => {
        const info = ck.info(name);
        const t = trained.get(name) ?? this.copies.get(name);
        const buf = this.buffers.get(name);
        if (buf) {
          // a buffer: its current values, in its own dtype where that is a float type
          const bd = info.dtype === 'BF16' ? 'BF16' : 'F32';
          return { name, dtype: bd, shape: info.shape, data: () => (bd === 'BF16' ? f32ToBf16Array(buf) : buf) };
        }
        if (!t) {
          // a tensor the trainer does not hold: as loaded, in its own dtype
          return { name, dtype: info.dtype, shape: info.shape, data: () => ck.readRaw(name) };
        }
        const n = info.shape.reduce((a, b) => a * b, 1);
        if (n !== t.length) throw new MoekitError(`${name}: the trainer holds ${t.length} values, the checkpoint ${n}`, src);
        return { name, dtype, shape: info.shape, data: () => (dtype === 'BF16' ? f32ToBf16Array(t) : t) };
      });
      for (const n of trained.keys()) if (!ck.has(n)) throw new MoekitError(`${n}: a trained tensor the checkpoint does not have`, src);
      const { files } = writeShardedSafetensors(dir, entries, { maxShardBytes: opts.maxShardBytes ?? 5 * 2 ** 30 });
      files.push(...copySideFiles(src, dir, true));
      return files;
    } finally {
      ck.close();
    }
  }

  /**
   * the training forward over ids [B, T] (fresh sequences): the one decoder forward with a tape, then the
   * mean next-token cross-entropy. `sub`: train (or evaluate) a sub-model of this model.
   */
  forward(ids: Int32Array, B: number, T: number, sub?: SubModel): { loss: number; tape: Tape; ce: CeSaved } {
    const tape = new Tape();
    const logits = this.model.forward(ids, B, T, { tape, sub });
    const { loss, s: ce } = crossEntropyForward(logits, nextTokenTargets(ids, B, T), B * T, this.model.desc.vocab);
    return { loss, tape, ce };
  }

  /**
   * the load-balancing auxiliary loss of a tape's routing (transformers' load_balancing_loss_func,
   * unscaled), for reporting: it is not in the loss and gets no gradient. null for sigmoid routers.
   */
  auxLoss(tape: Tape): number | null {
    const routes = tape.layers.flatMap((l) => (l?.moe ? [l.moe.r] : []));
    return loadBalancingLoss(this.model.desc.moe, routes, tape.B * tape.T);
  }

  /** the loss only */
  loss(ids: Int32Array, B: number, T: number, sub?: SubModel): number {
    return this.forward(ids, B, T, sub).loss;
  }

  /** backward of a forward's tape and loss: gradients of every trainable parameter, by checkpoint name */
  backward(fw: { tape: Tape; ce: CeSaved }): Map<string, Float32Array> {
    const { tape, ce } = fw;
    const g = new Grads(this.params.values());
    const dlogits = new Float32Array(tape.B * tape.T * this.model.desc.vocab); // [N, V]
    crossEntropyBackward(dlogits, ce);
    decoderBackward(getKernels(), this.model, tape, dlogits, g);
    const out = new Map<string, Float32Array>();
    for (const [name, p] of this.params) out.set(name, g.get(p) ?? new Float32Array(p.length));
    return out;
  }

  /**
   * the objective with multi-token prediction (the model loaded with its MTP weights): next-token CE + weight · mean
   * over depths of the MTP CE, through the training loop's own micro-step; the parts, and gradients by checkpoint name
   */
  forwardBackwardMtp(ids: Int32Array, B: number, T: number, weight: number): { loss: number; ce: number; mtp: number; grads: Map<string, Float32Array> } {
    const targets = nextTokenTargets(ids, B, T);
    const g = new Grads(this.params.values());
    const r = microStep(this.model, { ids, targets, B, T, count: B * (T - 1) }, {
      scale: 1, balance: { switch: 0, seq: 0, global: 0, zloss: 0 }, subs: [], distill: 0, globalCounts: null, globalTokens: B * T, mtp: { weight },
    }, g);
    const grads = new Map<string, Float32Array>();
    for (const [name, p] of this.params) grads.set(name, g.get(p) ?? new Float32Array(p.length));
    return { loss: r.loss + weight * r.mtpLoss, ce: r.loss, mtp: r.mtpLoss, grads };
  }

  /** loss and gradients for ids [B, T] */
  forwardBackward(ids: Int32Array, B: number, T: number, sub?: SubModel): { loss: number; grads: Map<string, Float32Array> } {
    const fw = this.forward(ids, B, T, sub);
    return { loss: fw.loss, grads: this.backward(fw) };
  }
}
