/**
 * Where the architecture files read weights from when loading a checkpoint: a TensorSource that
 * checks every name and shape against what config.json implies, keeps BF16 matrices as bf16 on
 * request, and dequantises FP8 block-scaled weights.
 */
import type { Checkpoint } from '../io/checkpoint.js';
import type { ConfigReader } from '../io/config.js';
import { dequantFp8Blocks } from '../io/quant.js';
import { MoekitError } from '../util/errors.js';
import { bf16Weight, f32Weight, quantWeight, weightF32 } from '../tensor/weight.js';
import { QK, QUANT_TYPES, quantBytes, type QuantType } from '../tensor/quant.js';
import { getKernels } from '../tensor/index.js';
import type { Rows, TensorSource } from './weights.js';

/**
 * A TensorSource over a checkpoint that checks every name and shape. FP8 weights with a
 * `<name>_scale_inv` tensor are dequantised with `fp8Block` ([b0, b1], from the config's
 * quantization_config.weight_block_size). With `rows`, only rows [r0, r1) along dim 0 are read
 * (one positional read of that range), after the same check of the whole tensor's shape.
 */
export function checkpointSource(ck: Checkpoint, fp8Block: [number, number] = [128, 128], keepBf16 = false): TensorSource {
  const info = (name: string, shape: number[]) => {
    if (!ck.has(name)) throw new MoekitError(`missing tensor '${name}'`, ck.dir);
    const i = ck.info(name);
    const same = i.shape.length === shape.length && i.shape.every((s, k) => s === shape[k]);
    if (!same) {
      throw new MoekitError(`tensor '${name}' has shape [${i.shape.join(', ')}], expected [${shape.join(', ')}] from config.json`, i.file);
    }
    return i;
  };
  /**
   * A matrix `moekit quantize` wrote as blocks (docs/quantization.md): U8 with the expected shape but its last dim
   * (in) replaced by in/32 blocks of 34 (q8_0) or 18 (q4_0) bytes; the type follows from that width.
   */
  const storedQuant = (name: string, shape: number[]): QuantType | null => {
    if (!ck.has(name) || ck.info(name).dtype !== 'U8' || shape.length < 2) return null;
    const i = ck.info(name), last = shape[shape.length - 1];
    const lead = i.shape.length === shape.length && i.shape.slice(0, -1).every((s, k) => s === shape[k]);
    const type = QUANT_TYPES.find((t) => last % QK === 0 && i.shape[i.shape.length - 1] === quantBytes(t, last));
    if (!lead || !type) {
      throw new MoekitError(`tensor '${name}' is U8 [${i.shape.join(', ')}]: expected [${shape.join(', ')}] as f32/bf16, or q8_0 / q4_0 blocks [${[...shape.slice(0, -1), `${last}/32·34 or ·18`].join(', ')}]`, i.file);
    }
    return type;
  };
  const raw = (name: string, rows?: Rows) => (rows ? ck.readRawRows(name, rows[0], rows[1]) : ck.readRaw(name));
  const src: TensorSource = {
    has: (name) => ck.has(name),
    getMatrix(name, shape, rows) {
      const q = storedQuant(name, shape);
      if (q) {
        const r = raw(name, rows);
        const w = quantWeight(q, new Uint8Array(r.buffer, r.byteOffset, r.byteLength));
        return keepBf16 ? w : f32Weight(weightF32(getKernels(), w));
      }
      if (!keepBf16 || info(name, shape).dtype !== 'BF16') return f32Weight(src.get(name, shape, rows));
      const r = raw(name, rows);
      if (r.byteOffset % 2 === 0) return bf16Weight(new Uint16Array(r.buffer, r.byteOffset, r.byteLength / 2));
      return bf16Weight(new Uint16Array(new Uint8Array(r).buffer)); // copy to an aligned buffer
    },
    get(name, shape, rows) {
      const i = info(name, shape);
      const scaleName = name.replace(/\.weight$/, '.weight_scale_inv');
      if ((i.dtype === 'F8_E4M3' || i.dtype === 'F8_E5M2') && scaleName !== name && ck.has(scaleName) && shape.length === 2) {
        return fp8(name, scaleName, i.dtype === 'F8_E5M2', shape, rows);
      }
      return rows ? ck.readF32Rows(name, rows[0], rows[1]) : ck.readF32(name);
    },
    getU8(name, shape, rows) {
      const i = info(name, shape);
      if (i.dtype !== 'U8' && i.dtype !== 'I8') throw new MoekitError(`tensor '${name}' is ${i.dtype}, expected U8`, i.file);
      const r = raw(name, rows);
      return new Uint8Array(r.buffer, r.byteOffset, r.byteLength);
    },
  };
  /** FP8 W [R, C] (or its rows [r0, r1)) with block scales [⌈R/b0⌉, ⌈C/b1⌉] → f32 */
  const fp8 = (name: string, scaleName: string, e5m2: boolean, shape: number[], rows?: Rows): Float32Array => {
    const [b0, b1] = fp8Block;
    const [R, C] = shape, sr = Math.ceil(R / b0), sc = Math.ceil(C / b1);
    const si = ck.info(scaleName);
    const n = si.shape.reduce((a, b) => a * b, 1);
    if (n !== sr * sc || (rows && (si.shape.length !== 2 || si.shape[0] !== sr))) {
      throw new MoekitError(`tensor '${scaleName}' has ${rows ? `shape [${si.shape.join(', ')}]` : `${n} block scales`}, expected ${rows ? `[${sr}, ${sc}]` : sr * sc} for blocks of [${b0}, ${b1}]`, si.file);
    }
    const [r0, r1] = rows ?? [0, R];
    const scales = rows ? ck.readF32Rows(scaleName, Math.floor(r0 / b0), Math.ceil(r1 / b0)) : ck.readF32(scaleName);
    const r = raw(name, rows);
    return dequantFp8Blocks(new Uint8Array(r.buffer, r.byteOffset, r.byteLength), e5m2, r1 - r0, C, scales, b0, b1, r0);
  };
  return src;
}

/** quantization_config.weight_block_size of an FP8 checkpoint (default [128, 128]) */
export function fp8BlockSize(cfg: ConfigReader): [number, number] {
  const q = cfg.raw['quantization_config'] as { weight_block_size?: unknown } | undefined;
  const b = q?.weight_block_size;
  if (b === undefined || b === null) return [128, 128];
  if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => Number.isInteger(x) && x > 0)) {
    throw new MoekitError(`quantization_config.weight_block_size must be two positive integers, got ${JSON.stringify(b)}`, cfg.file);
  }
  return [b[0], b[1]];
}


/** `src` with `prefix` put before every name (a language model inside a multimodal checkpoint: ArchSpec.tensorPrefix) */
export function prefixedSource(src: TensorSource, prefix: string | undefined): TensorSource {
  if (!prefix) return src;
  return {
    has: (name) => src.has(prefix + name),
    get: (name, shape, rows) => src.get(prefix + name, shape, rows),
    getMatrix: (name, shape, rows) => src.getMatrix(prefix + name, shape, rows),
    getU8: (name, shape, rows) => src.getU8(prefix + name, shape, rows),
  };
}
