/**
 * Reading safetensors files with positional reads: opening parses only the header, and each
 * tensor read fetches exactly that tensor's bytes, so a 100 GB checkpoint opens instantly.
 *
 * File format (https://github.com/huggingface/safetensors):
 *   [ 8 bytes: N, unsigned 64-bit little-endian ]
 *   [ N bytes: UTF-8 JSON object (may be padded with trailing spaces) ]
 *   [ data section: the tensors' bytes, little-endian, row-major ]
 * The header maps each tensor name to `{"dtype": "F32", "shape": [2, 3], "data_offsets":
 * [begin, end]}` (offsets relative to the start of the data section), plus an optional
 * `"__metadata__": {string: string}`. Validation here is strict, as in the reference Rust
 * crate: N ≤ 100 000 000, end − begin = dtype size × Π shape, and the tensors must tile the
 * data section exactly (no overlaps, no gaps, nothing after the last tensor). Every problem is
 * a MoekitError naming the file.
 *
 * Where the native addon can, a tensor of 64 KiB or more is a view into a mapping of its range (src/io/mapped.ts),
 * as llama.cpp maps its files; MOEKIT_MMAP=0 reads every tensor into its own buffer instead (positional reads).
 */
import fs from 'node:fs';
import { MoekitError } from '../util/errors.js';
import { mapRange, mapsFiles } from './mapped.js';
import {
  type Dtype, DTYPES, isDtype, byteLengthOf, bytesToF32, bytesToI32, bytesToI64,
} from './dtypes.js';

/** The reference implementation's cap on the header length. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Where one tensor lives. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** absolute position of the first byte in the file */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** Largest single read; fs.readSync cannot take more than 2 GiB at once. */
const READ_CHUNK = 1 << 30;

export class SafetensorsFile {
  readonly path: string;
  /** the `__metadata__` map ({} when absent) */
  readonly metadata: Readonly<Record<string, string>>;
  /** N: the JSON header's length in bytes */
  readonly headerLength: number;
  /** absolute offset of the data section (8 + N) */
  readonly dataOffset: number;
  /** total size of the file in bytes */
  readonly fileSize: number;
  private fd: number | null;
  private mapOk: boolean | undefined; // whether the path still names the file of the header (undefined: not checked)
  private readonly tensors: Map<string, TensorInfo>;

  private constructor(path: string, fd: number, fileSize: number, headerLength: number,
                      metadata: Record<string, string>, tensors: Map<string, TensorInfo>) {
    this.path = path;
    this.fd = fd;
    this.fileSize = fileSize;
    this.headerLength = headerLength;
    this.dataOffset = 8 + headerLength;
    this.metadata = Object.freeze(metadata);
    this.tensors = tensors;
  }

  /** Open `path` and validate its header; reads only the first 8 + N bytes. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0)); // a FIFO must not block open()
    } catch (e) {
      throw new MoekitError(`cannot open safetensors file: ${(e as Error).message}`, path);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new MoekitError('not a regular file', path);
      const size = st.size;
      if (size < 8) throw new MoekitError(`file too short for a safetensors header: ${size} bytes, need at least 8`, path);
      const lenBuf = Buffer.alloc(8);
      readFully(fd, lenBuf, 0, path);
      const n = lenBuf.readBigUInt64LE(0);
      if (n > BigInt(MAX_HEADER_BYTES)) {
        throw new MoekitError(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte cap`, path);
      }
      const headerLength = Number(n);
      if (8 + headerLength > size) {
        throw new MoekitError(
          `header length ${headerLength} runs past the end of the file (${size} bytes, header would end at ${8 + headerLength})`, path);
      }
      const headerBytes = Buffer.alloc(headerLength);
      readFully(fd, headerBytes, 8, path);
      const { metadata, tensors } = parseHeader(headerBytes, 8 + headerLength, size - 8 - headerLength, path);
      return new SafetensorsFile(path, fd, size, headerLength, metadata, tensors);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Tensor names in file order (by offset). */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** Where `name` lives; a MoekitError naming it when there is no such tensor. */
  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new MoekitError(`no tensor named '${name}' in this file`, this.path);
    return t;
  }

  /** All tensors' infos in file order. */
  infos(): TensorInfo[] {
    return [...this.tensors.values()];
  }

  /** That tensor's bytes, exactly: a view into the mapped file, or one positional read into a fresh, aligned buffer. */
  readRaw(name: string): Buffer {
    const t = this.info(name);
    const bytes = this.readBytes(t);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** A float tensor (F32/F64/F16/BF16/F8_*) as float32; integer tensors are refused. */
  readF32(name: string): Float32Array {
    const t = this.info(name);
    return bytesToF32(t.dtype, this.readBytes(t), `tensor '${name}'`, this.path);
  }

  /**
   * Rows [r0, r1) along dim 0 of a tensor: the bytes of just those rows (one positional read of
   * that range, into a fresh, aligned buffer). A row is the tensor's bytes / shape[0].
   */
  readRawRows(name: string, r0: number, r1: number): Buffer {
    const bytes = this.readBytes(rowRange(this.info(name), r0, r1));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** rows [r0, r1) along dim 0 of a float tensor, as float32 */
  readF32Rows(name: string, r0: number, r1: number): Float32Array {
    const t = this.info(name);
    return bytesToF32(t.dtype, this.readBytes(rowRange(t, r0, r1)), `tensor '${name}'`, this.path);
  }

  /** An integer or BOOL tensor as int32; values outside int32 and float tensors are refused. */
  readI32(name: string): Int32Array {
    const t = this.info(name);
    return bytesToI32(t.dtype, this.readBytes(t), `tensor '${name}'`, this.path);
  }

  /** An integer or BOOL tensor as int64; U64 values ≥ 2⁶³ and float tensors are refused. */
  readI64(name: string): BigInt64Array {
    const t = this.info(name);
    return bytesToI64(t.dtype, this.readBytes(t), `tensor '${name}'`, this.path);
  }

  /** Release the file descriptor; idempotent. Reads after close are a programming error. */
  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  get closed(): boolean {
    return this.fd === null;
  }

  /** bytes [offset, offset + length) as a view into a mapping of that range (src/io/mapped.ts), or null */
  private mapped(offset: number, length: number): Uint8Array | null {
    if (!mapsFiles() || offset + length > this.fileSize) return null;
    if (this.mapOk === undefined) this.mapOk = fs.statSync(this.path).size === this.fileSize; // the file the header came from
    return this.mapOk ? mapRange(this.path, offset, length) : null;
  }

  private readBytes(t: Pick<TensorInfo, 'name' | 'byteOffset' | 'byteLength'>): Uint8Array {
    if (this.fd === null) throw new Error(`SafetensorsFile ${this.path} is closed`);
    const m = this.mapped(t.byteOffset, t.byteLength);
    if (m) return m;
    const out = new Uint8Array(t.byteLength); // own ArrayBuffer: aligned for any typed view
    readFully(this.fd, out, t.byteOffset, this.path, t.name);
    return out;
  }
}

/** where rows [r0, r1) along dim 0 of tensor t are; a range outside the tensor is a programming error */
function rowRange(t: TensorInfo, r0: number, r1: number): Pick<TensorInfo, 'name' | 'byteOffset' | 'byteLength'> {
  const rows = t.shape[0];
  if (t.shape.length === 0 || !Number.isInteger(r0) || !Number.isInteger(r1) || r0 < 0 || r1 < r0 || r1 > rows) {
    throw new RangeError(`rows [${r0}, ${r1}) of tensor '${t.name}' [${t.shape.join(', ')}]`);
  }
  const rowBytes = rows === 0 ? 0 : t.byteLength / rows;
  return { name: t.name, byteOffset: t.byteOffset + r0 * rowBytes, byteLength: (r1 - r0) * rowBytes };
}

/** Fill `buf` from absolute file position `pos`; a short read means the file shrank. */
function readFully(fd: number, buf: Uint8Array, pos: number, path: string, tensor?: string): void {
  let done = 0;
  while (done < buf.byteLength) {
    const want = Math.min(buf.byteLength - done, READ_CHUNK);
    const got = fs.readSync(fd, buf, done, want, pos + done);
    if (got === 0) {
      const what = tensor === undefined ? '' : ` reading tensor '${tensor}'`;
      throw new MoekitError(`file truncated${what}: unexpected end of file at byte ${pos + done}`, path);
    }
    done += got;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `the string ${JSON.stringify(v).slice(0, 40)}` : `a ${typeof v}`;
}

/**
 * Validate a header and lay out its tensors. `dataStart` is the absolute offset of the data
 * section and `dataSize` its length in the file.
 */
function parseHeader(bytes: Uint8Array, dataStart: number, dataSize: number, path: string):
    { metadata: Record<string, string>; tensors: Map<string, TensorInfo> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new MoekitError('header is not valid UTF-8', path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MoekitError(`header is not valid JSON: ${(e as Error).message}`, path);
  }
  if (!isPlainObject(json)) throw new MoekitError(`header is not a JSON object (it is ${describe(json)})`, path);

  const metadata: Record<string, string> = {};
  const raw: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw new MoekitError(`__metadata__ is not a JSON object (it is ${describe(entry)})`, path);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') {
          throw new MoekitError(`__metadata__ value for '${k}' is not a string (it is ${describe(v)})`, path);
        }
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (!isPlainObject(entry)) throw new MoekitError(`${where}: entry is not a JSON object (it is ${describe(entry)})`, path);
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!(key in entry)) throw new MoekitError(`${where}: missing '${key}'`, path);
    }
    const { dtype, shape, data_offsets: offs } = entry;
    if (typeof dtype !== 'string') throw new MoekitError(`${where}: dtype is not a string (it is ${describe(dtype)})`, path);
    if (!isDtype(dtype)) {
      throw new MoekitError(`${where}: unknown dtype '${dtype}' (known: ${DTYPES.join(', ')})`, path);
    }
    if (!Array.isArray(shape)) throw new MoekitError(`${where}: shape is not an array (it is ${describe(shape)})`, path);
    shape.forEach((d, i) => {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw new MoekitError(`${where}: shape dimension ${i} is ${JSON.stringify(d)}, not a non-negative integer`, path);
      }
    });
    if (!Array.isArray(offs) || offs.length !== 2) {
      throw new MoekitError(`${where}: data_offsets is not an array of two integers (it is ${JSON.stringify(offs)})`, path);
    }
    const [begin, end] = offs as unknown[];
    for (const o of [begin, end]) {
      if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) {
        throw new MoekitError(`${where}: data_offsets ${JSON.stringify(offs)} are not non-negative integers`, path);
      }
    }
    const b = begin as number, e = end as number;
    if (e < b) throw new MoekitError(`${where}: data_offsets [${b}, ${e}] end before they begin`, path);
    const expected = byteLengthOf(dtype, shape as number[]);
    if (expected !== e - b) {
      throw new MoekitError(
        `${where}: ${dtype} ${JSON.stringify(shape)} needs ${Number.isNaN(expected) ? 'an impossible number of' : expected} bytes but data_offsets [${b}, ${e}] span ${e - b}`, path);
    }
    raw.push({ name, dtype, shape: shape as number[], begin: b, end: e });
  }

  // Layout: sorted by offset the tensors must tile [0, dataSize) exactly.
  raw.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = 0;
  let layoutError: string | null = null;
  let prev: string | null = null;
  for (const t of raw) {
    if (layoutError === null && t.begin < cursor) {
      layoutError = `tensor '${t.name}' data_offsets [${t.begin}, ${t.end}] overlap tensor '${prev}' (which ends at ${cursor})`;
    } else if (layoutError === null && t.begin > cursor) {
      layoutError = prev === null
        ? `gap in the data section: tensor '${t.name}' starts at ${t.begin}, but the first tensor must start at 0`
        : `gap in the data section: bytes [${cursor}, ${t.begin}) between tensor '${prev}' and tensor '${t.name}' belong to no tensor`;
    }
    if (t.end >= cursor) { cursor = t.end; prev = t.name; }
  }
  const claimed = cursor;
  if (claimed > dataSize) {
    const first = raw.find((t) => t.end > dataSize)!;
    if (layoutError === null) {
      throw new MoekitError(
        `file truncated: the header describes ${claimed} bytes of tensor data but only ${dataSize} follow it (tensor '${first.name}' ends at ${first.end})`, path);
    }
    throw new MoekitError(
      `tensor '${first.name}': data_offsets [${first.begin}, ${first.end}] out of bounds of the data section (${dataSize} bytes)`, path);
  }
  if (layoutError !== null) throw new MoekitError(layoutError, path);
  if (claimed < dataSize) {
    throw new MoekitError(
      `gap in the data section: ${dataSize - claimed} bytes after the last tensor${prev === null ? '' : ` '${prev}'`} belong to no tensor`, path);
  }

  const tensors = new Map<string, TensorInfo>();
  for (const t of raw) {
    tensors.set(t.name, Object.freeze({
      name: t.name, dtype: t.dtype, shape: Object.freeze(t.shape),
      byteOffset: dataStart + t.begin, byteLength: t.end - t.begin,
    }));
  }
  return { metadata, tensors };
}
