import { describe, it, expect, vi } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { expectError, scratchDir } from './helpers.js';
import { f32ToBf16Array } from '../src/io/dtypes.js';
import { Checkpoint, INDEX_FILE, SINGLE_FILE } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import {
  writeSafetensors, writeShardedSafetensors, shardFileName, type SafetensorsEntry,
} from '../src/io/safetensors-write.js';

const FIXTURE = path.resolve('fixtures/hf-tiny-moe/mixtral');

const scratch = scratchDir('moekit-ckpt-');

const newDir = () => fs.mkdtempSync(path.join(scratch(), 'd-'));

/** 10 tensors of 4·(i+1)·8 bytes each: layers.i.w = [i+1, 8] F32 filled with i + j/1000. */
function entries(count = 10): SafetensorsEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `layers.${i}.w`, dtype: 'F32' as const, shape: [i + 1, 8],
    data: () => Float32Array.from({ length: (i + 1) * 8 }, (_, j) => i + j / 1000),
  }));
}

describe('Checkpoint: the real fixture', () => {
  it('opens the directory through model.safetensors (not reference.safetensors)', () => {
    const ck = Checkpoint.open(FIXTURE);
    try {
      expect(ck.indexPath).toBeNull();
      expect(ck.files()).toEqual([path.join(FIXTURE, 'model.safetensors')]);
      expect(ck.has('lm_head.weight')).toBe(true);
      expect(ck.has('logits')).toBe(false);
      const info = ck.info('model.embed_tokens.weight');
      expect(info).toMatchObject({ dtype: 'F32', shape: [512, 64], file: path.join(FIXTURE, 'model.safetensors') });
      const dataBytes = fs.statSync(path.join(FIXTURE, 'model.safetensors')).size - 8 - 11024;
      expect(ck.totalBytes()).toBe(dataBytes);
      expect(ck.bytesByDtype()).toEqual({ F32: dataBytes });
      expect(ck.readF32('model.norm.weight').length).toBe(64);
      expectError(() => ck.readF32('logits'), /no tensor named 'logits' in this checkpoint/, path.join(FIXTURE, 'model.safetensors'));
    } finally {
      ck.close();
    }
  });

  it('opens a single file given directly', () => {
    const p = path.join(FIXTURE, 'reference.safetensors');
    const ck = Checkpoint.open(p);
    expect(ck.files()).toEqual([p]);
    expect(ck.info('input_ids')).toMatchObject({ dtype: 'I32', shape: [2, 24], file: p });
    expect(ck.readI32('input_ids').length).toBe(48);
    expect(ck.readRaw('input_ids').length).toBe(192);
    ck.close();
  });
});

describe('writeShardedSafetensors + Checkpoint: round trips', () => {
  it('shards by size, writes the transformers index, reads back lazily', () => {
    const dir = newDir();
    const es = entries();
    const res = writeShardedSafetensors(dir, es, { maxShardBytes: 600 });
    // sizes 32, 64, ..., 320: greedy in order, ≤ 600 per shard → [0..4], [5, 6], [7, 8], [9]
    const n = 4;
    const shardNames = Array.from({ length: n }, (_, i) => shardFileName(i + 1, n));
    expect(shardNames[0]).toBe('model-00001-of-00004.safetensors');
    expect(fs.readdirSync(dir).sort()).toEqual([...shardNames, INDEX_FILE].sort());
    expect(res.totalSize).toBe(32 * 55);
    const index = JSON.parse(fs.readFileSync(path.join(dir, INDEX_FILE), 'utf8'));
    expect(index.metadata).toEqual({ total_size: 32 * 55 });
    expect(index.weight_map['layers.0.w']).toBe(shardNames[0]);
    expect(index.weight_map['layers.3.w']).toBe(shardNames[0]);
    expect(index.weight_map['layers.4.w']).toBe(shardNames[0]);
    expect(index.weight_map['layers.5.w']).toBe(shardNames[1]);
    expect(index.weight_map['layers.9.w']).toBe(shardNames[3]);
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(index.weight_map).sort());
    expect(fs.readFileSync(path.join(dir, INDEX_FILE), 'utf8')).toMatch(/^\{\n {2}"metadata": \{\n {4}"total_size": 1760\n/);
    const shard = SafetensorsFile.open(path.join(dir, shardNames[1]!));
    expect(shard.metadata).toEqual({ format: 'pt' });
    expect(shard.names()).toEqual(['layers.5.w', 'layers.6.w']);
    shard.close();

    const opens = vi.spyOn(SafetensorsFile, 'open');
    const ck = Checkpoint.open(dir);
    expect(opens).not.toHaveBeenCalled(); // shards open lazily
    expect(ck.indexPath).toBe(path.join(dir, INDEX_FILE));
    expect(ck.indexMetadata).toEqual({ total_size: 1760 });
    expect(ck.names()).toEqual(Object.keys(index.weight_map));
    const w7 = ck.readF32('layers.7.w');
    expect(opens).toHaveBeenCalledTimes(1);
    expect(w7.length).toBe(64);
    expect(w7[5]).toBe(Math.fround(7.005));
    expect(ck.info('layers.7.w').file).toBe(path.join(dir, shardNames[2]!));
    ck.readF32('layers.7.w');
    expect(opens).toHaveBeenCalledTimes(1); // kept open
    expect(ck.totalBytes()).toBe(1760);
    expect(ck.bytesByDtype()).toEqual({ F32: 1760 });
    expect(ck.verify()).toEqual([]);
    for (const e of es) {
      const d = (e.data as () => Float32Array)();
      expect([...ck.readF32(e.name)]).toEqual([...d]);
    }
    ck.close();
    ck.close(); // idempotent
  });

  it('a tensor larger than maxShardBytes gets a shard of its own', () => {
    const dir = newDir();
    const res = writeShardedSafetensors(dir, [
      { name: 'a', dtype: 'U8', shape: [10], data: new Uint8Array(10) },
      { name: 'huge', dtype: 'U8', shape: [100], data: new Uint8Array(100).fill(3) },
      { name: 'b', dtype: 'U8', shape: [10], data: new Uint8Array(10) },
    ], { maxShardBytes: 50 });
    expect(Object.values(res.weightMap)).toEqual([shardFileName(1, 3), shardFileName(2, 3), shardFileName(3, 3)]);
    const ck = Checkpoint.open(dir);
    expect([...ck.readI32('huge')].every((v) => v === 3)).toBe(true);
    ck.close();
  });

  it('everything in one shard → a single model.safetensors; stale files removed', () => {
    const dir = newDir();
    writeShardedSafetensors(dir, entries(), { maxShardBytes: 600 });
    expect(fs.existsSync(path.join(dir, INDEX_FILE))).toBe(true);
    const res = writeShardedSafetensors(dir, entries(3), { maxShardBytes: 1e9, metadata: { format: 'pt', by: 'moekit' } });
    expect(res.files).toEqual([path.join(dir, SINGLE_FILE)]);
    expect(fs.existsSync(path.join(dir, INDEX_FILE))).toBe(false); // stale index would shadow it
    const ck = Checkpoint.open(dir);
    expect(ck.files()).toEqual([path.join(dir, SINGLE_FILE)]);
    expect(ck.names()).toEqual(['layers.0.w', 'layers.1.w', 'layers.2.w']);
    ck.close();
    // and back to sharded: the single file goes
    writeShardedSafetensors(dir, entries(), { maxShardBytes: 600 });
    expect(fs.existsSync(path.join(dir, SINGLE_FILE))).toBe(false);
    expect(fs.readdirSync(dir).filter((x) => x.includes('.tmp-'))).toEqual([]);
  });

  it('mixed dtypes: per-dtype byte counts', () => {
    const dir = newDir();
    writeShardedSafetensors(dir, [
      { name: 'w', dtype: 'BF16', shape: [4, 4], data: f32ToBf16Array(new Float32Array(16).fill(1.5)) },
      { name: 'ids', dtype: 'I64', shape: [3], data: new BigInt64Array([1n, 2n, 3n]) },
      { name: 'n', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    ], { maxShardBytes: 40 });
    const ck = Checkpoint.open(dir);
    expect(ck.bytesByDtype()).toEqual({ BF16: 32, I64: 24, F32: 16 });
    expect(ck.totalBytes()).toBe(72);
    expect([...ck.readF32('w')].every((v) => v === 1.5)).toBe(true);
    expect([...ck.readI32('ids')]).toEqual([1, 2, 3]);
    expect([...ck.readI64('ids')]).toEqual([1n, 2n, 3n]);
    ck.close();
  });

  it('rejects a bad maxShardBytes and bad entries before writing', () => {
    const dir = path.join(scratch(), 'never-made');
    expectError(() => writeShardedSafetensors(dir, entries(), { maxShardBytes: 0 }), /maxShardBytes must be positive/, dir);
    expectError(() => writeShardedSafetensors(dir, [{ name: 'x', dtype: 'F32', shape: [2], data: new Float32Array(1) }],
      { maxShardBytes: 10 }), /tensor 'x': F32 \[2\] needs 8 bytes/, dir);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('Checkpoint: directories without an index', () => {
  it('takes every model*.safetensors, ignoring other safetensors files', () => {
    const dir = newDir();
    writeSafetensors(path.join(dir, 'model-a.safetensors'), [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([1]) }]);
    writeSafetensors(path.join(dir, 'model-b.safetensors'), [{ name: 'b', dtype: 'U8', shape: [1], data: new Uint8Array([2]) }]);
    writeSafetensors(path.join(dir, 'reference.safetensors'), [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([9]) }]);
    const ck = Checkpoint.open(dir);
    expect(ck.names()).toEqual(['a', 'b']);
    expect([...ck.readI32('a'), ...ck.readI32('b')]).toEqual([1, 2]);
    expect(ck.info('b').file).toBe(path.join(dir, 'model-b.safetensors'));
    ck.close();
  });

  it('else every *.safetensors; a tensor in two files is an error naming both', () => {
    const dir = newDir();
    writeSafetensors(path.join(dir, 'x.safetensors'), [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([1]) }]);
    writeSafetensors(path.join(dir, 'y.safetensors'), [{ name: 'b', dtype: 'U8', shape: [1], data: new Uint8Array([2]) }]);
    const ck = Checkpoint.open(dir);
    expect(ck.names()).toEqual(['a', 'b']);
    ck.close();
    writeSafetensors(path.join(dir, 'z.safetensors'), [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([3]) }]);
    expectError(() => Checkpoint.open(dir), /tensor 'a' is in both x.safetensors and z.safetensors/, path.join(dir, 'z.safetensors'));
  });

  it('a malformed file in the directory is reported with its own path', () => {
    const dir = newDir();
    fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.from([1, 2]));
    expectError(() => Checkpoint.open(dir), /too short/, path.join(dir, 'model.safetensors'));
  });
});

describe('Checkpoint: errors', () => {
  it('missing directory', () => {
    const p = path.join(scratch(), 'does-not-exist');
    expectError(() => Checkpoint.open(p), /no such checkpoint directory or file/, p);
  });

  it('a directory with no safetensors at all', () => {
    const dir = newDir();
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    expectError(() => Checkpoint.open(dir), /no model.safetensors.index.json, model.safetensors or \*.safetensors/, dir);
  });

  it('a shard named in the index is missing', () => {
    const dir = newDir();
    writeShardedSafetensors(dir, entries(), { maxShardBytes: 600 });
    fs.rmSync(path.join(dir, shardFileName(3, 4)));
    const idx = path.join(dir, INDEX_FILE);
    expectError(() => Checkpoint.open(dir), /shard model-00003-of-00004.safetensors named in model.safetensors.index.json is missing/, idx);
  });

  it('the index maps a tensor to a shard that does not contain it', () => {
    const dir = newDir();
    writeShardedSafetensors(dir, entries(), { maxShardBytes: 600 });
    const idx = path.join(dir, INDEX_FILE);
    const index = JSON.parse(fs.readFileSync(idx, 'utf8'));
    index.weight_map['layers.9.w'] = shardFileName(1, 4);
    fs.writeFileSync(idx, JSON.stringify(index));
    const ck = Checkpoint.open(dir);
    expect([...ck.readF32('layers.0.w')].length).toBe(8);
    const re = /maps tensor 'layers.9.w' to shard model-00001-of-00004.safetensors, which does not contain it/;
    expectError(() => ck.readF32('layers.9.w'), re, idx);
    expectError(() => ck.info('layers.9.w'), re, idx);
    expectError(() => ck.verify(), re, idx);
    ck.close();
  });

  it('verify lists tensors present in shards but absent from the index', () => {
    const dir = newDir();
    writeShardedSafetensors(dir, entries(), { maxShardBytes: 600 });
    const idx = path.join(dir, INDEX_FILE);
    const index = JSON.parse(fs.readFileSync(idx, 'utf8'));
    delete index.weight_map['layers.5.w'];
    fs.writeFileSync(idx, JSON.stringify(index));
    const ck = Checkpoint.open(dir);
    expect(ck.has('layers.5.w')).toBe(false);
    expect(ck.verify()).toEqual(['layers.5.w']);
    ck.close();
  });

  it('malformed index JSON', () => {
    const dir = newDir();
    const idx = path.join(dir, INDEX_FILE);
    fs.writeFileSync(idx, '{"weight_map": {');
    expectError(() => Checkpoint.open(dir), /malformed index: .*JSON/i, idx);
    fs.writeFileSync(idx, '[]');
    expectError(() => Checkpoint.open(dir), /malformed index: not a JSON object/, idx);
    fs.writeFileSync(idx, '{"metadata": {}}');
    expectError(() => Checkpoint.open(dir), /malformed index: missing 'weight_map' object/, idx);
    fs.writeFileSync(idx, '{"weight_map": {"a": 3}}');
    expectError(() => Checkpoint.open(dir), /malformed index: weight_map entry for 'a' is not a file name/, idx);
    fs.writeFileSync(idx, '{"weight_map": {"a": "../../etc/x.safetensors"}}');
    expectError(() => Checkpoint.open(dir), /outside the checkpoint directory/, idx);
    fs.writeFileSync(idx, '{"weight_map": {}, "metadata": 5}');
    expectError(() => Checkpoint.open(dir), /'metadata' is not an object/, idx);
  });

  it('reading after close is a programming error', () => {
    const ck = Checkpoint.open(FIXTURE);
    ck.close();
    expect(() => ck.readF32('lm_head.weight')).toThrow(/closed/);
  });
});
