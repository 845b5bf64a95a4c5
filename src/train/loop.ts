/**
 * The training loop: initialise (at random from a config, or from a checkpoint), stream packed batches, and per step
 * run the full model and the sampled elastic sub-models through the one decoder forward with a tape, add the load
 * balancing losses on the routers, accumulate gradients over micro-batches, clip, step AdamW on the schedule, move
 * auxiliary-loss-free biases, and checkpoint atomically. Every step is a function of the config, the step number and
 * the saved state, so `resume` continues a killed run bit for bit. Progress is one typed event stream (TrainEvent).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer.js';
import { withRandomMtp, writeRandomCheckpoint } from '../models/synth.js';
import { loadStats, updateSelectionBias } from '../moe/balance.js';
import { Grads } from '../tensor/grads.js';
import { getKernels } from '../tensor/index.js';
import { nativeAddon } from '../tensor/native.js';
import { MoekitError } from '../util/errors.js';
import { withTemp } from '../util/temp.js';
import { rng } from '../util/rng.js';
import { AdamW } from './adamw.js';
import type { TrainConfig } from './config.js';
import { writeTokenizer } from '../tasks/tokenizer.js';
import { builtinSource } from './corpus.js';
import { jsonlSource, Packer, textFileSource, type PackerState } from './data.js';
import { checkElastic, sampleSub, type SampledSub } from './elastic.js';
import { microStep, type MicroResult, type MicroSpec } from './micro.js';
import { WorkerPool } from './workers.js';
import { TrainableModel } from './model.js';
import { hasMtp, mtpDepth, type MtpKind } from '../models/mtp.js';
import { Checkpoint } from '../io/checkpoint.js';
import { readConfig } from '../io/config.js';
import { describeModel } from '../models/registry.js';
import { lrAt } from './schedule.js';

export type TrainEvent =
  | { type: 'start'; step: number; steps: number; parameters: number; resumed: boolean; out: string }
  | {
      type: 'step'; step: number; steps: number; loss: number; sub_loss: number | null; aux_loss: number;
      /** the full model's mean multi-token prediction CE over depths (the objective adds mtp.weight times it); null: off */
      mtp_loss: number | null; lr: number;
      grad_norm: number; tokens: number; tokens_per_s: number; elapsed_s: number; eta_s: number;
      /** per MoE layer of the full model: max / mean expert load and normalised entropy (1 = even) */
      balance: { layer: number; max_over_mean: number; entropy: number }[];
      subs: { depth: number; experts: number; top_k: number }[];
    }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'done'; step: number; dir: string; seconds: number };


interface State { step: number; packer: PackerState; tokens: number; elapsed_s: number }

const STATE = 'trainer_state.json';

/** the checkpoints in `out`, by step, complete ones only */
export function checkpoints(out: string): { step: number; dir: string }[] {
  if (!fs.existsSync(out)) return [];
  return fs.readdirSync(out).flatMap((f) => {
    const m = /^checkpoint-(\d+)$/.exec(f);
    return m && fs.existsSync(path.join(out, f, STATE)) ? [{ step: Number(m[1]), dir: path.join(out, f) }] : [];
  }).sort((a, b) => a.step - b.step);
}

/** whether checkpoint `dir` holds every MTP module (head) of `kind` its config declares */
function checkpointHasMtp(dir: string, kind: MtpKind): boolean {
  const ck = Checkpoint.open(dir);
  try { return hasMtp(ck, describeModel(readConfig(dir)).desc, kind); } finally { ck.close(); }
}

/** the MTP kind a config trains (undefined: none) */
const mtpKind = (cfg: TrainConfig): MtpKind | undefined => (cfg.mtp.kind === 'none' ? undefined : cfg.mtp.kind);

/**
 * the model config a random initialisation writes: with multi-token prediction, the count of modules (heads) set to
 * mtp.depth (num_nextn_predict_layers for deepseek, next_group_heads for group; default: the config's own, else 1)
 */
function withMtpConfig(cfg: TrainConfig): Record<string, unknown> {
  const c = cfg.model.config!, kind = mtpKind(cfg);
  if (!kind) return c;
  const key = kind === 'deepseek' ? 'num_nextn_predict_layers' : 'next_group_heads';
  const own = typeof c[key] === 'number' && (c[key] as number) > 0 ? (c[key] as number) : 1;
  return { ...c, [key]: cfg.mtp.depth ?? own };
}

/** weight decay on matrices only (not on norms, biases, sinks), as common practice (GPT-2, Llama) */
const decays = (name: string) => !/(norm|layernorm)\.weight$|bias$|sinks$|_bias$/.test(name);

export class Trainer {
  readonly tm: TrainableModel;
  readonly opt: AdamW;
  readonly tok: TextTokenizer;
  private readonly packer: Packer;
  private state: State;
  /** the checkpoint the model's tensor names, shapes and untrained tensors come from */
  private readonly source: string;
  /** data-parallel workers (null: this thread alone) */
  workers: WorkerPool | null = null;

  constructor(readonly cfg: TrainConfig, opts: { resume?: boolean } = {}) {
    const out = cfg.out;
    fs.mkdirSync(out, { recursive: true });
    // the source checkpoint: the one to start from, or a random initialisation written once into out/init
    const corpus = cfg.data.source === 'builtin' ? builtinSource(cfg.train.seed, cfg.data.tasks, cfg.data.mix) : null;
    const mtp = mtpKind(cfg);
    if (cfg.model.from && mtp && !checkpointHasMtp(cfg.model.from, mtp)) {
      // training MTP on a checkpoint without its modules: out/init is the checkpoint plus fresh ones, written once
      this.source = path.join(out, 'init');
      if (!fs.existsSync(path.join(this.source, 'config.json'))) {
        const tmp = `${this.source}.tmp-${process.pid}`;
        fs.rmSync(tmp, { recursive: true, force: true });
        const declared = mtpDepth(describeModel(readConfig(cfg.model.from)).desc, mtp);
        withTemp(tmp, () => {
          withRandomMtp(cfg.model.from!, tmp, mtp, cfg.mtp.depth ?? (declared || 1), cfg.model.init_seed, { std: cfg.model.init_std });
          fs.rmSync(this.source, { recursive: true, force: true });
          fs.renameSync(tmp, this.source);
        });
      }
    } else if (cfg.model.from) this.source = cfg.model.from;
    else {
      this.source = path.join(out, 'init');
      if (!fs.existsSync(path.join(this.source, 'model.safetensors'))) {
        const tmp = `${this.source}.tmp-${process.pid}`;
        fs.rmSync(tmp, { recursive: true, force: true });
        withTemp(tmp, () => {
          writeRandomCheckpoint(tmp, withMtpConfig(cfg), cfg.model.init_seed, 'F32', { std: cfg.model.init_std }, mtpKind(cfg));
          if (cfg.data.tokenizer) {
            for (const f of fs.readdirSync(cfg.data.tokenizer)) {
              if (/^(tokenizer.*|special_tokens_map)\.json$/.test(f)) fs.copyFileSync(path.join(cfg.data.tokenizer, f), path.join(tmp, f));
            }
          } else if (corpus) {
            writeTokenizer(tmp);
          }
          fs.rmSync(this.source, { recursive: true, force: true });
          fs.renameSync(tmp, this.source);
        });
      }
    }
    const resumeFrom = opts.resume ? checkpoints(out).at(-1) : undefined;
    if (opts.resume && !resumeFrom) throw new MoekitError('--resume: no complete checkpoint to resume from', out);
    if (mtp && cfg.mtp.depth !== null) {
      const n = mtpDepth(describeModel(readConfig(this.source)).desc, mtp);
      if (n !== cfg.mtp.depth) throw new MoekitError(`mtp.depth ${cfg.mtp.depth}: the checkpoint's config declares ${n} (${mtp === 'deepseek' ? 'num_nextn_predict_layers' : 'next_group_heads'})`, this.source);
    }
    this.tm = TrainableModel.load(resumeFrom?.dir ?? this.source, { mtp });
    const d = this.tm.model.desc;
    if (cfg.elastic) checkElastic(d, cfg.elastic);
    if (cfg.balance.aux_free > 0 && this.tm.buffers.size === 0) throw new MoekitError(`balance.aux_free: the ${d.arch} router has no selection bias to update (deepseek_v3 and ernie4_5_moe have one)`);
    const tokDir = cfg.data.tokenizer ?? this.source;
    const tok = loadTokenizer(tokDir);
    if (!tok) throw new MoekitError('no tokenizer.json (give data.tokenizer, or start from a checkpoint with one)', tokDir);
    this.tok = tok;
    const eos = d.eosTokenIds[0];
    if (eos === undefined) throw new MoekitError('the model config has no eos_token_id (the data needs an end-of-sequence id)');
    const src = corpus ?? (cfg.data.source === 'text' ? textFileSource(cfg.data.files, cfg.train.seed) : jsonlSource(cfg.data.files, cfg.train.seed));
    this.packer = new Packer(src, tok, cfg.data.seq_len, { bos: d.bosTokenId, eos, pad: d.padTokenId ?? eos }, cfg.data.doc_mask);
    const { betas, eps, weight_decay } = cfg.train;
    this.opt = new AdamW(this.tm.params, { betas, eps, weightDecay: weight_decay }, decays);
    this.state = { step: 0, packer: { cursor: 0, carry: null }, tokens: 0, elapsed_s: 0 };
    if (resumeFrom) this.restore(resumeFrom.dir);
  }

  get step(): number {
    return this.state.step;
  }

  private restore(dir: string): void {
    const st = JSON.parse(fs.readFileSync(path.join(dir, STATE), 'utf8')) as State & { adam_t: number };
    const f = SafetensorsFile.open(path.join(dir, 'optimizer.safetensors'));
    try {
      this.opt.restore(st.adam_t, (kind, name) => (f.has(`${kind}.${name}`) ? f.readF32(`${kind}.${name}`) : undefined));
    } finally {
      f.close();
    }
    this.state = { step: st.step, packer: st.packer, tokens: st.tokens, elapsed_s: st.elapsed_s };
    this.packer.state = structuredClone(st.packer);
  }

  /** the model (and whatever `extra` adds) written into a temporary directory, then renamed to `dir` */
  private saveModelDir(dir: string, extra?: (tmp: string) => void): void {
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    withTemp(tmp, () => {
      fs.mkdirSync(tmp, { recursive: true });
      this.tm.save(tmp, { source: this.source });
      extra?.(tmp);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(tmp, dir);
    });
  }

  /** write checkpoint-<step> atomically (model, optimizer state, trainer state), keep the last `keep` */
  checkpoint(): string {
    const out = this.cfg.out, step = this.state.step;
    const dir = path.join(out, `checkpoint-${step}`);
    this.saveModelDir(dir, (tmp) => {
      const { t, m, v } = this.opt.state();
      const entries: SafetensorsEntry[] = [];
      for (const [n, a] of m) entries.push({ name: `m.${n}`, dtype: 'F32', shape: [a.length], data: a });
      for (const [n, a] of v) entries.push({ name: `v.${n}`, dtype: 'F32', shape: [a.length], data: a });
      writeSafetensors(path.join(tmp, 'optimizer.safetensors'), entries);
      fs.writeFileSync(path.join(tmp, STATE), JSON.stringify({ ...this.state, adam_t: t }, null, 1));
    });
    for (const old of checkpoints(out).slice(0, -this.cfg.checkpoint.keep)) fs.rmSync(old.dir, { recursive: true, force: true });
    return dir;
  }

  /** one optimizer step over grad_accum micro-batches (shared with the data-parallel workers); the metrics of the step */
  async trainStep(): Promise<Extract<TrainEvent, { type: 'step' }>> {
    const c = this.cfg, d = this.tm.model.desc;
    const t0 = performance.now();
    const step = this.state.step;
    const lr = lrAt({ kind: c.train.schedule, lr: c.train.lr, minLr: c.train.min_lr, warmup: c.train.warmup, steps: c.train.steps, decayFraction: c.train.decay_fraction }, step);
    const r = rng((c.train.seed * 2654435761 + step * 40503 + 17) >>> 0);
    const g = new Grads(this.tm.params.values());
    const A = c.train.grad_accum;
    const batches = Array.from({ length: A }, () => this.packer.batch(c.train.batch_size));
    // global-batch balance: every micro-batch's counts first (one forward without a tape each)
    let globalCounts: Map<number, Float64Array> | null = null;
    const tokens = batches.reduce((s, b) => s + b.B * b.T, 0);
    if (c.balance.global > 0) {
      globalCounts = new Map();
      for (const b of batches) {
        this.tm.model.forward(b.ids, b.B, b.T, { docStart: b.docStart, trace: { moe: (ev) => {
          const acc = globalCounts!.get(ev.layer) ?? new Float64Array(ev.E);
          for (let e = 0; e < ev.E; e++) acc[e] += ev.counts[e];
          globalCounts!.set(ev.layer, acc);
        } } });
      }
    }
    const subs: SampledSub[] = [];
    const samples = c.elastic?.samples ?? 0;
    for (let s = 0; s < samples; s++) subs.push(sampleSub(d, c.elastic!, r));
    const spec: MicroSpec = {
      scale: 1 / A, balance: c.balance, subs: subs.map((s) => s.sub), distill: c.elastic?.distill ?? 0, globalCounts, globalTokens: tokens,
      mtp: c.mtp.kind === 'none' ? null : { weight: c.mtp.weight },
    };
    // micro-batch i goes to worker i mod W (worker 0: this thread); gradients are summed in a fixed order
    const W = this.workers ? this.workers.size + 1 : 1;
    const mine = batches.filter((_, i) => i % W === 0);
    const remote = this.workers ? this.workers.run(batches, spec, W, this.tm) : null;
    const results: MicroResult[] = mine.map((b) => microStep(this.tm.model, b, spec, g));
    if (remote) results.push(...(await remote.results(g)));
    let loss = 0, subLoss = 0, aux = 0, mtpLoss = 0;
    const counts = new Map<number, Float64Array>();
    for (const res of results) {
      loss += res.loss; subLoss += res.subLoss; aux += res.aux; mtpLoss += res.mtpLoss;
      for (const [l, cnt] of res.counts) {
        const acc = counts.get(l) ?? new Float64Array(cnt.length);
        for (let e = 0; e < cnt.length; e++) acc[e] += cnt[e];
        counts.set(l, acc);
      }
    }
    const nSub = subs.length;
    // clip the global gradient norm, step
    const grads = new Map<string, Float32Array>();
    let sq = 0;
    const k = getKernels();
    for (const [n, p] of this.tm.params) {
      const gr = g.get(p) ?? new Float32Array(p.length);
      grads.set(n, gr);
      sq = k.sumSquares(gr, gr.length, sq); // sq += Σ gr², in order
    }
    const norm = Math.sqrt(sq);
    if (c.train.clip > 0 && norm > c.train.clip) {
      const f = c.train.clip / norm;
      for (const gr of grads.values()) k.scale(gr, gr.length, f);
    }
    if (!Number.isFinite(norm)) throw new MoekitError(`step ${step}: the gradient is not finite (loss ${loss}); lower train.lr`);
    this.opt.step(grads, lr);
    // auxiliary-loss-free balancing: move each MoE layer's selection bias toward even load
    if (c.balance.aux_free > 0) {
      for (const [l, cnt] of counts) {
        const bias = this.tm.model.weights.layers[l].moe!.selectionBias;
        if (bias) updateSelectionBias(bias, cnt, c.balance.aux_free);
      }
    }
    const dt = (performance.now() - t0) / 1000;
    this.state.step++;
    this.state.tokens += tokens;
    this.state.elapsed_s += dt;
    this.state.packer = structuredClone(this.packer.state);
    const rate = this.state.tokens / Math.max(1e-9, this.state.elapsed_s);
    return {
      type: 'step', step: this.state.step, steps: c.train.steps, loss, sub_loss: nSub ? subLoss : null, aux_loss: aux,
      mtp_loss: spec.mtp ? mtpLoss : null, lr,
      grad_norm: norm, tokens: this.state.tokens, tokens_per_s: tokens / dt, elapsed_s: this.state.elapsed_s,
      eta_s: ((c.train.steps - this.state.step) * tokens) / rate,
      balance: [...counts].map(([layer, cnt]) => { const s = loadStats(cnt); return { layer, max_over_mean: s.maxOverMean, entropy: s.entropy }; }),
      subs: subs.map((s) => ({ depth: s.depth, experts: s.experts, top_k: s.topK })),
    };
  }

  /** train to the configured step count, checkpointing on the way; the final model is written to out/model */
  async run(onEvent: (ev: TrainEvent) => void = () => {}): Promise<string> {
    const c = this.cfg;
    const t0 = performance.now();
    if (c.train.workers > 1 && !this.workers) {
      nativeAddon?.setThreads(1); // one BLAS thread per training thread
      this.workers = await WorkerPool.open(c.train.workers - 1, this.source, this.tm);
    }
    try {
      await this.loop(onEvent);
    } finally {
      await this.workers?.close();
      this.workers = null;
    }
    const dir = path.join(c.out, 'model');
    this.saveModelDir(dir);
    onEvent({ type: 'done', step: this.state.step, dir, seconds: (performance.now() - t0) / 1000 });
    return dir;
  }

  private async loop(onEvent: (ev: TrainEvent) => void): Promise<void> {
    const c = this.cfg;
    onEvent({ type: 'start', step: this.state.step, steps: c.train.steps, parameters: [...this.tm.params.values()].reduce((s, p) => s + p.length, 0), resumed: this.state.step > 0, out: c.out });
    while (this.state.step < c.train.steps) {
      const ev = await this.trainStep();
      if (this.state.step % c.log_every === 0 || this.state.step === c.train.steps) onEvent(ev);
      if (this.state.step % c.checkpoint.every === 0 && this.state.step < c.train.steps) onEvent({ type: 'checkpoint', step: this.state.step, dir: this.checkpoint() });
    }
  }
}
