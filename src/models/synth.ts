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

export interface TensorSpec { name: string; shape: number[] }

/** every tensor the architecture file reads for this description, with its shape */
export function tensorTable(d: ModelDesc): TensorSpec[] {
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
                                      dtype: 'F32' | 'BF16' = 'F32', init?: TrainInit): ModelDesc {
  fs.mkdirSync(dir, { recursive: true });
  const cfgPath = path.join(dir, 'config.json');
  const c = new ConfigReader(config, cfgPath);
  const d = describeModel(c).desc;
  const rand = rng(seed);
  const normal = (): number => {
    const u = Math.max(rand(), 1e-12), v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const entries: SafetensorsEntry[] = tensorTable(d).map(({ name, shape }) => ({
    name, dtype, shape,
    data: () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = new Float32Array(n);
      if (/norm\.weight$|layernorm\.weight$/.test(name)) x.fill(1);
      else if (/bias$|sinks$/.test(name)) x.fill(0);
      else {
        const router = /(mlp\.gate|router(\.layer)?)\.weight$|block_sparse_moe\.gate\.weight$/.test(name);
        const output = /(o_proj|down_proj|w2|output_linear)(\.weight)?$/.test(name);
        const std = init ? (output ? init.std / Math.sqrt(2 * d.nLayers) : init.std) : router ? 0.3 : 0.02;
        for (let i = 0; i < n; i++) x[i] = normal() * std;
      }
      return dtype === 'BF16' ? f32ToBf16Array(x) : x;
    },
  }));
  writeSafetensors(path.join(dir, 'model.safetensors'), entries, { format: 'pt' });
  fs.writeFileSync(cfgPath, JSON.stringify(config, null, 2));
  return d;
}
