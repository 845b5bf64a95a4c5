/**
 * src/io/config-json.ts against hand-written JSON text: which number literals are floats (a '.', 'e' or 'E' in a
 * literal that starts with a digit; never true / false / null, never inside strings), their paths through objects,
 * arrays and escaped keys, text that is not JSON, and hfConfigJson's output written out whole.
 */
import { describe, expect, it } from 'vitest';
import { FLOAT_KEYS, floatLiteralPaths, hfConfigJson } from '../src/io/config-json.js';

const paths = (text: string) => [...floatLiteralPaths(text)].sort();

describe('floatLiteralPaths', () => {
  it('float literals by their paths; integers, strings, booleans and null are not', () => {
    const text = '{"a": 1.0, "b": 2, "c": [1, 2.5e3, {"d": -0.0}], "e": "1.5", "f": {}, "g": [], "h": 1E5, "i": true, "j": false, "k": null, "l": 3e2, "m": -7}';
    expect(paths(text)).toEqual(['["a"]', '["c",1]', '["c",2,"d"]', '["h"]', '["l"]']);
    expect(JSON.parse(text)).toBeTruthy();
  });
  it('whitespace of every kind, escaped quotes and backslashes in keys and strings', () => {
    const text = '{\r\n\t"k\\"q" :\t3.0 ,\n  "s": "a\\"b\\\\", "t\\\\": [ 1.5 ,\t2 ] , "u":{ "v" : [ [ 0.1 ] ] }\n}\n';
    expect(JSON.parse(text)).toEqual({ 'k"q': 3, s: 'a"b\\', 't\\': [1.5, 2], u: { v: [[0.1]] } });
    expect(paths(text)).toEqual(['["k\\"q"]', '["t\\\\",0]', '["u","v",0,0]']);
  });
  it('top-level values and empty containers', () => {
    expect(paths('1.5')).toEqual(['[]']);
    expect(paths('[1.5, [], {}, 2.0]')).toEqual(['[0]', '[3]']);
    expect(paths('{}')).toEqual([]);
    expect(paths(' [ ] ')).toEqual([]);
    expect(paths('"1.5"')).toEqual([]);
  });
  it('text that is not JSON: no float literals at all (not the ones before the break)', () => {
    expect(paths('{"a": 1.0, "b": 2.0')).toEqual([]);
    expect(paths('{"a": 1.0, "b')).toEqual([]);
    expect(paths('')).toEqual([]);
  });
});

describe('hfConfigJson', () => {
  it('two-space JSON with a newline; integral floats of the source text and of the float keys written X.0', () => {
    const cfg = { a: 1, b: 2, n: { rope_theta: 10000, c: [3, 4] }, rms_norm_eps: 1e-6, factor: -2, s: 'x', t: true, z: null, big: 1e21, e: 1e20 };
    const src = '{"a": 1.0, "b": 2, "n": {"rope_theta": 10000, "c": [3, 4.0]}}';
    expect(hfConfigJson(cfg, src)).toBe(
      '{\n  "a": 1.0,\n  "b": 2,\n  "n": {\n    "rope_theta": 10000.0,\n    "c": [\n      3,\n      4.0\n    ]\n  },\n'
      + '  "rms_norm_eps": 0.000001,\n  "factor": -2.0,\n  "s": "x",\n  "t": true,\n  "z": null,\n  "big": 1e+21,\n  "e": 100000000000000000000\n}\n');
    expect(JSON.parse(hfConfigJson(cfg, src))).toEqual(cfg);
  });
  it('no source text: only the float keys; an empty source is none', () => {
    expect(hfConfigJson({ a: 1, router_jitter_noise: 0, list: [1], initializer_range: [1] })).toBe('{\n  "a": 1,\n  "router_jitter_noise": 0.0,\n  "list": [\n    1\n  ],\n  "initializer_range": [\n    1\n  ]\n}\n');
    expect(hfConfigJson({ a: 1 }, '')).toBe('{\n  "a": 1\n}\n');
    expect(hfConfigJson([0, 1.5], '[0.0, 1.5]')).toBe('[\n  0.0,\n  1.5\n]\n');
    expect(hfConfigJson(5, '5.0')).toBe('5.0\n');
  });
  it('the float keys transformers declares', () => {
    for (const k of ['rms_norm_eps', 'rope_theta', 'router_jitter_noise', 'routed_scaling_factor', 'factor', 'beta_fast', 'high_freq_factor']) expect(FLOAT_KEYS.has(k)).toBe(true);
    expect(FLOAT_KEYS.has('vocab_size')).toBe(false);
    expect(FLOAT_KEYS.size).toBe(30);
    // from 1e21 JSON writes an exponent: left as it is; below, the whole digits with .0
    expect(hfConfigJson({ factor: 1e21, rope_theta: -1e20, mscale: -1e21 })).toBe('{\n  "factor": 1e+21,\n  "rope_theta": -100000000000000000000.0,\n  "mscale": -1e+21\n}\n');
  });
});
