/**
 * Quantised copies of the tiny fixtures, as the published checkpoints lay them out, each beside an f32
 * checkpoint holding the same values dequantised by the naive code here: gpt-oss experts in MXFP4
 * (`*_blocks` / `*_scales`) and DeepSeek-V3 with FP8 block-scaled weights (`weight_scale_inv`); and BF16 copies.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint } from '../src/io/checkpoint.js';
import { f32ToBf16Array, f8e4m3BitsToF32 } from '../src/io/dtypes.js';
import { writeSafetensors, type SafetensorsEntry } from '../src/io/safetensors-write.js';

const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/** rows [R, C] (C multiple of 32) → MXFP4 blocks [R, C/32, 16], scales [R, C/32], dequantised [R, C] */
export function mxfp4(x: Float32Array, R: number, C: number) {
  const G = C / 32;
  const blocks = new Uint8Array(R * G * 16), scales = new Uint8Array(R * G), deq = new Float32Array(R * C);
  for (let r = 0; r < R; r++) {
    for (let g = 0; g < G; g++) {
      let amax = 0;
      for (let k = 0; k < 32; k++) amax = Math.max(amax, Math.abs(x[r * C + g * 32 + k]));
      const e = amax > 0 ? Math.ceil(Math.log2(amax / 6)) : -127;
      scales[r * G + g] = e + 127;
      for (let k = 0; k < 32; k++) {
        const v = x[r * C + g * 32 + k] / 2 ** e;
        let best = 0;
        for (let q = 0; q < 16; q++) if (Math.abs(FP4[q] - v) < Math.abs(FP4[best] - v)) best = q;
        blocks[(r * G + g) * 16 + (k >> 1)] |= k & 1 ? best << 4 : best;
        deq[r * C + g * 32 + k] = FP4[best] * 2 ** e;
      }
    }
  }
  return { blocks, scales, deq };
}

/** [E, A, B] → [E, B, A] */
export function t3(x: Float32Array, E: number, A: number, B: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let e = 0; e < E; e++) for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) y[e * A * B + b * A + a] = x[e * A * B + a * B + b];
  return y;
}

function copyAll(ck: Checkpoint, skip: (n: string) => boolean): SafetensorsEntry[] {
  return ck.names().filter((n) => !skip(n)).map((n) => ({ name: n, dtype: 'F32', shape: ck.info(n).shape, data: ck.readF32(n) }));
}

function writeDir(dir: string, config: unknown, entries: SafetensorsEntry[]): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(path.join(dir, 'model.safetensors'), entries);
  return dir;
}

/**
 * The gpt_oss fixture `src` with its experts in MXFP4 (`<out>/mxfp4`) and the same values dequantised,
 * in the fused f32 layout (`<out>/f32`).
 */
export function writeGptOssMxfp4(src: string, out: string): { mxfp4: string; f32: string } {
  const cfg = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
  const E = cfg.num_local_experts, H = cfg.hidden_size, I = cfg.intermediate_size;
  const ck = Checkpoint.open(src);
  const fused = (n: string) => /experts\.(gate_up|down)_proj$/.test(n);
  const q = copyAll(ck, fused), f = copyAll(ck, fused);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const x = `model.layers.${l}.mlp.experts`;
    // published layout: the transposed weight W [E, out, in] is what gets quantised
    const gu = mxfp4(t3(ck.readF32(`${x}.gate_up_proj`), E, H, 2 * I), E * 2 * I, H); // rows of [E, 2I, H]
    const dn = mxfp4(t3(ck.readF32(`${x}.down_proj`), E, I, H), E * H, I); // rows of [E, H, I]
    q.push({ name: `${x}.gate_up_proj_blocks`, dtype: 'U8', shape: [E, 2 * I, H / 32, 16], data: gu.blocks });
    q.push({ name: `${x}.gate_up_proj_scales`, dtype: 'U8', shape: [E, 2 * I, H / 32], data: gu.scales });
    q.push({ name: `${x}.down_proj_blocks`, dtype: 'U8', shape: [E, H, I / 32, 16], data: dn.blocks });
    q.push({ name: `${x}.down_proj_scales`, dtype: 'U8', shape: [E, H, I / 32], data: dn.scales });
    f.push({ name: `${x}.gate_up_proj`, dtype: 'F32', shape: [E, H, 2 * I], data: t3(gu.deq, E, 2 * I, H) });
    f.push({ name: `${x}.down_proj`, dtype: 'F32', shape: [E, I, H], data: t3(dn.deq, E, H, I) });
  }
  ck.close();
  return { mxfp4: writeDir(path.join(out, 'mxfp4'), cfg, q), f32: writeDir(path.join(out, 'f32'), cfg, f) };
}

/**
 * The deepseek_v3 fixture `src` with every 2-D layer weight in FP8 E4M3 with block scales [b0, b1]
 * (`<out>/fp8`, quantization_config set) and the same values dequantised (`<out>/f32`).
 */
export function writeDeepseekFp8(src: string, out: string, b0: number, b1: number): { fp8: string; f32: string } {
  const codes = Array.from({ length: 256 }, (_, v) => f8e4m3BitsToF32(v));
  const encode = (v: number): number => {
    let best = 0;
    for (let c = 0; c < 256; c++) if (Number.isFinite(codes[c]) && Math.abs(codes[c] - v) < Math.abs(codes[best] - v)) best = c;
    return best;
  };
  const ck = Checkpoint.open(src);
  const q: SafetensorsEntry[] = [], f: SafetensorsEntry[] = [];
  for (const n of ck.names()) {
    const shape = ck.info(n).shape, w = ck.readF32(n);
    if (!(n.endsWith('.weight') && shape.length === 2 && n.includes('layers.'))) {
      q.push({ name: n, dtype: 'F32', shape, data: w });
      f.push({ name: n, dtype: 'F32', shape, data: w });
      continue;
    }
    const [R, C] = shape, sr = Math.ceil(R / b0), sc = Math.ceil(C / b1);
    const s = new Float32Array(sr * sc), bytes = new Uint8Array(R * C), deq = new Float32Array(R * C);
    for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) {
      const k = Math.floor(i / b0) * sc + Math.floor(j / b1);
      s[k] = Math.max(s[k], Math.abs(w[i * C + j]) / 448);
    }
    for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) {
      const scale = s[Math.floor(i / b0) * sc + Math.floor(j / b1)] || 1;
      bytes[i * C + j] = encode(w[i * C + j] / scale);
      deq[i * C + j] = codes[bytes[i * C + j]] * scale;
    }
    q.push({ name: n, dtype: 'F8_E4M3', shape, data: bytes }, { name: `${n}_scale_inv`, dtype: 'F32', shape: [sr, sc], data: s.map((x) => x || 1) });
    f.push({ name: n, dtype: 'F32', shape, data: deq });
  }
  ck.close();
  const cfg = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
  const qcfg = { ...cfg, quantization_config: { quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [b0, b1], activation_scheme: 'dynamic' } };
  return { fp8: writeDir(path.join(out, 'fp8'), qcfg, q), f32: writeDir(path.join(out, 'f32'), cfg, f) };
}

/** the fixture `src` with every tensor in BF16, in `dir` */
export function writeBf16(src: string, dir: string): string {
  const ck = Checkpoint.open(src);
  const entries: SafetensorsEntry[] = ck.names().map((n) => ({ name: n, dtype: 'BF16', shape: ck.info(n).shape, data: f32ToBf16Array(ck.readF32(n)) }));
  ck.close();
  return writeDir(dir, JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')), entries);
}
