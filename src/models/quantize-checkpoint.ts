/**
 * `moekit quantize MODEL_DIR --type q8_0|q4_0 --out DIR`: a checkpoint whose weight matrices are stored as
 * llama.cpp blocks, which moekit loads without re-quantising (docs/quantization.md has the encoding):
 * - a matrix [..., out, in] the architecture file reads as a linear weight (models/quantize.ts' classes:
 *   experts, attention, LM head) is written under its own name as U8 [..., out, in/32 · 34] (q8_0) or
 *   [..., out, in/32 · 18] (q4_0): each row its blocks, the bytes GGUF stores; the width says the type;
 * - everything else (routers, norms, biases, rows that are not whole blocks, tensors the architecture file
 *   transforms at load, e.g. gpt-oss's fused (in, out) experts) is copied as stored;
 * - config.json's quantization_config becomes {"quant_method": "moekit", "format": "ggml-blocks", and the
 *   type per class}, keeping an FP8 checkpoint's weight_block_size for the FP8 tensors still stored as such.
 * Which tensors are matrices of which class comes from running the architecture's own loaders over a
 * recording source, so no architecture is special-cased here. Written atomically (temp names, renamed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint, copySideFiles } from '../io/checkpoint.js';
import { readConfig } from '../io/config.js';
import { writeShardedSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { routedExperts, type Ffn } from '../moe/types.js';
import type { Linear } from '../tensor/linear.js';
import { QK, quantBytes, type QuantType } from '../tensor/quant.js';
import { getKernels } from '../tensor/index.js';
import { f32Weight } from '../tensor/weight.js';
import { MoekitError } from '../util/errors.js';
import { withTemp } from '../util/temp.js';
import { globalNames, type ArchSpec } from './arch.js';
import type { ModelDesc } from './desc.js';
import { expertPresence } from './expert-store.js';
import { quantPlan, type QuantPlan, type WeightClass } from './quantize.js';
import { describeModel } from './registry.js';
import { checkpointSource, fp8BlockSize } from './source.js';
import type { AttnWeights, TensorSource } from './weights.js';
import { hfConfigJson } from '../io/config-json.js';

export interface MatrixInfo { shape: number[]; cls: WeightClass }

/** every tensor the architecture reads as a linear weight, with its stored shape and class */
export function matrixClasses(arch: ArchSpec, d: ModelDesc, has: (name: string) => boolean): Map<string, MatrixInfo> {
  const byBuffer = new Map<ArrayBufferLike, { name: string; shape: number[] }>();
  const size = (shape: number[], rows?: readonly [number, number]) =>
    rows ? (rows[1] - rows[0]) * shape.slice(1).reduce((a, b) => a * b, 1) : shape.reduce((a, b) => a * b, 1);
  const rec: TensorSource = {
    has,
    get: (_n, shape, rows) => new Float32Array(size(shape, rows)),
    getU8: (_n, shape, rows) => new Uint8Array(size(shape, rows)),
    getMatrix(name, shape, rows) {
      const a = new Float32Array(size(shape, rows));
      byBuffer.set(a.buffer, { name, shape: shape.slice() });
      return f32Weight(a);
    },
  };
  const out = new Map<string, MatrixInfo>();
  const note = (L: Linear | null | undefined, cls: WeightClass) => {
    const m = L && byBuffer.get(L.w.data.buffer);
    if (m) out.set(m.name, { shape: m.shape, cls });
  };
  const ffn = (f: Ffn | null | undefined) => { if (f) for (const L of [f.gate, f.up, f.down]) note(L, 'experts'); };
  for (let l = 0; l < d.nLayers; l++) {
    const t = arch.loadLayer(rec, d, l);
    for (const key of ['q', 'k', 'v', 'o', 'qA', 'qB', 'kvA', 'kvB'] as (keyof AttnWeights)[]) {
      note(t.attn?.[key] as Linear | undefined, 'attention');
      note(t.second?.attn[key] as Linear | undefined, 'attention'); // a shortcut-MoE layer's second sublayer
    }
    ffn(t.second?.dense);
    for (const L of t.deltanet ? [t.deltanet.qkvz, t.deltanet.ba, t.deltanet.out] : []) note(L, 'attention');
    for (const L of t.lightning ? [t.lightning.qkv, t.lightning.gate, t.lightning.out] : []) note(L, 'attention');
    for (const L of t.mamba2 ? [t.mamba2.inProj, t.mamba2.out] : []) note(L, 'attention');
    ffn(t.dense);
    ffn(t.moe?.shared);
    if (d.layers[l].mlp === 'moe') {
      for (let e = 0; e < routedExperts(d.moe); e++) if (expertPresence(arch, rec, d, l, e) !== 'absent') ffn(arch.expert(rec, d, l, e));
    }
  }
  out.set(`${globalNames(arch).embed}.weight`, { shape: [d.vocab, d.hidden], cls: 'lmHead' });
  if (has('lm_head.weight')) out.set('lm_head.weight', { shape: [d.vocab, d.hidden], cls: 'lmHead' });
  return out;
}

export interface QuantizeResult { files: string[]; quantized: number; copied: number; bytes: number; plan: QuantPlan }

export function quantizeCheckpoint(dir: string, out: string, type: QuantType): QuantizeResult {
  const cfgR = readConfig(dir);
  const src0 = path.dirname(cfgR.file);
  if (path.resolve(out) === path.resolve(src0)) throw new MoekitError('--out must differ from the model directory', out);
  const { arch, desc } = describeModel(cfgR);
  const plan = quantPlan(type);
  const ck = Checkpoint.open(src0);
  try {
    const src = checkpointSource(ck, fp8BlockSize(cfgR), true);
    const k = getKernels();
    const classes = matrixClasses(arch, desc, (n) => ck.has(n));
    const entries: SafetensorsEntry[] = [];
    const dropped = new Set<string>();
    let quantized = 0;
    for (const name of ck.names()) {
      const m = classes.get(name);
      const t = m && plan[m.cls];
      const i = ck.info(name);
      const last = m ? m.shape[m.shape.length - 1] : 0;
      if (m && t && last % QK === 0 && ['F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2'].includes(i.dtype)) {
        quantized++;
        entries.push({
          name, dtype: 'U8', shape: [...m.shape.slice(0, -1), quantBytes(t, last)],
          data: () => { const x = src.get(name, m.shape), out = new Uint8Array(quantBytes(t, x.length)); k.quantize(t, out, x, x.length); return out; },
        });
        if (i.dtype.startsWith('F8')) dropped.add(name.replace(/\.weight$/, '.weight_scale_inv'));
      } else {
        entries.push({ name, dtype: i.dtype, shape: i.shape, data: () => ck.readRaw(name) });
      }
    }
    const kept = entries.filter((e) => !dropped.has(e.name));
    fs.mkdirSync(out, { recursive: true });
    const { files, totalSize } = writeShardedSafetensors(out, kept, { maxShardBytes: 5 * 2 ** 30 });
    const raw = { ...cfgR.raw };
    const q0 = raw['quantization_config'] as { weight_block_size?: unknown } | undefined;
    raw['quantization_config'] = {
      quant_method: 'moekit', format: 'ggml-blocks', experts: plan.experts, attention: plan.attention, lm_head: plan.lmHead,
      ...(q0?.weight_block_size !== undefined ? { weight_block_size: q0.weight_block_size } : {}),
    };
    const tmp = path.join(out, `config.json.tmp-${process.pid}`);
    withTemp(tmp, () => {
      fs.writeFileSync(tmp, hfConfigJson(raw, fs.readFileSync(cfgR.file, 'utf8')));
      fs.renameSync(tmp, path.join(out, 'config.json'));
    });
    files.push(path.join(out, 'config.json'), ...copySideFiles(src0, out));
    return { files, quantized, copied: kept.length - quantized, bytes: totalSize, plan };
  } finally {
    ck.close();
  }
}
