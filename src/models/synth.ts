/**
 * The tensor-name table of a description (every name with its shape, in load order), and
 * random-initialised checkpoints built from a config.json: for benchmarks and tests on models
 * the project makes itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigReader } from '../io/config.js';
import { f32ToBf16Array } from '../io/dtypes.js';
import { Checkpoint, copySideFiles } from '../io/checkpoint.js';
import { writeSafetensors, writeShardedSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { rng } from '../util/rng.js';
import type { ModelDesc } from './desc.js';
import { archFor, describeModel } from './registry.js';
import { globalNames } from './arch.js';
import { f32Weight } from '../tensor/weight.js';
import type { TensorSource } from './weights.js';
import { routedExperts } from '../moe/types.js';
import { groupPrefix, mtpCopies, mtpPrefix, withMtpLayers, type MtpKind } from './mtp.js';
import { hfConfigJson } from '../io/config-json.js';

export interface TensorSpec {
  name: string;
  shape: number[];
  /** a buffer the reference computes (ArchSpec.buffers): its values, which random checkpoints hold */
  value?: () => Float32Array;
}

/**
 * every tensor the architecture file reads for this description, with its shape; with `mtp`, then the multi-token
 * prediction modules (heads) of that kind the description declares (models/mtp.ts), the copies of the shared head and
 * embedding included
 */
export function tensorTable(d: ModelDesc, mtp?: MtpKind): TensorSpec[] {
  const arch = archFor(new ConfigReader({ model_type: d.arch }, '<desc>'));
  const gn = globalNames(arch);
  const out: TensorSpec[] = [{ name: `${gn.embed}.weight`, shape: [d.vocab, d.hidden] }];
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
  for (let l = 0; l < d.nLayers; l++) {
    arch.loadLayer(rec, d, l);
    for (const b of arch.buffers?.(d, l) ?? []) if (!seen.has(b.name)) { out.push({ name: b.name, shape: b.shape.slice(), value: b.value }); seen.add(b.name); }
    if (d.layers[l].mlp === 'moe') for (let e = 0; e < routedExperts(d.moe); e++) arch.expert(rec, d, l, e);
    for (const t of arch.unreadTensors?.(d, l) ?? []) rec.get(t.name, t.shape); // saved by the reference, never read
  }
  out.push({ name: `${gn.norm}.weight`, shape: [d.hidden] });
  if (d.norm === 'layer') out.push({ name: `${gn.norm}.bias`, shape: [d.hidden] });
  if (!d.tieEmbeddings) out.push({ name: 'lm_head.weight', shape: [d.vocab, d.hidden] });
  if (d.lmHeadBias) out.push({ name: 'lm_head.bias', shape: [d.vocab] });
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
      if (dx.layers[l].mlp === 'moe') for (let e = 0; e < routedExperts(d.moe); e++) arch.expert(rec, dx, l, e);
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

/** the name of the shared tensor an MTP module's copy holds (its shared_head.head or embed_tokens), else null */
function copyOf(d: ModelDesc, name: string): string | null {
  if (/^model\.layers\.\d+\.embed_tokens\.weight$/.test(name)) return 'model.embed_tokens.weight';
  if (/^model\.layers\.\d+\.shared_head\.head\.weight$/.test(name)) return d.tieEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return null;
}

/** the random values of a tensor, drawn in call order from one seeded stream (the scheme of writeRandomCheckpoint) */
function initializer(d: ModelDesc, seed: number, init?: TrainInit): (name: string, shape: number[]) => Float32Array {
  const rand = rng(seed);
  const normal = (): number => {
    const u = Math.max(rand(), 1e-12), v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return (name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    if (/norm(_\w+)?\.weight$|layernorm\.weight$/.test(name)) x.fill(1); // DBRX: norm_1, norm_2, norm_f
    else if (/bias$|sinks$/.test(name)) x.fill(0);
    else {
      const router = /(mlp\.gate|router(\.layer)?)\.weight$|block_sparse_moe\.gate\.weight$/.test(name);
      const output = /(o_proj|down_proj|w2|output_linear)(\.weight)?$/.test(name);
      const std = init ? (output ? init.std / Math.sqrt(2 * d.nLayers) : init.std) : router ? 0.3 : 0.02;
      for (let i = 0; i < n; i++) x[i] = normal() * std;
    }
    return x;
  };
}

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
  const draw = initializer(d, seed, init);
  // MTP modules' copies of the shared LM head and embedding: the values drawn for those (drawn first: they come later)
  const drawn = new Map<string, Float32Array>();
  const entries: SafetensorsEntry[] = tensorTable(d, mtp).map(({ name, shape, value }) => ({
    name, dtype, shape,
    data: () => {
      const copy = copyOf(d, name);
      const x = value ? value() : copy ? drawn.get(copy)! : draw(name, shape);
      if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') drawn.set(name, x);
      return dtype === 'BF16' ? f32ToBf16Array(x) : x;
    },
  }));
  writeSafetensors(path.join(dir, 'model.safetensors'), entries, { format: 'pt' });
  fs.writeFileSync(cfgPath, hfConfigJson(config));
  return d;
}

/**
 * Checkpoint `from` copied into `dir` (tensors as stored, side files) with freshly initialised multi-token prediction
 * weights of `kind` added, D modules (heads), by the training initialisation (the modules' head and embedding copies:
 * the checkpoint's shared tensors), and its config.json declaring D. For training MTP on a checkpoint without them.
 */
export function withRandomMtp(from: string, dir: string, kind: MtpKind, D: number, seed: number, init: TrainInit): void {
  const cfgPath = path.join(from, 'config.json');
  const config = { ...(JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>), [kind === 'deepseek' ? 'num_nextn_predict_layers' : 'next_group_heads']: D };
  const d = describeModel(new ConfigReader(config, cfgPath)).desc;
  const ck = Checkpoint.open(from);
  try {
    const draw = initializer(d, seed, init);
    const entries: SafetensorsEntry[] = ck.names().map((name) => ({ name, dtype: ck.info(name).dtype, shape: ck.info(name).shape, data: () => ck.readRaw(name) }));
    for (const { name, shape } of tensorTable(d, kind)) {
      if (ck.has(name)) continue;
      const copy = copyOf(d, name);
      entries.push({ name, dtype: 'F32', shape, data: () => (copy ? ck.readF32(copy) : draw(name, shape)) });
    }
    fs.mkdirSync(dir, { recursive: true });
    writeShardedSafetensors(dir, entries, { maxShardBytes: 5 * 2 ** 30 });
    copySideFiles(from, dir);
    fs.writeFileSync(path.join(dir, 'config.json'), hfConfigJson(config, fs.readFileSync(cfgPath, 'utf8')));
  } finally {
    ck.close();
  }
}
