/**
 * GGUF, llama.cpp's model file (version 2 and 3, little-endian), read and written.
 *   header:  "GGUF" magic, u32 version, u64 tensor count, u64 metadata count
 *   metadata: per entry a string key, u32 value type, the value (strings: u64 length + UTF-8 bytes;
 *            arrays: u32 element type, u64 count, the elements)
 *   tensor infos: name, u32 n_dims, n_dims × u64 ne (ne[0] the innermost: the reverse of a PyTorch
 *            shape), u32 ggml type, u64 offset into the data section (a multiple of the alignment)
 *   data:    at the first multiple of `general.alignment` (default 32) after the infos
 * The reader is strict: a bad magic or version, counts or lengths that cannot fit the file, unknown
 * value or tensor types, more than 4 dims, overlapping or unaligned or out-of-file data are one-line
 * errors naming the file, checked before anything large is allocated. Tensors are read by positional
 * reads of their own bytes (or rows of them), never the whole file.
 */
import fs from 'node:fs';
import { MoekitError } from '../util/errors.js';
import { mapRange } from './mapped.js';
import { withTemp } from '../util/temp.js';
import { openRegular } from './read.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** the header (metadata + tensor infos) is read whole: real ones are a few MiB (a 150k-token vocabulary) */
export const GGUF_HEADER_MAX_BYTES = 512 * 2 ** 20;
const MAX_DIMS = 4;

export enum GgufValueType { U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12 }
const VALUE_BYTES: Partial<Record<GgufValueType, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** ggml tensor types: [name, block weights, block bytes]; moekit computes with F32, F16, BF16, Q8_0, Q4_0 */
export const GGML_TYPES: Readonly<Record<number, readonly [string, number, number]>> = {
  0: ['F32', 1, 4], 1: ['F16', 1, 2], 2: ['Q4_0', 32, 18], 3: ['Q4_1', 32, 20], 6: ['Q5_0', 32, 22], 7: ['Q5_1', 32, 24],
  8: ['Q8_0', 32, 34], 9: ['Q8_1', 32, 36], 10: ['Q2_K', 256, 84], 11: ['Q3_K', 256, 110], 12: ['Q4_K', 256, 144],
  13: ['Q5_K', 256, 176], 14: ['Q6_K', 256, 210], 15: ['Q8_K', 256, 292], 24: ['I8', 1, 1], 25: ['I16', 1, 2],
  26: ['I32', 1, 4], 27: ['I64', 1, 8], 28: ['F64', 1, 8], 30: ['BF16', 1, 2], 39: ['MXFP4', 32, 17],
};
export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 } as const;

export type GgufValue = number | bigint | boolean | string | GgufValue[];
/** a metadata value with its declared type (arrays: their element type) */
export interface GgufEntry { type: GgufValueType; elemType?: GgufValueType; value: GgufValue }

export interface GgufTensorInfo {
  name: string;
  /** ne, innermost first, as GGUF stores it */
  ne: number[];
  /** the PyTorch-order shape (ne reversed): rows of the last dim */
  shape: number[];
  type: number;
  typeName: string;
  /** absolute file offset of the first byte, and the byte length */
  offset: number;
  bytes: number;
}

class Cursor {
  pos = 0;
  constructor(readonly buf: Buffer, readonly file: string, readonly fileSize: number) {}
  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) {
      // the buffer ends where the file does (or where it ended when read: it may have shrunk since its stat), unless
      // it was cut at the header cap
      throw new MoekitError(this.buf.length < GGUF_HEADER_MAX_BYTES || this.buf.length >= this.fileSize
        ? `truncated GGUF: ${what} at byte ${this.pos} runs past the end of the file (${this.buf.length} bytes)`
        : `GGUF header passes the ${GGUF_HEADER_MAX_BYTES / 2 ** 20} MiB limit (${what} at byte ${this.pos})`, this.file);
    }
  }
  u32(what: string): number { this.need(4, what); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  u64(what: string): number {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MoekitError(`GGUF ${what} is ${v}, out of range`, this.file);
    return Number(v);
  }
  str(what: string): string {
    const n = this.u64(`${what} length`);
    if (n > this.fileSize) throw new MoekitError(`GGUF ${what} length ${n} is larger than the file`, this.file);
    this.need(n, what);
    const s = this.buf.toString('utf8', this.pos, this.pos + n); this.pos += n;
    return s;
  }
  scalar(t: GgufValueType, what: string): GgufValue {
    const b = VALUE_BYTES[t]!;
    this.need(b, what);
    const p = this.pos; this.pos += b;
    switch (t) {
      case GgufValueType.U8: return this.buf.readUInt8(p);
      case GgufValueType.I8: return this.buf.readInt8(p);
      case GgufValueType.U16: return this.buf.readUInt16LE(p);
      case GgufValueType.I16: return this.buf.readInt16LE(p);
      case GgufValueType.U32: return this.buf.readUInt32LE(p);
      case GgufValueType.I32: return this.buf.readInt32LE(p);
      case GgufValueType.F32: return this.buf.readFloatLE(p);
      case GgufValueType.BOOL: return this.buf.readUInt8(p) !== 0;
      case GgufValueType.U64: { const v = this.buf.readBigUInt64LE(p); return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }
      case GgufValueType.I64: { const v = this.buf.readBigInt64LE(p); return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }
      default: return this.buf.readDoubleLE(p);
    }
  }
}

function typeName(t: number): string { return GgufValueType[t] ?? String(t); }

function readValue(c: Cursor, t: number, key: string, depth: number): GgufEntry {
  if (t === GgufValueType.STRING) return { type: t, value: c.str(`metadata '${key}'`) };
  if (t === GgufValueType.ARRAY) {
    if (depth > 2) throw new MoekitError(`GGUF metadata '${key}': arrays nested too deep`, c.file);
    const et = c.u32(`metadata '${key}' element type`);
    if (!(et in GgufValueType)) throw new MoekitError(`GGUF metadata '${key}' has unknown array element type ${et}`, c.file);
    const n = c.u64(`metadata '${key}' count`);
    const min = et === GgufValueType.STRING ? 8 : et === GgufValueType.ARRAY ? 12 : VALUE_BYTES[et as GgufValueType]!;
    if (n * min > c.fileSize - c.pos) throw new MoekitError(`GGUF metadata '${key}' claims ${n} elements, more than the file holds`, c.file);
    const out: GgufValue[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = readValue(c, et, `${key}[${i}]`, depth + 1).value;
    return { type: t, elemType: et, value: out };
  }
  // t is a known type (open and the array branch check it): every other one has a fixed size
  return { type: t, value: c.scalar(t, `metadata '${key}'`) };
}

/** bytes of a tensor of `type` with innermost dim ne0 and `n` elements; NaN when ne0 is not whole blocks */
export function ggmlBytes(type: number, ne0: number, n: number): number {
  const [, bw, bb] = GGML_TYPES[type];
  return ne0 % bw === 0 ? (n / bw) * bb : NaN;
}

export class GgufFile {
  private constructor(readonly file: string, private fd: number, readonly size: number, readonly version: number,
                      readonly meta: Map<string, GgufEntry>, readonly tensors: Map<string, GgufTensorInfo>,
                      readonly alignment: number, readonly dataOffset: number) {}

  static open(file: string): GgufFile {
    const { fd, size } = openRegular(file, 'GGUF');
    try {
      const headLen = Math.min(size, GGUF_HEADER_MAX_BYTES);
      const buf = Buffer.allocUnsafe(headLen);
      let got = 0;
      while (got < headLen) {
        const n = fs.readSync(fd, buf, got, headLen - got, got);
        if (n === 0) break;
        got += n;
      }
      const c = new Cursor(buf.subarray(0, got), file, size);
      if (got < 4 || buf.readUInt32LE(0) !== GGUF_MAGIC) {
        throw new MoekitError(`not a GGUF file (bad magic${got >= 4 ? ` ${JSON.stringify(buf.toString('latin1', 0, 4))}` : ': shorter than 4 bytes'})`, file);
      }
      c.pos = 4;
      const version = c.u32('version');
      if (version !== 2 && version !== 3) throw new MoekitError(`unsupported GGUF version ${version} (moekit reads 2 and 3)`, file);
      const nTensors = c.u64('tensor count'), nKv = c.u64('metadata count');
      // each metadata entry takes ≥ 13 bytes, each tensor info ≥ 28: counts beyond that cannot be real
      if (nKv * 13 > size) throw new MoekitError(`GGUF metadata count ${nKv} is more than the file can hold`, file);
      if (nTensors * 28 > size) throw new MoekitError(`GGUF tensor count ${nTensors} is more than the file can hold`, file);
      const meta = new Map<string, GgufEntry>();
      for (let i = 0; i < nKv; i++) {
        const key = c.str(`metadata key ${i}`);
        const t = c.u32(`metadata '${key}' type`);
        if (!(t in GgufValueType)) throw new MoekitError(`GGUF metadata '${key}' has unknown value type ${t}`, file);
        if (meta.has(key)) throw new MoekitError(`GGUF metadata key '${key}' appears twice`, file);
        meta.set(key, readValue(c, t, key, 0));
      }
      const al = meta.get('general.alignment');
      const alignment = al === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(al.value);
      if (!(Number.isInteger(alignment) && alignment > 0 && alignment <= 1 << 20 && (alignment & (alignment - 1)) === 0)) {
        throw new MoekitError(`GGUF general.alignment must be a power of two, got ${String(al?.value)}`, file);
      }
      const infos: Omit<GgufTensorInfo, 'offset'>[] = [];
      const rel: number[] = [];
      const names = new Set<string>();
      for (let i = 0; i < nTensors; i++) {
        const name = c.str(`tensor name ${i}`);
        if (names.has(name)) throw new MoekitError(`GGUF tensor '${name}' appears twice`, file);
        names.add(name);
        const nd = c.u32(`tensor '${name}' dims`);
        if (nd < 1 || nd > MAX_DIMS) throw new MoekitError(`GGUF tensor '${name}' has ${nd} dims (1 to ${MAX_DIMS})`, file);
        const ne: number[] = [];
        for (let d = 0; d < nd; d++) {
          const v = c.u64(`tensor '${name}' dim ${d}`);
          if (v < 1 || v > size * 32) throw new MoekitError(`GGUF tensor '${name}' has dim ${d} = ${v}, out of range`, file);
          ne.push(v);
        }
        const type = c.u32(`tensor '${name}' type`);
        if (!(type in GGML_TYPES)) throw new MoekitError(`GGUF tensor '${name}' has unknown ggml type ${type}`, file);
        const n = ne.reduce((a, b) => a * b, 1);
        const bytes = ggmlBytes(type, ne[0], n);
        if (!Number.isSafeInteger(bytes)) {
          throw new MoekitError(`GGUF tensor '${name}' [${ne.join(', ')}] of type ${GGML_TYPES[type][0]}: ne[0] is not whole ${GGML_TYPES[type][1]}-weight blocks (or too large)`, file);
        }
        const off = c.u64(`tensor '${name}' offset`);
        if (off % alignment !== 0) throw new MoekitError(`GGUF tensor '${name}' offset ${off} is not a multiple of the alignment ${alignment}`, file);
        infos.push({ name, ne, shape: ne.slice().reverse(), type, typeName: GGML_TYPES[type][0], bytes });
        rel.push(off);
      }
      const dataOffset = Math.ceil(c.pos / alignment) * alignment;
      const tensors = new Map<string, GgufTensorInfo>();
      const spans: [number, number, string][] = [];
      infos.forEach((t, i) => {
        const offset = dataOffset + rel[i];
        if (offset + t.bytes > size) {
          throw new MoekitError(`truncated GGUF: tensor '${t.name}' (${t.bytes} bytes at data offset ${rel[i]}) runs past the end of the file (${size} bytes)`, file);
        }
        tensors.set(t.name, { ...t, offset });
        spans.push([offset, offset + t.bytes, t.name]);
      });
      spans.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) {
        if (spans[i][0] < spans[i - 1][1]) throw new MoekitError(`GGUF tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`, file);
      }
      return new GgufFile(file, fd, size, version, meta, tensors, alignment, dataOffset);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd >= 0) { fs.closeSync(this.fd); this.fd = -1; }
  }

  /** a metadata value, or undefined */
  get(key: string): GgufValue | undefined {
    return this.meta.get(key)?.value;
  }

  info(name: string): GgufTensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new MoekitError(`missing GGUF tensor '${name}'`, this.file);
    return t;
  }

  /** the raw bytes of rows [r0, r1) along the outermost dim (all rows by default): a view into a mapping of them
   * from 64 KiB on, where the addon can (src/io/mapped.ts), else one positional read */
  read(name: string, rows?: readonly [number, number]): Buffer {
    const t = this.info(name);
    const outer = t.ne[t.ne.length - 1];
    const [r0, r1] = rows ?? [0, outer];
    if (!(r0 >= 0 && r1 <= outer && r0 <= r1)) throw new MoekitError(`GGUF tensor '${name}': rows [${r0}, ${r1}) outside [0, ${outer})`, this.file);
    const rowBytes = t.bytes / outer;
    const len = (r1 - r0) * rowBytes;
    const m = mapRange(this.file, t.offset + r0 * rowBytes, len); // a view into a mapping (src/io/mapped.ts), or null
    if (m) return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd, buf, got, len - got, t.offset + r0 * rowBytes + got);
      if (n === 0) throw new MoekitError(`truncated GGUF: tensor '${name}' ends early`, this.file);
      got += n;
    }
    return buf;
  }
}

/** a path that names a GGUF file: a regular file ending in .gguf, or one that starts with the magic */
export function isGgufPath(p: string): boolean {
  let st: fs.Stats;
  try { st = fs.statSync(p); } catch { return /\.gguf$/i.test(p); }
  if (!st.isFile()) return false;
  if (/\.gguf$/i.test(p)) return true;
  if (st.size < 4 || /\.json$/i.test(p)) return false;
  const fd = fs.openSync(p, 'r');
  try {
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, 0);
    return b.readUInt32LE(0) === GGUF_MAGIC;
  } finally {
    fs.closeSync(fd);
  }
}

// ---- writing --------------------------------------------------------------------------------

export interface GgufWriteTensor {
  name: string;
  /** PyTorch-order shape (written reversed as ne) */
  shape: number[];
  type: number;
  /** the bytes, produced when written */
  data: () => Uint8Array;
}

function encodeValue(parts: Buffer[], e: GgufEntry): void {
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const scalar = (t: GgufValueType, v: GgufValue) => {
    if (t === GgufValueType.STRING) { const s = Buffer.from(String(v), 'utf8'); u64(s.length); parts.push(s); return; }
    const b = Buffer.alloc(VALUE_BYTES[t]!);
    switch (t) {
      case GgufValueType.U8: b.writeUInt8(Number(v)); break;
      case GgufValueType.I8: b.writeInt8(Number(v)); break;
      case GgufValueType.U16: b.writeUInt16LE(Number(v)); break;
      case GgufValueType.I16: b.writeInt16LE(Number(v)); break;
      case GgufValueType.U32: b.writeUInt32LE(Number(v)); break;
      case GgufValueType.I32: b.writeInt32LE(Number(v)); break;
      case GgufValueType.F32: b.writeFloatLE(Number(v)); break;
      case GgufValueType.BOOL: b.writeUInt8(v ? 1 : 0); break;
      case GgufValueType.U64: b.writeBigUInt64LE(BigInt(v as number)); break;
      case GgufValueType.I64: b.writeBigInt64LE(BigInt(v as number)); break;
      default: b.writeDoubleLE(Number(v));
    }
    parts.push(b);
  };
  u32(e.type);
  if (e.type === GgufValueType.ARRAY) {
    const arr = e.value as GgufValue[];
    u32(e.elemType!);
    u64(arr.length);
    for (const v of arr) scalar(e.elemType!, v);
  } else scalar(e.type, e.value);
}

/** Linux writes at most 2 GiB − 4 KiB a call: larger tensors go in pieces of this many bytes */
const WRITE_CHUNK = 1 << 30;

/** all of `b` at the file's position: one writeSync may write less than it is given */
function writeFully(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.byteLength) done += fs.writeSync(fd, b, done, Math.min(b.byteLength - done, WRITE_CHUNK));
}

/**
 * Write a GGUF v3 file atomically (a temp name, then rename); tensors in the given order. Each tensor's data must be
 * exactly its type × shape bytes (checked as it is produced); on any error the temp file is removed and an existing
 * `file` is left as it was.
 */
export function writeGguf(file: string, meta: [string, GgufEntry][], tensors: GgufWriteTensor[], alignment = GGUF_DEFAULT_ALIGNMENT): number {
  // the reader places the data by general.alignment (32 when absent): a file laid out by another would not read back
  const al = meta.find(([k]) => k === 'general.alignment')?.[1].value ?? GGUF_DEFAULT_ALIGNMENT;
  if (al !== alignment) throw new MoekitError(`GGUF alignment ${alignment} but general.alignment is ${String(al)}: they must agree`, file);
  const parts: Buffer[] = [];
  const head = Buffer.alloc(24);
  head.writeUInt32LE(GGUF_MAGIC, 0); head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(BigInt(tensors.length), 8); head.writeBigUInt64LE(BigInt(meta.length), 16);
  parts.push(head);
  for (const [k, e] of meta) {
    const kb = Buffer.from(k, 'utf8');
    const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(kb.length));
    parts.push(l, kb);
    encodeValue(parts, e);
  }
  const pad = (n: number) => (alignment - (n % alignment)) % alignment;
  let off = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    if (!(t.type in GGML_TYPES)) throw new MoekitError(`GGUF tensor '${t.name}' has unknown ggml type ${t.type}`, file);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytes = ggmlBytes(t.type, t.shape[t.shape.length - 1], n);
    if (!Number.isSafeInteger(bytes)) throw new MoekitError(`GGUF tensor '${t.name}' [${t.shape.join(', ')}] is not whole ${GGML_TYPES[t.type][0]} blocks`, file);
    const nb = Buffer.from(t.name, 'utf8');
    const b = Buffer.alloc(8 + nb.length + 4 + 8 * t.shape.length + 4 + 8);
    let p = b.writeBigUInt64LE(BigInt(nb.length), 0);
    p += nb.copy(b, p);
    p = b.writeUInt32LE(t.shape.length, p);
    for (const d of t.shape.slice().reverse()) p = b.writeBigUInt64LE(BigInt(d), p);
    p = b.writeUInt32LE(t.type, p);
    b.writeBigUInt64LE(BigInt(off), p);
    parts.push(b);
    sizes.push(bytes);
    off += bytes + pad(bytes);
  }
  const header = Buffer.concat(parts);
  const tmp = `${file}.tmp-${process.pid}`;
  let total = 0;
  withTemp(tmp, () => {
    try {
      const fd = fs.openSync(tmp, 'w');
      try {
        writeFully(fd, header);
        writeFully(fd, Buffer.alloc(pad(header.length)));
        total = header.length + pad(header.length);
        tensors.forEach((t, i) => {
          const d = t.data();
          if (d.byteLength !== sizes[i]) {
            throw new MoekitError(`GGUF tensor '${t.name}' [${t.shape.join(', ')}] of type ${GGML_TYPES[t.type][0]}: the data has ${d.byteLength} bytes, expected ${sizes[i]}`, file);
          }
          writeFully(fd, d);
          writeFully(fd, Buffer.alloc(pad(sizes[i])));
          total += sizes[i] + pad(sizes[i]);
        });
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  });
  return total;
}

/** metadata entry constructors */
export const gv = {
  u32: (v: number): GgufEntry => ({ type: GgufValueType.U32, value: v }),
  f32: (v: number): GgufEntry => ({ type: GgufValueType.F32, value: v }),
  bool: (v: boolean): GgufEntry => ({ type: GgufValueType.BOOL, value: v }),
  str: (v: string): GgufEntry => ({ type: GgufValueType.STRING, value: v }),
  strs: (v: string[]): GgufEntry => ({ type: GgufValueType.ARRAY, elemType: GgufValueType.STRING, value: v }),
  i32s: (v: number[]): GgufEntry => ({ type: GgufValueType.ARRAY, elemType: GgufValueType.I32, value: v }),
  f32s: (v: number[]): GgufEntry => ({ type: GgufValueType.ARRAY, elemType: GgufValueType.F32, value: v }),
};
export { typeName as ggufValueTypeName };
