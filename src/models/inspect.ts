/**
 * What a checkpoint is, from its config.json and safetensors headers (or a GGUF file's metadata and tensor infos) alone (no weights read):
 * architecture, sizes, experts, parameter counts (total and active per token), dtypes, memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint } from '../io/checkpoint.js';
import { readConfig } from '../io/config.js';
import { numElements, type Dtype } from '../io/dtypes.js';
import { cachesKv, type ModelDesc } from './desc.js';
import { activeExperts, paramCounts } from './params.js';
import { routedExperts } from '../moe/types.js';
import { describeModel } from './registry.js';
import { GgufFile, isGgufPath } from '../io/gguf.js';
import { configFromGguf } from './gguf.js';

export interface InspectReport {
  dir: string;
  architecture: string;
  arch: string;
  layers: number;
  denseLayers: number;
  moeLayers: number;
  hidden: number;
  vocab: number;
  /** moa: a mixture of attention heads' routed experts (JetMoE), null for the others */
  attention: { kind: string; heads: number; kvHeads: number; headDim: number; vHeadDim: number; slidingWindowLayers: number; sinks: boolean; linearLayers: number; moa: { experts: number; topK: number } | null };
  rope: { type: string; theta: number; dim: number; interleaved: boolean; factor: number };
  /** perLayer: the router's choices, `zero` of them zero-computation experts (LongCat-Flash; absent: none) */
  experts: { perLayer: number; topK: number; expertFfn: number; shared: number; router: string; normTopK: boolean; zero?: number };
  /**
   * activePerToken: all but the routed experts a token does not run; with zero-computation experts (LongCat-Flash) the
   * count varies per token: activeMin / activeMax with the fewest / most routed experts, activePerToken with K · E_r / E
   * of them (the router's even-load share: params.ts activeExperts), `activeBasis` says so; attentionExperts: the routed
   * q / o projections of a mixture of attention heads (JetMoE; 0 for the others)
   */
  parameters: { total: number; activePerToken: number; routedExperts: number; attentionExperts: number; unused: number; activeMin?: number; activeMax?: number; activeBasis?: string };
  /** bytes per stored type (safetensors dtypes; ggml type names for GGUF) */
  dtypes: Partial<Record<Dtype | string, number>>;
  /** false: config.json only; counts come from the description */
  weights: boolean;
  memory: { checkpointBytes: number; f32WeightsBytes: number; activeF32BytesPerToken: number; kvCacheBytesPerToken: number; kvCacheBytesMaxContext: number; maxPositions: number };
  desc: ModelDesc;
}

const ROUTED = /\.experts\.|block_sparse_moe\.(input|output)_linear\.|\.mlp\.(input|output)_linear\./;
/** a mixture of attention heads' routed projections (JetMoE), counted with its own E and K; its router and bias are not */
const ROUTED_ATTENTION = /\.self_attention\.experts\.(input|output)_linear\./;
const ATTENTION_SHARED = /\.self_attention\.experts\.(router|bias)/;

/** weights counted from the safetensors headers, or from the description when there are none */
function countWeights(dir: string, d: ModelDesc, prefix = '', buffers: ReadonlySet<string> = new Set(), unread: ReadonlySet<string> = new Set()): { total: number; routed: number; routedAttention: number; unused: number; bytes: number; dtypes: Partial<Record<Dtype | string, number>>; weights: boolean } {
  if (!fs.readdirSync(dir).some((f) => f.endsWith('.safetensors') || f === 'model.safetensors.index.json')) {
    const p = paramCounts(d);
    return { total: p.total, routed: p.routedExperts, routedAttention: p.attentionExperts, unused: 0, bytes: 0, dtypes: {}, weights: false };
  }
  const ck = Checkpoint.open(dir);
  try {
    let total = 0, routed = 0, routedAttention = 0, unused = 0;
    for (const full of ck.names()) {
      if (/_scales$|_scale_inv$/.test(full)) continue; // quantisation scales, not parameters
      if (buffers.has(full.slice(prefix.length))) continue; // buffers the reference computes (ArchSpec.buffers), not parameters
      const n = numElements(ck.info(full).shape) * (/_blocks$/.test(full) ? 2 : 1); // MXFP4: 2 per byte
      if (!full.startsWith(prefix)) { unused += n; continue; } // beside the language model (Llama 4's vision tower)
      const name = full.slice(prefix.length);
      const layer = /^model\.layers\.(\d+)\./.exec(name);
      if (layer && Number(layer[1]) >= d.nLayers) { unused += n; continue; } // e.g. MTP layers
      if (unread.has(name)) { unused += n; continue; } // saved by the reference, read by no forward (ArchSpec.unreadTensors)
      total += n;
      if (ROUTED_ATTENTION.test(name)) routedAttention += n;
      else if (ROUTED.test(name) && !ATTENTION_SHARED.test(name)) routed += n;
    }
    return { total, routed, routedAttention, unused, bytes: ck.totalBytes(), dtypes: ck.bytesByDtype(), weights: true };
  } finally {
    ck.close();
  }
}

/** a GGUF file's description (from its metadata) and weights counted from its tensor infos */
function inspectGguf(file: string): { d: ModelDesc; c: ReturnType<typeof countWeights> } {
  const g = GgufFile.open(file);
  try {
    const d = describeModel(configFromGguf(g).cfg).desc;
    let total = 0, routed = 0, bytes = 0;
    const dtypes: Record<string, number> = {};
    for (const t of g.tensors.values()) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      total += n;
      if (/_exps\./.test(t.name)) routed += n;
      bytes += t.bytes;
      dtypes[t.typeName] = (dtypes[t.typeName] ?? 0) + t.bytes;
    }
    return { d, c: { total, routed, routedAttention: 0, unused: 0, bytes, dtypes, weights: true } };
  } finally {
    g.close();
  }
}

const gb = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(2)}K`);

/** a model directory, or a GGUF file (llama.cpp's metadata and tensor infos; models/gguf.ts) */
export function inspectModel(dir: string): InspectReport {
  let d: ModelDesc, counts: ReturnType<typeof countWeights>, where: string;
  if (isGgufPath(dir)) {
    ({ d, c: counts } = inspectGguf(dir));
    where = dir;
  } else {
    const cfg = readConfig(dir);
    const described = describeModel(cfg);
    d = described.desc;
    where = path.dirname(cfg.file);
    const buffers = new Set(d.layers.flatMap((_, l) => (described.arch.buffers?.(d, l) ?? []).map((b) => b.name)));
    
    const unread = new Set(d.layers.flatMap((_, l) => (described.arch.unreadTensors?.(d, l) ?? []).map((t) => t.name)));
    counts = countWeights(where, d, described.arch.tensorPrefix, buffers, unread);
  }
  const { total, routed, routedAttention, unused, bytes, dtypes, weights } = counts;
  {
    const E = d.moe.experts, K = d.moe.topK, Er = routedExperts(d.moe), act = activeExperts(d.moe);
    const idleAttn = d.attention.moa ? (routedAttention * (d.attention.moa.experts - d.attention.moa.topK)) / d.attention.moa.experts : 0;
    const activeWith = (k: number) => total - (Er > 0 ? (routed * (Er - k)) / Er : 0) - idleAttn;
    const active = activeWith(act.mean);
    // zero-computation experts: the active count varies per token; say what activePerToken counts
    const range = Er < E ? {
      activeMin: Math.round(activeWith(act.min)), activeMax: Math.round(activeWith(act.max)),
      activeBasis: `${act.mean.toFixed(2)} of top-${K} on the ${Er} routed experts (their share of the ${E} choices, ${E - Er} zero-computation; ${act.min}–${act.max} per token); ` +
        `without the input embedding (LongCat-Flash's published basis) ${gb(activeWith(act.min) - d.vocab * d.hidden)}–${gb(activeWith(act.max) - d.vocab * d.hidden)}, ${gb(active - d.vocab * d.hidden)} on average`,
    } : {};
    const a = d.attention;
    // f32 cache per token; MLA keeps the compressed latent + shared rope key (attention-mla.ts)
    // (Gated DeltaNet and lightning layers keep a state of fixed size, no keys and values;
    // a shortcut-MoE layer, LongCat-Flash, caches its two attention sublayers)
    const kvLayers = d.layers.reduce((n, l) => n + (!cachesKv(l) ? 0 : l.shortcutMoe ? 2 : 1), 0);
    const kvPerTok = kvLayers * 4 * (a.mla ? a.mla.kvLoraRank + a.mla.qkRopeDim : a.nKvHeads * (a.headDim + a.vHeadDim));
    return {
      dir: where, architecture: d.hfClass, arch: d.arch,
      layers: d.nLayers, denseLayers: d.layers.filter((l) => l.mlp === 'dense').length,
      moeLayers: d.layers.filter((l) => l.mlp === 'moe').length, hidden: d.hidden, vocab: d.vocab,
      attention: { kind: a.kind, heads: a.nHeads, kvHeads: a.nKvHeads, headDim: a.headDim, vHeadDim: a.vHeadDim,
        slidingWindowLayers: d.layers.filter((l) => l.slidingWindow !== null).length, sinks: a.sinks,
        linearLayers: d.layers.filter((l) => !cachesKv(l)).length,
        moa: a.moa ? { experts: a.moa.experts, topK: a.moa.topK } : null },
      rope: { type: d.rope.type, theta: d.rope.theta, dim: d.rope.dim, interleaved: d.rope.interleaved, factor: d.rope.factor },
      experts: { perLayer: E, topK: K, expertFfn: d.moe.expertFfn, shared: d.moe.sharedFfn, router: d.moe.router, normTopK: d.moe.normTopK, ...(Er < E ? { zero: E - Er } : {}) },
      parameters: { total, activePerToken: Math.round(active), routedExperts: routed, attentionExperts: routedAttention, unused, ...range },
      dtypes, weights,
      memory: {
        checkpointBytes: bytes, f32WeightsBytes: total * 4, activeF32BytesPerToken: Math.round(active) * 4,
        kvCacheBytesPerToken: kvPerTok, kvCacheBytesMaxContext: kvPerTok * d.maxPositions, maxPositions: d.maxPositions,
      },
      desc: d,
    };
  }
}
