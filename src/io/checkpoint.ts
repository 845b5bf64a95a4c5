/**
 * A model checkpoint: one safetensors file, or a directory of shards, read through one API.
 *
 * `Checkpoint.open(path)` resolves, in this order:
 *   1. `path` is a file: that single safetensors file.
 *   2. `<dir>/model.safetensors.index.json` exists: the sharded layout transformers writes,
 *        {"metadata": {"total_size": N, ...}, "weight_map": {"<tensor>": "<shard file>", ...}}
 *      shard names relative to the directory. Every named shard must exist (checked at open);
 *      shards are opened lazily, on the first access to one of their tensors.
 *   3. `<dir>/model.safetensors` exists: that file.
 *   4. otherwise every `model*.safetensors` in the directory, or, when there are none, every
 *      `*.safetensors`; all opened at once, and a tensor name in two files is an error.
 * Every problem is a MoekitError naming the file it is in.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import { MoekitError } from '../util/errors.js';
import { withTemp } from '../util/temp.js';
import { type Dtype } from './dtypes.js';
import { CONFIG_MAX_BYTES, oneLineMessage, readTextCapped } from './read.js';
import { SafetensorsFile, type TensorInfo } from './safetensors.js';

/** The index file transformers writes for sharded checkpoints. */
export const INDEX_FILE = 'model.safetensors.index.json';
/** The single-file checkpoint. */
export const SINGLE_FILE = 'model.safetensors';

/** TensorInfo plus the file the tensor is in. */
export interface CheckpointTensorInfo extends TensorInfo {
  /** path of the safetensors file holding it */
  readonly file: string;
}

export class Checkpoint {
  /** the directory (or, for a single file given directly, the file's directory) */
  readonly dir: string;
  /** the index file, when the checkpoint has one */
  readonly indexPath: string | null;
  /** the index's `metadata` object ({} without an index) */
  readonly indexMetadata: Readonly<Record<string, unknown>>;
  /** tensor name → file path */
  private readonly where: Map<string, string>;
  /** file path → open file (lazily filled) */
  private readonly open: Map<string, SafetensorsFile>;
  /** every file of the checkpoint, in order */
  private readonly fileList: string[];
  private closed = false;

  private constructor(dir: string, indexPath: string | null, indexMetadata: Record<string, unknown>,
                      where: Map<string, string>, files: string[], opened: SafetensorsFile[]) {
    this.dir = dir;
    this.indexPath = indexPath;
    this.indexMetadata = Object.freeze(indexMetadata);
    this.where = where;
    this.fileList = files;
    this.open = new Map(opened.map((f) => [f.path, f]));
  }

  /** Open a checkpoint directory or a single safetensors file (see the module comment). */
  static open(path: string): Checkpoint {
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch {
      throw new MoekitError('no such checkpoint directory or file', path);
    }
    if (st.isFile()) return Checkpoint.fromFiles(nodePath.dirname(path), [path]);
    if (!st.isDirectory()) throw new MoekitError('not a directory or a file', path);

    const indexPath = nodePath.join(path, INDEX_FILE);
    if (fs.existsSync(indexPath)) return Checkpoint.fromIndex(path, indexPath);
    const single = nodePath.join(path, SINGLE_FILE);
    if (fs.existsSync(single)) return Checkpoint.fromFiles(path, [single]);

    const all = fs.readdirSync(path).filter((f) => f.endsWith('.safetensors')).sort();
    const models = all.filter((f) => f.startsWith('model'));
    const chosen = models.length > 0 ? models : all;
    if (chosen.length === 0) {
      throw new MoekitError(`no ${INDEX_FILE}, ${SINGLE_FILE} or *.safetensors file in the directory`, path);
    }
    return Checkpoint.fromFiles(path, chosen.map((f) => nodePath.join(path, f)));
  }

  private static fromFiles(dir: string, paths: string[]): Checkpoint {
    const opened: SafetensorsFile[] = [];
    const where = new Map<string, string>();
    try {
      for (const p of paths) {
        const f = SafetensorsFile.open(p);
        opened.push(f);
        for (const name of f.names()) {
          const other = where.get(name);
          if (other !== undefined) {
            throw new MoekitError(`tensor '${name}' is in both ${nodePath.basename(other)} and ${nodePath.basename(p)}`, p);
          }
          where.set(name, p);
        }
      }
    } catch (e) {
      for (const f of opened) f.close();
      throw e;
    }
    return new Checkpoint(dir, null, {}, where, paths, opened);
  }

  private static fromIndex(dir: string, indexPath: string): Checkpoint {
    let json: unknown;
    try {
      json = JSON.parse(readTextCapped(indexPath, CONFIG_MAX_BYTES, 'shard index'));
    } catch (e) {
      if (e instanceof MoekitError) throw e;
      throw new MoekitError(`malformed index: ${oneLineMessage(e)}`, indexPath);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new MoekitError('malformed index: not a JSON object', indexPath);
    }
    const { weight_map: map, metadata } = json as Record<string, unknown>;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      throw new MoekitError("malformed index: missing 'weight_map' object", indexPath);
    }
    if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
      throw new MoekitError("malformed index: 'metadata' is not an object", indexPath);
    }
    const where = new Map<string, string>();
    const files: string[] = [];
    const seen = new Set<string>();
    const root = nodePath.resolve(dir);
    for (const [name, shard] of Object.entries(map)) {
      if (typeof shard !== 'string' || shard === '') {
        throw new MoekitError(`malformed index: weight_map entry for '${name}' is not a file name`, indexPath);
      }
      const p = nodePath.join(dir, shard);
      const rel = nodePath.relative(root, nodePath.resolve(p));
      if (rel.startsWith('..') || nodePath.isAbsolute(rel)) {
        throw new MoekitError(`malformed index: shard '${shard}' for '${name}' is outside the checkpoint directory`, indexPath);
      }
      if (!seen.has(p)) {
        if (!fs.existsSync(p)) throw new MoekitError(`shard ${shard} named in ${INDEX_FILE} is missing`, indexPath);
        seen.add(p);
        files.push(p);
      }
      where.set(name, p);
    }
    return new Checkpoint(dir, indexPath, (metadata ?? {}) as Record<string, unknown>, where, files, []);
  }

  /** Tensor names: the index's order, or file order file by file. */
  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** The safetensors files making up this checkpoint. */
  files(): string[] {
    return [...this.fileList];
  }

  /** Where `name` lives, opening its shard if needed. */
  info(name: string): CheckpointTensorInfo {
    const f = this.fileOf(name);
    return { ...f.info(name), file: f.path };
  }

  readRaw(name: string): Buffer {
    return this.fileOf(name).readRaw(name);
  }

  readF32(name: string): Float32Array {
    return this.fileOf(name).readF32(name);
  }

  /** rows [r0, r1) along dim 0 of a tensor: just those rows' bytes (see SafetensorsFile.readRawRows) */
  readRawRows(name: string, r0: number, r1: number): Buffer {
    return this.fileOf(name).readRawRows(name, r0, r1);
  }

  readF32Rows(name: string, r0: number, r1: number): Float32Array {
    return this.fileOf(name).readF32Rows(name, r0, r1);
  }

  readI32(name: string): Int32Array {
    return this.fileOf(name).readI32(name);
  }

  readI64(name: string): BigInt64Array {
    return this.fileOf(name).readI64(name);
  }

  /** Sum of all tensors' byte lengths (opens every shard's header). */
  totalBytes(): number {
    let total = 0;
    for (const name of this.where.keys()) total += this.info(name).byteLength;
    return total;
  }

  /** Tensor bytes per dtype, e.g. {BF16: 1.2e9, F32: 4096} (opens every shard's header). */
  bytesByDtype(): Partial<Record<Dtype, number>> {
    const out: Partial<Record<Dtype, number>> = {};
    for (const name of this.where.keys()) {
      const t = this.info(name);
      out[t.dtype] = (out[t.dtype] ?? 0) + t.byteLength;
    }
    return out;
  }

  /**
   * Open every shard and check the index against them: each mapped tensor is in its shard.
   * Returns tensors present in some shard but absent from the index (transformers ignores
   * those too).
   */
  verify(): string[] {
    for (const name of this.where.keys()) this.fileOf(name);
    const unindexed: string[] = [];
    for (const f of this.open.values()) {
      for (const name of f.names()) if (this.where.get(name) !== f.path) unindexed.push(name);
    }
    return unindexed;
  }

  /** Close every open shard; idempotent. */
  close(): void {
    for (const f of this.open.values()) f.close();
    this.open.clear();
    this.closed = true;
  }

  private fileOf(name: string): SafetensorsFile {
    if (this.closed) throw new Error(`Checkpoint ${this.dir} is closed`);
    const path = this.where.get(name);
    if (path === undefined) {
      throw new MoekitError(`no tensor named '${name}' in this checkpoint`, this.indexPath ?? this.fileList[0] ?? this.dir);
    }
    let f = this.open.get(path);
    if (!f) {
      f = SafetensorsFile.open(path);
      this.open.set(path, f);
    }
    if (!f.has(name)) {
      throw new MoekitError(
        `${INDEX_FILE} maps tensor '${name}' to shard ${nodePath.basename(path)}, which does not contain it`,
        this.indexPath ?? path);
    }
    return f;
  }
}

/** the files of a model directory besides its weights and config: tokenizer, special tokens, generation config, chat template */
export const MODEL_SIDE_FILES = /^(tokenizer.*|special_tokens_map|generation_config|chat_template.*)\.(json|jinja|model|txt)$/;

/** copy `src`'s side files (and config.json with `withConfig`) into `dst`, each atomically; the paths written */
export function copySideFiles(src: string, dst: string, withConfig = false): string[] {
  const out: string[] = [];
  for (const f of fs.readdirSync(src)) {
    if (!(MODEL_SIDE_FILES.test(f) || (withConfig && f === 'config.json'))) continue;
    const tmp = nodePath.join(dst, `.${f}.tmp-${process.pid}`);
    withTemp(tmp, () => {
      fs.copyFileSync(nodePath.join(src, f), tmp);
      fs.renameSync(tmp, nodePath.join(dst, f));
    });
    out.push(nodePath.join(dst, f));
  }
  return out;
}
