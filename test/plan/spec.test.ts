import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hardwarePreset, presetNames } from '../../src/plan/hardware.js';
import { loadSpec, resolveSpec } from '../../src/plan/spec.js';
import { MoekitError } from '../../src/util/errors.js';

const base = () => ({
  model: { preset: 'mixtral-8x7b' },
  hardware: { preset: 'h100', devices: 16 },
  parallel: { tp: 2, ep: 8 },
  training: { seq_len: 4096, global_batch: 64 },
});

function errorOf(raw: Record<string, unknown>): MoekitError {
  try {
    resolveSpec(raw);
  } catch (e) {
    if (e instanceof MoekitError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('spec errors name the field', () => {
  it('tp not dividing heads', () => {
    const e = errorOf({ ...base(), model: { preset: 'mixtral-8x7b', heads: 32 }, parallel: { tp: 3 }, hardware: { preset: 'h100', devices: 3 } });
    expect(e.file).toBe('parallel.tp');
    expect(e.message).toMatch(/tp 3 does not divide heads 32/);
  });
  it('zero devices', () => {
    const e = errorOf({ ...base(), hardware: { preset: 'h100', devices: 0 } });
    expect(e.file).toBe('hardware.devices');
  });
  it('unknown preset', () => {
    const e = errorOf({ ...base(), hardware: { preset: 'h300', devices: 8 } });
    expect(e.file).toBe('hardware.preset');
    expect(e.message).toMatch(/unknown hardware preset 'h300'/);
  });
  it('unknown model preset and unknown fields', () => {
    expect(errorOf({ ...base(), model: { preset: 'gpt-5' } }).file).toBe('model.preset');
    expect(errorOf({ ...base(), parallel: { tp: 2, tensor: 4 } }).file).toBe('parallel.tensor');
  });
  it('ep not dividing experts, batch not divisible, schedule typo', () => {
    expect(errorOf({ ...base(), parallel: { tp: 2, ep: 3 } }).file).toBe('parallel.ep');
    expect(errorOf({ ...base(), training: { seq_len: 4096, global_batch: 6 } }).file).toBe('training.global_batch');
    expect(errorOf({ ...base(), parallel: { schedule: '2f2b' } }).file).toBe('parallel.schedule');
  });
});

describe('spec files', () => {
  it('YAML with presets and overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moekit-plan-'));
    const p = join(dir, 'spec.yaml');
    writeFileSync(p, 'model: mixtral-8x7b\nhardware: { preset: H100, devices: 16, inter_gbps: 25 }\nparallel: { tp: 2, ep: 8 }\ntraining: { seq_len: 4096, global_batch: 64 }\n');
    const s = loadSpec(p);
    expect(s.parallel.dp).toBe(8);
    expect(s.parallel.etp).toBe(2); // defaults to tp
    expect(s.hardware.inter_bw).toBe(25e9);
    expect(s.hardware.source.inter_bw).toBe('spec override');
  });
  it('broken YAML is one clear error naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moekit-plan-'));
    const p = join(dir, 'bad.yaml');
    writeFileSync(p, 'model: [unclosed\n');
    expect(() => loadSpec(p)).toThrow(MoekitError);
  });
});

describe('docs', () => {
  it('the example spec in docs/planner.md resolves', () => {
    const doc = readFileSync('docs/planner.md', 'utf8');
    const yaml = doc.split('```yaml\n')[1].split('```')[0];
    const dir = mkdtempSync(join(tmpdir(), 'moekit-plan-doc-'));
    writeFileSync(join(dir, 'spec.yaml'), yaml);
    const s = loadSpec(join(dir, 'spec.yaml'));
    expect(s.parallel.dp).toBe(128);
    expect(s.training.node_limit).toBe(4);
  });
  it('every hardware preset number has a source', () => {
    for (const name of presetNames()) {
      const hw = hardwarePreset(name);
      for (const k of ['devices_per_node', 'scaleup_domain', 'intra_bw', 'inter_bw', 'host_bw', 'hbm_bytes', 'hbm_bw', 'peak_bf16', 'peak_fp8', 'gemm_eff', 'bw_eff', 'coll_eff']) {
        expect(hw.source[k], `${name}.${k}`).toBeTruthy();
      }
    }
  });
});
