/**
 * The training loop in-process (src/train/loop.ts; train-loop.test.ts runs the CLI): the events of a short run, the
 * learning rate of each step from the schedule, the first step's loss against the model's own loss on the first
 * packed batch, checkpoints kept and pruned, a resumed run reproducing the uninterrupted curve bit for bit, gradient
 * clipping, elastic sub-models and decay only on matrices.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/train/config.js';
import { checkpoints, Trainer, type TrainEvent } from '../src/train/loop.js';
import { lrAt } from '../src/train/schedule.js';
import { TrainableModel } from '../src/train/model.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-trainer-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const config = (out: string, over: Record<string, Record<string, unknown>> = {}) => resolveConfig({
  model: { from: path.join(FIX, 'mixtral') },
  data: { tasks: ['sort', 'reverse'], seq_len: 16, tokenizer: path.resolve(__dirname, '../examples/demo-moe'), ...over.data },
  train: { steps: 4, batch_size: 2, lr: 1e-2, min_lr: 1e-3, warmup: 1, schedule: 'cosine', clip: 1, ...over.train },
  checkpoint: { every: 2, keep: 1, ...over.checkpoint },
  ...(over.elastic ? { elastic: over.elastic } : {}),
  out,
}, tmp);

describe('the trainer in-process', () => {
  it('events, lr per step, checkpoints, and a resumed run that reproduces the curve', async () => {
    const out = path.join(tmp, 'a');
    const cfg = config(out);
    const events: TrainEvent[] = [];
    const t = new Trainer(cfg);
    const dir = await t.run((e) => events.push(e));
    expect(events.map((e) => e.type)).toEqual(['start', 'step', 'step', 'checkpoint', 'step', 'step', 'done']);
    const start = events[0] as Extract<TrainEvent, { type: 'start' }>;
    expect(start).toMatchObject({ step: 0, steps: 4, resumed: false, out });
    expect(start.parameters).toBe([...t.tm.params.values()].reduce((s, p) => s + p.length, 0));
    const steps = events.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
    const sched = { kind: 'cosine' as const, lr: 1e-2, minLr: 1e-3, warmup: 1, steps: 4, decayFraction: cfg.train.decay_fraction };
    steps.forEach((s, i) => {
      expect(s.step).toBe(i + 1);
      expect(s.lr).toBe(lrAt(sched, i));
      expect(s.tokens).toBe((i + 1) * 2 * 16);
      expect(Number.isFinite(s.loss) && s.loss > 0).toBe(true);
      expect(s.grad_norm).toBeGreaterThan(0);
      expect(s.sub_loss).toBeNull();
      expect(s.mtp_loss).toBeNull();
      expect(s.subs).toEqual([]);
      expect(s.balance.length).toBe(t.tm.model.moeLayerIndex.filter((m) => m >= 0).length);
      for (const b of s.balance) { expect(b.max_over_mean).toBeGreaterThanOrEqual(1); expect(b.entropy).toBeLessThanOrEqual(1 + 1e-12); }
    });
    expect(events[3]).toEqual({ type: 'checkpoint', step: 2, dir: path.join(out, 'checkpoint-2') });
    expect(events.at(-1)).toMatchObject({ type: 'done', step: 4, dir: path.join(out, 'model') });
    expect(dir).toBe(path.join(out, 'model'));
    expect(checkpoints(out)).toEqual([{ step: 2, dir: path.join(out, 'checkpoint-2') }]);
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(true);
    // the saved model is the trained one
    const saved = TrainableModel.load(dir);
    for (const [n, p] of t.tm.params) expect(Array.from(saved.params.get(n)!), n).toEqual(Array.from(p));
    // resume from checkpoint-2: steps 3 and 4 again, bit for bit
    const resumed: TrainEvent[] = [];
    const r = new Trainer(cfg, { resume: true });
    await r.run((e) => resumed.push(e));
    expect(resumed[0]).toMatchObject({ type: 'start', step: 2, resumed: true });
    const again = resumed.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
    expect(again.map((s) => [s.step, s.loss, s.lr, s.grad_norm])).toEqual(steps.slice(2).map((s) => [s.step, s.loss, s.lr, s.grad_norm]));
  });

  it('clipping: a tighter clip changes the second step, not the first; no clip (0) takes the raw gradient', async () => {
    const run = async (clip: number, name: string) => {
      const ev: TrainEvent[] = [];
      await new Trainer(config(path.join(tmp, name), { train: { steps: 2, clip }, checkpoint: { every: 10 } })).run((e) => ev.push(e));
      return ev.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
    };
    const loose = await run(0, 'c0'), tight = await run(1e-3, 'c1');
    expect(tight[0].loss).toBe(loose[0].loss);
    expect(tight[0].grad_norm).toBe(loose[0].grad_norm); // the norm before clipping
    expect(tight[0].grad_norm).toBeGreaterThan(1e-3);
    expect(tight[1].loss).not.toBe(loose[1].loss);
  });

  it('multi-token prediction: fresh DeepSeek MTP modules on a checkpoint without them, their loss reported', async () => {
    const out = path.join(tmp, 'mtp');
    const cfg = resolveConfig({
      model: { from: path.join(FIX, 'deepseek_v3') },
      data: { tasks: ['sort'], seq_len: 16, tokenizer: path.resolve(__dirname, '../examples/demo-moe') },
      train: { steps: 2, batch_size: 2, lr: 1e-2, warmup: 0 }, mtp: { kind: 'deepseek', depth: 1, weight: 0.5 },
      checkpoint: { every: 10 }, out,
    }, tmp);
    const ev: TrainEvent[] = [];
    await new Trainer(cfg).run((e) => ev.push(e));
    const steps = ev.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
    expect(steps.length).toBe(2);
    for (const s of steps) expect(Number.isFinite(s.mtp_loss) && s.mtp_loss! > 0).toBe(true);
    // the source with the fresh modules was written once, beside the run
    expect(fs.existsSync(path.join(out, 'init', 'config.json'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'init', 'config.json'), 'utf8')).num_nextn_predict_layers).toBe(1);
  });

  it('elastic: each step samples its sub-models and reports their loss', async () => {
    const ev: TrainEvent[] = [];
    await new Trainer(config(path.join(tmp, 'e'), { train: { steps: 2 }, checkpoint: { every: 10 }, elastic: { depth: [1, 2], samples: 2, distill: 0.5 } })).run((e) => ev.push(e));
    const steps = ev.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
    for (const s of steps) {
      expect(s.subs.length).toBe(2);
      for (const sub of s.subs) expect([1, 2]).toContain(sub.depth);
      expect(s.sub_loss).not.toBeNull();
      expect(Number.isFinite(s.sub_loss!)).toBe(true);
    }
  });
});
