/**
 * moekit as a library: `import { loadModel, inspect, simulatePlan } from 'moekit'`. The same operations as the CLI,
 * in the shapes transformers.js users know: loading reports typed progress events (initiate → progress
 * {loaded, total} → done → ready), generation is an async iterator of tokens, a forward pass returns the logits and
 * every MoE layer's router logits through the tracing hook. Everything runs in this thread; `openModel` runs a model
 * on a worker thread with concurrent sessions (the server's engine).
 *
 *   const model = await loadModel('demo');                     // a directory, a .gguf file, or 'demo' (the bundled demo model)
 *   for await (const t of model.generate('draw 42=', { maxNewTokens: 80 })) process.stdout.write(t.text);
 *   const { logits, routerLogits } = model.forward(model.encode('sort 3 1 2='));
 *   model.close();
 */
import { loadTokenizer, type ChatMessage, type TextTokenizer } from './io/tokenizer.js';
import { resolveModelDir } from './io/model-dir.js';
import type { ModelDesc } from './models/desc.js';
import { inspectModel, type InspectReport } from './models/inspect.js';
import { MoeModel, type LoadOptions, type MoeEvent, type SubModel, type Tracer } from './models/model.js';
import { search, type SearchOptions, type SearchResult } from './plan/search.js';
import { simulate, type SimOptions, type SimResult } from './plan/simulate.js';
import { readSpecFile, resolveSpec, type Spec } from './plan/spec.js';
import type { DoneMsg, FinishReason, Timings, TokenMsg, Usage } from './runtime/events.js';
import type { SamplingOptions } from './runtime/sampling.js';
import { openModel as openOnWorker, type ModelHandle, type OpenOptions } from './runtime/remote.js';
import { Scheduler } from './runtime/scheduler.js';
import { kernelsInfo as kernels, type KernelsInfo } from './tensor/index.js';
import { MoekitError } from './util/errors.js';
import { exportGguf, type ExportResult as GgufExportResult, type ExportType } from './models/gguf-export.js';
import { quantizeCheckpoint, type QuantizeResult } from './models/quantize-checkpoint.js';
import type { QuantType } from './tensor/quant.js';
import type { ProgressCallback } from './util/progress.js';

export { MoekitError } from './util/errors.js';
export { demoModelDir } from './io/model-dir.js';
export type { ModelHandle, ModelInfo, OpenOptions } from './runtime/remote.js';
export { exportPlan, type Engine, type ExportResult } from './plan/export.js';
export { hardwarePreset, presetNames as hardwarePresetNames, type Hardware } from './plan/hardware.js';
export { modelPresetNames } from './plan/models.js';
export type { ProgressCallback, ProgressEvent } from './util/progress.js';
export type { ChatMessage, TextTokenizer } from './io/tokenizer.js';
export type { InspectReport } from './models/inspect.js';
export type { ModelDesc } from './models/desc.js';
export type { MoeEvent, SubModel, Tracer } from './models/model.js';
export type { DoneMsg, FinishReason, GenEvent, SessionOptions, Timings, TokenMsg, Usage } from './runtime/events.js';
export type { SearchOptions, SearchResult } from './plan/search.js';
export type { SimOptions, SimResult } from './plan/simulate.js';
export type { Spec } from './plan/spec.js';
export type { KernelsInfo } from './tensor/index.js';
export type { QuantType } from './tensor/quant.js';
export type { ExportType, ExportResult as GgufExportResult } from './models/gguf-export.js';
export type { QuantizeResult } from './models/quantize-checkpoint.js';

/** which kernels run (native addon or the TypeScript reference) and, without the addon, why */
export function kernelsInfo(): KernelsInfo {
  return kernels();
}

// ---------------------------------------------------------------------------------------------------------------
// inspect

/** `moekit inspect`: architecture, layers, experts, parameters, dtypes, memory, from config.json and headers alone */
export function inspect(dir: string): InspectReport {
  return inspectModel(resolveModelDir(dir));
}

// ---------------------------------------------------------------------------------------------------------------
// load

export interface LoadModelOptions extends Omit<LoadOptions, 'onProgress'> {
  /** loading progress: initiate → progress {loaded, total} → done → ready (transformers.js' statuses) */
  onProgress?: ProgressCallback;
  /** transformers.js' name for onProgress */
  progress_callback?: ProgressCallback;
}

/**
 * Load a model directory (safetensors + config.json, as published on Hugging Face; `demo`: the bundled demo model).
 * Async as transformers.js' from_pretrained is; the weights are read before it resolves.
 */
export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<Model> {
  const { onProgress, progress_callback, ...load } = opts;
  const resolved = resolveModelDir(dir);
  const tokenizer = loadTokenizer(resolved);
  const model = MoeModel.load(resolved, { ...load, onProgress: onProgress ?? progress_callback });
  return new Model(model, tokenizer);
}

/** a model on a worker thread serving concurrent sessions (continuous batching); `dir` may be 'demo' */
export function openModel(dir: string, opts: OpenOptions = {}): ModelHandle {
  return openOnWorker(resolveModelDir(dir), opts);
}

// ---------------------------------------------------------------------------------------------------------------
// the model

/** a prompt: text (needs the model's tokenizer), token ids, or chat messages (rendered with its chat template) */
export type Prompt = string | number[] | ChatMessage[];

export interface GenerateOptions extends SamplingOptions {
  /** default 16 */
  maxNewTokens?: number;
  /** stop at the config's end-of-sequence ids (default true) */
  stopAtEos?: boolean;
  /** a sub-model: decoder layers, allowed experts and top-k per MoE layer */
  sub?: SubModel;
  /** abort to stop the generation (it then finishes 'cancelled') */
  signal?: AbortSignal;
}

/** a generated token: its id, its index among the new tokens, and the text it adds (with a tokenizer) */
export type Token = Omit<TokenMsg, 'type'>;

/** a whole generation: the completion, and the ids of prompt + completion */
export interface Completion {
  ids: number[];
  newIds: number[];
  /** the decoded completion (with a tokenizer) */
  text?: string;
  finishReason: FinishReason;
  usage: Usage;
  timings: Timings;
}

export interface ForwardOptions {
  /** called with every MoE layer's routing and, when it asks, the residual stream (see Tracer) */
  trace?: Tracer;
  sub?: SubModel;
}

export interface ForwardResult {
  /** [B, T, V] */
  logits: Float32Array;
  shape: [number, number, number];
  /** per MoE layer (counted among MoE layers from 0): the raw router logits [B·T, E] */
  routerLogits: { moeLayer: number; layer: number; logits: Float32Array; N: number; E: number }[];
}

export class Model {
  /** generations share one scheduler: concurrent generate() calls decode in one batch per step */
  private scheduler: Scheduler | null = null;

  constructor(readonly engine: MoeModel, readonly tokenizer: TextTokenizer | null) {}

  get desc(): ModelDesc { return this.engine.desc; }
  get dir(): string { return this.engine.dir; }

  /** text → ids with the model's tokenizer */
  encode(text: string): number[] {
    return this.needTokenizer('encode text').encode(text);
  }

  /** ids → text with the model's tokenizer */
  decode(ids: number[]): string {
    return this.needTokenizer('decode ids').decode(ids);
  }

  /** the prompt's ids */
  promptIds(prompt: Prompt): number[] {
    if (typeof prompt === 'string') return this.encode(prompt);
    if (prompt.every((p): p is number => typeof p === 'number')) return prompt;
    return this.needTokenizer('render chat messages').applyChatTemplate(prompt as ChatMessage[], true);
  }

  /**
   * Generate: an async iterator of the new tokens, greedy unless sampling options are given (temperature, topK,
   * topP, seed). Leaving the loop early cancels the generation. Errors (a bad prompt, bad options) are thrown.
   */
  async *generate(prompt: Prompt, opts: GenerateOptions = {}): AsyncGenerator<Token, Completion> {
    const ids = this.promptIds(prompt);
    const { signal, maxNewTokens, ...rest } = opts;
    const sampled = rest.temperature !== undefined || rest.topK !== undefined || rest.topP !== undefined || rest.seed !== undefined;
    this.scheduler ??= new Scheduler(this.engine, { tokenizer: this.tokenizer });
    const events = this.scheduler.submit(ids, { ...rest, greedy: rest.greedy ?? !sampled, maxNewTokens: maxNewTokens ?? 16 }, signal);
    const newIds: number[] = [];
    let done: DoneMsg | null = null;
    for await (const ev of events) {
      if (ev.type === 'error') throw new MoekitError(ev.message);
      if (ev.type === 'done') { done = ev; break; }
      newIds.push(ev.id);
      yield { id: ev.id, index: ev.index, ...(ev.text !== undefined ? { text: ev.text } : {}) };
    }
    if (!done) throw new MoekitError('the generation ended without a result');
    return {
      ids: [...ids, ...newIds], newIds, ...(done.text !== undefined ? { text: done.text } : {}),
      finishReason: done.finish_reason, usage: done.usage, timings: done.timings,
    };
  }

  /** generate to the end: the completion (text, ids, finish reason, usage, timings) */
  async complete(prompt: Prompt, opts: GenerateOptions = {}): Promise<Completion> {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /**
   * One forward pass over B sequences of T tokens (ids: one sequence, or B of equal length): the logits
   * [B, T, V] and every MoE layer's router logits, as `moekit forward` writes them; `trace` sees more.
   */
  forward(ids: number[] | number[][] | Int32Array, opts: ForwardOptions = {}): ForwardResult {
    const rows = ids instanceof Int32Array ? [Array.from(ids)] : ids.length > 0 && Array.isArray(ids[0]) ? (ids as number[][]) : [ids as number[]];
    const B = rows.length, T = rows[0]?.length ?? 0;
    if (B === 0 || T === 0) throw new MoekitError('forward: no tokens');
    if (rows.some((r) => r.length !== T)) throw new MoekitError('forward: the sequences must have the same length');
    const V = this.desc.vocab;
    const flat = new Int32Array(B * T);
    rows.forEach((r, b) => r.forEach((id, t) => {
      if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new MoekitError(`forward: token id ${id} is outside the vocabulary [0, ${V})`);
      flat[b * T + t] = id;
    }));
    const routerLogits: ForwardResult['routerLogits'] = [];
    const user = opts.trace;
    const trace: Tracer = {
      ...user,
      moe: (ev: MoeEvent) => {
        routerLogits.push({ moeLayer: ev.moeLayer, layer: ev.layer, logits: ev.logits, N: ev.N, E: ev.E });
        user?.moe?.(ev);
      },
    };
    const logits = this.engine.forward(flat, B, T, { trace, sub: opts.sub });
    return { logits, shape: [B, T, V], routerLogits };
  }

  /** cancel running generations and release the model (a lazy expert store closes its checkpoint) */
  close(): void {
    this.scheduler?.cancelAll();
    this.engine.close();
  }

  private needTokenizer(what: string): TextTokenizer {
    if (!this.tokenizer) throw new MoekitError(`no tokenizer.json in the model directory: cannot ${what}; pass token ids`, this.dir);
    return this.tokenizer;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// plan

/** a planner spec: a file (JSON or YAML) or the object such a file holds (model, hardware, parallel, training) */
export type PlanSpec = string | Record<string, unknown>;

function specOf(spec: PlanSpec, template: boolean): Spec {
  return typeof spec === 'string'
    ? resolveSpec(readSpecFile(spec), spec, { template })
    : resolveSpec(structuredClone(spec), 'spec', { template });
}

/** `moekit plan simulate`: step time, tokens/s, MFU, memory per device of the spec's layout */
export function simulatePlan(spec: PlanSpec, opts: SimOptions = {}): SimResult {
  return simulate(specOf(spec, false), opts);
}

/** `moekit plan search`: every valid layout that fits, ranked (the spec's parallel section is a template) */
export function searchPlans(spec: PlanSpec, opts: SearchOptions = {}): SearchResult {
  return search(specOf(spec, true), opts);
}

// quantisation and GGUF

/** `moekit quantize`: `dir`'s checkpoint with its weight matrices stored as q8_0 / q4_0 blocks (docs/quantization.md) */
export function quantize(dir: string, out: string, type: QuantType): QuantizeResult {
  return quantizeCheckpoint(resolveModelDir(dir), out, type);
}

/** `moekit export gguf`: `dir`'s model as a GGUF file of `type` that llama.cpp loads (docs/gguf.md) */
export function exportGGUF(dir: string, file: string, type: ExportType = 'f32'): GgufExportResult {
  return exportGguf(resolveModelDir(dir), file, type);
}
