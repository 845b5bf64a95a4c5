/**
 * src/io/safetensors-write.ts against the safetensors layout built by hand here (u64 LE header length, the JSON
 * header space-padded to a multiple of 8, the tensors' bytes in order), byte for byte; each refusal compared whole;
 * the write errors by their system codes; the temp file, fsyncs and partial writes; the sharded layout and its index.
 */
import fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { DTYPES } from '../src/io/dtypes.js';
import { shardFileName, writeSafetensors, writeShardedSafetensors, type SafetensorsEntry } from '../src/io/safetensors-write.js';
import { MoekitError } from '../src/util/errors.js';
import { liveTemps } from '../src/util/temp.js';
import { scratchDir } from './helpers.js';

const tmp = scratchDir('moekit-st-write-');
let seq = 0;
const fresh = () => fs.mkdtempSync(path.join(tmp(), `d${seq++}-`));

/** the file by hand: the JSON text given, padded with spaces to a multiple of 8, its length first, then the data */
function layout(json: string, ...data: number[][]): Buffer {
  const j = Buffer.from(json, 'utf8');
  const n = Math.ceil(j.length / 8) * 8;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(n));
  return Buffer.concat([len, j, Buffer.alloc(n - j.length, ' '), Buffer.from(data.flat())]);
}
const bytesOf = (a: ArrayBufferView) => [...new Uint8Array(a.buffer, a.byteOffset, a.byteLength)];

/** `fn` must throw a MoekitError whose one-line form is exactly `${file}: ${msg}` */
function refuses(fn: () => unknown, file: string, msg: string): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, 'expected an error').toBeInstanceOf(MoekitError);
  expect((err as MoekitError).oneLine()).toBe(`${file}: ${msg}`);
}

describe('writeSafetensors: the bytes', () => {
  it('metadata first, then each tensor in order with contiguous offsets; lazy data asked for in order', () => {
    const p = path.join(fresh(), 'x.safetensors');
    const f32 = new Float32Array([1, -2.5]);
    const asked: string[] = [];
    writeSafetensors(p, [
      { name: 'a', dtype: 'F32', shape: [2], data: f32 },
      { name: 'b', dtype: 'U8', shape: [3], data: () => { asked.push('b'); return new Uint8Array([7, 8, 9]); } },
      { name: 'e', dtype: 'BF16', shape: [0, 4], data: new Uint16Array(0) },
      { name: 'c', dtype: 'I16', shape: [1, 1], data: () => { asked.push('c'); return new Int16Array([-2]); } },
    ], { format: 'pt', note: 'é' });
    expect(asked).toEqual(['b', 'c']);
    const json = '{"__metadata__":{"format":"pt","note":"é"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
      + '"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]},"e":{"dtype":"BF16","shape":[0,4],"data_offsets":[11,11]},'
      + '"c":{"dtype":"I16","shape":[1,1],"data_offsets":[11,13]}}';
    expect(fs.readFileSync(p).equals(layout(json, bytesOf(f32), [7, 8, 9], [0xfe, 0xff]))).toBe(true);
    expect(fs.readdirSync(path.dirname(p))).toEqual(['x.safetensors']);
  });

  it('no metadata: no __metadata__ key; no tensors: an empty object', () => {
    const p = path.join(fresh(), 'x.safetensors');
    writeSafetensors(p, [{ name: 'w', dtype: 'U8', shape: [1], data: new Uint8Array([5]) }]);
    expect(fs.readFileSync(p).equals(layout('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [5]))).toBe(true);
    writeSafetensors(p, []);
    expect(fs.readFileSync(p).equals(layout('{}'))).toBe(true);
    expect(fs.readFileSync(p).length).toBe(16);
    writeSafetensors(p, [], {});
    expect(fs.readFileSync(p).equals(layout('{"__metadata__":{}}'))).toBe(true);
  });

  it('a header already a multiple of 8 bytes gets no padding', () => {
    const p = path.join(fresh(), 'x.safetensors');
    for (let k = 1; k <= 8; k++) {
      const name = 'n'.repeat(k);
      const json = `{"${name}":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`;
      writeSafetensors(p, [{ name, dtype: 'U8', shape: [2], data: new Uint8Array([1, 2]) }]);
      const raw = fs.readFileSync(p);
      expect(raw.equals(layout(json, [1, 2]))).toBe(true);
      if (json.length % 8 === 0) expect(Number(raw.readBigUInt64LE(0))).toBe(json.length);
    }
  });

  it('the data of a view is its own bytes, not its whole buffer', () => {
    const p = path.join(fresh(), 'x.safetensors');
    const big = new Uint8Array([9, 9, 1, 2, 3, 4, 9, 9]);
    writeSafetensors(p, [
      { name: 'v', dtype: 'U16', shape: [2], data: big.subarray(2, 6) },
      { name: 'w', dtype: 'U8', shape: [2], data: () => new DataView(big.buffer, 1, 2) },
    ]);
    const json = '{"v":{"dtype":"U16","shape":[2],"data_offsets":[0,4]},"w":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}';
    expect(fs.readFileSync(p).equals(layout(json, [1, 2, 3, 4], [9, 1]))).toBe(true);
  });

  it('writes each buffer whole when the system writes it in pieces; fsyncs the file and its directory', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    const real = fs.writeSync;
    const w = vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, b: Uint8Array, off?: number, len?: number) =>
      real(fd, b, off ?? 0, Math.min(len ?? b.byteLength, 3))) as typeof fs.writeSync);
    const sync = vi.spyOn(fs, 'fsyncSync');
    const open = vi.spyOn(fs, 'openSync');
    const data = Uint8Array.from({ length: 50 }, (_, i) => i);
    writeSafetensors(p, [{ name: 'w', dtype: 'U8', shape: [50], data }]);
    const writes = w.mock.calls.length, syncs = sync.mock.calls.length;
    const opened = open.mock.calls.map((c) => [String(c[0]), c[1], c[2]]);
    vi.restoreAllMocks();
    expect(fs.readFileSync(p).equals(layout('{"w":{"dtype":"U8","shape":[50],"data_offsets":[0,50]}}', [...data]))).toBe(true);
    expect(writes).toBe(Math.ceil(64 / 3) + Math.ceil(50 / 3));
    expect(syncs).toBe(2);
    expect(opened.length).toBe(2);
    expect(opened[0][0]).toMatch(new RegExp(`^${p.replace(/[.]/g, '\\.')}\\.tmp-${process.pid}-[0-9a-f]{12}$`));
    expect(opened[0].slice(1)).toEqual(['wx', 0o644]);
    expect(opened[1]).toEqual([d, 'r', undefined]);
    expect(fs.statSync(p).mode & 0o777).toBe(0o644 & ~process.umask());
  });

  it('a directory that cannot be fsynced is fine (best effort)', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    const real = fs.fsyncSync;
    let calls = 0;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => { if (++calls === 2) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' }); real(fd); });
    const close = vi.spyOn(fs, 'closeSync');
    writeSafetensors(p, []);
    expect(close.mock.calls.length).toBe(2);
    vi.restoreAllMocks();
    expect(fs.readFileSync(p).equals(layout('{}'))).toBe(true);
  });

  it('the temp file is registered for removal on a signal while it is written', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    let during: string[] = [];
    writeSafetensors(p, [{ name: 'w', dtype: 'U8', shape: [1], data: () => { during = liveTemps(); return new Uint8Array(1); } }]);
    expect(during.length).toBe(1);
    expect(during[0].startsWith(`${p}.tmp-${process.pid}-`)).toBe(true);
    expect(liveTemps()).toEqual([]);
  });
});

describe('writeSafetensors: refusals, whole, before anything is written', () => {
  const one = (e: Partial<SafetensorsEntry>): SafetensorsEntry[] => [{ name: 'w', dtype: 'U8', shape: [2], data: new Uint8Array(2), ...e } as SafetensorsEntry];

  it('names, dtypes, shapes, sizes, eager data', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    const no = (es: SafetensorsEntry[], msg: string, meta?: Record<string, string>) => refuses(() => writeSafetensors(p, es, meta), p, msg);
    no(one({ name: 3 as unknown as string }), 'tensor name 3 is not a string');
    no(one({ name: '__metadata__' }), "'__metadata__' cannot be a tensor name");
    no([...one({}), ...one({})], "duplicate tensor name 'w'");
    no(one({ dtype: 'F31' as 'F32' }), `tensor 'w': unknown dtype 'F31' (known: ${DTYPES.join(', ')})`);
    no(one({ shape: 'x' as unknown as number[] }), 'tensor \'w\': shape "x" is not a list of non-negative integers');
    no(one({ shape: [2, 1.5] }), "tensor 'w': shape [2,1.5] is not a list of non-negative integers");
    no(one({ shape: [2, -1] }), "tensor 'w': shape [2,-1] is not a list of non-negative integers");
    no(one({ shape: [2 ** 53] }), "tensor 'w': shape [9007199254740992] is not a list of non-negative integers");
    no(one({ dtype: 'F32', shape: [2 ** 26, 2 ** 26, 2 ** 2] }), "tensor 'w': F32 [67108864,67108864,4] is too large");
    no(one({ data: null as unknown as Uint8Array }), "tensor 'w': data is not an ArrayBufferView (got null)");
    no(one({ data: [1, 2] as unknown as Uint8Array }), "tensor 'w': data is not an ArrayBufferView (got object)");
    no(one({ data: 5 as unknown as Uint8Array }), "tensor 'w': data is not an ArrayBufferView (got number)");
    no(one({ data: new Uint8Array(3) }), "tensor 'w': U8 [2] needs 2 bytes but the data has 3");
    no(one({ dtype: 'F32', data: new Float32Array(1) }), "tensor 'w': F32 [2] needs 8 bytes but the data has 4");
    no(one({}), "__metadata__ value for 'n' is not a string", { format: 'pt', n: 1 as unknown as string });
    // a later entry's bad eager data is found before any lazy one is asked for
    const lazy = vi.fn(() => new Uint8Array(2));
    no([...one({ data: lazy }), { name: 'v', dtype: 'U8', shape: [1], data: new Uint8Array(2) }], "tensor 'v': U8 [1] needs 1 bytes but the data has 2");
    expect(lazy).not.toHaveBeenCalled();
    expect(fs.readdirSync(d)).toEqual([]);
  });

  it('lazy data of the wrong size or kind: the file is not written, the temp file removed, an old file kept', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    fs.writeFileSync(p, 'old');
    refuses(() => writeSafetensors(p, one({ data: () => new Uint8Array(1) })), p, "tensor 'w': U8 [2] needs 2 bytes but the data has 1");
    refuses(() => writeSafetensors(p, one({ data: () => 'ab' as unknown as Uint8Array })), p, "tensor 'w': data is not an ArrayBufferView (got string)");
    expect(fs.readdirSync(d)).toEqual(['x.safetensors']);
    expect(fs.readFileSync(p, 'utf8')).toBe('old');
    expect(liveTemps()).toEqual([]);
  });
});

describe('write errors: one line naming the file, by system code', () => {
  const sys = (code: string | undefined, message: string) => Object.assign(new Error(message), code === undefined ? {} : { code });

  it('opening the temp file fails', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    const cases: [string, string][] = [
      ['ENOENT', 'cannot write: its directory does not exist'],
      ['EACCES', 'cannot write: no permission to write in its directory'],
      ['EPERM', 'cannot write: no permission to write in its directory'],
      ['ENOSPC', 'cannot write: no space left on the device'],
      ['EDQUOT', 'cannot write: disk quota exceeded'],
      ['EROFS', 'cannot write: the file system is read-only'],
      ['EIO', 'cannot write: EIO: EIO: i/o error, open'],
    ];
    for (const [code, msg] of cases) {
      const open = vi.spyOn(fs, 'openSync').mockImplementationOnce(() => { throw sys(code, `${code}: i/o error, open\nsecond line`); });
      refuses(() => writeSafetensors(p, []), p, msg);
      open.mockRestore();
    }
    const plain = new Error('not a system error');
    vi.spyOn(fs, 'openSync').mockImplementationOnce(() => { throw plain; });
    let err: unknown;
    try { writeSafetensors(p, []); } catch (e) { err = e; }
    expect(err).toBe(plain);
    vi.restoreAllMocks();
    expect(fs.readdirSync(d)).toEqual([]);
    refuses(() => writeSafetensors(path.join(d, 'no', 'x.safetensors'), []), path.join(d, 'no', 'x.safetensors'), 'cannot write: its directory does not exist');
  });

  it('a write fails midway: the file descriptor is closed, the temp removed, the error named', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    vi.spyOn(fs, 'writeSync').mockImplementation(() => { throw sys('ENOSPC', 'ENOSPC: no space left on device, write'); });
    const close = vi.spyOn(fs, 'closeSync');
    refuses(() => writeSafetensors(p, []), p, 'cannot write: no space left on the device');
    expect(close).toHaveBeenCalledTimes(1);
    vi.restoreAllMocks();
    expect(fs.readdirSync(d)).toEqual([]);
    expect(liveTemps()).toEqual([]);
  });

  it('a failing rename: the temp file removed, the old file kept', () => {
    const d = fresh();
    const p = path.join(d, 'x.safetensors');
    fs.writeFileSync(p, 'old');
    vi.spyOn(fs, 'renameSync').mockImplementation(() => { throw sys('EXDEV', 'EXDEV: cross-device link not permitted, rename'); });
    refuses(() => writeSafetensors(p, []), p, 'cannot write: EXDEV: EXDEV: cross-device link not permitted, rename');
    vi.restoreAllMocks();
    expect(fs.readdirSync(d)).toEqual(['x.safetensors']);
    expect(fs.readFileSync(p, 'utf8')).toBe('old');
  });
});

describe('writeShardedSafetensors', () => {
  const u8 = (name: string, n: number, v = 1): SafetensorsEntry => ({ name, dtype: 'U8', shape: [n], data: new Uint8Array(n).fill(v) });
  const header = (f: string) => {
    const raw = fs.readFileSync(f);
    return JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString('utf8')) as Record<string, unknown>;
  };

  it('shardFileName pads to five digits', () => {
    expect(shardFileName(3, 12)).toBe('model-00003-of-00012.safetensors');
    expect(shardFileName(123456, 123456)).toBe('model-123456-of-123456.safetensors');
  });

  it('fills each shard up to maxShardBytes (exactly is still one shard); a larger tensor gets its own; the index last', () => {
    const d = path.join(fresh(), 'new', 'ckpt');
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'model.safetensors'), 'stale');
    const r = writeShardedSafetensors(d, [u8('z', 4), u8('b', 4), u8('big', 20), u8('a', 3), u8('c', 5), u8('d', 1)], { maxShardBytes: 8 });
    const names = [1, 2, 3, 4].map((i) => shardFileName(i, 4));
    expect(r.files).toEqual([...names.map((n) => path.join(d, n)), path.join(d, 'model.safetensors.index.json')]);
    expect(r.totalSize).toBe(37);
    expect(r.weightMap).toEqual({ z: names[0], b: names[0], big: names[1], a: names[2], c: names[2], d: names[3] });
    expect(Object.keys(header(path.join(d, names[0])))).toEqual(['__metadata__', 'z', 'b']);
    expect(header(path.join(d, names[0]))['__metadata__']).toEqual({ format: 'pt' });
    expect(header(path.join(d, names[2]))['c']).toEqual({ dtype: 'U8', shape: [5], data_offsets: [3, 8] });
    const index = `{\n  "metadata": {\n    "total_size": 37\n  },\n  "weight_map": {\n    "a": "${names[2]}",\n    "b": "${names[0]}",\n`
      + `    "big": "${names[1]}",\n    "c": "${names[2]}",\n    "d": "${names[3]}",\n    "z": "${names[0]}"\n  }\n}\n`;
    expect(fs.readFileSync(path.join(d, 'model.safetensors.index.json'), 'utf8')).toBe(index);
    expect(fs.readdirSync(d).sort()).toEqual([...names, 'model.safetensors.index.json'].sort());
  });

  it('one shard: a lone model.safetensors, a stale index removed; the directory made; metadata of the caller', () => {
    const d = path.join(fresh(), 'a', 'b');
    const r0 = writeShardedSafetensors(d, [u8('x', 2)], { maxShardBytes: 2 });
    expect(r0).toEqual({ files: [path.join(d, 'model.safetensors')], totalSize: 2, weightMap: { x: 'model.safetensors' } });
    fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), '{}');
    const r = writeShardedSafetensors(d, [u8('x', 2, 7), u8('y', 1, 8)], { maxShardBytes: 3, metadata: { by: 'me' } });
    expect(r).toEqual({ files: [path.join(d, 'model.safetensors')], totalSize: 3, weightMap: { x: 'model.safetensors', y: 'model.safetensors' } });
    expect(fs.readdirSync(d)).toEqual(['model.safetensors']);
    expect(fs.readFileSync(path.join(d, 'model.safetensors')).equals(layout(
      '{"__metadata__":{"by":"me"},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"y":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', [7, 7], [8]))).toBe(true);
    const e = writeShardedSafetensors(d, [], { maxShardBytes: 1 });
    expect(e).toEqual({ files: [path.join(d, 'model.safetensors')], totalSize: 0, weightMap: {} });
    expect(fs.readFileSync(path.join(d, 'model.safetensors')).equals(layout('{"__metadata__":{"format":"pt"}}'))).toBe(true);
  });

  it('refusals: maxShardBytes, metadata, entries, before the directory is made', () => {
    const d = path.join(fresh(), 'never');
    for (const m of [0, -1, Number.NaN]) refuses(() => writeShardedSafetensors(d, [], { maxShardBytes: m }), d, `maxShardBytes must be positive (got ${m})`);
    refuses(() => writeShardedSafetensors(d, [], { maxShardBytes: 1, metadata: { x: 2 as unknown as string } }), d, "__metadata__ value for 'x' is not a string");
    refuses(() => writeShardedSafetensors(d, [u8('a', 1), u8('a', 1)], { maxShardBytes: 1 }), d, "duplicate tensor name 'a'");
    expect(fs.existsSync(d)).toBe(false);
  });
});
