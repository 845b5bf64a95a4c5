/**
 * Each architecture's tensor-name table names exactly the tensors the reference implementation
 * saved, with their shapes; random checkpoints built from a config load and run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { readConfig } from '../src/io/config.js';
import { MoeModel } from '../src/models/model.js';
import { archFor } from '../src/models/registry.js';
import { tensorTable, writeRandomCheckpoint } from '../src/models/synth.js';
import { FIXTURE_ARCHS } from './archs.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = FIXTURE_ARCHS;

describe.each(ARCHS)('%s tensor table', (arch) => {
  it('matches the names and shapes of the reference checkpoint', () => {
    const dir = path.join(ROOT, arch);
    const c = readConfig(dir);
    const table = tensorTable(archFor(c).describe(c));
    const ck = Checkpoint.open(dir);
    const want = ck.names().map((n) => `${n} [${ck.info(n).shape.join(',')}]`).sort();
    const got = table.map((t) => `${t.name} [${t.shape.join(',')}]`).sort();
    expect(got).toEqual(want);
    ck.close();
  });

  it('a random checkpoint from its config loads and gives finite, seed-determined logits', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-synth-'));
    try {
      const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, arch, 'config.json'), 'utf8'));
      writeRandomCheckpoint(path.join(tmp, 'a'), cfg, 7);
      writeRandomCheckpoint(path.join(tmp, 'b'), cfg, 7);
      const ids = Int32Array.from([1, 5, 9, 60]); // inside every fixture's vocabulary (the newer ones have 128 or 64 tokens)
      const la = MoeModel.load(path.join(tmp, 'a')).forward(ids, 1, 4);
      const lb = MoeModel.load(path.join(tmp, 'b')).forward(ids, 1, 4);
      expect(la.every(Number.isFinite)).toBe(true);
      expect(Array.from(la)).toEqual(Array.from(lb));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('sharded checkpoints', () => {
  it('a model written in shards with an index loads and runs like the single file', async () => {
    const { writeShardedSafetensors } = await import('../src/io/safetensors-write.js');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-shards-'));
    try {
      const src = path.join(ROOT, 'deepseek_v3');
      const ck = Checkpoint.open(src);
      const entries = ck.names().map((n) => ({ name: n, dtype: 'F32' as const, shape: ck.info(n).shape, data: () => ck.readF32(n) }));
      const res = writeShardedSafetensors(tmp, entries, { maxShardBytes: 300_000 });
      ck.close();
      expect(res.files.length).toBeGreaterThan(2);
      expect(fs.existsSync(path.join(tmp, 'model.safetensors.index.json'))).toBe(true);
      fs.copyFileSync(path.join(src, 'config.json'), path.join(tmp, 'config.json'));
      const ids = Int32Array.from([4, 8, 15, 16, 23, 42]);
      const a = MoeModel.load(src).forward(ids, 1, 6);
      const b = MoeModel.load(tmp).forward(ids, 1, 6);
      expect(Array.from(b)).toEqual(Array.from(a));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
