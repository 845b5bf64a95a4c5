/**
 * `moekit forward MODEL_DIR --input IDS.safetensors --out OUT.safetensors [--experts eager|lazy]
 *   [--expert-budget SIZE] [--json]`
 * reads input_ids (int [B, T]); writes logits f32 [B, T, V] and router_logits.L f32 [B·T, E]
 * for every MoE layer L (counted among MoE layers from 0), and attention_router_logits.L f32 [B·T, E] for every layer's
 * mixture of attention heads (JetMoE's attention experts), atomically. With lazy experts the
 * summary adds what the expert store did (loads, evictions, hits, bytes held).
 */
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors, type SafetensorsEntry } from '../io/safetensors-write.js';
import { MoeModel } from '../models/model.js';
import { MoekitError } from '../util/errors.js';
import { terminalProgress } from './bar.js';
import { dtypeFlag, EXPERT_OPTIONS, EXPERT_USAGE, expertFlags, onePositional, parse } from './args.js';

const USAGE = `moekit forward MODEL_DIR --input IDS.safetensors --out OUT.safetensors [--dtype auto|f32|q8_0|q4_0] ${EXPERT_USAGE} [--json]`;

export async function runForward(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { input: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, dtype: { type: 'string' }, ...EXPERT_OPTIONS }, USAGE);
  const dir = onePositional(positionals, 'model directory', USAGE);
  const experts = expertFlags(values);
  const dtype = dtypeFlag(values.dtype);
  if (!values.input) throw new MoekitError(`missing --input (--help for usage)`);
  if (!values.out) throw new MoekitError(`missing --out (--help for usage)`);
  const inp = SafetensorsFile.open(values.input);
  let ids: Int32Array, shape: readonly number[];
  try {
    if (!inp.has('input_ids')) throw new MoekitError(`no tensor 'input_ids' (has: ${inp.names().join(', ') || 'none'})`, values.input);
    shape = inp.info('input_ids').shape;
    if (shape.length !== 2) throw new MoekitError(`input_ids must be [B, T], got [${shape.join(', ')}]`, values.input);
    ids = inp.readI32('input_ids');
  } finally {
    inp.close();
  }
  const [B, T] = shape;
  if (B * T === 0) throw new MoekitError(`input_ids is empty [${shape.join(', ')}]`, values.input);
  const model = MoeModel.load(dir, { onProgress: terminalProgress(), dtype, ...experts });
  try {
    const routers: { L: number; logits: Float32Array; N: number; E: number }[] = [];
    const attnRouters: typeof routers = [];
    const t0 = performance.now();
    const logits = model.forward(ids, B, T, {
      trace: {
        moe: (ev) => routers.push({ L: ev.moeLayer, logits: ev.logits, N: ev.N, E: ev.E }),
        moa: (ev) => attnRouters.push({ L: ev.moeLayer, logits: ev.logits, N: ev.N, E: ev.E }),
      },
    });
    const ms = performance.now() - t0;
    const entries: SafetensorsEntry[] = [{ name: 'logits', dtype: 'F32', shape: [B, T, model.desc.vocab], data: logits }];
    for (const r of routers) entries.push({ name: `router_logits.${r.L}`, dtype: 'F32', shape: [r.N, r.E], data: r.logits });
    for (const r of attnRouters) entries.push({ name: `attention_router_logits.${r.L}`, dtype: 'F32', shape: [r.N, r.E], data: r.logits });
    writeSafetensors(values.out, entries, { producer: 'moekit forward', model: model.desc.hfClass });
    const store = model.expertStore;
    const lazy = store && {
      ...store.counters, resident_bytes: store.residentBytes(), budget_bytes: Number.isFinite(store.budgetBytes) ? store.budgetBytes : null,
    };
    const summary = {
      out: values.out, batch: B, tokens: T, vocab: model.desc.vocab, moe_layers: routers.length, forward_ms: ms, tokens_per_s: (B * T) / (ms / 1000),
      ...(lazy ? { experts: { mode: 'lazy', ...lazy } } : {}),
    };
    if (values.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else {
      process.stdout.write(`wrote ${values.out}: logits [${B}, ${T}, ${model.desc.vocab}], ${routers.length} router_logits tensors (${ms.toFixed(1)} ms, ${summary.tokens_per_s.toFixed(0)} tok/s)\n`);
      if (lazy) process.stdout.write(`lazy experts: ${lazy.loads} loads, ${lazy.evictions} evictions, ${lazy.hits} hits; ${lazy.resident_bytes} bytes held${lazy.budget_bytes !== null ? ` (budget ${lazy.budget_bytes})` : ''}\n`);
    }
  } finally {
    model.close();
  }
  return 0;
}
