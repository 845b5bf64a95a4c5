/**
 * src/io/gguf.ts against GGUF byte layouts built by hand here (the GGUF spec, ggml/docs/gguf.md: little-endian
 * header, metadata, tensor infos, data at the first multiple of general.alignment): every value type read back,
 * the writer's output byte for byte, each reader refusal compared whole (with the byte it names), row reads,
 * isGgufPath, and the writer's refusals (the exact byte count of each tensor, no temp file left behind).
 */
import fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { GGML, GgufFile, GgufValueType as T, ggmlBytes, ggufValueTypeName, gv, isGgufPath, writeGguf, type GgufEntry } from '../src/io/gguf.js';
import { MoekitError } from '../src/util/errors.js';
import { liveTemps } from '../src/util/temp.js';
import { scratchDir } from './helpers.js';

const tmp = scratchDir('moekit-gguf-format-');

/** a little-endian byte assembler, independent of src/io/gguf.ts */
class B {
  bytes: number[] = [];
  get pos(): number { return this.bytes.length; }
  raw(xs: ArrayLike<number>): this { for (let i = 0; i < xs.length; i++) this.bytes.push(xs[i] & 255); return this; }
  uint(v: bigint, n: number): this { for (let i = 0; i < n; i++) this.bytes.push(Number((v >> BigInt(8 * i)) & 255n)); return this; }
  u8(v: number): this { return this.uint(BigInt(v), 1); }
  u16(v: number): this { return this.uint(BigInt(v), 2); }
  u32(v: number): this { return this.uint(BigInt(v), 4); }
  u64(v: number | bigint): this { return this.uint(BigInt.asUintN(64, BigInt(v)), 8); }
  i64(v: number | bigint): this { return this.u64(BigInt.asUintN(64, BigInt(v))); }
  f32(v: number): this { return this.raw(new Uint8Array(new Float32Array([v]).buffer)); }
  f64(v: number): this { return this.raw(new Uint8Array(new Float64Array([v]).buffer)); }
  str(s: string): this { const u = new TextEncoder().encode(s); return this.u64(u.length).raw(u); }
  padTo(a: number): this { while (this.pos % a !== 0) this.bytes.push(0); return this; }
  buf(): Buffer { return Buffer.from(this.bytes); }
}

/** header: magic, version, tensor count, metadata count */
const head = (nTensors: number | bigint, nKv: number | bigint, version = 3) => new B().raw([0x47, 0x47, 0x55, 0x46]).u32(version).u64(nTensors).u64(nKv);
/** a tensor info: name, n_dims, ne (innermost first), type, offset */
const info = (b: B, name: string, ne: (number | bigint)[], type: number, off: number | bigint) => {
  b.str(name).u32(ne.length);
  for (const d of ne) b.u64(d);
  return b.u32(type).u64(off);
};
/** tensor bytes: a pattern that differs per tensor and per byte */
const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 31 + 1) & 255);

let seq = 0;
const put = (b: Buffer | B, name = `f${seq++}.gguf`) => {
  const f = path.join(tmp(), name);
  fs.writeFileSync(f, b instanceof B ? b.buf() : b);
  return f;
};
/** the one-line message GgufFile.open gives for these bytes (the file's path first), or 'opened' */
function openMsg(b: Buffer | B): string {
  const f = put(b);
  try { GgufFile.open(f).close(); } catch (e) {
    expect(e).toBeInstanceOf(MoekitError);
    expect((e as MoekitError).file).toBe(f);
    return (e as MoekitError).message;
  }
  return 'opened';
}

/** every scalar type, arrays (nested too), alignment 64, four tensors of four ggml types (their infos out of data order) */
function full(version = 3) {
  const b = head(4, 24, version);
  const kv = (k: string, t: number) => b.str(k).u32(t);
  kv('u8', T.U8).u8(200); kv('i8', T.I8).u8(0xfb); kv('u16', T.U16).u16(60000); kv('i16', T.I16).u16(0x10000 - 30000);
  kv('u32', T.U32).u32(4_000_000_000); kv('i32', T.I32).u32(2 ** 32 - 2_000_000_000); kv('f32', T.F32).f32(1.5);
  kv('bool.t', T.BOOL).u8(1); kv('bool.x', T.BOOL).u8(2); kv('bool.f', T.BOOL).u8(0);
  kv('str', T.STRING).str('héllo');
  kv('u64.safe', T.U64).u64(2 ** 53 - 1); kv('u64.big', T.U64).u64(2n ** 53n);
  kv('i64.neg', T.I64).i64(-(2 ** 53 - 1)); kv('i64.low', T.I64).i64(-(2n ** 53n)); kv('i64.high', T.I64).i64(2n ** 53n);
  kv('f64', T.F64).f64(0.1);
  kv('u64.max', T.U64).u64(2n ** 64n - 1n); kv('i64.max', T.I64).i64(2 ** 53 - 1);
  kv('arr.u8', T.ARRAY).u32(T.U8).u64(3).u8(1).u8(2).u8(255);
  kv('arr.str', T.ARRAY).u32(T.STRING).u64(3).str('a').str('bc').str('');
  kv('arr.nested', T.ARRAY).u32(T.ARRAY).u64(2).u32(T.I16).u64(2).u16(1).u16(0xfffe).u32(T.I16).u64(1).u16(3);
  kv('arr.empty', T.ARRAY).u32(T.F32).u64(0);
  kv('general.alignment', T.U32).u32(64);
  // data (relative): f16 [32] 64 bytes at 0, q4_0 [64, 2] 72 bytes at 64 (adjacent), q4_k [256] 144 at 192, i8 4-dim 14 at 384
  info(b, 't.i8', [7, 1, 1, 2], 24, 384);
  info(b, 't.f16', [32], GGML.F16, 0);
  info(b, 't.q4', [64, 2], GGML.Q4_0, 64);
  info(b, 't.q4k', [256], 12, 192);
  const infosEnd = b.pos;
  b.padTo(64);
  const dataOffset = b.pos;
  const at = (rel: number, n: number, seed: number) => { b.padTo(1); while (b.pos < dataOffset + rel) b.u8(0); b.raw(pattern(n, seed)); };
  at(0, 64, 1); at(64, 72, 2); at(192, 144, 3); at(384, 14, 4); // ends at the last tensor's last byte
  return { b, infosEnd, dataOffset };
}

describe('reading a hand-built GGUF', () => {
  it('every value type, its declared type, shapes, offsets, bytes; the data of each tensor and of its rows', () => {
    const { b, dataOffset, infosEnd } = full();
    expect(infosEnd % 64).not.toBe(0);
    const f = put(b);
    const g = GgufFile.open(f);
    try {
      expect(g.version).toBe(3);
      expect(g.size).toBe(b.pos);
      expect(g.alignment).toBe(64);
      expect(g.dataOffset).toBe(dataOffset);
      const vals = Object.fromEntries([...g.meta.keys()].map((k) => [k, g.get(k)]));
      expect(vals).toStrictEqual({
        'u8': 200, 'i8': -5, 'u16': 60000, 'i16': -30000, 'u32': 4_000_000_000, 'i32': -2_000_000_000, 'f32': 1.5,
        'bool.t': true, 'bool.x': true, 'bool.f': false, 'str': 'héllo',
        'u64.safe': 2 ** 53 - 1, 'u64.big': 2n ** 53n, 'i64.neg': -(2 ** 53 - 1), 'i64.low': -(2n ** 53n), 'i64.high': 2n ** 53n,
        'f64': 0.1, 'u64.max': 2n ** 64n - 1n, 'i64.max': 2 ** 53 - 1, 'arr.u8': [1, 2, 255], 'arr.str': ['a', 'bc', ''], 'arr.nested': [[1, -2], [3]], 'arr.empty': [],
        'general.alignment': 64,
      });
      expect(g.meta.get('u8')).toStrictEqual({ type: T.U8, value: 200 });
      expect(g.meta.get('str')).toStrictEqual({ type: T.STRING, value: 'héllo' });
      expect(g.meta.get('arr.str')).toStrictEqual({ type: T.ARRAY, elemType: T.STRING, value: ['a', 'bc', ''] });
      expect(g.meta.get('arr.nested')).toStrictEqual({ type: T.ARRAY, elemType: T.ARRAY, value: [[1, -2], [3]] });
      expect(g.get('missing')).toBeUndefined();
      expect([...g.tensors.keys()]).toEqual(['t.i8', 't.f16', 't.q4', 't.q4k']);
      expect(g.info('t.i8')).toStrictEqual({ name: 't.i8', ne: [7, 1, 1, 2], shape: [2, 1, 1, 7], type: 24, typeName: 'I8', bytes: 14, offset: dataOffset + 384 });
      expect(g.info('t.f16')).toStrictEqual({ name: 't.f16', ne: [32], shape: [32], type: 1, typeName: 'F16', bytes: 64, offset: dataOffset });
      expect(g.info('t.q4')).toStrictEqual({ name: 't.q4', ne: [64, 2], shape: [2, 64], type: 2, typeName: 'Q4_0', bytes: 72, offset: dataOffset + 64 });
      expect(g.info('t.q4k')).toStrictEqual({ name: 't.q4k', ne: [256], shape: [256], type: 12, typeName: 'Q4_K', bytes: 144, offset: dataOffset + 192 });
      expect([...g.read('t.f16')]).toEqual([...pattern(64, 1)]);
      expect([...g.read('t.q4')]).toEqual([...pattern(72, 2)]);
      expect([...g.read('t.q4k')]).toEqual([...pattern(144, 3)]);
      expect([...g.read('t.i8')]).toEqual([...pattern(14, 4)]);
      expect([...g.read('t.q4', [1, 2])]).toEqual([...pattern(72, 2).subarray(36)]);
      expect([...g.read('t.q4', [0, 1])]).toEqual([...pattern(72, 2).subarray(0, 36)]);
      expect([...g.read('t.i8', [1, 2])]).toEqual([...pattern(14, 4).subarray(7)]);
      expect(g.read('t.q4', [2, 2]).length).toBe(0);
      expect(g.read('t.q4', [0, 0]).length).toBe(0);
      const rows = (r: [number, number]) => { try { g.read('t.q4', r); } catch (e) { return (e as MoekitError).message; } return 'read'; };
      expect(rows([1, 3])).toBe("GGUF tensor 't.q4': rows [1, 3) outside [0, 2)");
      expect(rows([-1, 1])).toBe("GGUF tensor 't.q4': rows [-1, 1) outside [0, 2)");
      expect(rows([2, 1])).toBe("GGUF tensor 't.q4': rows [2, 1) outside [0, 2)");
      expect(() => g.info('nope')).toThrow(new MoekitError("missing GGUF tensor 'nope'", f));
      expect(() => g.read('nope')).toThrow("missing GGUF tensor 'nope'");
    } finally {
      g.close();
    }
    g.close(); // twice: nothing to close
  });

  it('version 2 reads as 3 does; 1 and 4 are refused', () => {
    const g = GgufFile.open(put(full(2).b));
    expect(g.version).toBe(2);
    expect(g.get('general.alignment')).toBe(64);
    g.close();
    expect(openMsg(full(1).b)).toBe('unsupported GGUF version 1 (moekit reads 2 and 3)');
    expect(openMsg(full(4).b)).toBe('unsupported GGUF version 4 (moekit reads 2 and 3)');
  });

  it('a file that shrinks after it was opened: the read says the tensor ends early', () => {
    const { b, dataOffset } = full();
    const f = put(b);
    const g = GgufFile.open(f);
    try {
      fs.truncateSync(f, dataOffset + 200);
      expect([...g.read('t.q4')]).toEqual([...pattern(72, 2)]);
      expect(() => g.read('t.q4k')).toThrow(new MoekitError("truncated GGUF: tensor 't.q4k' ends early", f));
    } finally { g.close(); }
  });

  it('default alignment 32 when general.alignment is absent; alignment 1 and 2^20 are powers of two too', () => {
    const b = head(1, 0);
    info(b, 'w', [8], GGML.F32, 0);
    b.padTo(32);
    const d0 = b.pos;
    b.raw(pattern(32, 9));
    const g = GgufFile.open(put(b));
    expect([g.alignment, g.dataOffset, g.info('w').offset]).toEqual([32, d0, d0]);
    expect([...g.read('w')]).toEqual([...pattern(32, 9)]);
    g.close();
    for (const a of [1, 2 ** 20]) {
      const h = head(0, 1).str('general.alignment').u32(T.U32).u32(a);
      const g2 = GgufFile.open(put(h));
      expect([g2.alignment, g2.dataOffset]).toEqual([a, Math.ceil(h.pos / a) * a]);
      g2.close();
    }
  });
});

describe('the reader\'s refusals, whole', () => {
  const one = (k: string, t: number) => head(0, 1).str(k).u32(t);

  it('magic and version', () => {
    expect(openMsg(Buffer.from('GG'))).toBe('not a GGUF file (bad magic: shorter than 4 bytes)');
    expect(openMsg(Buffer.alloc(0))).toBe('not a GGUF file (bad magic: shorter than 4 bytes)');
    expect(openMsg(Buffer.from('GGML\x03\x00\x00\x00'))).toBe('not a GGUF file (bad magic "GGML")');
    expect(openMsg(Buffer.from('GGUF\x03\x00'))).toBe('truncated GGUF: version at byte 4 runs past the end of the file (6 bytes)');
    expect(openMsg(head(0, 0).buf().subarray(0, 20))).toBe('truncated GGUF: metadata count at byte 16 runs past the end of the file (20 bytes)');
    expect(openMsg(head(0, 0))).toBe('opened');
    // exactly 4 bytes: the magic is read, then the version is missing
    expect(openMsg(Buffer.from('GGUF'))).toBe('truncated GGUF: version at byte 4 runs past the end of the file (4 bytes)');
    expect(openMsg(Buffer.from('GGML'))).toBe('not a GGUF file (bad magic "GGML")');
    const gone = path.join(tmp(), 'gone.gguf');
    expect(() => GgufFile.open(gone)).toThrow(new MoekitError('no such GGUF file', gone));
    expect(() => GgufFile.open(tmp())).toThrow(new MoekitError('the GGUF is a directory, not a regular file', tmp()));
  });

  it('the header is read by positional reads from byte 0, as many as the system needs; a file that shrank is truncated', () => {
    const { b } = full();
    const f = put(b);
    const real = fs.readSync;
    const r = vi.spyOn(fs, 'readSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number) => real(fd, buf, off, Math.min(len, 100), pos)) as typeof fs.readSync);
    const g = GgufFile.open(f);
    const calls = r.mock.calls.map((c) => { const a = c as unknown[]; return [a[2], a[3], a[4]]; });
    vi.restoreAllMocks();
    expect(calls[0]).toEqual([0, b.pos, 0]);
    expect(calls[1]).toEqual([100, b.pos - 100, 100]);
    expect(calls.length).toBe(Math.ceil(b.pos / 100)); // no read past the stat size
    expect([...g.read('t.q4k')]).toEqual([...pattern(144, 3)]);
    g.close();
    // the file ends (read returns 0) before its stat size: what is there is parsed, and found short
    let n = 0;
    vi.spyOn(fs, 'readSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number) => (n++ === 0 ? real(fd, buf, off, Math.min(len, 30), pos) : 0)) as typeof fs.readSync);
    // (this said "GGUF header passes the 512 MiB limit" when the file had shrunk since its stat)
    expect(() => GgufFile.open(f)).toThrow(new MoekitError('truncated GGUF: metadata key 0 length at byte 24 runs past the end of the file (30 bytes)', f));
  });

  it('open and close leave no file descriptor behind; close twice is harmless', () => {
    const f = put(full().b);
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 10; i++) { const g = GgufFile.open(f); g.close(); g.close(); }
    expect(fds()).toBe(before);
    const g = GgufFile.open(f);
    expect(fds()).toBe(before + 1);
    g.close();
    expect(fds()).toBe(before);
  });

  it('counts: out of u64\'s safe range, more than the file can hold (the bound itself passes)', () => {
    expect(openMsg(head(2n ** 53n, 0))).toBe('GGUF tensor count is 9007199254740992, out of range');
    expect(openMsg(head(2 ** 53 - 1, 0))).toBe('GGUF tensor count 9007199254740991 is more than the file can hold');
    expect(openMsg(head(0, 2n ** 63n))).toBe('GGUF metadata count is 9223372036854775808, out of range');
    // 13 bytes per metadata entry at least: 2 entries in 26 bytes pass the count check, then the first key is cut
    expect(openMsg(head(0, 2).u16(0))).toBe('truncated GGUF: metadata key 0 length at byte 24 runs past the end of the file (26 bytes)');
    expect(openMsg(head(0, 2).u8(0))).toBe('GGUF metadata count 2 is more than the file can hold');
    // 28 bytes per tensor info at least
    expect(openMsg(head(1, 0).u32(0))).toBe('truncated GGUF: tensor name 0 length at byte 24 runs past the end of the file (28 bytes)');
    expect(openMsg(head(1, 0).u16(0))).toBe('GGUF tensor count 1 is more than the file can hold');
  });

  it('strings: a length past the file, a string cut short', () => {
    const b = head(0, 1).u64(200);
    expect(openMsg(b)).toBe('GGUF metadata key 0 length 200 is larger than the file');
    expect(openMsg(head(0, 1).u64(40).raw(pattern(8, 0)))).toBe('truncated GGUF: metadata key 0 at byte 32 runs past the end of the file (40 bytes)');
    expect(openMsg(head(0, 1).str('k').u32(T.STRING).u64(2 ** 40))).toBe("GGUF metadata 'k' length 1099511627776 is larger than the file");
    expect(openMsg(head(0, 1).str('k').u32(T.STRING).u64(2n ** 60n))).toBe("GGUF metadata 'k' length is 1152921504606846976, out of range");
    // a length equal to the file's size passes that check, and then runs past the end
    expect(openMsg(head(0, 1).str('k').u32(T.STRING).u64(45))).toBe("truncated GGUF: metadata 'k' at byte 45 runs past the end of the file (45 bytes)");
    expect(openMsg(head(0, 1).str('k').u32(T.STRING).u64(3).u8(65))).toBe("truncated GGUF: metadata 'k' at byte 45 runs past the end of the file (46 bytes)");
    expect(openMsg(head(0, 1).str('k'))).toBe("truncated GGUF: metadata 'k' type at byte 33 runs past the end of the file (33 bytes)");
    expect(openMsg(head(0, 1).str('k').u32(T.U32).u16(1))).toBe("truncated GGUF: metadata 'k' at byte 37 runs past the end of the file (39 bytes)");
  });

  it('value types, duplicate keys, arrays (element types, counts that cannot fit, nesting)', () => {
    expect(openMsg(one('k', 13).u32(0))).toBe("GGUF metadata 'k' has unknown value type 13");
    expect(openMsg(head(0, 2).str('k').u32(T.U8).u8(1).str('k').u32(T.U8).u8(2))).toBe("GGUF metadata key 'k' appears twice");
    expect(openMsg(one('a', T.ARRAY).u32(13).u64(0))).toBe("GGUF metadata 'a' has unknown array element type 13");
    expect(openMsg(one('a', T.ARRAY).u16(0))).toBe("truncated GGUF: metadata 'a' element type at byte 37 runs past the end of the file (39 bytes)");
    expect(openMsg(one('a', T.ARRAY).u32(T.U8).u32(0))).toBe("truncated GGUF: metadata 'a' count at byte 41 runs past the end of the file (45 bytes)");
    expect(openMsg(one('a', T.ARRAY).u32(T.U32).u64(3).u32(1).u32(2))).toBe("GGUF metadata 'a' claims 3 elements, more than the file holds");
    // the bound itself: elements that fill the file to its last byte (4 bytes a u32, 8 a string, 12 an array)
    const fits = (b: B, v: unknown) => { const g = GgufFile.open(put(b)); expect(g.get('a')).toStrictEqual(v); expect(g.size).toBe(b.pos); g.close(); };
    fits(one('a', T.ARRAY).u32(T.U32).u64(2).u32(7).u32(8), [7, 8]);
    fits(one('a', T.ARRAY).u32(T.STRING).u64(2).str('').str(''), ['', '']);
    fits(one('a', T.ARRAY).u32(T.ARRAY).u64(1).u32(T.U8).u64(0), [[]]);
    fits(one('a', T.ARRAY).u32(T.BOOL).u64(2).u8(0).u8(1), [false, true]);
    expect(openMsg(one('a', T.ARRAY).u32(T.STRING).u64(2).str('').u32(0))).toBe("GGUF metadata 'a' claims 2 elements, more than the file holds");
    expect(openMsg(one('a', T.ARRAY).u32(T.ARRAY).u64(1).u32(T.U8).u32(0))).toBe("GGUF metadata 'a' claims 1 elements, more than the file holds");
    expect(openMsg(one('a', T.ARRAY).u32(T.ARRAY).u64(1).u32(13).u64(0))).toBe("GGUF metadata 'a[0]' has unknown array element type 13");
    // three levels of arrays read; a fourth is refused
    const nest = (levels: number) => {
      const b = one('a', T.ARRAY);
      for (let i = 1; i < levels; i++) b.u32(T.ARRAY).u64(1);
      return b.u32(T.U8).u64(1).u8(5);
    };
    fits(nest(3), [[[5]]]);
    expect(openMsg(nest(4))).toBe("GGUF metadata 'a[0][0][0]': arrays nested too deep");
  });

  it('general.alignment: powers of two up to 2^20', () => {
    const al = (v: (b: B) => B) => openMsg(v(one('general.alignment', T.U32)));
    expect(al((b) => b.u32(48))).toBe('GGUF general.alignment must be a power of two, got 48');
    expect(al((b) => b.u32(0))).toBe('GGUF general.alignment must be a power of two, got 0');
    expect(al((b) => b.u32(2 ** 21))).toBe('GGUF general.alignment must be a power of two, got 2097152');
    expect(openMsg(one('general.alignment', T.STRING).str('x'))).toBe('GGUF general.alignment must be a power of two, got x');
    expect(openMsg(one('general.alignment', T.F32).f32(2.5))).toBe('GGUF general.alignment must be a power of two, got 2.5');
    expect(openMsg(one('general.alignment', T.I32).u32(2 ** 32 - 64))).toBe('GGUF general.alignment must be a power of two, got -64');
  });

  /** a file of one tensor info (then `extra` bytes of data) */
  const tensor = (ne: (number | bigint)[], type: number, off: number | bigint, data = 0, name = 'w') => {
    const b = head(1, 0);
    info(b, name, ne, type, off);
    b.padTo(32);
    return b.raw(new Uint8Array(data));
  };

  it('tensor infos: dims, their sizes, types, blocks, offsets', () => {
    expect(openMsg(tensor([], GGML.F32, 0, 64))).toBe("GGUF tensor 'w' has 0 dims (1 to 4)");
    expect(openMsg(tensor([1, 1, 1, 1, 4], GGML.F32, 0, 64))).toBe("GGUF tensor 'w' has 5 dims (1 to 4)");
    expect(openMsg(tensor([1, 1, 1, 4], GGML.F32, 0, 16))).toBe('opened');
    expect(openMsg(tensor([4, 0], GGML.F32, 0, 64))).toBe("GGUF tensor 'w' has dim 1 = 0, out of range");
    const t = tensor([4, 1], GGML.F32, 0, 64);
    expect(openMsg(tensor([4, t.pos * 32 + 1], GGML.F32, 0, 64))).toBe(`GGUF tensor 'w' has dim 1 = ${t.pos * 32 + 1}, out of range`);
    expect(openMsg(tensor([4, t.pos * 32], GGML.F32, 0, 64))).toBe(`truncated GGUF: tensor 'w' (${t.pos * 512} bytes at data offset 0) runs past the end of the file (${t.pos} bytes)`);
    expect(openMsg(tensor([2n ** 53n], GGML.F32, 0, 64))).toBe("GGUF tensor 'w' dim 0 is 9007199254740992, out of range");
    expect(openMsg(tensor([32], 4, 0, 64))).toBe("GGUF tensor 'w' has unknown ggml type 4");
    expect(openMsg(tensor([40, 1], GGML.Q8_0, 0, 64))).toBe("GGUF tensor 'w' [40, 1] of type Q8_0: ne[0] is not whole 32-weight blocks (or too large)");
    expect(openMsg(tensor([256], 10, 0, 84))).toBe('opened');
    expect(openMsg(tensor([128], 10, 0, 84))).toBe("GGUF tensor 'w' [128] of type Q2_K: ne[0] is not whole 256-weight blocks (or too large)");
    const big = tensor([1], GGML.F32, 0, 4096);
    const d = big.pos * 32;
    expect(openMsg(tensor([d, d, d, d], GGML.F32, 0, 4096))).toBe(`GGUF tensor 'w' [${d}, ${d}, ${d}, ${d}] of type F32: ne[0] is not whole 1-weight blocks (or too large)`);
    expect(openMsg(tensor([8], GGML.F32, 48, 96))).toBe("GGUF tensor 'w' offset 48 is not a multiple of the alignment 32");
    expect(openMsg(tensor([8], GGML.F32, 64, 96))).toBe('opened');
    expect(openMsg(tensor([8], GGML.F32, 64, 95))).toBe("truncated GGUF: tensor 'w' (32 bytes at data offset 64) runs past the end of the file (159 bytes)");
    expect(openMsg(tensor([8], GGML.F32, 0, 64).buf().subarray(0, 40))).toBe("truncated GGUF: tensor 'w' dim 0 at byte 37 runs past the end of the file (40 bytes)");
    expect(openMsg(tensor([8], GGML.F32, 0, 64).buf().subarray(0, 35))).toBe("truncated GGUF: tensor 'w' dims at byte 33 runs past the end of the file (35 bytes)");
    expect(openMsg(tensor([8], GGML.F32, 0, 64).buf().subarray(0, 47))).toBe("truncated GGUF: tensor 'w' type at byte 45 runs past the end of the file (47 bytes)");
    expect(openMsg(tensor([8], GGML.F32, 0, 64).buf().subarray(0, 52))).toBe("truncated GGUF: tensor 'w' offset at byte 49 runs past the end of the file (52 bytes)");
  });

  it('duplicate names, overlapping data (adjacent data is fine)', () => {
    const two = (o1: number, o2: number, n2 = 'b') => {
      const b = head(2, 0);
      info(b, 'a', [8], GGML.F32, o1);
      info(b, n2, [16], GGML.F32, o2);
      return b.padTo(32).raw(new Uint8Array(160));
    };
    expect(openMsg(two(0, 32))).toBe('opened');
    expect(openMsg(two(96, 32))).toBe('opened');
    expect(openMsg(two(0, 32, 'a'))).toBe("GGUF tensor 'a' appears twice");
    expect(openMsg(two(64, 0))).toBe('opened');
    expect(openMsg(two(0, 0))).toBe("GGUF tensors 'a' and 'b' overlap");
    expect(openMsg(two(32, 0))).toBe("GGUF tensors 'b' and 'a' overlap");
  });

  it('a refused file is closed (no file descriptor left open)', () => {
    const f = put(head(0, 1).u64(200));
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) expect(() => GgufFile.open(f)).toThrow(MoekitError);
    expect(fds()).toBe(before);
  });
});

describe('isGgufPath', () => {
  it('a .gguf name (missing or not), or a regular file that starts with the magic and is not .json', () => {
    const d = tmp();
    const w = (n: string, b: Buffer | string) => { const f = path.join(d, n); fs.writeFileSync(f, b); return f; };
    expect(isGgufPath(path.join(d, 'missing.gguf'))).toBe(true);
    expect(isGgufPath(path.join(d, 'missing.GGUF'))).toBe(true);
    expect(isGgufPath(path.join(d, 'missing.bin'))).toBe(false);
    expect(isGgufPath(path.join(d, 'missing.gguf.bin'))).toBe(false);
    expect(isGgufPath(w('junk.Gguf', 'no magic here'))).toBe(true);
    expect(isGgufPath(w('model.bin', head(0, 0).buf()))).toBe(true);
    expect(isGgufPath(w('model', 'GGUF'))).toBe(true);
    expect(isGgufPath(w('other.bin', 'GGML and more'))).toBe(false);
    expect(isGgufPath(w('short.bin', 'GGU'))).toBe(false);
    expect(isGgufPath(w('empty', ''))).toBe(false);
    expect(isGgufPath(w('config.json', 'GGUF'))).toBe(false);
    expect(isGgufPath(w('config.JSON', 'GGUF'))).toBe(false);
    expect(isGgufPath(w('x.gguf.bin', 'no magic here'))).toBe(false);
    expect(isGgufPath(w('x.json.bin', 'GGUF'))).toBe(true);
    const fds = fs.readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 10; i++) isGgufPath(path.join(d, 'model'));
    expect(fs.readdirSync('/proc/self/fd').length).toBe(fds);
    const dir = path.join(d, 'dir.gguf');
    fs.mkdirSync(dir);
    expect(isGgufPath(dir)).toBe(false);
    expect(isGgufPath(d)).toBe(false);
  });
});

describe('ggmlBytes and the value type names', () => {
  it('whole blocks or NaN', () => {
    expect(ggmlBytes(GGML.F32, 3, 6)).toBe(24);
    expect(ggmlBytes(GGML.BF16, 5, 10)).toBe(20);
    expect(ggmlBytes(GGML.Q4_0, 64, 128)).toBe(72);
    expect(ggmlBytes(GGML.Q8_0, 32, 96)).toBe(102);
    expect(ggmlBytes(39, 64, 64)).toBe(34);
    expect(ggmlBytes(GGML.Q4_0, 48, 48)).toBeNaN();
    expect(ggufValueTypeName(T.ARRAY)).toBe('ARRAY');
    expect(ggufValueTypeName(T.U8)).toBe('U8');
    expect(ggufValueTypeName(99)).toBe('99');
  });
  it('gv builds typed entries', () => {
    expect(gv.u32(7)).toStrictEqual({ type: T.U32, value: 7 });
    expect(gv.f32(0.5)).toStrictEqual({ type: T.F32, value: 0.5 });
    expect(gv.bool(false)).toStrictEqual({ type: T.BOOL, value: false });
    expect(gv.str('s')).toStrictEqual({ type: T.STRING, value: 's' });
    expect(gv.strs(['a'])).toStrictEqual({ type: T.ARRAY, elemType: T.STRING, value: ['a'] });
    expect(gv.i32s([-1])).toStrictEqual({ type: T.ARRAY, elemType: T.I32, value: [-1] });
    expect(gv.f32s([2])).toStrictEqual({ type: T.ARRAY, elemType: T.F32, value: [2] });
  });
});

describe('writeGguf', () => {
  const META: [string, GgufEntry][] = [
    ['general.architecture', gv.str('tést')],
    ['u8', { type: T.U8, value: 250 }], ['i8', { type: T.I8, value: -3 }], ['u16', { type: T.U16, value: 65535 }],
    ['i16', { type: T.I16, value: -2 }], ['u32', gv.u32(4_000_000_000)], ['i32', { type: T.I32, value: -7 }],
    ['f32', gv.f32(0.25)], ['t', gv.bool(true)], ['f', gv.bool(false)],
    ['u64', { type: T.U64, value: 2n ** 60n }], ['i64', { type: T.I64, value: -5 }], ['f64', { type: T.F64, value: 0.1 }],
    ['names', gv.strs(['x', 'yz'])], ['ids', gv.i32s([1, -1])], ['ws', gv.f32s([0.5])], ['flags', { type: T.ARRAY, elemType: T.BOOL, value: [true, false] }],
  ];
  const TENSORS = [
    { name: 'a', shape: [3, 4], type: GGML.F32, bytes: 48 },
    { name: 'q', shape: [2, 64], type: GGML.Q8_0, bytes: 136 },
    { name: 'h', shape: [32], type: GGML.F16, bytes: 64 },
  ];
  /** the file by hand: v3, the metadata as typed, infos with ne reversed and aligned offsets, zero padding after each part */
  function expected(): Buffer {
    const b = head(TENSORS.length, META.length);
    b.str('general.architecture').u32(T.STRING).str('tést');
    b.str('u8').u32(T.U8).u8(250); b.str('i8').u32(T.I8).u8(0xfd); b.str('u16').u32(T.U16).u16(65535);
    b.str('i16').u32(T.I16).u16(0xfffe); b.str('u32').u32(T.U32).u32(4_000_000_000); b.str('i32').u32(T.I32).u32(2 ** 32 - 7);
    b.str('f32').u32(T.F32).f32(0.25); b.str('t').u32(T.BOOL).u8(1); b.str('f').u32(T.BOOL).u8(0);
    b.str('u64').u32(T.U64).u64(2n ** 60n); b.str('i64').u32(T.I64).i64(-5); b.str('f64').u32(T.F64).f64(0.1);
    b.str('names').u32(T.ARRAY).u32(T.STRING).u64(2).str('x').str('yz');
    b.str('ids').u32(T.ARRAY).u32(T.I32).u64(2).u32(1).u32(2 ** 32 - 1);
    b.str('ws').u32(T.ARRAY).u32(T.F32).u64(1).f32(0.5);
    b.str('flags').u32(T.ARRAY).u32(T.BOOL).u64(2).u8(1).u8(0);
    info(b, 'a', [4, 3], GGML.F32, 0);
    info(b, 'q', [64, 2], GGML.Q8_0, 64);
    info(b, 'h', [32], GGML.F16, 224);
    b.padTo(32);
    TENSORS.forEach((t, i) => b.raw(pattern(t.bytes, i)).padTo(32));
    return b.buf();
  }
  const tensors = () => TENSORS.map((t, i) => ({ name: t.name, shape: t.shape, type: t.type, data: () => pattern(t.bytes, i) }));

  it('writes the GGUF the spec lays out, byte for byte, and returns its size; it reads back', () => {
    const f = path.join(tmp(), 'w.gguf');
    const n = writeGguf(f, META, tensors());
    const want = expected();
    expect(n).toBe(want.length);
    expect(fs.readFileSync(f).equals(want)).toBe(true);
    const g = GgufFile.open(f);
    expect(g.get('u64')).toBe(2n ** 60n);
    expect([...g.read('q')]).toEqual([...pattern(136, 1)]);
    g.close();
    expect(fs.readdirSync(tmp()).filter((x) => x.startsWith('w.gguf.tmp'))).toEqual([]);
  });

  it('u64 values up to 2^64 − 1; i64 down to −2^63', () => {
    const f = path.join(tmp(), 'u64.gguf');
    writeGguf(f, [['u', { type: T.U64, value: 2n ** 64n - 1n }], ['i', { type: T.I64, value: -(2n ** 63n) }]], []);
    expect(fs.readFileSync(f).equals(head(0, 2).str('u').u32(T.U64).u64(2n ** 64n - 1n).str('i').u32(T.I64).i64(-(2n ** 63n)).padTo(32).buf())).toBe(true);
    const g = GgufFile.open(f);
    expect([g.get('u'), g.get('i')]).toEqual([2n ** 64n - 1n, -(2n ** 63n)]);
    g.close();
  });

  it('leaves no file descriptor open, written or refused; a missing directory is the open error', () => {
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    const f = path.join(tmp(), 'fds.gguf');
    for (let i = 0; i < 5; i++) {
      writeGguf(f, [], [{ name: 'w', shape: [8], type: GGML.F32, data: () => pattern(32, 0) }]);
      expect(() => writeGguf(f, [], [{ name: 'w', shape: [8], type: GGML.F32, data: () => pattern(31, 0) }])).toThrow(MoekitError);
    }
    expect(fds()).toBe(before);
    const missing = path.join(tmp(), 'no-such-dir', 'x.gguf');
    let err: NodeJS.ErrnoException | undefined;
    try { writeGguf(missing, [], []); } catch (e) { err = e as NodeJS.ErrnoException; }
    expect([err?.code, err?.syscall, err?.path]).toEqual(['ENOENT', 'open', `${missing}.tmp-${process.pid}`]);
  });

  it('no metadata, no tensors: the 24-byte header and its padding', () => {
    const f = path.join(tmp(), 'empty.gguf');
    expect(writeGguf(f, [], [])).toBe(32);
    expect(fs.readFileSync(f).equals(head(0, 0).padTo(32).buf())).toBe(true);
  });

  it('a non-default alignment goes with general.alignment', () => {
    const f = path.join(tmp(), 'a64.gguf');
    const n = writeGguf(f, [['general.alignment', gv.u32(64)]], [{ name: 'w', shape: [8], type: GGML.F32, data: () => pattern(32, 5) }], 64);
    const b = head(1, 1).str('general.alignment').u32(T.U32).u32(64);
    info(b, 'w', [8], GGML.F32, 0);
    b.padTo(64).raw(pattern(32, 5)).padTo(64);
    expect(n).toBe(b.pos);
    expect(fs.readFileSync(f).equals(b.buf())).toBe(true);
    expect(GgufFile.open(f).alignment).toBe(64);
  });

  it('writes all of each buffer when the system writes it in pieces', () => {
    const f = path.join(tmp(), 'pieces.gguf');
    const real = fs.writeSync;
    const spy = vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, b: Uint8Array, off?: number, len?: number) =>
      real(fd, b, off ?? 0, Math.min(len ?? b.byteLength - (off ?? 0), 5))) as typeof fs.writeSync);
    const n = writeGguf(f, META, tensors());
    const calls = spy.mock.calls.length;
    spy.mockRestore();
    expect(calls).toBeGreaterThan(100);
    expect(fs.readFileSync(f).equals(expected())).toBe(true);
    expect(n).toBe(expected().length);
  });

  it('writes under a temp name, registered for removal on a signal, then renames', () => {
    const f = path.join(tmp(), 'atomic.gguf');
    const t = `${f}.tmp-${process.pid}`;
    const seen: [boolean, boolean, string[]][] = [];
    writeGguf(f, [], [{ name: 'w', shape: [8], type: GGML.F32, data: () => { seen.push([fs.existsSync(t), fs.existsSync(f), liveTemps()]); return pattern(32, 0); } }]);
    expect(seen).toEqual([[true, false, [t]]]);
    expect(fs.existsSync(t)).toBe(false);
    expect(liveTemps()).toEqual([]);
  });

  /** writeGguf must throw `msg` naming the file, leave no temp file and leave an existing file as it was */
  function refuses(run: (f: string) => void, msg: string): void {
    const d = fs.mkdtempSync(path.join(tmp(), 'refuse-'));
    const f = path.join(d, 'out.gguf');
    fs.writeFileSync(f, 'old');
    let err: unknown;
    try { run(f); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(MoekitError);
    expect((err as MoekitError).oneLine()).toBe(`${f}: ${msg}`);
    expect(fs.readdirSync(d)).toEqual(['out.gguf']);
    expect(fs.readFileSync(f, 'utf8')).toBe('old');
    expect(liveTemps()).toEqual([]);
  }

  it('each tensor\'s data must be exactly its bytes: short by less than the alignment, long, or any other size', () => {
    const w = (bytes: number) => (f: string) => writeGguf(f, [], [
      { name: 'ok', shape: [8], type: GGML.F32, data: () => new Uint8Array(32) },
      { name: 'x', shape: [2, 4], type: GGML.F32, data: () => new Uint8Array(bytes) },
    ]);
    refuses(w(28), "GGUF tensor 'x' [2, 4] of type F32: the data has 28 bytes, expected 32");
    refuses(w(1), "GGUF tensor 'x' [2, 4] of type F32: the data has 1 bytes, expected 32");
    refuses(w(33), "GGUF tensor 'x' [2, 4] of type F32: the data has 33 bytes, expected 32");
    refuses(w(64), "GGUF tensor 'x' [2, 4] of type F32: the data has 64 bytes, expected 32");
    refuses((f) => writeGguf(f, [], [{ name: 'q', shape: [64], type: GGML.Q4_0, data: () => new Uint8Array(32) }]),
      "GGUF tensor 'q' [64] of type Q4_0: the data has 32 bytes, expected 36");
  });

  it('a tensor of partial blocks, an unknown type, an alignment the metadata does not give', () => {
    refuses((f) => writeGguf(f, [], [{ name: 'q', shape: [2, 40], type: GGML.Q8_0, data: () => new Uint8Array(0) }]),
      "GGUF tensor 'q' [2, 40] is not whole Q8_0 blocks");
    refuses((f) => writeGguf(f, [], [{ name: 'q', shape: [4], type: 5, data: () => new Uint8Array(0) }]),
      "GGUF tensor 'q' has unknown ggml type 5");
    refuses((f) => writeGguf(f, [], [], 64), 'GGUF alignment 64 but general.alignment is 32: they must agree');
    refuses((f) => writeGguf(f, [['general.alignment', gv.u32(16)]], []), 'GGUF alignment 32 but general.alignment is 16: they must agree');
  });

  it('an error from a tensor\'s data, or from a write, removes the temp file and keeps the old file', () => {
    const d = fs.mkdtempSync(path.join(tmp(), 'fail-'));
    const f = path.join(d, 'out.gguf');
    fs.writeFileSync(f, 'old');
    expect(() => writeGguf(f, [], [{ name: 'w', shape: [8], type: GGML.F32, data: () => { throw new Error('no data'); } }])).toThrow(/^no data$/);
    expect(fs.readdirSync(d)).toEqual(['out.gguf']);
    vi.spyOn(fs, 'writeSync').mockImplementation(() => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); });
    expect(() => writeGguf(f, [], [])).toThrow(/ENOSPC/);
    vi.restoreAllMocks();
    expect(fs.readdirSync(d)).toEqual(['out.gguf']);
    expect(fs.readFileSync(f, 'utf8')).toBe('old');
    expect(liveTemps()).toEqual([]);
  });
});
