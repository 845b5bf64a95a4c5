/** `moekit inspect MODEL_DIR [--store STORE] [--json]` (with a PreMoe store: the bytes each of its patterns needs) */
import { readStore } from '../experts/store.js';
import { inspectModel } from '../models/inspect.js';
import { onePositional, parse } from './args.js';
import { budgetLines } from './experts.js';

const USAGE = 'moekit inspect MODEL_DIR|MODEL.gguf [--store STORE] [--json]';

function human(n: number): string {
  const u = ['', 'K', 'M', 'B', 'T'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 2 : 0)}${u[i]}`;
}
function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export async function runInspect(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, store: { type: 'string' } }, USAGE);
  const dir = onePositional(positionals, 'model directory', USAGE);
  const r = inspectModel(dir);
  const store = values.store !== undefined ? readStore(values.store, dir) : null;
  if (values.json) {
    const { desc, ...rest } = r;
    const patterns = store ? { patterns: { tasks: Object.keys(store.tasks).filter((k) => store.tasks[k].complete), nonExpertBytes: store.bytes.nonExpert, budgets: store.bytes.budgets } } : {};
    process.stdout.write(JSON.stringify({ ...rest, description: desc, ...patterns }) + '\n');
    return 0;
  }
  const a = r.attention, e = r.experts, p = r.parameters, m = r.memory;
  const linearKind = r.desc.layers.some((l) => l.mixer === 'mamba2') ? 'Mamba-2 state-space mixers'
    : r.desc.layers.some((l) => l.mixer === 'lightning') ? 'lightning linear attention' : 'Gated DeltaNet linear attention';
  // no attention layer rotates (Granite 4.0-H's NoPE)
  const nope = r.desc.layers.every((l) => l.noRope || (l.mixer !== undefined && l.mixer !== 'attention'));
  const lines = [
    `model         ${r.dir}`,
    `architecture  ${r.architecture} (${r.arch})`,
    `layers        ${r.layers} (${r.moeLayers} MoE, ${r.denseLayers} dense), hidden ${r.hidden}, vocab ${r.vocab}`,
    `attention     ${a.kind.toUpperCase()}, ${a.heads} heads, ${a.kvHeads} kv heads, head dim ${a.headDim}${a.vHeadDim !== a.headDim ? ` (v ${a.vHeadDim})` : ''}` +
      `${a.slidingWindowLayers ? `, ${a.slidingWindowLayers} sliding-window layers` : ''}${a.sinks ? ', sinks' : ''}` +
      `${a.linearLayers ? `; ${a.linearLayers} of the ${r.layers} layers ${linearKind}` : ''}` +
      `${a.moa ? `; a mixture of attention heads: q / o projections ${a.moa.experts} experts, top-${a.moa.topK}` : ''}`,
    nope ? 'rope          none (NoPE: no attention layer has positions)' : `rope          ${r.rope.type}, theta ${r.rope.theta}, ${r.rope.dim} dims${r.rope.interleaved ? ', interleaved' : ''}${r.rope.factor !== 1 ? `, factor ${r.rope.factor}` : ''}`,
    `experts       ${e.perLayer} per MoE layer${e.zero ? ` (${e.zero} of them zero-computation)` : ''}, top-${e.topK}, expert FFN ${e.expertFfn}${e.shared ? `, shared FFN ${e.shared}` : ''}, router ${e.router}${e.normTopK ? ' (renormalised)' : ''}`,
    `parameters    ${human(p.total)} total, ${human(p.activePerToken)} active per token (routed experts ${human(p.routedExperts)}${p.attentionExperts ? `, routed attention experts ${human(p.attentionExperts)}` : ''})${p.unused ? `, ${human(p.unused)} unused (e.g. MTP)` : ''}`,
    ...(p.activeBasis ? [`active        ${human(p.activeMin!)} – ${human(p.activeMax!)} per token; the ${human(p.activePerToken)} counts ${p.activeBasis}`] : []),
    `dtypes        ${r.weights ? Object.entries(r.dtypes).map(([k, v]) => `${k} ${bytes(v!)}`).join(', ') : 'no weights (config.json only; counts from the config)'}`,
    `memory        ${r.weights ? `checkpoint ${bytes(m.checkpointBytes)}; ` : ''}bf16 weights ${bytes(m.f32WeightsBytes / 2)}; f32 weights ${bytes(m.f32WeightsBytes)}; KV cache ${bytes(m.kvCacheBytesPerToken)}/token, ${bytes(m.kvCacheBytesMaxContext)} at ${m.maxPositions} tokens`,
  ];
  if (store) {
    lines.push(`patterns      ${Object.keys(store.tasks).filter((k) => store.tasks[k].complete).join(', ')} (${values.store}); each needs:`, ...budgetLines(store));
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
