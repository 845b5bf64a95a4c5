/**
 * The planner's input: a spec (JSON or YAML) with four sections, `model`, `hardware`, `parallel`,
 * `training`. Any section can come from a preset (`model.preset`, `hardware.preset`) and any field
 * can be overridden. Every problem is a one-line MoekitError naming the field (`parallel.tp`).
 */
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readTextCapped, SPEC_MAX_BYTES, YAML_OPTIONS } from '../io/read.js';
import { MoekitError } from '../util/errors.js';
import { FITTED } from './fitted.js';
import { resolveHardware, type Hardware } from './hardware.js';
import { modelFromConfig, modelPreset, type ModelShape } from './models.js';

export type Schedule = '1f1b' | 'interleaved' | 'dualpipe' | 'dualpipev' | 'zero-bubble';
export type RecomputeModule = 'attention' | 'core_attn' | 'mla_up' | 'mlp' | 'moe' | 'moe_act' | 'layernorm';
export type Recompute = 'none' | 'selective' | 'full' | RecomputeModule[];
export type EpOverlap = 'none' | 'adaptive' | 'dualpipe' | 'a2a-1f1b';
/** Megatron-Core's token dispatcher (--moe-token-dispatcher-type): alltoall, allgather, or flex (DeepEP) */
export type Dispatcher = 'alltoall' | 'allgather' | 'flex';
export type A2A = 'flat' | 'hierarchical' | 'hierarchical-allgather';

export interface Parallel {
  tp: number;
  pp: number;
  vpp: number;
  ep: number;
  /** expert tensor parallel; defaults to tp (Megatron before MoE parallel folding), 1 with folding */
  etp: number;
  cp: number;
  dp: number;
  zero: 0 | 1 | 2 | 3;
  recompute: Recompute;
  /** fraction (0..1) of the stored activations swapped to host memory */
  offload: number;
  schedule: Schedule;
  /** how EP all-to-all hides behind compute: none, Pangu's adaptive pipe overlap, DeepSeek's DualPipe */
  ep_overlap: EpOverlap;
  /**
   * flat all-to-all; hierarchical (node-deduplicated dispatch: each token crosses once to each remote node holding one
   * of its experts, then an intra-node all-to-all: DeepEP, DeepSeek-V3); or hierarchical-allgather (MindSpeed's
   * --moe-hierarchical-alltoallv with --moe-tp-extend-ep: all-gather over the EP group's outer part, all-to-allv in the
   * TP group; only when ep is a multiple of tp and etp = 1, else flat)
   */
  a2a: A2A;
  /** whether TP collectives overlap GEMMs (Megatron --tp-comm-overlap) */
  tp_overlap: boolean;
  /**
   * Megatron-Core's token dispatcher: alltoall (NCCL all-to-all of the routed rows: a2a flat), allgather (every rank
   * gathers the EP group's tokens and keeps its experts' rows; the combine reduce-scatters them back), flex with
   * DeepEP (node-deduplicated dispatch: a2a hierarchical). Sets a2a when a2a is not given.
   */
  dispatcher: Dispatcher;
  /** whether the shared experts run while the dispatch all-to-all is in flight (Megatron --moe-shared-expert-overlap) */
  shared_expert_overlap: boolean;
  /** whether the DP gradient reduce-scatter / parameter all-gather overlap the backward / forward (Megatron --overlap-grad-reduce, --overlap-param-gather) */
  dp_overlap: boolean;
  /** CUDA graphs captured for the layers (the recipes' cuda_graphs): the host launches a graph, not each kernel */
  cuda_graphs: boolean;
}

export interface Training {
  seq_len: number;
  micro_batch: number;
  /** sequences per step */
  global_batch: number;
  precision: 'bf16' | 'fp8';
  /** optimizer state (Adam m, v) precision */
  optimizer_precision: 'fp32' | 'bf16';
  /**
   * gradient buffer / DP reduction precision: fp32 is Megatron-LM's default for bf16 training (arguments.py: "bfloat16
   * requires gradient accumulation and all-reduce to be done in fp32"; DeepSeek-V3 sec. 3.3.3 keeps gradients in fp32
   * too); bf16 = Megatron's --grad-reduce-in-bf16
   */
  grad_precision: 'fp32' | 'bf16';
  /** most-loaded EP rank's tokens over the mean, fixed by the spec; 0 = derive it from expert_load_cv (balance.ts) */
  load_imbalance: number;
  /** coefficient of variation of one expert's token count per micro-batch (default 0.12) */
  expert_load_cv: number;
  /** bytes per element of the EP dispatch payload (1 = FP8 dispatch as DeepSeek-V3, 2 = BF16) */
  dispatch_bytes: number;
  /** node-limited routing: a token's experts lie on at most this many nodes (DeepSeek-V3: 4); 0 = unlimited */
  node_limit: number;
  /**
   * token drop with padding to capacity (Megatron --moe-expert-capacity-factor with --moe-pad-expert-input-to-capacity):
   * every expert gets exactly capacity_factor x T k / E rows, the dropped ones cut and the missing ones padded, so the
   * load is even (max/mean = capacity_factor) and the all-to-all carries the padded rows; 0 = dropless
   */
  capacity_factor: number;
}

export interface Spec {
  model: ModelShape;
  hardware: Hardware;
  devices: number;
  parallel: Parallel;
  training: Training;
  /** which parallel fields were given (the rest were defaulted or derived); informational: search treats the parallel section as a template and varies every layout field (tp, pp, vpp, ep, etp, cp) whether given or not */
  given: Set<string>;
  /** optional sweep section, raw */
  sweep?: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

/** default coefficient of variation of per-expert load (chosen against the calibration rows: fitted.ts) */
export const DEFAULT_EXPERT_LOAD_CV = FITTED.expert_load_cv.value;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Upper limits of the planner's integers: far above any published model or cluster, low enough that every product
 * the simulator forms stays an exact, finite number and the search's enumerations stay short.
 */
export const PLAN_LIMITS: Record<string, number> = {
  'model.layers': 4096, 'model.hidden': 2 ** 20, 'model.heads': 65536, 'model.kv_heads': 65536, 'model.head_dim': 65536,
  'model.vocab': 2 ** 24, 'model.dense_layers': 4096, 'model.dense_ffn': 2 ** 22, 'model.experts': 65536,
  'model.shared_experts': 4096, 'model.shared_ffn': 2 ** 22, 'model.top_k': 65536, 'model.expert_ffn': 2 ** 22,
  'model.mtp_layers': 64, 'model.q_lora_rank': 65536, 'model.kv_lora_rank': 65536, 'model.qk_nope_head_dim': 65536,
  'model.qk_rope_head_dim': 65536, 'model.v_head_dim': 65536,
  'hardware.devices': 2 ** 20,
  'parallel.tp': 2 ** 20, 'parallel.pp': 2 ** 20, 'parallel.vpp': 4096, 'parallel.ep': 2 ** 20, 'parallel.etp': 2 ** 20,
  'parallel.cp': 2 ** 20, 'parallel.dp': 2 ** 20, 'parallel.zero': 3,
  'training.seq_len': 2 ** 24, 'training.micro_batch': 2 ** 20, 'training.global_batch': 2 ** 30, 'training.node_limit': 2 ** 20,
};
const DEFAULT_INT_LIMIT = 2 ** 30;

/** an exact integer in [min, PLAN_LIMITS[where]]: 1e308, 2^53 + 1 and 1.5 are refused */
export function int(v: unknown, where: string, min = 1): number {
  const max = PLAN_LIMITS[where] ?? DEFAULT_INT_LIMIT;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new MoekitError(`must be an integer in [${min}, ${max}] (got ${JSON.stringify(v)})`, where);
  }
  return v;
}
function num(v: unknown, where: string, min = 0, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new MoekitError(`must be a number in [${min}, ${max}] (got ${JSON.stringify(v)})`, where);
  return v;
}
function oneOf<T extends string>(v: unknown, allowed: readonly T[], where: string): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new MoekitError(`must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`, where);
  return v as T;
}

/** Read a spec file (JSON or YAML) into a plain object. */
export function readSpecFile(path: string): Obj {
  const text = readTextCapped(path, SPEC_MAX_BYTES, 'spec');
  let raw: unknown;
  try {
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text, YAML_OPTIONS);
  } catch (e) {
    throw new MoekitError(`not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`, path);
  }
  if (!isObj(raw)) throw new MoekitError('spec must be a mapping with model / hardware / parallel / training', path);
  raw.__dir = dirname(resolve(path));
  return raw;
}

const MODEL_INT = ['layers', 'hidden', 'heads', 'kv_heads', 'head_dim', 'vocab'] as const;
const MODEL_INT0 = ['dense_layers', 'dense_ffn', 'experts', 'shared_experts', 'shared_ffn', 'top_k', 'expert_ffn', 'mtp_layers',
  'q_lora_rank', 'kv_lora_rank', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim'] as const;

export function resolveModel(raw: unknown, baseDir = '.'): ModelShape {
  if (typeof raw === 'string') raw = { preset: raw };
  if (!isObj(raw)) throw new MoekitError('missing model section (a preset name, a config.json path, or fields)', 'model');
  let base: Partial<ModelShape> = {};
  if (raw.preset !== undefined && typeof raw.preset !== 'string') throw new MoekitError(`must be a model preset name (got ${JSON.stringify(raw.preset)})`, 'model.preset');
  if (typeof raw.preset === 'string') base = modelPreset(raw.preset);
  const cfg = raw.config ?? raw.hf_config;
  if (cfg !== undefined && typeof cfg !== 'string') throw new MoekitError(`must be a path to a Hugging Face config.json (got ${JSON.stringify(cfg)})`, raw.config !== undefined ? 'model.config' : 'model.hf_config');
  if (typeof cfg === 'string') base = { ...base, ...modelFromConfig(resolve(baseDir, cfg)) };
  const m: Obj = { ...base };
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'preset' || k === 'config' || k === 'hf_config') continue;
    m[k] = v;
  }
  for (const k of Object.keys(m)) {
    if (!(MODEL_INT as readonly string[]).includes(k) && !(MODEL_INT0 as readonly string[]).includes(k) &&
      !['name', 'attention', 'tied_embeddings'].includes(k)) {
      throw new MoekitError(`unknown model field '${k}'`, `model.${k}`);
    }
  }
  m.attention ??= m.kv_lora_rank ? 'mla' : 'gqa';
  m.kv_heads ??= m.heads;
  if (m.head_dim === undefined && typeof m.hidden === 'number' && typeof m.heads === 'number') m.head_dim = m.hidden / m.heads;
  for (const k of MODEL_INT0) m[k] ??= 0;
  m.tied_embeddings ??= false;
  if (typeof m.tied_embeddings !== 'boolean') throw new MoekitError(`must be true or false (got ${JSON.stringify(m.tied_embeddings)})`, 'model.tied_embeddings');
  m.name ??= 'custom';
  if ((m.experts as number) === 0 && m.dense_layers === 0) m.dense_layers = m.layers;
  for (const k of MODEL_INT) int(m[k], `model.${k}`);
  for (const k of MODEL_INT0) int(m[k], `model.${k}`, 0);
  const attention = oneOf(m.attention, ['gqa', 'mla'] as const, 'model.attention');
  const s = m as unknown as ModelShape;
  if (s.dense_layers > s.layers) throw new MoekitError(`dense_layers ${s.dense_layers} exceeds layers ${s.layers}`, 'model.dense_layers');
  if (s.dense_layers > 0 && s.dense_ffn === 0) throw new MoekitError('dense layers need dense_ffn > 0', 'model.dense_ffn');
  if (s.experts > 0) {
    if (s.top_k < 1 || s.top_k > s.experts) throw new MoekitError(`top_k must be in 1..experts (${s.experts})`, 'model.top_k');
    if (s.expert_ffn < 1) throw new MoekitError('MoE layers need expert_ffn > 0', 'model.expert_ffn');
  } else if (s.dense_layers < s.layers) {
    throw new MoekitError('a model with experts = 0 must have dense_layers = layers', 'model.experts');
  }
  if (attention === 'gqa' && s.heads % s.kv_heads !== 0) throw new MoekitError(`heads ${s.heads} not a multiple of kv_heads ${s.kv_heads}`, 'model.kv_heads');
  if (attention === 'mla') {
    for (const k of ['kv_lora_rank', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim'] as const) {
      if (!(s[k] > 0)) throw new MoekitError('MLA attention needs this field > 0', `model.${k}`);
    }
  }
  return { ...s, attention, tied_embeddings: Boolean(s.tied_embeddings) };
}

const PARALLEL_KEYS = ['tp', 'pp', 'vpp', 'ep', 'etp', 'cp', 'dp', 'zero', 'recompute', 'offload', 'schedule', 'ep_overlap', 'a2a', 'tp_overlap', 'dispatcher', 'shared_expert_overlap', 'dp_overlap', 'cuda_graphs'];
const RECOMPUTE_MODULES: readonly RecomputeModule[] = ['attention', 'core_attn', 'mla_up', 'mlp', 'moe', 'moe_act', 'layernorm'];

export function resolveParallel(raw: unknown, devices: number, model: ModelShape, strict = true): { parallel: Parallel; given: Set<string> } {
  const p: Obj = isObj(raw) ? raw : {};
  // an empty YAML section (`parallel:` with nothing under it) is null: the defaults
  if (raw !== undefined && raw !== null && !isObj(raw)) throw new MoekitError(`must be a mapping (got ${JSON.stringify(raw)})`, 'parallel');
  for (const k of Object.keys(p)) if (!PARALLEL_KEYS.includes(k)) throw new MoekitError(`unknown parallel field '${k}'`, `parallel.${k}`);
  const given = new Set(Object.keys(p));
  const tp = p.tp === undefined ? 1 : int(p.tp, 'parallel.tp');
  const pp = p.pp === undefined ? 1 : int(p.pp, 'parallel.pp');
  const cp = p.cp === undefined ? 1 : int(p.cp, 'parallel.cp');
  const schedule = p.schedule === undefined ? (p.vpp && (p.vpp as number) > 1 ? 'interleaved' : '1f1b')
    : oneOf(p.schedule, ['1f1b', 'interleaved', 'dualpipe', 'dualpipev', 'zero-bubble'] as const, 'parallel.schedule');
  const vpp = p.vpp === undefined ? 1 : int(p.vpp, 'parallel.vpp');
  const ep = p.ep === undefined ? 1 : int(p.ep, 'parallel.ep');
  const etp = p.etp === undefined ? tp : int(p.etp, 'parallel.etp');
  const zero = p.zero === undefined ? 1 : (int(p.zero, 'parallel.zero', 0) as 0 | 1 | 2 | 3);
  if (zero > 3) throw new MoekitError('must be 0, 1, 2 or 3', 'parallel.zero');
  let recompute: Recompute = 'none';
  if (Array.isArray(p.recompute)) {
    recompute = p.recompute.map((m, i) => oneOf(m, RECOMPUTE_MODULES, `parallel.recompute[${i}]`));
  } else if (typeof p.recompute === 'string' && (RECOMPUTE_MODULES as readonly string[]).includes(p.recompute)) {
    recompute = [p.recompute as RecomputeModule]; // one module, as the CLI's --recompute moe_act
  } else if (p.recompute !== undefined) {
    recompute = oneOf(p.recompute, ['none', 'selective', 'full', ...RECOMPUTE_MODULES] as const, 'parallel.recompute') as Recompute;
  }
  const offload = p.offload === undefined ? 0 : num(p.offload, 'parallel.offload', 0, 1);
  const ep_overlap = p.ep_overlap === undefined ? (schedule === 'dualpipe' || schedule === 'dualpipev' ? 'dualpipe' : 'none')
    : oneOf(p.ep_overlap, ['none', 'adaptive', 'dualpipe', 'a2a-1f1b'] as const, 'parallel.ep_overlap');
  const dispatcher = p.dispatcher === undefined ? 'alltoall' : oneOf(p.dispatcher, ['alltoall', 'allgather', 'flex'] as const, 'parallel.dispatcher');
  const a2a = p.a2a === undefined ? (dispatcher === 'flex' ? 'hierarchical' : 'flat') : oneOf(p.a2a, ['flat', 'hierarchical', 'hierarchical-allgather'] as const, 'parallel.a2a');
  const bool = (k: string, dflt: boolean): boolean => {
    if (p[k] === undefined) return dflt;
    if (typeof p[k] !== 'boolean') throw new MoekitError(`must be true or false (got ${JSON.stringify(p[k])})`, `parallel.${k}`);
    return p[k] as boolean;
  };
  const tp_overlap = bool('tp_overlap', true);
  const shared_expert_overlap = bool('shared_expert_overlap', false);
  const dp_overlap = bool('dp_overlap', true);
  const cuda_graphs = bool('cuda_graphs', false);
  if (model.heads % tp !== 0) throw new MoekitError(`tp ${tp} does not divide heads ${model.heads}`, 'parallel.tp');
  const modelPar = tp * pp * cp;
  let dp: number;
  if (p.dp === undefined) {
    if (devices % modelPar !== 0 && strict) {
      throw new MoekitError(`devices ${devices} not divisible by tp*pp*cp = ${modelPar}`, 'parallel');
    }
    dp = Math.max(1, Math.floor(devices / modelPar));
  } else dp = int(p.dp, 'parallel.dp');
  const parallel: Parallel = { tp, pp, vpp, ep, etp, cp, dp, zero, recompute, offload, schedule, ep_overlap, a2a, tp_overlap, dispatcher, shared_expert_overlap, dp_overlap, cuda_graphs };
  if (strict) validateParallel(parallel, devices, model);
  return { parallel, given };
}

/**
 * Why a layout cannot run this model on this many devices, or undefined when it can.
 * Rules follow Megatron-Core's checks (megatron/training/arguments.py, parallel_state.py):
 * tp | heads (and kv_heads), tp*pp*cp*dp = devices, ep*etp | tp*cp*dp (MoE parallel folding), ep | experts,
 * etp | expert_ffn, pp | layers (per virtual stage), vpp only with interleaved.
 */
export function layoutProblem(par: Parallel, devices: number, m: ModelShape): [string, string] | undefined {
  const { tp, pp, vpp, ep, etp, cp, dp } = par;
  if (devices < 1) return ['parallel', 'devices must be >= 1'];
  if (tp * pp * cp * dp !== devices) return ['parallel.dp', `tp*pp*cp*dp = ${tp * pp * cp * dp} but devices = ${devices}`];
  if (m.heads % tp !== 0) return ['parallel.tp', `tp ${tp} does not divide heads ${m.heads}`];
  if (m.attention === 'gqa' && m.kv_heads % tp !== 0 && tp % m.kv_heads !== 0) return ['parallel.tp', `tp ${tp} and kv_heads ${m.kv_heads} do not divide each other`];
  if (m.experts > 0) {
    if (m.experts % ep !== 0) return ['parallel.ep', `ep ${ep} does not divide experts ${m.experts}`];
    if ((tp * cp * dp) % (ep * etp) !== 0) return ['parallel.ep', `ep*etp = ${ep * etp} does not divide tp*cp*dp = ${tp * cp * dp}`];
    if (m.expert_ffn % etp !== 0) return ['parallel.etp', `etp ${etp} does not divide expert_ffn ${m.expert_ffn}`];
  } else if (ep !== 1) return ['parallel.ep', 'ep > 1 needs a model with experts'];
  if (vpp > 1 && par.schedule !== 'interleaved') return ['parallel.vpp', `vpp ${vpp} needs schedule interleaved`];
  // Megatron: virtual pipeline stages need a pipeline (arguments.py: "pipeline-model-parallel size should be greater than 1 with interleaved schedule")
  if (vpp > 1 && pp === 1) return ['parallel.vpp', `vpp ${vpp} needs pp > 1`];
  const chunks = pp * vpp * (par.schedule === 'dualpipe' || par.schedule === 'dualpipev' ? 2 : 1);
  if (m.layers < chunks) return ['parallel.pp', `${m.layers} layers cannot fill ${chunks} pipeline chunks`];
  if ((par.schedule === 'dualpipe' || par.schedule === 'dualpipev') && pp % 2 !== 0) return ['parallel.pp', `${par.schedule} needs an even pp`];
  return undefined;
}

export function validateParallel(par: Parallel, devices: number, m: ModelShape): void {
  const p = layoutProblem(par, devices, m);
  if (p) throw new MoekitError(p[1], p[0]);
}

export function resolveTraining(raw: unknown, par: Parallel, strict = true): Training {
  if (!isObj(raw)) throw new MoekitError('missing training section (seq_len, micro_batch, global_batch)', 'training');
  const keys = ['seq_len', 'micro_batch', 'global_batch', 'precision', 'optimizer_precision', 'grad_precision', 'load_imbalance', 'expert_load_cv', 'dispatch_bytes', 'node_limit', 'capacity_factor'];
  for (const k of Object.keys(raw)) if (!keys.includes(k)) throw new MoekitError(`unknown training field '${k}'`, `training.${k}`);
  const seq_len = int(raw.seq_len, 'training.seq_len');
  const micro_batch = raw.micro_batch === undefined ? 1 : int(raw.micro_batch, 'training.micro_batch');
  const global_batch = int(raw.global_batch, 'training.global_batch');
  const precision = raw.precision === undefined ? 'bf16' : oneOf(raw.precision, ['bf16', 'fp8'] as const, 'training.precision');
  const t: Training = {
    seq_len, micro_batch, global_batch, precision,
    optimizer_precision: raw.optimizer_precision === undefined ? 'fp32' : oneOf(raw.optimizer_precision, ['fp32', 'bf16'] as const, 'training.optimizer_precision'),
    grad_precision: raw.grad_precision === undefined ? 'fp32' : oneOf(raw.grad_precision, ['fp32', 'bf16'] as const, 'training.grad_precision'),
    load_imbalance: raw.load_imbalance === undefined ? 0 : num(raw.load_imbalance, 'training.load_imbalance', 1, 100),
    expert_load_cv: raw.expert_load_cv === undefined ? DEFAULT_EXPERT_LOAD_CV : num(raw.expert_load_cv, 'training.expert_load_cv', 0, 10),
    // Megatron's alltoall / allgather / flex dispatchers send the BF16 hidden states (Transformer Engine quantises
    // inside the expert GEMMs); FP8 dispatch (DeepSeek-V3's own stack) is a spec choice: dispatch_bytes 1
    dispatch_bytes: raw.dispatch_bytes === undefined ? 2 : num(raw.dispatch_bytes, 'training.dispatch_bytes', 0.5, 4),
    node_limit: raw.node_limit === undefined ? 0 : int(raw.node_limit, 'training.node_limit', 0),
    capacity_factor: raw.capacity_factor === undefined || raw.capacity_factor === 0 ? 0 : num(raw.capacity_factor, 'training.capacity_factor', 0.1, 16),
  };
  if (!strict) return t;
  if (seq_len % par.cp !== 0) throw new MoekitError(`seq_len ${seq_len} not divisible by cp ${par.cp}`, 'training.seq_len');
  if (global_batch % (micro_batch * par.dp) !== 0) {
    throw new MoekitError(`global_batch ${global_batch} not divisible by micro_batch*dp = ${micro_batch * par.dp}`, 'training.global_batch');
  }
  return t;
}

/**
 * Build a Spec from a parsed object (a file's contents with flags merged in). With `template` (search, sweep) the
 * parallel section is only a template of knobs: its layout is not validated, the search fills it in.
 */
export function resolveSpec(raw: Obj, where = 'spec', opts: { template?: boolean } = {}): Spec {
  const strict = !opts.template;
  const baseDir = typeof raw.__dir === 'string' ? raw.__dir : '.';
  for (const k of Object.keys(raw)) {
    if (!['model', 'hardware', 'parallel', 'training', 'sweep', '__dir', 'name'].includes(k)) throw new MoekitError(`unknown section '${k}'`, `${where}: ${k}`);
  }
  const model = resolveModel(raw.model, baseDir);
  const hwRaw = typeof raw.hardware === 'string' ? { preset: raw.hardware } : raw.hardware;
  if (!isObj(hwRaw)) throw new MoekitError('missing hardware section (preset, devices)', 'hardware');
  const hardware = resolveHardware(hwRaw);
  if (hwRaw.devices === undefined) throw new MoekitError('missing device count', 'hardware.devices');
  const devices = int(hwRaw.devices, 'hardware.devices');
  const { parallel, given } = resolveParallel(raw.parallel, devices, model, strict);
  if (parallel.offload > 0 && !(hardware.host_bw > 0)) throw new MoekitError(`must be positive to offload activations (parallel.offload ${parallel.offload})`, 'hardware.host_bw');
  const training = resolveTraining(raw.training, parallel, strict);
  // without FP8 GEMMs the GEMMs fell back to the BF16 rate while memory and the dispatch were still modelled in FP8
  if (training.precision === 'fp8' && !(hardware.peak_fp8 > 0)) {
    throw new MoekitError(`fp8 needs FP8 GEMMs: ${hardware.preset} has none (peak_fp8 0); use bf16, or set hardware.peak_fp8_tflops`, 'training.precision');
  }
  if (raw.sweep !== undefined && raw.sweep !== null && !isObj(raw.sweep)) throw new MoekitError('must be a mapping (layers, hidden, experts, top_k, expert_ffn, ...)', 'sweep');
  return { model, hardware, devices, parallel, training, given, sweep: isObj(raw.sweep) ? raw.sweep : undefined };
}

export function loadSpec(path: string, opts: { template?: boolean } = {}): Spec {
  return resolveSpec(readSpecFile(path), path, opts);
}
