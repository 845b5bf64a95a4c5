/**
 * Writing safetensors files, atomically, one tensor at a time.
 *
 * Layout written (the format src/io/safetensors.ts reads):
 *   [ u64 LE: N ][ N bytes of JSON, space-padded so that N % 8 == 0 ][ tensors, in the order given ]
 * The JSON holds `__metadata__` first (when given), then each tensor's
 * `{"dtype", "shape", "data_offsets": [begin, end]}` in the order given, offsets relative to the
 * data section, tensors contiguous, as the Hugging Face writer lays them out.
 *
 * The whole header is computed from dtype × shape before any tensor data is asked for, so an
 * entry's `data` may be a function called just when that tensor is written: a caller can stream
 * a model to disk holding one tensor at a time. Data must already be in the target dtype (see
 * the converters in dtypes.ts), in little-endian order.
 *
 * Atomicity: the bytes go to `<path>.tmp-<pid>-<random>` in the same directory, which is
 * fsynced, closed and renamed over `path`; on any error the temp file is removed and an
 * existing `path` is left untouched; on SIGINT / SIGTERM it is removed too (util/temp.ts).
 *
 * Sharded layout (what transformers' `save_pretrained` writes): `model-00001-of-0000N.safetensors`
 * ... plus `model.safetensors.index.json` =
 *   {"metadata": {"total_size": <tensor bytes>}, "weight_map": {"<tensor>": "<shard file>", ...}}
 * (2-space indented, keys sorted), or a lone `model.safetensors` when everything fits one shard.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import { randomBytes } from 'node:crypto';
import { MoekitError } from '../util/errors.js';
import { trackTemp } from '../util/temp.js';
import { type Dtype, DTYPES, isDtype, byteLengthOf } from './dtypes.js';
import { INDEX_FILE, SINGLE_FILE } from './checkpoint.js';
import { MAX_HEADER_BYTES } from './safetensors.js';

/** One tensor to write; `data` may be produced lazily, at the moment it is written. */
export interface SafetensorsEntry {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  data: ArrayBufferView | (() => ArrayBufferView);
}

export interface ShardedWriteOptions {
  /** start a new shard when adding a tensor would pass this many tensor bytes (a larger tensor gets a shard of its own) */
  maxShardBytes: number;
  /** `__metadata__` of every shard; defaults to {"format": "pt"}, which transformers expects */
  metadata?: Record<string, string>;
}

export interface ShardedWriteResult {
  /** the files written, shards first, then the index (if any); absolute or as given */
  files: string[];
  /** total tensor bytes */
  totalSize: number;
  /** tensor name → shard file name (relative to dir) */
  weightMap: Record<string, string>;
}


const WRITE_CHUNK = 1 << 30;

interface Planned {
  entry: SafetensorsEntry;
  byteLength: number;
}

/** Check every entry (names, dtypes, shapes) and return byte lengths; nothing is written. */
function plan(entries: readonly SafetensorsEntry[], path: string): Planned[] {
  const seen = new Set<string>();
  return entries.map((entry) => {
    const { name, dtype, shape } = entry;
    if (typeof name !== 'string') throw new MoekitError(`tensor name ${String(name)} is not a string`, path);
    if (name === '__metadata__') throw new MoekitError(`'__metadata__' cannot be a tensor name`, path);
    if (seen.has(name)) throw new MoekitError(`duplicate tensor name '${name}'`, path);
    seen.add(name);
    if (!isDtype(dtype)) {
      throw new MoekitError(`tensor '${name}': unknown dtype '${String(dtype)}' (known: ${DTYPES.join(', ')})`, path);
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new MoekitError(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`, path);
    }
    const byteLength = byteLengthOf(dtype, shape);
    if (Number.isNaN(byteLength)) throw new MoekitError(`tensor '${name}': ${dtype} ${JSON.stringify(shape)} is too large`, path);
    if (typeof entry.data !== 'function') checkData(entry, entry.data, byteLength, path);
    return { entry, byteLength };
  });
}

function checkMetadata(metadata: Record<string, string> | undefined, path: string): void {
  if (metadata === undefined) return;
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new MoekitError(`__metadata__ value for '${k}' is not a string`, path);
  }
}

function checkData(entry: SafetensorsEntry, data: unknown, byteLength: number, path: string): Uint8Array {
  if (!ArrayBuffer.isView(data)) {
    throw new MoekitError(`tensor '${entry.name}': data is not an ArrayBufferView (got ${data === null ? 'null' : typeof data})`, path);
  }
  if (data.byteLength !== byteLength) {
    throw new MoekitError(
      `tensor '${entry.name}': ${entry.dtype} ${JSON.stringify(entry.shape)} needs ${byteLength} bytes but the data has ${data.byteLength}`, path);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The header bytes: u64 length + JSON padded with spaces to a multiple of 8. */
function headerBytes(planned: readonly Planned[], metadata: Record<string, string> | undefined, path: string): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  let offset = 0;
  for (const { entry, byteLength } of planned) {
    header[entry.name] = { dtype: entry.dtype, shape: [...entry.shape], data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  // Object key order is insertion order except for integer-like names, which JSON.stringify
  // would hoist; the reader sorts by offset, so the file stays valid either way.
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new MoekitError(`header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte cap readers enforce`, path);
  }
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const n = Math.min(bytes.byteLength - done, WRITE_CHUNK);
    done += fs.writeSync(fd, bytes, done, n);
  }
}

/** a system error of a write (a full disk mid-file, a read-only disk) as one line naming the file; others as they are */
function writeError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (e instanceof MoekitError || typeof code !== 'string') return e;
  const why = code === 'ENOENT' ? 'its directory does not exist'
    : code === 'EACCES' || code === 'EPERM' ? 'no permission to write in its directory'
    : code === 'ENOSPC' ? 'no space left on the device'
    : code === 'EDQUOT' ? 'disk quota exceeded'
    : code === 'EROFS' ? 'the file system is read-only' : `${code}: ${(e as Error).message.split('\n')[0]}`;
  return new MoekitError(`cannot write: ${why}`, path);
}

/**
 * Write `path` atomically with `fill(fd)`: to a temp file in the same directory, fsync,
 * rename. On any error the temp file is removed and the error rethrown.
 */
function atomicWrite(path: string, fill: (fd: number) => void): void {
  const dir = nodePath.dirname(path);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fd: number | null = null;
  const untrack = trackTemp(tmp);
  try {
    try {
      fd = fs.openSync(tmp, 'wx', 0o644);
    } catch (e) {
      throw writeError(e, path);
    }
    fill(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) {
      try { fs.closeSync(fd); } catch { /* already failing */ }
    }
    try { fs.unlinkSync(tmp); } catch { /* never created, or already renamed */ }
    throw writeError(e, path);
  } finally {
    untrack();
  }
  fsyncDir(dir);
}

/** Make a rename durable; not every platform lets a directory be fsynced, so best effort. */
function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch { /* best effort */ } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

function writePlanned(path: string, planned: readonly Planned[], metadata: Record<string, string> | undefined): void {
  const header = headerBytes(planned, metadata, path);
  atomicWrite(path, (fd) => {
    writeAll(fd, header);
    for (const { entry, byteLength } of planned) {
      const data = typeof entry.data === 'function' ? entry.data() : entry.data;
      writeAll(fd, checkData(entry, data, byteLength, path));
    }
  });
}

/**
 * Write one safetensors file atomically. Entries are validated (unique names, known dtypes,
 * integer shapes, eager data of dtype × shape bytes) before anything touches the disk; lazy
 * data is called once, in order, and checked as it comes.
 */
export function writeSafetensors(path: string, entries: readonly SafetensorsEntry[],
                                 metadata?: Record<string, string>): void {
  checkMetadata(metadata, path);
  writePlanned(path, plan(entries, path), metadata);
}

/** Zero-padded shard file name, as transformers names them: model-00001-of-00003.safetensors. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index)}-of-${pad(count)}.safetensors`;
}

/**
 * Write a checkpoint into `dir` (created if missing): a single `model.safetensors` when the
 * tensors fit one shard of `maxShardBytes`, else numbered shards (tensors kept in the given
 * order, a new shard begun when the next tensor would overflow the current one) and
 * `model.safetensors.index.json`, written last. Each file is written atomically. A stale
 * index (single-file case) or stale `model.safetensors` (sharded case) is removed, since
 * either would shadow the new checkpoint when it is loaded.
 */
export function writeShardedSafetensors(dir: string, entries: readonly SafetensorsEntry[],
                                        opts: ShardedWriteOptions): ShardedWriteResult {
  const { maxShardBytes } = opts;
  const metadata = opts.metadata ?? { format: 'pt' };
  if (!(maxShardBytes > 0)) throw new MoekitError(`maxShardBytes must be positive (got ${maxShardBytes})`, dir);
  checkMetadata(metadata, dir);
  const planned = plan(entries, dir);
  fs.mkdirSync(dir, { recursive: true });

  const shards: Planned[][] = [];
  let current: Planned[] = [];
  let currentBytes = 0;
  for (const p of planned) {
    if (current.length > 0 && currentBytes + p.byteLength > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(p);
    currentBytes += p.byteLength;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  const totalSize = planned.reduce((s, p) => s + p.byteLength, 0);

  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  if (shards.length === 1) {
    const path = nodePath.join(dir, SINGLE_FILE);
    writePlanned(path, shards[0]!, metadata);
    for (const p of shards[0]!) weightMap[p.entry.name] = SINGLE_FILE;
    files.push(path);
    fs.rmSync(nodePath.join(dir, INDEX_FILE), { force: true });
    return { files, totalSize, weightMap };
  }

  shards.forEach((shard, i) => {
    const name = shardFileName(i + 1, shards.length);
    const path = nodePath.join(dir, name);
    writePlanned(path, shard, metadata);
    for (const p of shard) weightMap[p.entry.name] = name;
    files.push(path);
  });
  const sortedMap: Record<string, string> = {};
  for (const k of Object.keys(weightMap).sort()) sortedMap[k] = weightMap[k]!;
  const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
  const indexPath = nodePath.join(dir, INDEX_FILE);
  atomicWrite(indexPath, (fd) => writeAll(fd, Buffer.from(JSON.stringify(index, null, 2) + '\n', 'utf8')));
  files.push(indexPath);
  fs.rmSync(nodePath.join(dir, SINGLE_FILE), { force: true });
  return { files, totalSize, weightMap };
}
