/**
 * Golden tests of the trainer against the reference implementation's training references
 * (fixtures/hf-tiny-moe-train): the LM loss, the gradient of every trainable parameter, the
 * parameter name set, and a 10-step AdamW loss curve; plus finite-difference checks of single
 * backward kernels on random inputs.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { getKernels } from '../src/tensor/index.js';
import { AdamW } from '../src/train/adamw.js';
import { Grads } from '../src/tensor/grads.js';
import { f32Weight } from '../src/tensor/weight.js';
import { EagerExperts } from '../src/models/expert-store.js';
import { moeDefaults } from '../src/models/common.js';
import type { MoeDesc } from '../src/models/desc.js';
import { ffnBackward, ffnForward, SWIGLU } from '../src/moe/experts.js';
import { moeBackward, moeForward } from '../src/moe/layer.js';
import { TrainableModel } from '../src/train/model.js';
import { loadTransformers5, toTransformers5 } from '../src/train/names.js';
import { rmsnormBackward, rmsnormForward } from '../src/models/norm.js';
import { bf16Round, bf16Value, configVariantDir, maxAbsDiff, rng } from './helpers.js';
import { MoeModel } from '../src/models/model.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const REF = path.resolve(__dirname, '../fixtures/hf-tiny-moe-train');
const ARCHS = ['qwen3_moe', 'mixtral', 'ernie4_5_moe', 'deepseek_v3', 'olmoe', 'qwen2_moe', 'deepseek_v2', 'granitemoe', 'granitemoe_mult', 'gpt_oss', 'olmoe_clip'];

/**
 * The fixture directory of an architecture; `<base>_<variant>` with a fixtures/hf-tiny-moe-train/<name>.overrides.json
 * is the <base> fixture with those config overrides (granitemoe_mult: non-unit multipliers; olmoe_clip: clip_qkv),
 * built in a temp dir.
 */
function fixtureDir(arch: string): string {
  const ovr = path.join(REF, `${arch}.overrides.json`);
  if (!existsSync(ovr)) return path.join(FIX, arch);
  return configVariantDir(path.join(FIX, arch.replace(/_[a-z]+$/, '')), JSON.parse(readFileSync(ovr, 'utf8')));
}
/** fixtures with restart points of the reference's run (make_train_steps.py): the tight check where the curve is chaotic */
const STEPS = new Set(['ernie4_5_moe', 'deepseek_v3', 'granitemoe']);
const CURVE: Record<string, { exact: number; loose: number }> = {
  qwen3_moe: { exact: 10, loose: 1e-4 },
  mixtral: { exact: 10, loose: 1e-4 },
  ernie4_5_moe: { exact: 7, loose: 2e-3 },
  deepseek_v3: { exact: 1, loose: 0.25 }, // chaotic past step 1 (restart points below hold it): 0.19 on an AVX2-only EPYC's BLAS, < 0.15 elsewhere
  olmoe: { exact: 10, loose: 1e-4 },
  qwen2_moe: { exact: 10, loose: 1e-4 },
  deepseek_v2: { exact: 10, loose: 1e-4 },
  granitemoe: { exact: 5, loose: 2e-2 }, // a routing tie flips at step 5 (|Δ| 1e-2 there); restart points below
  granitemoe_mult: { exact: 10, loose: 1e-4 },
  olmoe_clip: { exact: 10, loose: 1e-4 },
  gpt_oss: { exact: 7, loose: 5e-4 }, // the reference itself spikes at step 7 (3.6 → 7.4), amplifying float noise
};

/**
 * references without an aux loss: transformers returns none for the DeepSeek models here, and its Granite aux loss fails
 * on its own router outputs (fixtures/hf-tiny-moe-train/README.md)
 */
const NO_AUX_LOSS = new Set(['deepseek_v3', 'deepseek_v2', 'granitemoe', 'granitemoe_mult']);

describe('the training references hold what the tests expect', () => {
  it.each(ARCHS)('%s: aux_loss exactly where expected, steps where listed, a gradient for every parameter', (arch) => {
    const ref = SafetensorsFile.open(path.join(REF, `${arch}.train_reference.safetensors`));
    expect(ref.has('aux_loss')).toBe(!NO_AUX_LOSS.has(arch));
    expect(ref.info('adamw_losses').shape).toEqual([10]);
    expect(gradNames(ref).length).toBeGreaterThan(10);
    ref.close();
    expect(existsSync(path.join(REF, `${arch}.train_steps.safetensors`))).toBe(STEPS.has(arch));
  });
});

function gradNames(ref: SafetensorsFile): string[] {
  return ref.names().filter((n) => n.startsWith('grad.')).map((n) => n.slice(5)).sort();
}

describe.each(ARCHS.flatMap((a) => [[a, 'native'], [a, 'reference']] as const))('%s trainer matches the reference gradients and loss curve (%s kernels)', (arch, kernels) => {
  const saved = process.env.MOEKIT_KERNELS;
  beforeAll(() => { process.env.MOEKIT_KERNELS = kernels; });
  afterAll(() => { if (saved === undefined) delete process.env.MOEKIT_KERNELS; else process.env.MOEKIT_KERNELS = saved; });
  const dir = fixtureDir(arch);
  const ref = SafetensorsFile.open(path.join(REF, `${arch}.train_reference.safetensors`));
  const ids = ref.readI32('input_ids'); // [B, T]
  const [B, T] = ref.info('input_ids').shape;

  it('lm_loss within 1e-5, every gradient within 1e-4 of max |ref| per tensor', () => {
    const tm = TrainableModel.load(dir);
    const { loss, grads } = tm.forwardBackward(ids, B, T);
    expect(Math.abs(loss - ref.readF32('lm_loss')[0])).toBeLessThanOrEqual(1e-5);
    const ours = toTransformers5(grads);
    let worst = 0, worstName = '';
    for (const n of gradNames(ref)) {
      const r = ref.readF32(`grad.${n}`), o = ours.get(n);
      expect(o, n).toBeDefined();
      expect(o!.length, n).toBe(r.length);
      let d = 0, m = 0;
      for (let i = 0; i < r.length; i++) { d = Math.max(d, Math.abs(r[i] - o![i])); m = Math.max(m, Math.abs(r[i])); }
      const rel = m > 0 ? d / m : d;
      if (rel > worst) { worst = rel; worstName = n; }
      expect(rel, n).toBeLessThanOrEqual(1e-4);
    }
    console.log(`${arch}: |Δ lm_loss| ${Math.abs(loss - ref.readF32('lm_loss')[0]).toExponential(2)}, worst gradient ${worstName} ${worst.toExponential(2)} (max |Δ| / max |ref|)`);
  });

  if (!NO_AUX_LOSS.has(arch)) it('the load-balancing aux loss (reported only) within 1e-5', () => {
    expect(ref.has('aux_loss'), `${arch}.train_reference.safetensors has no aux_loss`).toBe(true);
    const tm = TrainableModel.load(dir);
    const aux = tm.auxLoss(tm.forward(ids, B, T).tape);
    expect(aux).not.toBeNull();
    expect(Math.abs(aux! - ref.readF32('aux_loss')[0])).toBeLessThanOrEqual(1e-5);
  });

  it('every trainable parameter of the checkpoint has a gradient, in the reference and in ours', () => {
    const tm = TrainableModel.load(dir);
    const ck = Checkpoint.open(dir);
    const trainable = ck.names().filter((n) => !n.endsWith('e_score_correction_bias'));
    ck.close();
    // by checkpoint name, or (gpt-oss, whose fused experts the engine copies apart) fused back to checkpoint names
    const ours = [...tm.params.keys()].sort();
    const named = ours.join() === trainable.slice().sort().join() ? ours : [...toTransformers5(tm.params).keys()].sort();
    expect(named).toEqual(trainable.sort());
    const { grads } = tm.forwardBackward(ids, B, T);
    expect([...grads.keys()].sort()).toEqual(ours);
    expect([...toTransformers5(grads).keys()].sort()).toEqual(gradNames(ref));
  });

  const curve = CURVE[arch];
  it(`10 AdamW steps reproduce the reference loss curve (${curve.exact} steps within 1e-4, all within ${curve.loose})`, () => {
    const tm = TrainableModel.load(dir);
    const opt = new AdamW(tm.params, { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    const want = ref.readF32('adamw_losses');
    const got: number[] = [];
    for (let s = 0; s < want.length; s++) {
      const { loss, grads } = tm.forwardBackward(ids, B, T);
      got.push(loss);
      opt.step(grads);
    }
    const diffs = got.map((l, i) => Math.abs(l - want[i]));
    const d = Math.max(...diffs), early = Math.max(...diffs.slice(0, curve.exact));
    console.log(`${arch}: AdamW loss curve max |Δ| ${d.toExponential(2)}, first ${curve.exact} steps ${early.toExponential(2)} (${got[0].toFixed(4)} → ${got[got.length - 1].toFixed(4)})`);
    expect(early).toBeLessThanOrEqual(1e-4);
    expect(d).toBeLessThanOrEqual(curve.loose);
  });

  if (STEPS.has(arch)) it('restarted from the reference\'s own parameters before step 5: loss within 1e-5, gradients within 1e-4', () => {
    const st = SafetensorsFile.open(path.join(REF, `${arch}.train_steps.safetensors`));
    const want = st.readF32('losses');
    const tm = TrainableModel.load(dir);
    let worstLoss = 0, worstGrad = 0;
    for (const s of [5]) {
      loadTransformers5(tm.params, (n) => (st.has(`step${s}.${n}`) ? st.readF32(`step${s}.${n}`) : undefined));
      const { loss, grads } = tm.forwardBackward(ids, B, T);
      worstLoss = Math.max(worstLoss, Math.abs(loss - want[s]));
      expect(Math.abs(loss - want[s]), `step ${s}`).toBeLessThanOrEqual(1e-5);
      if (s !== 5) continue;
      const ours = toTransformers5(grads);
      const names = st.names().filter((x) => x.startsWith('step5.grad.'));
      expect(names.map((n) => n.slice('step5.grad.'.length)).sort()).toEqual(gradNames(ref));
      for (const n of names) {
        const r = st.readF32(n), o = ours.get(n.slice('step5.grad.'.length))!;
        expect(o?.length, n).toBe(r.length);
        let d = 0, m = 0;
        for (let i = 0; i < r.length; i++) { d = Math.max(d, Math.abs(r[i] - o[i])); m = Math.max(m, Math.abs(r[i])); }
        worstGrad = Math.max(worstGrad, m > 0 ? d / m : d);
        expect(m > 0 ? d / m : d, n).toBeLessThanOrEqual(1e-4);
      }
    }
    console.log(`${arch}: from the reference's parameters at step 5: loss |Δ| ≤ ${worstLoss.toExponential(2)}, step-5 gradients ≤ ${worstGrad.toExponential(2)}`);
  });

  it('the optimizer updates the engine model in place: its logits give the trainer loss', () => {
    const tm = TrainableModel.load(dir);
    const opt = new AdamW(tm.params, { lr: 1e-2, weightDecay: 0 });
    opt.step(tm.forwardBackward(ids, B, T).grads);
    const logits = tm.model.forward(ids, B, T); // [B·T, V]
    const V = tm.model.desc.vocab;
    let sum = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + 1 < T; t++) {
        const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
        const mx = Math.max(...row);
        let z = 0;
        for (const v of row) z += Math.exp(v - mx);
        sum += Math.log(z) + mx - row[ids[b * T + t + 1]];
      }
    }
    expect(Math.abs(sum / (B * (T - 1)) - tm.loss(ids, B, T))).toBeLessThanOrEqual(1e-5);
  });
});

describe('finite differences of single backward kernels', () => {
  const k = getKernels();
  const r = rng(7);
  const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);

  /** central difference of f at x[i] */
  function fd(f: () => number, x: Float32Array, i: number, h: number): number {
    const x0 = x[i];
    x[i] = x0 + h; const a = f();
    x[i] = x0 - h; const b = f();
    x[i] = x0;
    return (a - b) / (2 * h);
  }
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);

  it('RMSNorm: dL/dx and dL/dw for L = Σ c ⊙ rmsnorm(x, w)', () => {
    const rows = 3, dim = 16;
    const x = rand(rows * dim), w = rand(dim), c = rand(rows * dim);
    const L = () => { const y = new Float32Array(rows * dim); rmsnormForward(k, y, x, w, rows, dim, 1e-6, false); return dot(y, c); };
    const y = new Float32Array(rows * dim);
    const s = rmsnormForward(k, y, x, w, rows, dim, 1e-6, true)!;
    const dx = new Float32Array(rows * dim), dw = new Float32Array(dim);
    rmsnormBackward(dx, c, s, w, dw);
    for (const i of [0, 5, 17, 40]) expect(Math.abs(fd(L, x, i, 1e-2) - dx[i])).toBeLessThanOrEqual(2e-3);
    for (const i of [1, 9]) expect(Math.abs(fd(L, w, i, 1e-2) - dw[i])).toBeLessThanOrEqual(2e-3);
  });

  it('SwiGLU FFN: dL/dx and dL/dW_gate for L = Σ c ⊙ ffn(x)', () => {
    const n = 4, H = 8, I = 6;
    const lin = (o: number, i: number) => ({ w: f32Weight(rand(o * i, 0.5)), b: null, out: o, in: i });
    const f = { gate: lin(I, H), up: lin(I, H), down: lin(H, I) };
    const x = rand(n * H), c = rand(n * H);
    const L = () => dot(ffnForward(k, f, x, n).y, c);
    const s = ffnForward(k, f, x, n, SWIGLU, true).s!;
    const g = new Grads(), dx = new Float32Array(n * H);
    ffnBackward(k, f, s, c, dx, g);
    const dWg = g.of(f.gate.w);
    for (const i of [0, 11, 30]) expect(Math.abs(fd(L, x, i, 1e-2) - dx[i])).toBeLessThanOrEqual(2e-3);
    for (const i of [2, 25]) expect(Math.abs(fd(L, f.gate.w.data as Float32Array, i, 1e-2) - dWg[i])).toBeLessThanOrEqual(2e-3);
  });

  const ROUTERS: [string, Partial<MoeDesc>][] = [
    ['softmax → top-k', { router: 'softmax_topk', normTopK: false }],
    ['softmax → top-k → renormalise', { router: 'softmax_topk', normTopK: true }],
    ['softmax + selection bias, min-norm (ERNIE)', { router: 'softmax_bias', normTopK: true, normMin: 1e-12, selectionBias: true }],
    ['sigmoid + bias, groups, routed scaling, shared expert (DeepSeek-V3)',
      { router: 'sigmoid_group', normTopK: true, routedScaling: 2.5, nGroup: 2, topkGroup: 1, selectionBias: true, sharedFfn: 5 }],
  ];
  it.each(ROUTERS)('MoE block, %s: dL/dx and dL/dW_router for L = Σ c ⊙ moe(x)', (_, over) => {
    const N = 6, H = 8, E = 4, K = 2, I = 5;
    const m = moeDefaults({ experts: E, topK: K, expertFfn: I, router: 'softmax_topk', ...over });
    const lin = (o: number, i: number) => ({ w: f32Weight(rand(o * i, 0.7)), b: null, out: o, in: i });
    const ffn = () => ({ gate: lin(I, H), up: lin(I, H), down: lin(H, I) });
    const w = {
      router: lin(E, H), selectionBias: m.selectionBias ? rand(E, 0.1) : null,
      experts: new EagerExperts(Array.from({ length: E }, ffn)), shared: m.sharedFfn ? ffn() : null, sharedGate: null,
    };
    const x = rand(N * H), c = rand(N * H);
    const { y, s: s0 } = moeForward({ k, m, w, x, N, H, save: true });
    const s = s0!;
    const idx0 = s.r.experts.join();
    const g = new Grads(), dx = new Float32Array(N * H);
    moeBackward(k, m, w, s, c, dx, H, g);
    const dWr = g.of(w.router.w);
    // L, or NaN when the perturbation changed the selection (top-k has no gradient there)
    const L = () => { const r = moeForward({ k, m, w, x, N, H, save: true }); return r.s!.r.experts.join() === idx0 ? dot(r.y, c) : NaN; };
    expect(dot(y, c)).toBeCloseTo(L(), 10);
    let checked = 0;
    const check = (t: Float32Array, an: Float32Array, i: number) => {
      const num = fd(L, t, i, 2e-3);
      if (Number.isNaN(num)) return;
      checked++;
      expect(Math.abs(num - an[i]), `entry ${i}`).toBeLessThanOrEqual(2e-3 + 1e-2 * Math.abs(an[i]));
    };
    for (let i = 0; i < N * H; i += 5) check(x, dx, i);
    for (let i = 0; i < E * H; i += 3) check(w.router.w.data as Float32Array, dWr, i);
    expect(checked).toBeGreaterThan(15);
  });
});

describe('config variants through the engine: logits against the reference', () => {
  for (const arch of ['granitemoe_mult', 'olmoe_clip']) {
    it(`${arch}: the engine's logits within 1e-4 of the reference's`, () => {
      const ref = SafetensorsFile.open(path.join(REF, `${arch}.train_reference.safetensors`));
      const ids = ref.readI32('input_ids');
      const [B, T] = ref.info('input_ids').shape;
      const tm = TrainableModel.load(fixtureDir(arch));
      const logits = tm.model.forward(ids, B, T);
      const want = ref.readF32('logits');
      expect(logits.length).toBe(want.length);
      let d = 0;
      for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(logits[i] - want[i]));
      console.log(`${arch}: engine logits max |Δ| ${d.toExponential(2)}`);
      expect(d).toBeLessThanOrEqual(1e-4);
    });
  }
});

// the transformers 5 names and saving a trained model: test/train-save.test.ts
