/**
 * One micro-batch of a training step (src/train/micro.ts) on DeepSeek-V3's fixture (a dense first layer, then MoE):
 * the losses it reports against the parts computed on their own (the model's forward, the cross-entropy, the
 * balance losses of each forward's routing, the KL toward the full model's logits), and the gradient it accumulates
 * against central finite differences of that objective, with a micro-batch share (scale) below 1, two sub-models,
 * every balance loss and the distillation term (whose teacher, the full model, is held fixed as the spec says).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeRandomCheckpoint } from '../src/models/synth.js';
import { Tape } from '../src/models/pass.js';
import type { SubModel } from '../src/models/pass.js';
import { balanceLoss } from '../src/moe/balance.js';
import { Grads } from '../src/tensor/grads.js';
import type { Batch } from '../src/train/data.js';
import { crossEntropyForward, klDivergence, nextTokenTargets } from '../src/train/loss.js';
import { microStep, type MicroSpec } from '../src/train/micro.js';
import { TrainableModel } from '../src/train/model.js';
import { maxAbsDiff, rng, scratchDir, fdAtTopEntries } from './helpers.js';

const DIR = path.resolve(__dirname, '../fixtures/hf-tiny-moe/deepseek_v3');
const tm = TrainableModel.load(DIR);
const model = tm.model, d = model.desc, V = d.vocab, E = d.moe.experts;
const B = 2, T = 6, N = B * T;
const r = rng(5);
const ids = Int32Array.from({ length: N }, () => 3 + Math.floor(r() * (V - 3)));
const targets = nextTokenTargets(ids, B, T);
targets[0] = targets[1] = -1; // the first row's prompt: no loss there
const batch: Batch = { ids, targets, B, T, count: targets.filter((t) => t >= 0).length };
const SUBS: SubModel[] = [{ topK: 1 }, { layers: [0, d.nLayers - 1] }];
const moeLayers: number[] = d.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
if (moeLayers.length !== 2 || moeLayers[0] !== 1) throw new Error('the fixture: a dense first layer, then two MoE layers');

function spec(o: Partial<MicroSpec> = {}): MicroSpec {
  return { scale: 0.5, balance: { switch: 0.02, seq: 0.01, global: 0, zloss: 0.003 }, subs: SUBS, distill: 0, globalCounts: null, globalTokens: N, mtp: null, ...o };
}

function run(s: MicroSpec) {
  const g = new Grads(tm.params.values());
  const out = microStep(model, batch, s, g);
  const grads = new Map([...tm.params].map(([n, p]) => [n, g.get(p) ?? new Float32Array(p.length)]));
  return { out, grads };
}

/** the balance losses of one forward's routing, each weight times `w`, summed over the MoE layers */
function auxOf(tape: Tape, s: MicroSpec, w: number): number {
  let aux = 0;
  tape.layers.forEach((lt, l) => {
    if (!lt?.moe) return;
    const gc = s.globalCounts?.get(l);
    const bw = { switch: s.balance.switch * w, seq: s.balance.seq * w, global: s.balance.global * w, zloss: s.balance.zloss * w };
    aux += balanceLoss(d.moe, lt.moe.r, N, T, bw, gc ? { counts: gc, tokens: s.globalTokens } : undefined).loss;
  });
  return aux;
}

/** the objective computed from its parts: scale·CE(full) + Σ_sub (scale/S)(CE(sub) + distill·KL(teacher ‖ sub)) + balance */
function objective(s: MicroSpec, teacher?: Float32Array) {
  const tape = new Tape();
  const logits = model.forward(ids, B, T, { tape });
  const loss = crossEntropyForward(logits, targets, N, V).loss * s.scale;
  let aux = auxOf(tape, s, s.scale), subLoss = 0;
  const w = s.scale / s.subs.length;
  for (const sub of s.subs) {
    const st = new Tape();
    const sl = model.forward(ids, B, T, { tape: st, sub });
    subLoss += crossEntropyForward(sl, targets, N, V).loss * w;
    if (s.distill > 0) subLoss += s.distill * klDivergence(sl, teacher ?? logits, targets, N, V).loss * w;
    aux += auxOf(st, s, w);
  }
  return { loss, subLoss, aux, total: loss + subLoss + aux, logits, tape };
}

/** the worst |central difference − gradient| over the 3 largest entries of each tensor, relative to its largest |gradient| */
function worstFd(names: string[], f: () => number, grad: (n: string) => Float32Array, h: number): { name: string; rel: number }[] {
  return names.map((name) => {
    const p = tm.params.get(name)!;
    const { top, rel } = fdAtTopEntries(p, grad(name), f, h);
    expect(top, `${name}: a gradient`).toBeGreaterThan(0);
    return { name, rel };
  });
}

const TRUNK = ['lm_head.weight', 'model.norm.weight', 'model.layers.2.self_attn.o_proj.weight', 'model.layers.0.mlp.down_proj.weight',
  'model.layers.1.mlp.shared_experts.down_proj.weight', 'model.layers.2.mlp.experts.3.down_proj.weight'];
const ROUTER = ['model.layers.1.mlp.gate.weight', 'model.layers.2.mlp.gate.weight'];

describe('a micro-batch: the losses it reports are their parts', () => {
  it('scale · CE of the full model, the sub-models at scale / S each, the balance losses of every forward', () => {
    for (const s of [spec(), spec({ scale: 1, subs: [SUBS[0]] }), spec({ balance: { switch: 0, seq: 0, global: 0, zloss: 0 } })]) {
      const { out } = run(s);
      const want = objective(s);
      expect(out.loss).toBeCloseTo(want.loss, 6);
      expect(out.subLoss).toBeCloseTo(want.subLoss, 6);
      expect(out.aux).toBeCloseTo(want.aux, 6);
      expect(out.mtpLoss).toBe(0);
      if (s.balance.switch === 0) expect(out.aux).toBe(0);
      else expect(out.aux).toBeGreaterThan(0);
    }
  });

  it('the full model\'s assignments per expert, by MoE layer: each row\'s K choices counted once', () => {
    const { out } = run(spec());
    const { tape } = objective(spec());
    expect([...out.counts.keys()]).toEqual(moeLayers);
    for (const l of moeLayers) {
      const want = new Float64Array(E);
      const rt = tape.layers[l]!.moe!.r;
      for (let n = 0; n < N; n++) for (let j = 0; j < rt.K; j++) want[rt.experts[n * rt.K + j]] += 1;
      expect(out.counts.get(l)).toEqual(want);
      expect(out.counts.get(l)!.reduce((a, b) => a + b, 0)).toBe(N * d.moe.topK);
    }
  });

  it('global-batch balance uses the step\'s counts and token total when given them', () => {
    const counts = new Map(moeLayers.map((l) => [l, Float64Array.from({ length: E }, (_, e) => 3 + 2 * e)]));
    const s = spec({ balance: { switch: 0, seq: 0, global: 0.05, zloss: 0 }, globalCounts: counts, globalTokens: 40 });
    const { out } = run(s);
    expect(out.aux).toBeGreaterThan(0);
    expect(out.aux).toBeCloseTo(objective(s).aux, 6);
    // without the step's counts the global loss has nothing to weigh
    expect(run({ ...s, globalCounts: null }).out.aux).toBe(0);
  });

  it('the distillation term: KL(full ‖ sub) on the counted rows, weighted by distill at scale / S', () => {
    const s = spec({ distill: 0.7 });
    const { out } = run(s);
    const want = objective(s);
    expect(out.subLoss).toBeCloseTo(want.subLoss, 6);
    expect(out.subLoss - run(spec()).out.subLoss).toBeGreaterThan(0);
  });

  it('an empty micro-batch (no counted target) contributes nothing', () => {
    const g = new Grads(tm.params.values());
    const out = microStep(model, { ...batch, count: 0 }, spec(), g);
    expect(out).toEqual({ loss: 0, subLoss: 0, aux: 0, mtpLoss: 0, counts: new Map() });
    for (const p of tm.params.values()) expect(g.get(p)).toBeUndefined();
  });
});

describe('a micro-batch: the gradient it accumulates (finite differences)', () => {
  it('of scale·CE + the sub-models\' CE + the balance losses, trunk and routers', () => {
    const s = spec();
    const { grads } = run(s);
    const f = () => objective(s).total;
    for (const x of worstFd(TRUNK, f, (n) => grads.get(n)!, 1e-2)) expect(x.rel, x.name).toBeLessThan(2e-2);
    for (const x of worstFd(ROUTER, f, (n) => grads.get(n)!, 1e-3)) expect(x.rel, x.name).toBeLessThan(2e-2);
  }, 60_000);

  it('the balance losses\' part alone reaches the routers: (gradient with them) − (without) = d balance / dθ', () => {
    const s = spec({ balance: { switch: 0.05, seq: 0.03, global: 0, zloss: 0.01 } });
    const off = run(spec({ balance: { switch: 0, seq: 0, global: 0, zloss: 0 } })).grads, on = run(s).grads;
    const part = (n: string) => on.get(n)!.map((v, i) => v - off.get(n)![i]);
    const f = () => { const o = objective(s); return o.aux; };
    for (const x of worstFd(ROUTER, f, part, 1e-3)) expect(x.rel, x.name).toBeLessThan(2e-2);
  }, 60_000);

  it('the distillation part: (gradient at distill) − (at 0) = the gradient of the KL toward the fixed full-model logits', () => {
    const s = spec({ distill: 0.7, balance: { switch: 0, seq: 0, global: 0, zloss: 0 } });
    const with0 = run({ ...s, distill: 0 }).grads, withD = run(s).grads;
    const part = (n: string) => withD.get(n)!.map((v, i) => v - with0.get(n)![i]);
    const teacher = objective(s).logits; // at θ0: the teacher gets no gradient
    const f = () => { const a = objective(s, teacher), b = objective({ ...s, distill: 0 }); return a.subLoss - b.subLoss; };
    for (const x of worstFd(['lm_head.weight', 'model.layers.2.self_attn.o_proj.weight', 'model.layers.0.mlp.down_proj.weight'], f, part, 1e-2)) expect(x.rel, x.name).toBeLessThan(2e-2);
  }, 60_000);
});

describe('a micro-batch with multi-token prediction', () => {
  const tmp = scratchDir('moekit-micro-mtp-');
  it('its share scales the MTP loss and gradient as it scales the rest: half the share, half of each', () => {
    const dir = path.join(tmp(), 'mtp');
    const cfg = JSON.parse(fs.readFileSync(path.join(DIR, 'config.json'), 'utf8'));
    writeRandomCheckpoint(dir, { ...cfg, num_nextn_predict_layers: 2 }, 3, 'F32', { std: 0.1 }, 'deepseek');
    const mt = TrainableModel.load(dir, { mtp: 'deepseek' });
    const at = (scale: number) => {
      const g = new Grads(mt.params.values());
      const out = microStep(mt.model, batch, { ...spec({ scale, subs: [], balance: { switch: 0, seq: 0, global: 0, zloss: 0 } }), mtp: { weight: 0.3 } }, g);
      return { out, grads: [...mt.params.values()].map((p) => g.get(p) ?? new Float32Array(p.length)) };
    };
    const one = at(1), half = at(0.5);
    expect(one.out.mtpLoss).toBeGreaterThan(0);
    expect(half.out.mtpLoss).toBeCloseTo(one.out.mtpLoss / 2, 6);
    expect(half.out.loss).toBeCloseTo(one.out.loss / 2, 6);
    let worst = 0, top = 0;
    one.grads.forEach((g, i) => { worst = Math.max(worst, maxAbsDiff(half.grads[i], g.map((x) => x / 2))); for (const x of g) top = Math.max(top, Math.abs(x)); });
    expect(top).toBeGreaterThan(0);
    expect(worst / top).toBeLessThan(1e-5);
  }, 60_000);
});
