/**
 * Multi-token prediction in the trainer (src/train/mtp.ts; its gradients against finite differences are
 * test/mtp-grad.test.ts): the
 * checkpoint keeps the modules under their Hugging Face names and reloads, and a resumed run continues bit for bit;
 * with mtp off the trainer repeats main's recorded curve bit for bit (test/data/mtp-off-baseline.json).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { MoeModel } from '../src/models/model.js';
import { resolveConfig } from '../src/train/config.js';
import { Trainer, type TrainEvent } from '../src/train/loop.js';
import { TrainableModel } from '../src/train/model.js';
import { maxAbsDiff, rng, runCli, scratchDir } from './helpers.js';
import { DEEPSEEK, QWEN } from './mtp-configs.js';

const ROOT = path.resolve(__dirname, '..');
const tmp = scratchDir('moekit-mtp-');

function ids(B: number, T: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: B * T }, () => 3 + Math.floor(r() * (V - 3)));
}

// ---- the training loop ----------------------------------------------------------------------------------------------

const BASELINE = path.join(ROOT, 'test/data/mtp-off-baseline.json');

function baseConfig(out: string, model: Record<string, unknown>, extra: Record<string, unknown> = {}, steps = 6) {
  return resolveConfig({
    model: { config: model, init_seed: 3 }, data: { source: 'builtin', seq_len: 48 },
    train: { steps, batch_size: 2, grad_accum: 2, lr: 0.01, warmup: 2, schedule: 'wsd' },
    elastic: { depth: [2, 3], top_k: [1, 2], samples: 1, distill: 0.5 }, balance: { switch: 0.01, zloss: 0.001 },
    checkpoint: { every: 100 }, out, ...extra,
  });
}

type Step = Extract<TrainEvent, { type: 'step' }>;
async function train(cfg: ReturnType<typeof resolveConfig>, resume = false): Promise<Step[]> {
  const steps: Step[] = [];
  await new Trainer(cfg, { resume }).run((ev) => { if (ev.type === 'step') steps.push(ev); });
  return steps;
}
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('multi-token prediction in the trainer', () => {
  // The recorded curve is main's before MTP existed (49325b8). The sgemm kernel set OpenBLAS runs (it depends on the
  // CPU: src/tensor/native.ts) rounds differently (1e-9 in the loss, 1e-6 in the gradient norm over these steps), so the recorded curve is held to 1e-4
  // relative (deepseek_v3 to 1e-3: its curve is chaotic past step 1, train.test.ts CURVE, and an AVX2-only EPYC's
  // kernels put its step-5 gradient norm 1.5e-4 off); bit-for-bit equality is asserted within this process (absent =
  // kind none; weight 0 = plain).
  const ROUNDING: Record<string, number> = { qwen3_moe: 1e-4, deepseek_v3: 1e-3 };
  it('mtp off (absent or kind none): main\'s recorded curve (to rounding), and absent = none bit for bit', async () => {
    const models: Record<string, Record<string, unknown>> = { qwen3_moe: QWEN, deepseek_v3: DEEPSEEK };
    const rec: Record<string, unknown> = {};
    const want = JSON.parse(fs.readFileSync(BASELINE, 'utf8')) as Record<string, { curve: (number | null)[][]; model_sha256: string }>;
    for (const [name, model] of Object.entries(models)) {
      const runs: { curve: (number | null)[][]; hash: string }[] = [];
      for (const extra of [{}, { mtp: { kind: 'none', depth: 2 } }]) {
        const out = path.join(tmp(), `off-${name}-${Object.keys(extra).length}`);
        const steps = await train(baseConfig(out, model, extra));
        const curve = steps.map((e) => [e.step, e.loss, e.sub_loss, e.grad_norm, e.aux_loss]);
        const hash = sha(path.join(out, 'model', 'model.safetensors'));
        runs.push({ curve, hash });
        rec[name] = { curve, model_sha256: hash };
        if (process.env.MOEKIT_RECORD_MTP_BASELINE) continue;
        const w = want[name].curve;
        expect(curve.length, name).toBe(w.length);
        curve.forEach((row, i) => row.forEach((v, j) => {
          const r = w[i][j];
          if (r === null || v === null) expect(v, `${name} step ${i} col ${j}`).toBe(r);
          else expect(Math.abs((v as number) - (r as number)), `${name} step ${i} col ${j}: ${v} vs ${r}`).toBeLessThanOrEqual(ROUNDING[name] * Math.max(1, Math.abs(r as number)));
        }));
        expect(steps.every((e) => e.mtp_loss === null)).toBe(true);
      }
      expect(runs[1].curve, name).toEqual(runs[0].curve);
      expect(runs[1].hash, name).toBe(runs[0].hash);
    }
    if (process.env.MOEKIT_RECORD_MTP_BASELINE) fs.writeFileSync(BASELINE, JSON.stringify({ _comment: want._comment, ...rec }, null, 1));
  }, 90_000);

  it('mtp on with weight 0: the trunk\'s curve is the plain one bit for bit (the MTP weights add exact zeros)', async () => {
    const plain = await train(baseConfig(path.join(tmp(), 'w0-plain'), QWEN));
    const steps = await train(baseConfig(path.join(tmp(), 'w0'), QWEN, { mtp: { kind: 'deepseek', weight: 0 } }));
    const row = (e: (typeof steps)[number]) => [e.step, e.loss, e.sub_loss, e.grad_norm, e.aux_loss];
    expect(steps.map(row)).toEqual(plain.map(row));
    expect(steps.every((e) => typeof e.mtp_loss === 'number' && e.mtp_loss > 0)).toBe(true);
  }, 60_000);

  it.each([['deepseek', 2], ['group', 2]] as const)('%s: the checkpoint keeps the MTP tensors under their names, reloads, and a resumed run continues bit for bit', async (kind, D) => {
    const out = path.join(tmp(), `save-${kind}`);
    const cfg = () => baseConfig(out, QWEN, { mtp: { kind, depth: D, weight: 0.5 }, checkpoint: { every: 4, keep: 1 } }, 8);
    const a = await train(cfg());
    expect(a.every((e) => typeof e.mtp_loss === 'number' && Number.isFinite(e.mtp_loss))).toBe(true);
    const model = path.join(out, 'model'), ck4 = path.join(out, 'checkpoint-4');
    const ck = Checkpoint.open(model);
    const names = ck.names();
    const want = kind === 'deepseek'
      ? [3, 4].flatMap((l) => ['enorm', 'hnorm', 'eh_proj', 'shared_head.norm', 'shared_head.head', 'embed_tokens', 'input_layernorm',
          'post_attention_layernorm', 'self_attn.q_proj', 'self_attn.o_proj', 'mlp.gate', 'mlp.experts.7.down_proj'].map((n) => `model.layers.${l}.${n}.weight`))
      : [0, 1].flatMap((g) => [`model.next_group.${g}.proj.weight`, `model.next_group.${g}.norm.weight`]);
    for (const n of want) expect(names, n).toContain(n);
    if (kind === 'deepseek') {
      expect(ck.info('model.layers.3.eh_proj.weight').shape).toEqual([32, 64]);
      // the per-module head and embedding are copies of the shared ones, as trained
      for (const l of [3, 4]) {
        expect(ck.readF32(`model.layers.${l}.shared_head.head.weight`)).toEqual(ck.readF32('lm_head.weight'));
        expect(ck.readF32(`model.layers.${l}.embed_tokens.weight`)).toEqual(ck.readF32('model.embed_tokens.weight'));
      }
      const cfgJson = JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8'));
      expect(cfgJson.num_nextn_predict_layers).toBe(2);
    }
    ck.close();
    // reloads: the trainer with the MTP weights as saved; the engine ignores them (its logits are the trainer's)
    const tm = TrainableModel.load(model, { mtp: kind });
    const src = Checkpoint.open(model);
    for (const [n, p] of tm.params) if (/layers\.[34]\.|next_group/.test(n)) expect(p, n).toEqual(src.readF32(n));
    src.close();
    const x = ids(1, 6, 512, 3);
    expect(maxAbsDiff(MoeModel.load(model).forward(x, 1, 6), tm.model.forward(x, 1, 6))).toBe(0);
    // resume from checkpoint-4: the same steps 5-8 and the same final model, bit for bit
    const first = sha(path.join(model, 'model.safetensors'));
    fs.rmSync(model, { recursive: true });
    expect(fs.existsSync(ck4)).toBe(true);
    const b = await train(cfg(), true);
    expect(b.map((e) => [e.step, e.loss, e.mtp_loss, e.grad_norm])).toEqual(a.slice(4).map((e) => [e.step, e.loss, e.mtp_loss, e.grad_norm]));
    expect(sha(path.join(model, 'model.safetensors'))).toBe(first);
  }, 60_000);

  it('two data-parallel threads train MTP as one (to float rounding of the gradient sum)', async () => {
    const [a, b] = await Promise.all([1, 2].map(async (w) => train(baseConfig(path.join(tmp(), `dp${w}`), QWEN, {
      mtp: { kind: 'deepseek', depth: 1 }, train: { steps: 3, batch_size: 2, grad_accum: 2, lr: 0.01, warmup: 1, workers: w },
    }, 3))));
    for (let i = 0; i < a.length; i++) {
      expect(Math.abs(a[i].loss - b[i].loss)).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(a[i].mtp_loss! - b[i].mtp_loss!)).toBeLessThanOrEqual(1e-5);
    }
  }, 60_000);

  it('--set mtp.kind=deepseek works from the command line; the metrics log reports mtp_loss', async () => {
    const dir = path.join(tmp(), 'cli');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(QWEN));
    fs.writeFileSync(path.join(dir, 'cfg.yaml'), 'model: { config: model.json }\ndata: { source: builtin, seq_len: 32 }\ntrain: { steps: 2, batch_size: 2 }\nout: out\n');
    const r = await runCli(['train', path.join(dir, 'cfg.yaml'), '--set', 'mtp.kind=deepseek', '--set', 'mtp.weight=0.1']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const log = fs.readFileSync(path.join(dir, 'out', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.length).toBe(2);
    for (const e of log) expect(e.mtp_loss).toBeGreaterThan(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'out', 'model', 'config.json'), 'utf8')).num_nextn_predict_layers).toBe(1);
  }, 60_000);

  it.each([
    [{ mtp: { kind: 'medusa' } }, /mtp.kind must be none, deepseek or group, got 'medusa'/],
    [{ mtp: { kind: 'deepseek', depth: 0 } }, /mtp.depth must be ≥ 1, got 0/],
    [{ mtp: { kind: 'group', weight: -1 } }, /mtp.weight must be ≥ 0, got -1/],
    [{ mtp: { heads: 2 } }, /unknown key 'mtp.heads'/],
    [{ mtp: { depth: 1.5 } }, /mtp.depth must be a non-negative integer/],
  ])('%j → a one-line error naming the field', (extra, re) => {
    expect(() => baseConfig(path.join(tmp(), 'bad'), QWEN, extra)).toThrow(re);
  });

  it('a checkpoint that declares MTP modules without their tensors: out/init adds fresh ones, the rest as stored', async () => {
    // the transformers-made fixture says num_nextn_predict_layers 1 and holds no module (transformers drops them)
    const from = path.join(ROOT, 'fixtures/hf-tiny-moe/deepseek_v3'), out = path.join(tmp(), 'from');
    const cfg = resolveConfig({
      model: { from }, data: { source: 'jsonl', files: [path.join(out, '..', 'from.jsonl')], seq_len: 32, tokenizer: path.join(ROOT, 'examples/tiny-moe') },
      train: { steps: 2, batch_size: 2, warmup: 1 }, mtp: { kind: 'deepseek' }, out,
    });
    fs.writeFileSync(path.join(out, '..', 'from.jsonl'), Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `the ${i} cats sat on ${i + 1} mats` })).join('\n'));
    const steps = await train(cfg);
    expect(steps.every((e) => typeof e.mtp_loss === 'number' && e.mtp_loss > 0)).toBe(true);
    const a = Checkpoint.open(from), init = Checkpoint.open(path.join(out, 'init')), saved = Checkpoint.open(path.join(out, 'model'));
    for (const n of a.names()) expect(init.readRaw(n).equals(a.readRaw(n)), n).toBe(true);
    for (const n of ['enorm', 'hnorm', 'eh_proj', 'shared_head.norm', 'mlp.gate', 'self_attn.kv_b_proj']) expect(saved.has(`model.layers.3.${n}.weight`), n).toBe(true);
    expect(init.readF32('model.layers.3.shared_head.head.weight')).toEqual(a.readF32('lm_head.weight'));
    a.close(); init.close(); saved.close();
    // a depth the checkpoint's modules do not have: refused, naming the field
    expect(() => new Trainer({ ...cfg, mtp: { ...cfg.mtp, depth: 2 }, model: { ...cfg.model, from: path.join(out, 'model') }, out: path.join(tmp(), 'from2') }))
      .toThrow(/^mtp.depth 2: the checkpoint's config declares 1 \(num_nextn_predict_layers\)/);
  }, 60_000);
});
