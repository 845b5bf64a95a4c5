/**
 * The training config (src/train/config.ts): defaults filled, paths resolved against the config's folder, the
 * elastic and mtp sections; and a table of refused values, each a one-line error naming the key.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRaw, DEFAULTS, readConfigFile, resolveConfig } from '../src/train/config.js';
import { MoekitError } from '../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-tcfg-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const base = { model: { from: 'ckpt' }, out: 'run' };

const refuse = (raw: Record<string, unknown>, re: RegExp) => {
  let e: unknown;
  try { resolveConfig(raw, tmp); } catch (x) { e = x; }
  expect(e, JSON.stringify(raw)).toBeInstanceOf(MoekitError);
  expect((e as Error).message, JSON.stringify(raw)).toMatch(re);
};

describe('resolveConfig', () => {
  it('fills the defaults and resolves paths against the base folder', () => {
    const c = resolveConfig({ ...base, data: { source: 'text', files: ['a.txt', '/abs/b.txt'], tokenizer: 'tok' } }, tmp);
    expect(c.model).toEqual({ ...DEFAULTS.model, from: path.join(tmp, 'ckpt') });
    expect(c.data).toEqual({ ...DEFAULTS.data, source: 'text', files: [path.join(tmp, 'a.txt'), '/abs/b.txt'], tokenizer: path.join(tmp, 'tok') });
    expect(c.train).toEqual(DEFAULTS.train);
    expect(c.balance).toEqual(DEFAULTS.balance);
    expect(c.mtp).toEqual(DEFAULTS.mtp);
    expect(c.checkpoint).toEqual(DEFAULTS.checkpoint);
    expect(c.elastic).toBeNull();
    expect(c.log_every).toBe(1);
    expect(c.out).toBe(path.join(tmp, 'run'));
    // a null value means the default
    expect(resolveConfig({ ...base, train: { lr: null, steps: 5 } }, tmp).train).toEqual({ ...DEFAULTS.train, steps: 5 });
    expect(resolveConfig({ ...base, log_every: 7 }, tmp).log_every).toBe(7);
  });

  it('model.config: a mapping as given, or a path to a config.json read from the base folder', () => {
    expect(resolveConfig({ model: { config: { a: 1 } }, out: 'o' }, tmp).model.config).toEqual({ a: 1 });
    fs.writeFileSync(path.join(tmp, 'cfg.json'), JSON.stringify({ hidden_size: 8 }));
    expect(resolveConfig({ model: { config: 'cfg.json' }, out: 'o' }, tmp).model.config).toEqual({ hidden_size: 8 });
  });

  it('elastic: lists or {choices, probs} per axis, samples 1 and distill 0 by default', () => {
    const c = resolveConfig({ ...base, elastic: { depth: [1, 2], top_k: { choices: [1, 2], probs: [1, 3] } } }, tmp);
    expect(c.elastic).toEqual({ depth: { choices: [1, 2], probs: undefined }, experts: undefined, topK: { choices: [1, 2], probs: [1, 3] }, samples: 1, distill: 0 });
    expect(resolveConfig({ ...base, elastic: { samples: 3, distill: 0.5 } }, tmp).elastic).toMatchObject({ samples: 3, distill: 0.5 });
    refuse({ ...base, elastic: { depth: { choices: [1], weights: [1] } } }, /^unknown key 'elastic\.depth\.weights' \(known: choices, probs\)$/);
    refuse({ ...base, elastic: { depth: { choices: ['a'] } } }, /^elastic\.depth\.choices must be a list of numbers, got \["a"\]$/);
    refuse({ ...base, elastic: { experts: { choices: [1], probs: 'x' } } }, /^elastic\.experts\.probs must be a list of numbers/);
  });

  it('mtp: kind, depth and weight', () => {
    expect(resolveConfig({ ...base, mtp: { kind: 'deepseek', depth: 2 } }, tmp).mtp).toEqual({ kind: 'deepseek', depth: 2, weight: 0.3 });
    expect(resolveConfig({ ...base, mtp: { kind: 'group', weight: 0 } }, tmp).mtp).toEqual({ kind: 'group', depth: null, weight: 0 });
  });

  it.each([
    [{ out: 'o' }, /^model: give exactly one of model\.config .* or model\.from/],
    [{ model: { from: 'a', config: {} }, out: 'o' }, /^model: give exactly one of/],
    [{ model: { from: 'a' } }, /^out: the output directory is required$/],
    [{ model: { from: 'a' }, out: '' }, /^out: the output directory is required$/],
    [{ ...base, model: { from: 'a', init_std: 0 } }, /^model\.init_std must be > 0, got 0$/],
    [{ ...base, data: { source: 'csv' } }, /^data\.source must be builtin, text or jsonl, got 'csv'$/],
    [{ ...base, data: { source: 'jsonl' } }, /^data\.files: the jsonl source needs at least one file$/],
    [{ ...base, data: { seq_len: 1 } }, /^data\.seq_len must be ≥ 2, got 1$/],
    [{ ...base, data: { source: 'text', files: ['a'], mix: { sort: 1 } } }, /^data\.mix weighs the built-in corpus's tasks; data\.source is 'text'$/],
    [{ ...base, data: { mix: { sort: -1 } } }, /^data\.mix\.sort must be a number ≥ 0, got -1$/],
    [{ ...base, data: { mix: { sort: 'x' } } }, /^data\.mix\.sort must be a number ≥ 0, got "x"$/],
    [{ ...base, train: { steps: 0 } }, /^train\.steps must be ≥ 1, got 0$/],
    [{ ...base, train: { batch_size: 0 } }, /^train\.batch_size must be ≥ 1, got 0$/],
    [{ ...base, train: { grad_accum: 0 } }, /^train\.grad_accum must be ≥ 1, got 0$/],
    [{ ...base, train: { lr: 0 } }, /^train\.lr must be > 0, got 0$/],
    [{ ...base, train: { lr: 1e-3, min_lr: 2e-3 } }, /^train\.min_lr must be in \[0, lr\], got 0\.002$/],
    [{ ...base, train: { min_lr: -1e-4 } }, /^train\.min_lr must be in \[0, lr\]/],
    [{ ...base, train: { schedule: 'linear' } }, /^train\.schedule must be constant, cosine or wsd, got 'linear'$/],
    [{ ...base, train: { decay_fraction: 0 } }, /^train\.decay_fraction must be in \(0, 1\], got 0$/],
    [{ ...base, train: { decay_fraction: 1.5 } }, /^train\.decay_fraction must be in \(0, 1\], got 1\.5$/],
    [{ ...base, train: { betas: [0.9] } }, /^train\.betas must be two numbers in \[0, 1\), got \[0\.9\]$/],
    [{ ...base, train: { betas: [0.9, 1] } }, /^train\.betas must be two numbers in \[0, 1\)/],
    [{ ...base, train: { betas: [-0.1, 0.9] } }, /^train\.betas must be two numbers/],
    [{ ...base, train: { eps: 0 } }, /^train\.eps must be > 0$/],
    [{ ...base, train: { clip: -1 } }, /^train\.clip must be ≥ 0 \(0: no clipping\)$/],
    [{ ...base, train: { weight_decay: -0.1 } }, /^train\.weight_decay must be ≥ 0$/],
    [{ ...base, train: { workers: 0 } }, /^train\.workers must be ≥ 1, got 0$/],
    [{ ...base, train: { workers: 3, grad_accum: 2 } }, /^train\.workers 3 needs train\.grad_accum ≥ 3 \(each thread takes whole micro-batches\)$/],
    [{ ...base, balance: { switch: -1 } }, /^balance\.switch must be ≥ 0, got -1$/],
    [{ ...base, mtp: { kind: 'medusa' } }, /^mtp\.kind must be none, deepseek or group, got 'medusa'$/],
    [{ ...base, mtp: { depth: 0 } }, /^mtp\.depth must be ≥ 1, got 0$/],
    [{ ...base, mtp: { weight: -1 } }, /^mtp\.weight must be ≥ 0, got -1$/],
    [{ ...base, checkpoint: { keep: 0 } }, /^checkpoint\.keep must be ≥ 1$/],
  ] as [Record<string, unknown>, RegExp][])('refuses %j', (raw, re) => refuse(raw, re));

  it('accepts the edges of each range', () => {
    const c = resolveConfig({ ...base, data: { seq_len: 2 }, train: { steps: 1, lr: 1e-3, min_lr: 1e-3, decay_fraction: 1, betas: [0, 0.999], clip: 0, weight_decay: 0, workers: 2, grad_accum: 2 }, checkpoint: { keep: 1 }, mtp: { depth: 1, weight: 0 } }, tmp);
    expect([c.data.seq_len, c.train.min_lr, c.train.decay_fraction, c.train.workers, c.checkpoint.keep, c.mtp.depth]).toEqual([2, 1e-3, 1, 2, 1, 1]);
    expect(resolveConfig({ ...base, train: { min_lr: 0 } }, tmp).train.min_lr).toBe(0);
  });
});

describe('checkRaw', () => {
  it.each([
    [[1], /^the training config must be a mapping$/],
    [null, /^the training config must be a mapping$/],
    [{ modle: {} }, /^unknown key 'modle' \(known: model, data, train, balance, elastic, mtp, checkpoint, log_every, out, recipe\)$/],
    [{ train: { lr: 1, stpes: 3 } }, /^unknown key 'train\.stpes' \(known: steps, batch_size, /],
    [{ train: 5 }, /^train must be a mapping$/],
    [{ train: [1] }, /^train must be a mapping$/],
    [{ train: { steps: 1.5 } }, /^train\.steps must be a non-negative integer, got 1\.5$/],
    [{ train: { steps: -1 } }, /^train\.steps must be a non-negative integer, got -1$/],
    [{ train: { lr: 'fast' } }, /^train\.lr must be a number, got "fast"$/],
    [{ train: { lr: 11 } }, /^train\.lr must be at most 10 in magnitude, got 11$/],
    [{ train: { lr: -11 } }, /^train\.lr must be at most 10 in magnitude, got -11$/],
    [{ data: { seq_len: 2 ** 20 + 1 } }, /^data\.seq_len must be at most 1048576, got 1048577$/],
    [{ train: { seed: 2 ** 31 + 1 } }, /^train\.seed must be at most 2147483648, got 2147483649$/],
    [{ train: { eps: 2e9 } }, /^train\.eps must be at most 1 in magnitude/],
    [{ balance: { seq: 1e10 } }, /^balance\.seq must be at most 1000 in magnitude/],
    [{ data: { files: ['a', 1] } }, /^data\.files must be a list of strings, got \["a",1\]$/],
    [{ data: { mix: [1] } }, /^data\.mix must be a mapping, got \[1\]$/],
    [{ train: { betas: [0.9, 'x'] } }, /^train\.betas must be a list of numbers/],
    [{ model: { config: 5 } }, /^model\.config must be a mapping or a file path, got 5$/],
    [{ model: { config: [1] } }, /^model\.config must be a mapping or a file path/],
    [{ elastic: { depth: 3 } }, /^elastic\.depth must be a list of choices or \{choices, probs\}, got 3$/],
    [{ out: 5 }, /^out must be a string, got 5$/],
    [{ log_every: 'x' }, /^log_every must be a non-negative integer, got "x"$/],
  ] as [unknown, RegExp][])('refuses %j', (raw, re) => {
    let e: unknown;
    try { checkRaw(raw, 'f.yaml'); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(MoekitError);
    expect((e as Error).message).toMatch(re);
  });
  it('null values inside a section are left to the defaults; a valid config comes back as it is', () => {
    const raw = { train: { lr: null, steps: 3 }, data: { files: ['a'] }, elastic: { depth: { choices: [1] } }, out: 'o', recipe: 'demo' };
    expect(checkRaw(raw)).toBe(raw);
  });
  it('readConfigFile: YAML, malformed YAML named', () => {
    fs.writeFileSync(path.join(tmp, 'ok.yaml'), 'model:\n  from: ckpt\nout: run\ntrain:\n  steps: 4\n');
    expect(readConfigFile(path.join(tmp, 'ok.yaml'))).toEqual({ model: { from: 'ckpt' }, out: 'run', train: { steps: 4 } });
    fs.writeFileSync(path.join(tmp, 'bad.yaml'), 'model: [\n');
    expect(() => readConfigFile(path.join(tmp, 'bad.yaml'))).toThrow(/^malformed YAML: /);
  });
});
