/**
 * One optimizer step of the training loop (src/train/loop.ts's trainStep) held to the step assembled from its parts
 * outside the trainer: the packed micro-batches (a Packer over the same corpus and tokenizer), the global-batch
 * balance counts from each batch's routing, microStep at 1 / grad_accum each, the float64 gradient norm, clipping
 * to train.clip, AdamW with weight decay on matrices only, and the step event's numbers (loss, aux, tokens, lr,
 * per-layer balance: max / mean load and normalised entropy by hand, eta from the rate so far); then which steps
 * log_every reports and which checkpoint.every writes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { Tape } from '../src/models/pass.js';
import { Grads } from '../src/tensor/grads.js';
import { AdamW } from '../src/train/adamw.js';
import { resolveConfig } from '../src/train/config.js';
import { builtinSource } from '../src/train/corpus.js';
import { Packer } from '../src/train/data.js';
import { Trainer, type TrainEvent } from '../src/train/loop.js';
import { WorkerPool } from '../src/train/workers.js';
import { microStep } from '../src/train/micro.js';
import { TrainableModel } from '../src/train/model.js';
import { lrAt } from '../src/train/schedule.js';
import { maxAbsDiff } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe/mixtral');
const TOK = path.resolve(__dirname, '../examples/demo-moe');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-trainer-step-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const B = 2, T = 16, A = 2;
const config = (out: string, over: Record<string, Record<string, unknown> | number> = {}) => resolveConfig({
  model: { from: FIX },
  data: { tasks: ['sort', 'reverse'], seq_len: T, tokenizer: TOK },
  train: { steps: 3, batch_size: B, grad_accum: A, lr: 1e-2, min_lr: 1e-3, warmup: 1, schedule: 'cosine', clip: 0.05, weight_decay: 0.1, seed: 4 },
  balance: { switch: 0.01, seq: 0.002, global: 0.02, zloss: 0.001 },
  checkpoint: { every: 100, keep: 1 },
  out,
  ...over,
}, tmp);
type Step = Extract<TrainEvent, { type: 'step' }>;

describe('one training step, assembled from its parts', () => {
  it('the batches, the global counts, the micro-steps at 1 / grad_accum, the clipped norm, AdamW with decay on matrices', async () => {
    const cfg = config(path.join(tmp, 'a'));
    const t = new Trainer(cfg);
    const ev = await t.trainStep();

    // the same step outside the trainer
    const tm = TrainableModel.load(FIX), model = tm.model, d = model.desc;
    const tok = loadTokenizer(TOK)!;
    const packer = new Packer(builtinSource(4, ['sort', 'reverse']), tok, T, { bos: d.bosTokenId, eos: d.eosTokenIds[0], pad: d.padTokenId ?? d.eosTokenIds[0] });
    const batches = [packer.batch(B), packer.batch(B)];
    const globalCounts = new Map<number, Float64Array>();
    for (const b of batches) {
      const tape = new Tape();
      model.forward(b.ids, B, T, { tape });
      tape.layers.forEach((lt, l) => {
        if (!lt?.moe) return;
        const acc = globalCounts.get(l) ?? new Float64Array(d.moe.experts);
        for (const e of lt.moe.r.experts) acc[e]++;
        globalCounts.set(l, acc);
      });
    }
    const g = new Grads(tm.params.values());
    const spec = { scale: 1 / A, balance: cfg.balance, subs: [], distill: 0, globalCounts, globalTokens: A * B * T, mtp: null };
    const res = batches.map((b) => microStep(model, b, spec, g));
    const loss = res.reduce((s, r) => s + r.loss, 0), aux = res.reduce((s, r) => s + r.aux, 0);
    let sq = 0;
    for (const p of tm.params.values()) for (const x of g.get(p) ?? []) sq += x * x;
    const norm = Math.sqrt(sq);
    expect(norm).toBeGreaterThan(cfg.train.clip); // the clip acts
    expect(ev.loss).toBeCloseTo(loss, 6);
    expect(ev.aux_loss).toBeCloseTo(aux, 6);
    expect(aux).toBeGreaterThan(0);
    expect(ev.grad_norm / norm).toBeCloseTo(1, 5);
    expect(ev).toMatchObject({ type: 'step', step: 1, steps: 3, sub_loss: null, mtp_loss: null, tokens: A * B * T, subs: [] });
    expect(ev.lr).toBe(lrAt({ kind: 'cosine', lr: 1e-2, minLr: 1e-3, warmup: 1, steps: 3, decayFraction: cfg.train.decay_fraction }, 0));
    // balance: the full model's loads over both micro-batches (= the global counts), by hand
    expect(ev.balance.map((b) => b.layer)).toEqual([...globalCounts.keys()]);
    for (const b of ev.balance) {
      const c = globalCounts.get(b.layer)!, total = c.reduce((x, y) => x + y, 0), E = c.length;
      expect(total).toBe(A * B * T * d.moe.topK);
      expect(b.max_over_mean).toBeCloseTo(Math.max(...c) / (total / E), 12);
      expect(b.entropy).toBeCloseTo(-c.reduce((h, x) => h + (x > 0 ? (x / total) * Math.log(x / total) : 0), 0) / Math.log(E), 12);
    }
    // the update: clipped to norm clip, AdamW at the step's lr, decay on matrices only (not norms)
    const clipped = new Map([...tm.params].map(([n, p]) => [n, Float32Array.from(g.get(p) ?? new Float32Array(p.length), (x) => (x * cfg.train.clip) / norm)]));
    const decays = (n: string) => !/norm\.weight$|bias$/.test(n);
    new AdamW(tm.params, { betas: cfg.train.betas, eps: cfg.train.eps, weightDecay: 0.1 }, decays).step(clipped, ev.lr);
    let worst = 0;
    for (const [n, p] of tm.params) worst = Math.max(worst, maxAbsDiff(t.tm.params.get(n)!, p));
    expect(worst).toBeLessThan(1e-6);
    // a norm weight has a gradient, but no decay: with lr · wd = 1e-3 of its value, decay on it would show
    const norm0 = 'model.layers.0.input_layernorm.weight';
    const without = TrainableModel.load(FIX).params.get(norm0)!;
    new AdamW(new Map([[norm0, without]]), { betas: cfg.train.betas, eps: cfg.train.eps, weightDecay: 0.1 }, () => true).step(new Map([[norm0, clipped.get(norm0)!]]), ev.lr);
    expect(maxAbsDiff(t.tm.params.get(norm0)!, without)).toBeGreaterThan(1e-5);
    // timings: tokens / s of this step, eta from the rate so far
    expect(ev.tokens_per_s).toBeGreaterThan(0);
    expect(ev.elapsed_s).toBeGreaterThan(0);
    expect(ev.eta_s / ev.elapsed_s).toBeCloseTo(2, 6); // 2 steps left at the rate of this one
    const ev2 = await t.trainStep();
    expect(ev2.step).toBe(2);
    expect(ev2.tokens).toBe(2 * A * B * T);
    expect(ev2.elapsed_s).toBeGreaterThan(ev.elapsed_s);
    expect(ev2.eta_s / ev2.elapsed_s).toBeCloseTo(1 / 2, 6);
    expect(ev2.lr).toBe(lrAt({ kind: 'cosine', lr: 1e-2, minLr: 1e-3, warmup: 1, steps: 3, decayFraction: cfg.train.decay_fraction }, 1));
  }, 60_000);

  it('no clip (0) steps with the raw gradient; without global balance the counts are not taken', async () => {
    const cfg = config(path.join(tmp, 'b'), { train: { steps: 2, batch_size: B, grad_accum: 1, lr: 1e-2, warmup: 1, clip: 0, weight_decay: 0, seed: 4 }, balance: { switch: 0, seq: 0, global: 0, zloss: 0 } });
    const t = new Trainer(cfg);
    const ev = await t.trainStep();
    expect(ev.aux_loss).toBe(0);
    const tm = TrainableModel.load(FIX), d = tm.model.desc;
    const packer = new Packer(builtinSource(4, ['sort', 'reverse']), loadTokenizer(TOK)!, T, { bos: d.bosTokenId, eos: d.eosTokenIds[0], pad: d.padTokenId ?? d.eosTokenIds[0] });
    const b = packer.batch(B);
    const g = new Grads(tm.params.values());
    const r = microStep(tm.model, b, { scale: 1, balance: cfg.balance, subs: [], distill: 0, globalCounts: null, globalTokens: B * T, mtp: null }, g);
    expect(ev.loss).toBe(r.loss);
    const grads = new Map([...tm.params].map(([n, p]) => [n, g.get(p) ?? new Float32Array(p.length)]));
    new AdamW(tm.params, { betas: cfg.train.betas, eps: cfg.train.eps, weightDecay: 0 }).step(grads, ev.lr);
    for (const [n, p] of tm.params) expect(maxAbsDiff(t.tm.params.get(n)!, p), n).toBeLessThan(1e-6);
  }, 60_000);

  it('two data-parallel threads (the compiled worker) take the step of one: the same loss, the same update to float rounding', async () => {
    const over = { train: { steps: 2, batch_size: B, grad_accum: 3, lr: 1e-2, warmup: 1, clip: 0.05, weight_decay: 0.1, seed: 4, workers: 2 } };
    const one = new Trainer(config(path.join(tmp, 'w1'), { ...over, train: { ...over.train, workers: 1 } }));
    const two = new Trainer(config(path.join(tmp, 'w2'), over));
    const evs: Step[] = [];
    const pools: (number | undefined)[] = [];
    await two.run((e) => { if (e.type === 'step') { evs.push(e); pools.push(two.workers?.size); } });
    expect(pools).toEqual([1, 1]); // one worker thread beside this one, for the whole run
    expect(two.workers).toBeNull(); // closed at the end
    const a = await one.trainStep(), b = await one.trainStep();
    expect(evs.map((e) => e.step)).toEqual([1, 2]);
    [a, b].forEach((e, i) => {
      expect(evs[i].loss).toBeCloseTo(e.loss, 6);
      expect(evs[i].aux_loss).toBeCloseTo(e.aux_loss, 6);
      expect(evs[i].grad_norm / e.grad_norm).toBeCloseTo(1, 5);
      expect(evs[i].balance).toEqual(e.balance); // the counts of every micro-batch, wherever it ran
    });
    let worst = 0;
    for (const [n, p] of one.tm.params) worst = Math.max(worst, maxAbsDiff(two.tm.params.get(n)!, p));
    expect(worst).toBeLessThan(1e-5);
  }, 60_000);

  it('a worker that cannot load the model is refused as a training worker error', async () => {
    const tm = TrainableModel.load(FIX);
    await expect(WorkerPool.open(1, path.join(tmp, 'no-such-model'), tm)).rejects.toThrow(/^training worker: no such model directory or config file$/);
  }, 60_000);

  it('log_every reports every n-th step and the last; checkpoint.every writes before the end only', async () => {
    const out = path.join(tmp, 'c');
    const cfg = config(out, { train: { steps: 5, batch_size: 1, grad_accum: 1, lr: 1e-3, warmup: 1, seed: 1 }, log_every: 2, checkpoint: { every: 2, keep: 5 } });
    const evs: TrainEvent[] = [];
    await new Trainer(cfg).run((e) => evs.push(e));
    expect(evs.map((e) => (e.type === 'step' || e.type === 'checkpoint' ? `${e.type} ${e.step}` : e.type))).toEqual(
      ['start', 'step 2', 'checkpoint 2', 'checkpoint 4', 'step 4', 'step 5', 'done'].sort((a, b) => order(a) - order(b)));
    expect(fs.readdirSync(out).filter((f) => f.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-2', 'checkpoint-4']);
    expect((evs.filter((e) => e.type === 'step') as Step[]).map((s) => s.tokens)).toEqual([2 * T, 4 * T, 5 * T]);
  }, 60_000);
});

/** the event order of a run: start, then per step its step event (if logged) before its checkpoint, then done */
function order(e: string): number {
  if (e === 'start') return 0;
  if (e === 'done') return 1e9;
  const [kind, step] = e.split(' ');
  return Number(step) * 10 + (kind === 'step' ? 0 : 1);
}
