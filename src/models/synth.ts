/**
 * The tensor-name table of a description (every name with its shape, in load order), and
 * random-initialised checkpoints built from a config.json: for benchmarks and tests on models
 * the project makes itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigReader } from '../io/config.js';
import { f32ToBf16Array } from '../io/dtypes.js';
import { writeSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { rng } from '../util/rng.js';
import type { ModelDesc } from './desc.js';
import { archFor, describeModel } from './registry.js';
import { f32Weight } from '../tensor/weight.js';
import type { TensorSource } from './weights.js';
import { groupPrefix, mtpCopies, mtpPrefix, withMtpLayers, type MtpKind } from './mtp.js';

export interface TensorSpec { name: string; shape: number[] }

/**
 * every tensor the architecture file reads for this description, with its shape; with `mtp`, then the multi-token
 * prediction modules (heads) of that kind the description declares (models/mtp.ts), the copies of the shared head and
 * embedding included
 */
export function tensorTable(d: ModelDesc, mtp?: MtpKind): TensorSpec[] {
  const out: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [d.vocab, d.hidden] }];
  const seen = new Set<string>();
  const rec: TensorSource = {
    has: () => false, // the plain (unquantised) layout
    getMatrix: (name, shape, rows) => f32Weight(rec.get(name, shape, rows)),
    getU8: (name, shape) => { throw new Error(`tensorTable: unexpected quantised tensor ${name} [${shape}]`); },
    get(name, shape, rows) {
      // a fused tensor is read once per expert (its rows): listed once
      if (!seen.has(name)) out.push({ name, shape: shape.slice() });
      seen.add(name);
      const row = shape.slice(1).reduce((a, b) => a * b, 1);
      return new Float32Array(rows ? (rows[1] - rows[0]) * row : shape.reduce((a, b) => a * b, 1));
    },
  };
  const arch = archFor(new ConfigReader({ model_type: d.arch }, '<desc>'));
  for (let l = 0; l < d.nLayers; l++) {
    arch.loadLayer(rec, d, l);
    if (d.layers[l].mlp === 'moe') for (let e = 0; e < d.moe.experts; e++) arch.expert(rec, d, l, e);
  }
  out.push({ name: 'model.norm.weight', shape: [d.hidden] });
  if (!d.tieEmbeddings) out.push({ name: 'lm_head.weight', shape: [d.vocab, d.hidden] });
  const H = d.hidden;
  if (mtp === 'group') {
    for (let g = 1; g <= d.groupHeads; g++) {
      rec.get(`${groupPrefix(g)}.proj.weight`, [H, H]);
      rec.get(`${groupPrefix(g)}.norm.weight`, [H]);
    }
  }
  if (mtp === 'deepseek') {
    const dx = withMtpLayers(d);
    for (let k = 1; k <= d.nextnLayers; k++) {
      const p = mtpPrefix(d, k), l = d.nLayers + k - 1;
      rec.get(`${p}.enorm.weight`, [H]);
      rec.get(`${p}.hnorm.weight`, [H]);
      rec.get(`${p}.eh_proj.weight`, [H, 2 * H]);
      arch.loadLayer(rec, dx, l);
      if (dx.layers[l].mlp === 'moe') for (let e = 0; e < d.moe.experts; e++) arch.expert(rec, dx, l, e);
      rec.get(`${p}.shared_head.norm.weight`, [H]);
      const c = mtpCopies(d, k);
      out.push({ name: c.head, shape: [d.vocab, H] }, { name: c.embed, shape: [d.vocab, H] });
    }
  }
  return out;
}

/**
 * The initialisation for training (GPT-2's scheme, Radford et al. 2019): every matrix (embeddings and routers
 * included) normal(0, std), the projections that write into the residual stream (attention o_proj, expert and
 * dense down projections) normal(0, std / √(2L)); norms 1, biases and sinks 0.
 */
export interface TrainInit { std: number }

/**
 * Write `config` and a model.safetensors of random weights (normal, std 0.02; norms 1; routers
 * std 0.3 so routing is decisive; biases 0) into dir, or with `init` the training initialisation. Returns the
 * description.
 */
export function writeRandomCheckpoint(dir: string, config: Record<string, unknown>, seed = 0,
                                      dtype: 'F32' | 'BF16' = 'F32', init?: TrainInit, mtp?: MtpKind): ModelDesc {
  fs.mkdirSync(dir, { recursive: true });
  const cfgPath = path.join(dir, 'config.json');
  const c = new ConfigReader(config, cfgPath);
  const d = describeModel(c).desc;
  const rand = rng(seed);
  const normal = (): number => {
    const u = Math.max(rand(), 1e-12), v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  // MTP modules' copies of the shared LM head and embedding: the values drawn for those (drawn first: they come later)
  const drawn = new Map<string, Float32Array>();
  const copyOf = (name: string) => (/^model\.layers\.\d+\.embed_tokens\.weight$/.test(name) ? 'model.embed_tokens.weight'
    : /^model\.layers\.\d+\.shared_head\.head\.weight$/.test(name) ? (d.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight') : null);
  const entries: SafetensorsEntry[] = tensorTable(d, mtp).map(({ name, shape }) => ({
    name, dtype, shape,
    data: () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const copy = copyOf(name);
      if (copy) return dtype === 'BF16' ? f32ToBf16Array(drawn.get(copy)!) : drawn.get(copy)!;
      const x = new Float32Array(n);
      if (/norm\.weight$|layernorm\.weight$/.test(name)) x.fill(1);
      else if (/bias$|sinks$/.test(name)) x.fill(0);
      else {
        const router = /(mlp\.gate|router(\.layer)?)\.weight$|block_sparse_moe\.gate\.weight$/.test(name);
        const output = /(o_proj|down_proj|w2|output_linear)(\.weight)?$/.test(name);
        const std = init ? (output ? init.std / Math.sqrt(2 * d.nLayers) : init.std) : router ? 0.3 : 0.02;
        for (let i = 0; i < n; i++) x[i] = normal() * std;
      }
      if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') drawn.set(name, x);
      return dtype === 'BF16' ? f32ToBf16Array(x) : x;
    },
  }));
  writeSafetensors(path.join(dir, 'model.safetensors'), entries, { format: 'pt' });
  fs.writeFileSync(cfgPath, JSON.stringify(config, null, 2));
  return d;
}
