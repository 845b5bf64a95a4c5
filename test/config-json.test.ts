/**
 * config.json as Hugging Face writes it (src/io/config-json.ts): float literals stay floats. transformers 5 refuses an
 * int where its config class declares a float (Mixtral's `router_jitter_noise: 0` — found by loading a pruned
 * checkpoint in transformers 5.17), so extraction, pruning, quantising and random checkpoints keep them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { floatLiteralPaths, hfConfigJson } from '../src/io/config-json.js';
import { extractSubModel } from '../src/models/extract.js';
import { writeRandomCheckpoint } from '../src/models/synth.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-config-json-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');

describe('hfConfigJson', () => {
  it('finds the float literals of JSON text, nested and in arrays', () => {
    const t = '{"a": 0.0, "b": 1, "c": {"d": 1e-6, "e": [1, 2.0, "3.0"]}, "f": "x.0", "g": -4.5E3, "h": [{"i": 0.5}]}';
    expect([...floatLiteralPaths(t)].sort()).toEqual(['["a"]', '["c","d"]', '["c","e",1]', '["g"]', '["h",0,"i"]'].sort());
  });
  it('writes integral values at float paths and float keys with a fraction; the text parses to the same object', () => {
    const src = '{"router_jitter_noise": 0.0, "hidden_size": 64, "scale": 2.0, "rope_scaling": {"factor": 4.0, "type": "yarn"}, "ids": [1, 2]}';
    const cfg = { ...JSON.parse(src), num_hidden_layers: 3, rms_norm_eps: 1 };
    const out = hfConfigJson(cfg, src);
    expect(out).toMatch(/"router_jitter_noise": 0\.0,/);
    expect(out).toMatch(/"scale": 2\.0,/);
    expect(out).toMatch(/"factor": 4\.0,/);
    expect(out).toMatch(/"rms_norm_eps": 1\.0\n/);
    expect(out).toMatch(/"hidden_size": 64,/);
    expect(out).toMatch(/"num_hidden_layers": 3,/);
    expect(out).toMatch(/\[\n {4}1,\n {4}2\n {2}\]/);
    expect(JSON.parse(out)).toEqual(cfg);
    expect(out.endsWith('}\n')).toBe(true);
  });
  it('an extracted mixtral keeps router_jitter_noise a float; a random checkpoint writes rms_norm_eps as one', () => {
    const out = path.join(tmp, 'mixtral-2');
    extractSubModel(path.join(FIX, 'mixtral'), out, { layers: [0, 1] });
    const text = fs.readFileSync(path.join(out, 'config.json'), 'utf8');
    expect(fs.readFileSync(path.join(FIX, 'mixtral/config.json'), 'utf8')).toMatch(/"router_jitter_noise": 0\.0/);
    expect(text).toMatch(/"router_jitter_noise": 0\.0/);
    const r = path.join(tmp, 'random');
    writeRandomCheckpoint(r, { ...JSON.parse(fs.readFileSync(path.join(FIX, 'qwen3_moe/config.json'), 'utf8')), rms_norm_eps: 1, rope_theta: 10000 });
    const rt = fs.readFileSync(path.join(r, 'config.json'), 'utf8');
    expect(rt).toMatch(/"rms_norm_eps": 1\.0/);
    expect(rt).toMatch(/"rope_theta": 10000\.0/);
  });
});
