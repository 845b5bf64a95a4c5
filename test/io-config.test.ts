/**
 * src/io/config.ts on its own: the typed reader's messages (each names the key and what it must be), its ranges, and
 * RoPE as transformers reads it from `rope_parameters` / `rope_scaling` (formulas re-derived here from transformers'
 * rotary-embedding init functions, not taken from moekit).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigReader, rangeText, readConfig, SIZE_LIMITS } from '../src/io/config.js';
import { expectError, scratchDir } from './helpers.js';

const F = 'cfg.json';
const r = (raw: Record<string, unknown>) => new ConfigReader(raw, F);
/** the message of the MoekitError naming F that a call throws (compared whole by the caller) */
const err = (f: () => unknown): string => expectError(f, /^/, F).message;

describe('rangeText', () => {
  it('names the interval, its open end and a refused 0', () => {
    expect(rangeText({ min: 0 }, 10, true)).toBe('an integer in [0, 10]');
    expect(rangeText({ min: 0, exclusiveMin: true }, 10, false)).toBe('a number in (0, 10]');
    expect(rangeText({ min: 1 }, undefined, true)).toBe('an integer ≥ 1');
    expect(rangeText({ min: 0, exclusiveMin: true }, undefined, false)).toBe('a number > 0');
    expect(rangeText({}, 5, false)).toBe('a number ≤ 5');
    expect(rangeText({ nonZero: true }, 5, false)).toBe('a number ≤ 5 other than 0');
    expect(rangeText({ nonZero: true }, undefined, false)).toBe('a number other than 0');
    expect(rangeText({}, undefined, true)).toBe('an integer');
    expect(rangeText({ min: 2, nonZero: true }, undefined, true)).toBe('an integer ≥ 2 other than 0');
  });
});

describe('ConfigReader scalars', () => {
  it('num/int: value, default for absent or null, missing key, wrong type', () => {
    expect(r({ a: 2.5 }).num('a')).toBe(2.5);
    expect(r({}).num('a', 7)).toBe(7);
    expect(r({ a: null }).num('a', 7)).toBe(7);
    expect(err(() => r({}).num('a'))).toBe("missing key 'a'");
    expect(err(() => r({ a: '3' }).num('a'))).toBe(`key 'a' must be a finite number, got "3"`);
    expect(err(() => r({ a: Infinity }).num('a', 1))).toBe('key \'a\' must be a finite number, got null');
    expect(r({ a: 3 }).int('a')).toBe(3);
    expect(err(() => r({ a: 2.5 }).int('a'))).toBe("key 'a' must be an integer ≥ 0, got 2.5");
    expect(err(() => r({ a: -1 }).int('a'))).toBe("key 'a' must be an integer ≥ 0, got -1");
    expect(r({ a: 0 }).int('a')).toBe(0);
  });
  it('ranges: inclusive and exclusive minimum, maximum, nonZero, and the size limits', () => {
    expect(r({ a: 0 }).num('a', undefined, { min: 0 })).toBe(0);
    expect(err(() => r({ a: 0 }).num('a', undefined, { min: 0, exclusiveMin: true }))).toBe("key 'a' must be a number > 0, got 0");
    expect(r({ a: 1e-9 }).num('a', undefined, { min: 0, exclusiveMin: true })).toBe(1e-9);
    expect(r({ a: 5 }).num('a', undefined, { max: 5 })).toBe(5);
    expect(err(() => r({ a: 5.5 }).num('a', undefined, { max: 5 }))).toBe("key 'a' must be a number ≤ 5, got 5.5");
    expect(err(() => r({ a: 0 }).num('a', undefined, { nonZero: true }))).toBe("key 'a' must be a number other than 0, got 0");
    expect(r({ a: -2 }).num('a', undefined, { nonZero: true })).toBe(-2);
    const lim = SIZE_LIMITS['hidden_size'];
    expect(r({ hidden_size: lim }).int('hidden_size')).toBe(lim);
    expect(err(() => r({ hidden_size: lim + 1 }).int('hidden_size'))).toBe(`key 'hidden_size' must be an integer in [0, ${lim}], got ${lim + 1}`);
    // an explicit max overrides the size limit
    expect(err(() => r({ hidden_size: 9 }).int('hidden_size', undefined, { max: 8 }))).toBe("key 'hidden_size' must be an integer in [0, 8], got 9");
    // a default is not range-checked (the architecture chose it)
    expect(r({}).int('hidden_size', -3)).toBe(-3);
  });
  it('bool, str, arr, ids, has, ensure', () => {
    expect(r({ b: false }).bool('b', true)).toBe(false);
    expect(r({ b: null }).bool('b', true)).toBe(true);
    expect(r({}).bool('b', false)).toBe(false);
    expect(err(() => r({ b: 1 }).bool('b', true))).toBe("key 'b' must be true or false, got 1");
    expect(r({ s: 'x' }).str('s')).toBe('x');
    expect(r({ s: null }).str('s', 'd')).toBe('d');
    expect(err(() => r({}).str('s'))).toBe("missing key 's'");
    expect(err(() => r({ s: 3 }).str('s'))).toBe("key 's' must be a string, got 3");
    expect(r({ l: [1, 'a'] }).arr('l')).toEqual([1, 'a']);
    expect(r({ l: null }).arr('l')).toBeNull();
    expect(r({}).arr('l')).toBeNull();
    expect(err(() => r({ l: { a: 1 } }).arr('l'))).toBe(`key 'l' must be a list, got {"a":1}`);
    expect(r({ e: 2 }).ids('e')).toEqual([2]);
    expect(r({ e: [1, 3] }).ids('e')).toEqual([1, 3]);
    expect(r({ e: null }).ids('e')).toEqual([]);
    expect(r({}).ids('e')).toEqual([]);
    expect(err(() => r({ e: [1, 2.5] }).ids('e'))).toBe('key \'e\' must be an integer token id or a list of them, got [1,2.5]');
    expect(err(() => r({ e: '2' }).ids('e'))).toBe('key \'e\' must be an integer token id or a list of them, got "2"');
    expect(r({ a: 0 }).has('a')).toBe(true);
    expect(r({ a: null }).has('a')).toBe(false);
    expect(r({}).has('a')).toBe(false);
    expect(() => r({}).ensure(1, 'm')).not.toThrow();
    expect(err(() => r({}).ensure(0, 'the message'))).toBe('the message');
  });
});

describe('ConfigReader.rope', () => {
  it('default: theta from rope_theta or rope_parameters (which wins over rope_scaling), factor 1', () => {
    const d = r({ rope_theta: 1e4 }).rope(16, false);
    expect(d).toMatchObject({ type: 'default', theta: 1e4, dim: 16, interleaved: false, factor: 1 });
    expect(d.originalMaxPositions).toBeUndefined();
    expect(d.truncate).toBeUndefined();
    expect(r({ rope_theta: 1, rope_parameters: { rope_theta: 5e5, rope_type: 'default' } }).rope(8, true)).toMatchObject({ theta: 5e5, interleaved: true });
    expect(r({ rope_theta: 1e4, rope_scaling: { type: 'linear', factor: 2 }, rope_parameters: { factor: 4 } }).rope(8, false)).toMatchObject({ type: 'linear', factor: 4 });
    expect(r({ rope_scaling: { rope_theta: 3, type: 'linear', factor: 2 } }).rope(8, false)).toMatchObject({ theta: 3, factor: 2 });
    expect(err(() => r({}).rope(8, false))).toBe("missing key 'rope_theta' (or 'rope_parameters.rope_theta')");
    expect(err(() => r({ rope_theta: 1e4, rope_parameters: 3 }).rope(8, false))).toBe("key 'rope_parameters' must be an object");
    expect(err(() => r({ rope_theta: 1e4, rope_scaling: 'yarn' }).rope(8, false))).toBe("key 'rope_scaling' must be an object");
  });
  it('dynamic: the default frequencies, of a base raised by the NTK alpha (HunYuan: theta · alpha^(d/(d−2)))', () => {
    expect(r({ rope_theta: 1e4, rope_scaling: { type: 'dynamic', factor: 2 } }).rope(16, false)).toMatchObject({ type: 'default', theta: 1e4, factor: 2 });
    const d = r({ rope_theta: 1e4, rope_scaling: { type: 'dynamic', alpha: 1000 } }).rope(128, false);
    expect(d.type).toBe('default');
    expect(d.theta).toBeCloseTo(1e4 * 1000 ** (128 / 126), 3);
    expect(r({ rope_theta: 1e4, rope_scaling: { type: 'dynamic', alpha: null } }).rope(4, false).theta).toBe(1e4);
    for (const a of [0, -1, 'x', Infinity]) {
      expect(err(() => r({ rope_theta: 1e4, rope_scaling: { type: 'dynamic', alpha: a } }).rope(16, false))).toMatch(/^rope parameter 'alpha' must be a positive number, got /);
    }
    expect(err(() => r({ rope_theta: 1e4, rope_scaling: { type: 'dynamic', alpha: 2 } }).rope(2, false))).toBe("rope parameter 'alpha' needs more than 2 rotated dims per head, got 2");
  });
  it('unsupported types and non-numeric parameters are refused by name', () => {
    expect(err(() => r({ rope_theta: 1e4, rope_scaling: { type: 'su', factor: 2 } }).rope(8, false))).toBe("unsupported rope type 'su' (supported: default, dynamic, linear, yarn, llama3, longrope)");
    expect(err(() => r({ rope_theta: 1e4, rope_scaling: { type: 'linear', factor: '2' } }).rope(8, false))).toBe("rope parameter 'factor' must be a number");
    expect(err(() => r({ rope_theta: 1e4, rope_scaling: { type: 'linear' } }).rope(8, false))).toBe("rope type 'linear' needs 'factor'");
    expect(err(() => r({ rope_theta: 1e4, rope_scaling: { type: 'llama3' } }).rope(8, false))).toBe("rope type 'llama3' needs 'factor'");
  });
  it('yarn (and deepseek_yarn): its extras; factor from max / original positions when absent', () => {
    const y = r({ rope_theta: 1e4, max_position_embeddings: 8192, rope_scaling: { type: 'deepseek_yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 0.5, truncate: false, attention_factor: 0.9 } }).rope(64, true);
    expect(y).toMatchObject({ type: 'yarn', factor: 40, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 0.5, truncate: false, attentionFactor: 0.9 });
    const noFactor = r({ rope_theta: 1e4, max_position_embeddings: 8192, rope_parameters: { rope_type: 'yarn', original_max_position_embeddings: 2048 } }).rope(64, false);
    expect(noFactor.factor).toBe(4);
    // no original: the model's own max positions, and then a factor is needed
    expect(r({ rope_theta: 1e4, max_position_embeddings: 1000, rope_scaling: { type: 'yarn', factor: 2 } }).rope(8, false).originalMaxPositions).toBe(1000);
    expect(err(() => r({ rope_theta: 1e4, rope_scaling: { type: 'yarn' } }).rope(8, false))).toBe("rope type 'yarn' needs 'factor'");
    expect(r({ rope_theta: 1e4, rope_scaling: { type: 'yarn', factor: 2, truncate: 1 } }).rope(8, false).truncate).toBe(true);
  });
  it('llama3: low and high frequency factors', () => {
    expect(r({ rope_theta: 5e5, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }).rope(128, false))
      .toMatchObject({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  });
  it('longrope: short/long factors one per rotated pair; the attention factor as transformers derives it', () => {
    const sf = [1, 1.5, 2, 2.5], lf = [3, 3, 3, 3];
    const base = { rope_theta: 1e4, max_position_embeddings: 131072 };
    // √(1 + ln(s) / ln(original)), s = max positions / original (transformers _compute_longrope_parameters)
    const d = r({ ...base, original_max_position_embeddings: 4096, rope_scaling: { type: 'longrope', short_factor: sf, long_factor: lf } }).rope(8, false);
    expect(d).toMatchObject({ type: 'longrope', factor: 1, shortFactor: sf, longFactor: lf, originalMaxPositions: 4096 });
    expect(d.attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 12);
    // PhiMoE's short_mscale wins, then attention_factor; a factor ≤ 1 gives 1
    expect(r({ ...base, rope_scaling: { type: 'longrope', original_max_position_embeddings: 4096, short_mscale: 1.2, attention_factor: 1.1, short_factor: sf, long_factor: lf } }).rope(8, false).attentionFactor).toBe(1.2);
    expect(r({ ...base, rope_scaling: { type: 'longrope', original_max_position_embeddings: 4096, attention_factor: 1.1, short_factor: sf, long_factor: lf } }).rope(8, false).attentionFactor).toBe(1.1);
    expect(r({ ...base, rope_scaling: { type: 'longrope', original_max_position_embeddings: 4096, factor: 1, short_factor: sf, long_factor: lf } }).rope(8, false).attentionFactor).toBe(1);
    const f = r({ ...base, rope_scaling: { type: 'longrope', original_max_position_embeddings: 4096, factor: 8, short_factor: sf, long_factor: lf } }).rope(8, false);
    expect(f.attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(8) / Math.log(4096)), 12);
    expect(f.factor).toBe(8);
    expect(err(() => r({ ...base, rope_scaling: { type: 'longrope', short_factor: sf, long_factor: lf } }).rope(8, false))).toBe("rope type 'longrope' needs 'original_max_position_embeddings'");
    for (const bad of [[1, 2, 3], [1, 2, 3, 0], [1, 2, 3, 'x'], null]) {
      expect(err(() => r({ ...base, original_max_position_embeddings: 4096, rope_scaling: { type: 'longrope', short_factor: bad, long_factor: lf } }).rope(8, false)))
        .toBe(`rope parameter 'short_factor' must list 4 positive numbers (one per rotated pair), got ${JSON.stringify(bad)}`);
    }
    expect(err(() => r({ ...base, original_max_position_embeddings: 4096, rope_scaling: { type: 'longrope', short_factor: sf, long_factor: [1] } }).rope(8, false))).toMatch(/^rope parameter 'long_factor' must list 4 /);
  });
});

describe('readConfig', () => {
  const scratch = scratchDir('moekit-io-config-');
  it('a directory or a file; errors name the path', () => {
    const tmp = scratch();
    fs.writeFileSync(path.join(tmp, 'config.json'), '{"hidden_size": 8}');
    expect(readConfig(tmp).int('hidden_size')).toBe(8);
    expect(readConfig(path.join(tmp, 'config.json')).file).toBe(path.join(tmp, 'config.json'));
    expect(readConfig(tmp).file).toBe(path.join(tmp, 'config.json'));
    expectError(() => readConfig(path.join(tmp, 'nope')), /^no such model directory or config file$/, path.join(tmp, 'nope'));
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    expectError(() => readConfig(empty), /^no config\.json in the model directory$/, path.join(empty, 'config.json'));
    for (const [name, text] of [['list.json', '[1]'], ['null.json', 'null'], ['num.json', '3']]) {
      fs.writeFileSync(path.join(tmp, name), text);
      expectError(() => readConfig(path.join(tmp, name)), /^config must be a JSON object$/, path.join(tmp, name));
    }
  });
});
