/**
 * Where the architecture files read weights from when loading a checkpoint: a TensorSource that
 * checks every name and shape against what config.json implies, keeps BF16 matrices as bf16 on
 * request, and dequantises FP8 block-scaled weights.
 */
import type { Checkpoint } from '../io/checkpoint.js';
import type { ConfigReader } from '../io/config.js';
import { dequantFp8Blocks } from '../io/quant.js';
import { MoekitError } from '../util/errors.js';
import { bf16Weight, f32Weight } from '../tensor/weight.js';
import type { TensorSource } from './weights.js';

/**
 * A TensorSource over a checkpoint that checks every name and shape. FP8 weights with a
 * `<name>_scale_inv` tensor are dequantised with `fp8Block` ([b0, b1], from the config's
 * quantization_config.weight_block_size).
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
  const src: TensorSource = {
    has: (name) => ck.has(name),
    getMatrix(name, shape) {
      if (!keepBf16 || info(name, shape).dtype !== 'BF16') return f32Weight(src.get(name, shape));
      const raw = ck.readRaw(name);
      if (raw.byteOffset % 2 === 0) return bf16Weight(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2));
      return bf16Weight(new Uint16Array(new Uint8Array(raw).buffer)); // copy to an aligned buffer
    },
    get(name, shape) {
      const i = info(name, shape);
      const scaleName = name.replace(/\.weight$/, '.weight_scale_inv');
      if ((i.dtype === 'F8_E4M3' || i.dtype === 'F8_E5M2') && scaleName !== name && ck.has(scaleName) && shape.length === 2) {
        const [b0, b1] = fp8Block;
        const scales = ck.readF32(scaleName);
        const want = Math.ceil(shape[0] / b0) * Math.ceil(shape[1] / b1);
        if (scales.length !== want) {
          throw new MoekitError(`tensor '${scaleName}' has ${scales.length} block scales, expected ${want} for blocks of [${b0}, ${b1}]`, ck.info(scaleName).file);
        }
        const raw = ck.readRaw(name);
        return dequantFp8Blocks(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), i.dtype === 'F8_E5M2', shape[0], shape[1], scales, b0, b1);
      }
      return ck.readF32(name);
    },
    getU8(name, shape) {
      const i = info(name, shape);
      if (i.dtype !== 'U8' && i.dtype !== 'I8') throw new MoekitError(`tensor '${name}' is ${i.dtype}, expected U8`, i.file);
      const raw = ck.readRaw(name);
      return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    },
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

