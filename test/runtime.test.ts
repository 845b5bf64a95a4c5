/**
 * Runtime behaviour: the KV cache gives the same logits as a full forward; older config keys
 * (rope_theta / rope_scaling) load the same model as transformers 5's rope_parameters; RoPE
 * scaling variants obey their definitions; sampling obeys temperature / top-k / top-p; the
 * tokenizer round-trips and --prompt works.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoeModel } from '../src/models/model.js';
import { ropeFrequencies } from '../src/models/rope.js';
import type { RopeDesc } from '../src/models/desc.js';
import { generate } from '../src/runtime/generate.js';
import { rng, sample } from '../src/runtime/sampling.js';
import { maxAbsDiff } from './helpers.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');


describe.each(['gpt_oss', 'deepseek_v3', 'qwen2_moe'])('%s KV cache', (arch) => {
  it('prefill + one-token steps give the logits of one full forward, for a batch of 2', () => {
    const m = MoeModel.load(path.join(ROOT, arch));
    const T = 14, B = 2; // past gpt-oss's sliding window of 8
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % 512);
    const full = m.forward(ids, B, T); // [B, T, V]
    const cache = m.newCache(B, 4); // small capacity: exercises growth
    const P = 5;
    const pre = new Int32Array(B * P);
    for (let b = 0; b < B; b++) pre.set(ids.subarray(b * T, b * T + P), b * P);
    m.forward(pre, B, P, { cache });
    for (let t = P; t < T; t++) {
      const step = Int32Array.from({ length: B }, (_, b) => ids[b * T + t]);
      const lg = m.forward(step, B, 1, { cache }); // [B, 1, V]
      for (let b = 0; b < B; b++) {
        const want = full.subarray((b * T + t) * 512, (b * T + t + 1) * 512);
        expect(maxAbsDiff(lg.subarray(b * 512, (b + 1) * 512), want), `t=${t} b=${b}`).toBeLessThan(1e-5);
      }
    }
  });
});

describe('config key variants', () => {
  it.each(['mixtral', 'gpt_oss'])('%s: rope_theta / rope_scaling load the same model as rope_parameters', (arch) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-rope-'));
    try {
      const src = path.join(ROOT, arch);
      const cfg = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
      const rp = cfg.rope_parameters;
      delete cfg.rope_parameters;
      cfg.rope_theta = rp.rope_theta;
      if (rp.rope_type !== 'default') {
        const { rope_theta: _t, ...rest } = rp;
        cfg.rope_scaling = rest;
      }
      fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(cfg));
      fs.symlinkSync(path.join(src, 'model.safetensors'), path.join(tmp, 'model.safetensors'));
      const ids = Int32Array.from([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]);
      const a = MoeModel.load(src).forward(ids, 1, ids.length);
      const b = MoeModel.load(tmp).forward(ids, 1, ids.length);
      expect(maxAbsDiff(a, b)).toBe(0);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('RoPE scaling', () => {
  const base: RopeDesc = { type: 'default', theta: 10000, dim: 64, interleaved: false, factor: 1 };
  const def = ropeFrequencies(base).invFreq;
  it('linear divides every frequency by the factor', () => {
    const lin = ropeFrequencies({ ...base, type: 'linear', factor: 4 }).invFreq;
    for (let i = 0; i < def.length; i++) expect(lin[i]).toBeCloseTo(def[i] / 4, 7);
  });
  it('llama3 keeps high frequencies, divides low ones, and blends between', () => {
    const l3 = ropeFrequencies({ ...base, type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }).invFreq;
    for (let i = 0; i < def.length; i++) {
      const wl = (2 * Math.PI) / def[i];
      if (wl < 8192 / 4) expect(l3[i]).toBe(def[i]);
      else if (wl > 8192) expect(l3[i]).toBeCloseTo(def[i] / 8, 9);
      else { expect(l3[i]).toBeLessThanOrEqual(def[i]); expect(l3[i]).toBeGreaterThanOrEqual(def[i] / 8); }
    }
  });
  it('yarn interpolates low frequencies, keeps high ones, and scales attention by 0.1·ln(s)+1', () => {
    const y = ropeFrequencies({ ...base, type: 'yarn', factor: 32, originalMaxPositions: 4096 });
    expect(y.attentionFactor).toBeCloseTo(0.1 * Math.log(32) + 1, 6);
    expect(y.invFreq[0]).toBe(def[0]);
    expect(y.invFreq[def.length - 1]).toBeCloseTo(def[def.length - 1] / 32, 9);
  });
});

describe('sampling', () => {
  const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);
  it('greedy and temperature 0 take the argmax', () => {
    expect(sample(logits, { greedy: true }, rng(1))).toBe(1);
    expect(sample(logits, { temperature: 0 }, rng(1))).toBe(1);
  });
  it('top-k 2 draws only the two largest, in proportion to their softmax', () => {
    const r = rng(42);
    const n = [0, 0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) n[sample(logits, { topK: 2, temperature: 1 }, r)]++;
    expect(n[0] + n[2] + n[3]).toBe(0);
    const p1 = Math.exp(3) / (Math.exp(3) + Math.exp(2.9));
    expect(n[1] / 20000).toBeCloseTo(p1, 1);
  });
  it('top-p keeps the smallest prefix reaching p', () => {
    const r = rng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) seen.add(sample(logits, { topP: 0.5, temperature: 1 }, r));
    // p(1) ≈ 0.39, p(4) ≈ 0.35: the prefix {1, 4} reaches 0.5
    expect([...seen].sort()).toEqual([1, 4]);
  });
  it('high temperature flattens the distribution', () => {
    const r = rng(5);
    const n = [0, 0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) n[sample(logits, { temperature: 100 }, r)]++;
    for (const c of n) expect(c / 20000).toBeCloseTo(0.2, 1);
  });
});

describe('tokenizer', () => {
  const dir = path.resolve(__dirname, '../examples/tiny-moe');
  it('round-trips text through the bundled tokenizer.json', () => {
    const tok = loadTokenizer(dir)!;
    const text = 'Mixture-of-Experts models route each token to 2 of 8 experts.';
    const ids = tok.encode(text);
    expect(ids.every((i) => i >= 0 && i < 512)).toBe(true);
    expect(ids.length).toBeLessThan(text.length);
    expect(tok.decode(ids)).toBe(text);
  });
  it('applies the chat template (Jinja) as transformers renders it', () => {
    const tok = loadTokenizer(dir)!;
    const ids = tok.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }], true);
    expect(tok.decode(ids)).toBe('system: Be brief.\nuser: Hi there\nassistant:');
  });

  it('generation from a prompt decodes to text', () => {
    const tok = loadTokenizer(dir)!;
    const m = MoeModel.load(dir);
    const r = generate(m, tok.encode('The licenses'), { maxNewTokens: 6, greedy: true });
    expect(r.newTokens).toBeGreaterThan(0);
    expect(typeof tok.decode(r.ids)).toBe('string');
    expect(tok.decode(r.ids).startsWith('The licenses')).toBe(true);
  });
});

describe('MLA compressed KV cache', () => {
  it('gives the logits of the expanded per-head cache (the reference path) with a much smaller cache', () => {
    const m = MoeModel.load(path.join(ROOT, 'deepseek_v3'));
    const ids = Int32Array.from({ length: 2 * 12 }, (_, i) => (i * 53 + 7) % 512);
    const run = (mode: 'latent' | 'expanded') => {
      m.mlaCache = mode;
      const cache = m.newCache(2, 2);
      const pre = new Int32Array(2 * 9);
      for (let b = 0; b < 2; b++) pre.set(ids.subarray(b * 12, b * 12 + 9), b * 9);
      const a = m.forward(pre, 2, 9, { cache });
      const steps: Float32Array[] = [];
      for (let t = 9; t < 12; t++) steps.push(m.forward(Int32Array.from([ids[t], ids[12 + t]]), 2, 1, { cache }));
      return { a, steps, bytes: cache.bytes() };
    };
    const lat = run('latent'), exp = run('expanded');
    m.mlaCache = 'latent';
    expect(maxAbsDiff(lat.a, exp.a)).toBeLessThan(1e-5);
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(lat.steps[i], exp.steps[i])).toBeLessThan(1e-5);
    // per position: (kvLora 32 + rope 8) vs 4 heads × (24 + 16)
    expect(exp.bytes / lat.bytes).toBeCloseTo((4 * (24 + 16)) / (32 + 8), 5);
  });
});
