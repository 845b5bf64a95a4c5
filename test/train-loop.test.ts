/**
 * The training loop: a run killed with SIGKILL mid-training and continued with --resume gives the same loss curve
 * bit for bit as an uninterrupted run; schedules; the packer's answer-only loss mask; training lowers the loss;
 * bad configs get one-line errors naming the field.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { resolveConfig } from '../src/train/config.js';
import { listSource, Packer } from '../src/train/data.js';
import { lrAt } from '../src/train/schedule.js';
import { runCli, scratchDir } from './helpers.js';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin/moekit.js');
const TOK = path.join(ROOT, 'examples/tiny-moe');
const tmp = scratchDir('moekit-train-');

const MODEL = {
  architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', vocab_size: 512, hidden_size: 32, intermediate_size: 64,
  moe_intermediate_size: 32, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, num_experts: 8,
  num_experts_per_tok: 2, norm_topk_prob: true, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 10000,
  bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: false,
};

function setup(name: string, steps: number, extra = ''): { cfg: string; out: string } {
  const dir = path.join(tmp(), name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(MODEL));
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) lines.push(JSON.stringify({ prompt: `add ${i % 17}+${(i * 7) % 13}=`, answer: String((i % 17) + ((i * 7) % 13)) }));
  fs.writeFileSync(path.join(dir, 'data.jsonl'), lines.join('\n'));
  const cfg = path.join(dir, 'cfg.yaml');
  // `extra` replaces the default line of its top-level key
  const lines0 = [
    'model: { config: model.json, init_seed: 3 }',
    `data: { source: jsonl, files: [data.jsonl], seq_len: 48, tokenizer: ${TOK} }`,
    `train: { steps: ${steps}, batch_size: 4, grad_accum: 2, lr: 0.01, warmup: 3, schedule: wsd }`,
    'elastic: { depth: [2, 3], experts: [4, 8], top_k: [1, 2], samples: 1, distill: 0.5 }',
    'balance: { switch: 0.01, zloss: 0.001 }',
    'checkpoint: { every: 4, keep: 2 }',
    'out: out',
  ];
  const key = extra.split(':')[0];
  fs.writeFileSync(cfg, [...lines0.filter((l) => !extra || l.split(':')[0] !== key), extra].join('\n'));
  return { cfg, out: path.join(dir, 'out') };
}

const curve = (out: string) => fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
  const e = JSON.parse(l);
  return [e.step, e.loss, e.sub_loss, e.grad_norm, e.lr, e.aux_loss];
});

describe('moekit train', () => {
  it('kill -9 mid-run, then --resume: the same loss curve, bit for bit', async () => {
    const steps = 28;
    const a = setup('a', steps), b = setup('b', steps);
    const ra = spawnSync(process.execPath, [BIN, 'train', a.cfg], { encoding: 'utf8' });
    expect(ra.stderr).toBe('');
    expect(ra.status).toBe(0);
    // run b: killed once checkpoint-8 is on disk and training has moved on
    const child = spawn(process.execPath, [BIN, 'train', b.cfg], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        const log = path.join(b.out, 'metrics.jsonl');
        const n = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').length : 0;
        if (fs.existsSync(path.join(b.out, 'checkpoint-8')) && n >= 10) { clearInterval(t); child.kill('SIGKILL'); resolve(); }
      }, 5);
      child.on('exit', (code) => { clearInterval(t); if (code === 0) reject(new Error('the run finished before it could be killed')); else resolve(); });
    });
    await new Promise((r) => child.on('close', r));
    expect(fs.existsSync(path.join(b.out, 'model'))).toBe(false);
    const rb = spawnSync(process.execPath, [BIN, 'train', b.cfg, '--resume'], { encoding: 'utf8' });
    expect(rb.stderr).toBe('');
    expect(rb.status).toBe(0);
    const ca = curve(a.out), cb = curve(b.out);
    expect(ca.length).toBe(steps);
    expect(cb).toEqual(ca);
    expect(fs.readFileSync(path.join(b.out, 'model', 'model.safetensors'))).toEqual(fs.readFileSync(path.join(a.out, 'model', 'model.safetensors')));
    // only the last `keep` checkpoints stay; no temporary directories left
    expect(fs.readdirSync(b.out).filter((f) => f.startsWith('checkpoint-')).length).toBe(2);
    expect(fs.readdirSync(b.out).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 120_000);

  it('two data-parallel threads give the curve of one (to float rounding of the gradient sum)', () => {
    const a = setup('w1', 6), b = setup('w2', 6);
    for (const [x, w] of [[a, '1'], [b, '2']] as const) {
      const r = spawnSync(process.execPath, [BIN, 'train', x.cfg, '--set', `train.workers=${w}`], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    const ca = curve(a.out), cb = curve(b.out);
    for (let i = 0; i < ca.length; i++) {
      expect(Math.abs((ca[i][1] as number) - (cb[i][1] as number)), `step ${i + 1}`).toBeLessThanOrEqual(1e-5);
      expect(Math.abs((ca[i][3] as number) - (cb[i][3] as number)) / (ca[i][3] as number)).toBeLessThanOrEqual(1e-4);
    }
  }, 60_000);

  it('training lowers the loss', () => {
    const a = setup('c', 40, '');
    const r = spawnSync(process.execPath, [BIN, 'train', a.cfg, '--set', 'elastic.samples=0', '--set', 'train.lr=0.02'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const c = curve(a.out);
    const first = c.slice(0, 3).reduce((s, x) => s + (x[1] as number), 0) / 3, last = c.slice(-3).reduce((s, x) => s + (x[1] as number), 0) / 3;
    expect(last).toBeLessThan(first * 0.6);
  }, 60_000);

  it.each([
    ['bogus: 1', /unknown key 'bogus'/],
    ['train: { stepz: 3 }', /unknown key 'train.stepz'/],
    ['train: { lr: -1 }', /train.lr must be > 0/],
    ['train: { schedule: linear }', /train.schedule must be constant, cosine or wsd/],
    ['elastic: { top_k: [9] }', /elastic.top_k.choices: 9 must be an integer in \[1, 8\]/],
    ['elastic: { experts: { choices: [4, 8], probs: [0, 0] } }', /sample nothing/],
    ['elastic: { depth: [0] }', /elastic.depth.choices: 0 must be an integer in \[1, 3\]/],
    [`data: { source: jsonl, files: [data.jsonl], seq_len: 1, tokenizer: ${TOK} }`, /data.seq_len must be ≥ 2/],
    ['data: { source: csv }', /data.source must be builtin, text or jsonl/],
    ['train: { workers: 2, grad_accum: 1 }', /train.workers 2 needs train.grad_accum ≥ 2/],
  ])('%s → one-line error', async (extra, re) => {
    const a = setup(`bad-${Math.random().toString(36).slice(2)}`, 2, extra);
    const r = await runCli(['train', a.cfg]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(re);
    expect(r.err.trim().split('\n').length).toBe(1);
  });
  it('a config without a model is refused, naming the field', () => {
    expect(() => resolveConfig({ out: 'x' })).toThrow(/exactly one of model.config/);
  });
});

describe('schedules and packing', () => {
  const s = { lr: 1, minLr: 0.1, warmup: 10, steps: 110, decayFraction: 0.2 };
  it('warmup, cosine, wsd', () => {
    expect(lrAt({ ...s, kind: 'cosine' }, 0)).toBeCloseTo(0.1);
    expect(lrAt({ ...s, kind: 'cosine' }, 9)).toBeCloseTo(1);
    expect(lrAt({ ...s, kind: 'cosine' }, 60)).toBeCloseTo(0.55);
    expect(lrAt({ ...s, kind: 'cosine' }, 110)).toBeCloseTo(0.1);
    expect(lrAt({ ...s, kind: 'wsd' }, 80)).toBe(1);
    expect(lrAt({ ...s, kind: 'wsd' }, 109)).toBeCloseTo(0.1);
    expect(lrAt({ ...s, kind: 'wsd' }, 99)).toBeCloseTo(1 - 0.9 * (12 / 22), 6);
    expect(lrAt({ ...s, kind: 'constant' }, 50)).toBe(1);
  });
  it('answer-only targets, whole examples per row, padding not counted', () => {
    const tok = loadTokenizer(TOK)!;
    const ex = [{ prompt: 'add 1+2=', answer: '3' }, { text: 'hello world' }];
    const p = new Packer(listSource(ex, 0), tok, 24, { bos: 1, eos: 2, pad: 0 });
    const b = p.batch(3);
    for (let r = 0; r < 3; r++) {
      const ids = Array.from(b.ids.subarray(r * 24, (r + 1) * 24));
      const tg = Array.from(b.targets.subarray(r * 24, (r + 1) * 24));
      // every counted target is the next id of its row
      tg.forEach((t, i) => { if (t >= 0) expect(ids[i + 1]).toBe(t); });
      // per example (split at bos): a prompt example counts its answer and eos; a text example all but bos; padding nothing
      let want = '';
      let seg: number[] = [];
      const flush = () => {
        const body = seg.filter((x) => x > 2);
        const text = body.length ? tok.decode(body) : '';
        if (text.startsWith('add')) want += '3';
        else if (text) want += text;
        seg = [];
      };
      for (const id of ids) { if (id === 1) flush(); seg.push(id); }
      flush();
      const counted = tg.filter((t) => t > 2);
      expect(counted.length ? tok.decode(counted) : '').toBe(want);
      const last = ids.lastIndexOf(2);
      for (let t = last; t < 24; t++) expect(tg[t]).toBe(-1);
      expect(b.count).toBeGreaterThan(0);
    }
  });
});
