/**
 * Sub-model extraction: write a standalone Hugging Face checkpoint of a sub-model (decoder layers kept,
 * experts kept per MoE layer, top-k) that moekit and transformers load as an ordinary model of the same
 * class. Layers are renumbered; every per-layer config field is rewritten for the kept layers (dense/MoE
 * pattern, layer types and sliding windows); routed experts are renumbered in ascending order with the
 * router rows, router bias and selection-only correction bias sliced to them, fused expert tensors sliced
 * along their expert dimension; the expert count and top-k keys set. What a config cannot express (a
 * dense layer after a MoE one for DeepSeek, unequal expert counts per layer, unequal counts per routing
 * group) is refused with an error naming the problem. Tensors are copied as stored (bf16, FP8 blocks,
 * MXFP4 blocks), never re-quantised. Written atomically (temporary names, then rename).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint, copySideFiles } from '../io/checkpoint.js';
import { readConfig } from '../io/config.js';
import { writeShardedSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { MoekitError } from '../util/errors.js';
import { withTemp } from '../util/temp.js';
import type { ArchName, LayerDesc, ModelDesc } from './desc.js';
import { describeModel } from './registry.js';
import { routedExperts } from '../moe/types.js';
import { hfConfigJson } from '../io/config-json.js';

type Json = Record<string, unknown>;

/** what to keep: decoder layers (source indices), experts per kept MoE decoder layer (source ids), top-k */
export interface ExtractSpec {
  layers?: number[];
  /** decoder layer index → expert ids to keep (every kept MoE layer listed, all lists the same length) */
  experts?: Record<number, number[]>;
  topK?: number;
}

/** how one architecture's config and tensors name the things extraction rewrites */
interface ArchKeys {
  /** config key of the routed expert count, and of experts per token */
  experts: string;
  topK: string;
  /** under model.layers.<l>.: router tensors with a leading (or, for [1, E], trailing) expert dimension */
  router: string[];
  /** under model.layers.<l>.: fused expert tensors with a leading expert dimension */
  fused: string[];
  /** config fields of the new layer pattern (kept layers' descriptions), or an error message */
  layers(cfg: Json, kept: LayerDesc[]): Json | string;
  /**
   * config key of the zero-computation expert count (MoeDesc.zeroExperts, LongCat-Flash): the kept ids split into
   * routed ones (`experts` key) and zero ones (this key), each renumbered in order, the router rows sliced alike
   */
  zeroExperts?: string;
  /** why this architecture's checkpoints are not extracted (its layout is not the one this file rewrites) */
  refused?: string;
  /** why a sub-model that changes the experts or the top-k is not (layers alone still are) */
  expertsFixed?: string;
  /** where the decoder layers' tensors are (default `model.layers`; DBRX: `transformer.blocks`) */
  layerPrefix?: string;
  /** the config key of the layer count (default num_hidden_layers; DBRX: n_layers) */
  layersKey?: string;
  /** the fused tensors hold the experts' rows one after another in their first dimension, [E·I, …] (DBRX) */
  flatFused?: boolean;
}

/** `layer_types` of the kept layers when the source has them */
function layerTypes(cfg: Json, keptIdx: number[]): Json {
  const t = cfg['layer_types'];
  return Array.isArray(t) ? { layer_types: keptIdx.map((l) => t[l]) } : {};
}

const allMoe = (kept: LayerDesc[]) => (kept.every((l) => l.mlp === 'moe') ? null : 'a dense layer in a model whose config makes every layer MoE');
const sameWindow = (kept: LayerDesc[]) => (new Set(kept.map((l) => l.slidingWindow)).size <= 1 ? null : 'layers with different sliding windows (the config has one window for all)');

const KEYS: Record<ArchName, ArchKeys> = {
  mixtral: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['block_sparse_moe.gate.weight'], fused: [],
    layers: (_c, kept) => allMoe(kept) ?? sameWindow(kept) ?? {},
  },
  qwen2_moe: {
    experts: 'num_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight'], fused: [],
    layers: (_c, kept) => ({
      decoder_sparse_step: 1, mlp_only_layers: kept.flatMap((l, i) => (l.mlp === 'dense' ? [i] : [])),
      // the windows as explicit layer types (they win over max_window_layers in transformers)
      layer_types: kept.map((l) => (l.slidingWindow !== null ? 'sliding_attention' : 'full_attention')),
      max_window_layers: kept.length,
    }),
  },
  qwen3_moe: {
    experts: 'num_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight'], fused: [],
    layers: (_c, kept) => ({
      decoder_sparse_step: 1, mlp_only_layers: kept.flatMap((l, i) => (l.mlp === 'dense' ? [i] : [])),
      ...(kept.some((l) => l.slidingWindow !== null) ? { layer_types: kept.map((l) => (l.slidingWindow !== null ? 'sliding_attention' : 'full_attention')) } : {}),
    }),
  },
  olmoe: {
    experts: 'num_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight'], fused: [],
    layers: (_c, kept) => allMoe(kept) ?? {},
  },
  deepseek_v3: {
    experts: 'n_routed_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight', 'mlp.gate.e_score_correction_bias'], fused: [],
    layers: (_c, kept) => denseFirst(kept),
  },
  deepseek_v2: {
    experts: 'n_routed_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight'], fused: [],
    layers: (_c, kept) => denseFirst(kept),
  },
  ernie4_5_moe: {
    experts: 'moe_num_experts', topK: 'moe_k', router: ['mlp.gate.weight', 'mlp.moe_statics.e_score_correction_bias'], fused: [],
    layers: (_c, kept) => {
      const moe = kept.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
      if (moe.length === 0) return { moe_layer_start_index: kept.length, moe_layer_end_index: kept.length - 1, moe_layer_interval: 1 };
      const start = moe[0], end = moe[moe.length - 1];
      if (moe.length !== end - start + 1) return 'MoE layers that are not one contiguous run (ERNIE configs place MoE layers from moe_layer_start_index to moe_layer_end_index)';
      return { moe_layer_start_index: start, moe_layer_end_index: end, moe_layer_interval: 1 };
    },
  },
  gpt_oss: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['mlp.router.weight', 'mlp.router.bias'],
    fused: ['mlp.experts.gate_up_proj', 'mlp.experts.gate_up_proj_bias', 'mlp.experts.down_proj', 'mlp.experts.down_proj_bias',
      'mlp.experts.gate_up_proj_blocks', 'mlp.experts.gate_up_proj_scales', 'mlp.experts.down_proj_blocks', 'mlp.experts.down_proj_scales'],
    layers: (_c, kept) => allMoe(kept) ?? {},
  },
  glm4_moe: {
    experts: 'n_routed_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight', 'mlp.gate.e_score_correction_bias'], fused: [],
    layers: (_c, kept) => denseFirst(kept),
  },
  dots1: {
    experts: 'n_routed_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight', 'mlp.gate.e_score_correction_bias'], fused: [],
    layers: (_c, kept) => {
      const f = denseFirst(kept);
      return typeof f === 'string' ? f : { ...f, layer_types: kept.map((l) => (l.slidingWindow !== null ? 'sliding_attention' : 'full_attention')) };
    },
  },
  granitemoe: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['block_sparse_moe.router.layer.weight'],
    fused: ['block_sparse_moe.input_linear.weight', 'block_sparse_moe.output_linear.weight'],
    layers: (_c, kept) => allMoe(kept) ?? {},
  },
  qwen3_next: {
    experts: 'num_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight'], fused: [],
    layers: (_c, kept) => ({
      decoder_sparse_step: 1, mlp_only_layers: kept.flatMap((l, i) => (l.mlp === 'dense' ? [i] : [])),
      layer_types: kept.map((l) => (l.mixer === 'deltanet' ? 'linear_attention' : 'full_attention')),
    }),
  },
  minimax: {
    // the lightning layers' slopes are saved with them (slope_rate): a kept layer keeps its own
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['block_sparse_moe.gate.weight'], fused: [],
    layers: (_c, kept) => ({ layer_types: kept.map((l) => (l.mixer === 'lightning' ? 'linear_attention' : 'full_attention')) }),
  },
  llama4_text: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['feed_forward.router.weight'],
    fused: ['feed_forward.experts.gate_up_proj', 'feed_forward.experts.down_proj'],
    layers: (_c, kept) => ({
      moe_layers: kept.flatMap((l, i) => (l.mlp === 'moe' ? [i] : [])),
      no_rope_layers: kept.map((l) => (l.noRope ? 0 : 1)),
      layer_types: kept.map((l) => (l.chunk ? 'chunked_attention' : 'full_attention')),
    }),
  },
  phimoe: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['block_sparse_moe.gate.weight'], fused: [],
    layers: (_c, kept) => allMoe(kept) ?? sameWindow(kept) ?? {},
  },
  hunyuan_v1_moe: {
    experts: 'num_experts', topK: 'moe_topk', router: ['mlp.gate.wg.weight'], fused: [],
    layers: (_c, kept) => allMoe(kept) ?? {},
  },
  dbrx: {
    experts: 'ffn_config.moe_num_experts', topK: 'ffn_config.moe_top_k', router: ['ffn.router.layer.weight'],
    fused: ['ffn.experts.mlp.w1', 'ffn.experts.mlp.v1', 'ffn.experts.mlp.w2'],
    layers: (_c, kept) => allMoe(kept) ?? {},
    layerPrefix: 'transformer.blocks', layersKey: 'n_layers', flatFused: true,
  },
  jetmoe: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['mlp.router.layer.weight'],
    fused: ['mlp.input_linear.weight', 'mlp.output_linear.weight'],
    layers: (_c, kept) => allMoe(kept) ?? {},
    expertsFixed: 'its attention experts (self_attention.experts) share num_local_experts and num_experts_per_tok with the MLP experts, so a sub-model of the MLP experts is no JetMoE config',
  },
  granitemoeshared: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['block_sparse_moe.router.layer.weight'],
    fused: ['block_sparse_moe.input_linear.weight', 'block_sparse_moe.output_linear.weight'],
    layers: (_c, kept) => allMoe(kept) ?? {},
  },
  // num_layers counts the decoder layers (transformers sets num_hidden_layers to twice it: two sublayers each)
  longcat_flash: {
    experts: 'n_routed_experts', topK: 'moe_topk', router: ['mlp.router.classifier.weight', 'mlp.router.classifier.bias', 'mlp.router.e_score_correction_bias'], fused: [],
    layers: (_c, kept) => ({ num_layers: kept.length, num_hidden_layers: 2 * kept.length }), zeroExperts: 'zero_expert_num',
  },
  flex_olmo: {
    experts: 'num_experts', topK: 'num_experts_per_tok', router: ['mlp.gate.weight'], fused: [],
    layers: (_c, kept) => allMoe(kept) ?? {},
  },
  aria_text: {
    experts: 'moe_num_experts', topK: 'moe_topk', router: ['mlp.router.weight'],
    fused: ['mlp.experts.fc1.weight', 'mlp.experts.fc2.weight'],
    layers: (_c, kept) => allMoe(kept) ?? {},
  },
  granitemoehybrid: {
    experts: 'num_local_experts', topK: 'num_experts_per_tok', router: ['block_sparse_moe.router.layer.weight'],
    fused: ['block_sparse_moe.input_linear.weight', 'block_sparse_moe.output_linear.weight'],
    // every layer is MoE (or, without experts, dense) by the config; the kept layers' mixers
    layers: (_c, kept) => ({ layer_types: kept.map((l) => (l.mixer === 'mamba2' ? 'linear_attention' : 'full_attention')) }),
  },
};

/** config[key] = v; a dotted key (DBRX's `ffn_config.moe_top_k`) sets the field of a copy of the nested object */
function setKey(config: Json, key: string, v: unknown): void {
  const dot = key.indexOf('.');
  if (dot < 0) { config[key] = v; return; }
  const outer = key.slice(0, dot), inner = config[outer];
  const o: Json = inner !== null && typeof inner === 'object' && !Array.isArray(inner) ? { ...(inner as Json) } : {};
  setKey(o, key.slice(dot + 1), v);
  config[outer] = o;
}

/** DeepSeek: the first `first_k_dense_replace` layers dense, every later one MoE */
function denseFirst(kept: LayerDesc[]): Json | string {
  const k = kept.findIndex((l) => l.mlp === 'moe');
  const first = k < 0 ? kept.length : k;
  if (kept.slice(first).some((l) => l.mlp === 'dense')) return 'a dense layer after a MoE layer (DeepSeek configs make only the first first_k_dense_replace layers dense)';
  return { first_k_dense_replace: first, moe_layer_freq: 1 };
}

/** the experts of every kept MoE layer, checked: same count per layer, ascending unique ids, equal per routing group */
function keptExperts(d: ModelDesc, keptLayers: number[], spec: ExtractSpec): Map<number, number[]> {
  const E = d.moe.experts, out = new Map<number, number[]>();
  const moeLayers = keptLayers.filter((l) => d.layers[l].mlp === 'moe');
  for (const key of Object.keys(spec.experts ?? {})) {
    const l = Number(key);
    if (!Number.isInteger(l) || l < 0 || l >= d.nLayers) throw new MoekitError(`experts: layer '${key}' is not a decoder layer index in [0, ${d.nLayers})`);
    if (d.layers[l].mlp !== 'moe') throw new MoekitError(`experts: layer ${l} is a dense layer`);
    if (!keptLayers.includes(l)) throw new MoekitError(`experts: layer ${l} is not among the kept layers`);
  }
  let count = -1;
  for (const l of moeLayers) {
    const ids = spec.experts ? spec.experts[l] : [...Array(E).keys()];
    if (!ids) throw new MoekitError(`experts: no list for MoE layer ${l} (every kept MoE layer needs one)`);
    const s = [...new Set(ids)].sort((a, b) => a - b);
    if (s.length !== ids.length) throw new MoekitError(`experts: layer ${l} lists an expert twice`);
    for (const e of s) if (!Number.isInteger(e) || e < 0 || e >= E) throw new MoekitError(`experts: layer ${l}: expert ${e} is outside [0, ${E})`);
    if (count >= 0 && s.length !== count) throw new MoekitError(`experts: layer ${l} keeps ${s.length} experts, another layer ${count} (a config has one expert count for all layers)`);
    count = s.length;
    if (s.length === 0) throw new MoekitError(`experts: layer ${l} keeps no expert`);
    if (d.moe.nGroup > 1) {
      const per = E / d.moe.nGroup;
      const inGroup = Array.from({ length: d.moe.nGroup }, (_, g) => s.filter((e) => Math.floor(e / per) === g).length);
      if (new Set(inGroup).size !== 1) throw new MoekitError(`experts: layer ${l} keeps [${inGroup.join(', ')}] experts in its ${d.moe.nGroup} routing groups; group-limited routing needs the same number in each`);
    }
    out.set(l, s);
  }
  return out;
}

/** the first n experts (of each routing group, for group-limited routers) of every MoE layer */
export function firstExperts(d: ModelDesc, n: number): Record<number, number[]> {
  const E = d.moe.experts, G = d.moe.nGroup;
  if (!Number.isInteger(n) || n < 1 || n > E) throw new MoekitError(`--experts must be an integer in [1, ${E}], got ${n}`);
  if (n % G !== 0) throw new MoekitError(`--experts ${n} is not a multiple of the ${G} routing groups`);
  const per = E / G;
  const ids = Array.from({ length: G }, (_, g) => Array.from({ length: n / G }, (_, j) => g * per + j)).flat();
  return Object.fromEntries(d.layers.flatMap((l, i) => (l.mlp === 'moe' ? [[i, ids]] : [])));
}

/** extract `spec` of the model in `src` into `out`; returns the files written */
export function extractSubModel(src: string, out: string, spec: ExtractSpec): { files: string[]; config: Json } {
  const cfgR = readConfig(src);
  const { arch, desc: d } = describeModel(cfgR);
  if (arch.tensorPrefix) throw new MoekitError(`extracting from a multimodal checkpoint (model_type '${cfgR.str('model_type')}', its language model under '${arch.tensorPrefix}') is not supported`, cfgR.file);
  const keys = KEYS[d.arch];
  if (keys.refused) throw new MoekitError(`extracting from a ${d.arch} checkpoint is not supported: ${keys.refused}`, cfgR.file);
  const kept = spec.layers ?? [...Array(d.nLayers).keys()];
  if (kept.length === 0) throw new MoekitError('layers: keep at least one decoder layer');
  kept.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= d.nLayers) throw new MoekitError(`layers: ${l} is not a decoder layer index in [0, ${d.nLayers})`);
    if (i > 0 && l <= kept[i - 1]) throw new MoekitError('layers: list the kept layers once each, ascending');
  });
  const experts = keptExperts(d, kept, spec);
  const nKeep = experts.size ? [...experts.values()][0].length : d.moe.experts;
  const K = spec.topK ?? Math.min(d.moe.topK, nKeep);
  if (keys.expertsFixed && (nKeep !== d.moe.experts || K !== d.moe.topK)) {
    throw new MoekitError(`extracting other experts or another top-k from a ${d.arch} checkpoint is not supported: ${keys.expertsFixed} (keeping layers alone is)`, cfgR.file);
  }
  if (!Number.isInteger(K) || K < 1 || K > nKeep) throw new MoekitError(`top-k must be an integer in [1, ${nKeep}] (the experts kept), got ${K}`);
  if (d.moe.nGroup > 1 && K > (d.moe.topkGroup * nKeep) / d.moe.nGroup) {
    throw new MoekitError(`top-k ${K} exceeds the ${(d.moe.topkGroup * nKeep) / d.moe.nGroup} experts of the ${d.moe.topkGroup} groups a token may use`);
  }
  const pattern = keys.layers(cfgR.raw, kept.map((l) => d.layers[l]));
  if (typeof pattern === 'string') throw new MoekitError(`layers: the kept layers have ${pattern}`, cfgR.file);
  const config: Json = { ...cfgR.raw, ...layerTypes(cfgR.raw, kept) };
  setKey(config, keys.layersKey ?? 'num_hidden_layers', kept.length);
  Object.assign(config, pattern); // after the layer count: LongCat-Flash's pattern sets num_hidden_layers to twice it
  setKey(config, keys.experts, nKeep);
  setKey(config, keys.topK, K);
  if (keys.zeroExperts) {
    // the kept ids below E_r are routed experts, the rest zero-computation ones
    const ids = experts.size ? [...experts.values()][0] : [...Array(d.moe.experts).keys()];
    const routed = ids.filter((e) => e < routedExperts(d.moe)).length;
    if (routed === 0) throw new MoekitError(`experts: keep at least one routed expert (ids below ${routedExperts(d.moe)}; the others are zero-computation experts)`);
    config[keys.experts] = routed;
    config[keys.zeroExperts] = ids.length - routed;
  }
  if (d.arch === 'qwen3_moe' && 'num_local_experts' in cfgR.raw) config['num_local_experts'] = nKeep;
  if (cfgR.has('num_nextn_predict_layers')) config['num_nextn_predict_layers'] = 0; // MTP modules are not extracted
  const E = d.moe.experts;
  const layerPrefix = keys.layerPrefix ?? 'model.layers';
  const layerRe = new RegExp(`^${layerPrefix.replace(/\./g, '\\.')}\\.(\\d+)\\.(.*)$`);
  const ck = Checkpoint.open(path.dirname(cfgR.file));
  try {
    const entries: SafetensorsEntry[] = [];
    for (const name of ck.names()) {
      const m = layerRe.exec(name);
      if (!m) { entries.push({ name, dtype: ck.info(name).dtype, shape: ck.info(name).shape, data: () => ck.readRaw(name) }); continue; }
      const l = Number(m[1]), rest = m[2];
      const ni = kept.indexOf(l);
      if (ni < 0) continue; // a dropped layer (or an MTP layer ≥ num_hidden_layers)
      const prefix = `${layerPrefix}.${ni}.`;
      const info = ck.info(name);
      const keep = experts.get(l);
      const perExpert = /^(.*\.experts)\.(\d+)\.(.*)$/.exec(rest);
      if (keep && perExpert) {
        const j = keep.indexOf(Number(perExpert[2]));
        if (j >= 0) entries.push({ name: `${prefix}${perExpert[1]}.${j}.${perExpert[3]}`, dtype: info.dtype, shape: info.shape, data: () => ck.readRaw(name) });
        continue;
      }
      const base = rest.replace(/_scale_inv$/, '');
      if (keep && (keys.router.includes(base) || keys.fused.includes(base))) {
        if (rest.endsWith('_scale_inv') && keys.router.includes(base)) throw new MoekitError(`tensor '${name}': a block-scaled router cannot be sliced by rows`, info.file);
        // [E, ...] (or [1, E]): the kept experts' slices, in order
        const flat = keys.flatFused === true && keys.fused.includes(base) && info.shape[0] % E === 0; // [E·I, …]
        const lead = flat || info.shape[0] === E ? 0 : info.shape.length === 2 && info.shape[0] === 1 && info.shape[1] === E ? 1 : -1;
        if (lead < 0) throw new MoekitError(`tensor '${name}' has shape [${info.shape.join(', ')}], expected an expert dimension of ${E}`, info.file);
        const shape = info.shape.slice();
        shape[lead] = flat ? keep.length * (info.shape[0] / E) : keep.length;
        entries.push({
          name: prefix + rest, dtype: info.dtype, shape,
          data: () => {
            const raw = ck.readRaw(name), per = raw.byteLength / E;
            const outB = new Uint8Array(per * keep.length);
            keep.forEach((e, j) => outB.set(raw.subarray(e * per, (e + 1) * per), j * per));
            return outB;
          },
        });
        continue;
      }
      entries.push({ name: prefix + rest, dtype: info.dtype, shape: info.shape, data: () => ck.readRaw(name) });
    }
    fs.mkdirSync(out, { recursive: true });
    const { files } = writeShardedSafetensors(out, entries, { maxShardBytes: 5 * 2 ** 30 });
    const tmp = path.join(out, `.config.json.tmp-${process.pid}`);
    withTemp(tmp, () => {
      fs.writeFileSync(tmp, hfConfigJson(config, fs.readFileSync(cfgR.file, 'utf8')));
      fs.renameSync(tmp, path.join(out, 'config.json'));
    });
    files.push(path.join(out, 'config.json'), ...copySideFiles(path.dirname(cfgR.file), out));
    return { files, config };
  } finally {
    ck.close();
  }
}
