/**
 * The MoE extensions of a request body, which plain OpenAI clients never send (the `openai` client passes
 * them as extra body fields):
 *
 *   "moekit": {
 *     "experts":  "auto" | "<stored task>" | {"layers": {"<decoder layer>": [expert ids]}}   PreMoe: the experts kept
 *     "submodel": {"layers": [0, 1, 3] | "depth": 3, "experts": N | {"<layer>": [ids]}, "top_k": K}   elastic
 *     "trace":    true                                                         per-token routing in the response
 *   }
 *
 * (the dotted keys "moekit.experts", "moekit.submodel", "moekit.trace" at the top level mean the same).
 * Both become one SubModel over the loaded model: a keep set masks each listed MoE layer to its experts
 * and lowers that layer's top-k to the experts kept when it has fewer (as `moekit extract` writes it), so
 * the output equals the extracted checkpoint's. A pattern name or "auto" goes through a PatternResolver:
 * the seam the PreMoe pattern store plugs into; without one such a request is a 400 saying so.
 */
import type { ModelDesc } from '../models/desc.js';
import { firstExperts } from '../models/extract.js';
import { resolveSub, type SubModel } from '../models/pass.js';
import { depthLayers } from '../train/elastic.js';
import { MoekitError } from '../util/errors.js';
import { ApiError, badField } from './errors.js';
import { describe } from './request.js';

type Json = Record<string, unknown>;

/** decoder layer → the expert ids kept (a KEEP.json's "layers") */
export type KeepSet = Record<number, number[]>;

/** a stored pattern by name ("auto": retrieved for this prompt), as the PreMoe store resolves it */
export interface ResolvedPattern {
  name: string;
  keep: KeepSet;
}

/** the PreMoe seam: a pattern name (or "auto") and the prompt's ids → the keep set to run */
export type PatternResolver = (name: string, prompt: number[]) => Promise<ResolvedPattern> | ResolvedPattern;

/** the resolver of a server without a pattern store */
export const noPatternStore: PatternResolver = (name) => {
  throw new ApiError(400, `moekit.experts "${name}": no pattern store loaded (give an explicit keep set {"layers": {"<layer>": [expert ids]}})`, 'invalid_request_error', 'moekit.experts', 'no_pattern_store');
};

export interface MoeRequest {
  /** what to run (undefined: the full model) */
  sub: SubModel | undefined;
  trace: boolean;
  /** what the response reports ran */
  report: { pattern: string | null; submodel: { layers: number[]; experts: (number[] | null)[]; top_k: number[] } | null };
}

/** the `moekit` fields of a body, nested or dotted; null when there are none */
function fields(b: Json): Json | null {
  const nested = b['moekit'];
  if (nested !== undefined && nested !== null && (typeof nested !== 'object' || Array.isArray(nested))) throw badField('moekit', `'moekit' must be an object {experts?, submodel?, trace?}, got ${describe(nested)}`);
  const out: Json = { ...(nested as Json | undefined) };
  for (const k of ['experts', 'submodel', 'trace']) if (b[`moekit.${k}`] !== undefined) out[k] = b[`moekit.${k}`];
  const unknown = Object.keys(out).filter((k) => !['experts', 'submodel', 'trace'].includes(k));
  if (unknown.length) throw badField(`moekit.${unknown[0]}`, `unknown field 'moekit.${unknown[0]}' (moekit takes experts, submodel, trace)`);
  return Object.keys(out).length ? out : null;
}

/** {"<layer>": [ids]} checked against the description: MoE decoder layers, ids in [0, E), each once */
function keepSet(d: ModelDesc, v: unknown, param: string): KeepSet {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw badField(param, `'${param}' must be an object {"<decoder layer>": [expert ids]}, got ${describe(v)}`);
  const out: KeepSet = {};
  for (const [k, ids] of Object.entries(v as Json)) {
    const p = `${param}.${k}`;
    const l = Number(k);
    if (!/^\d+$/.test(k) || l >= d.nLayers) throw badField(p, `'${param}': '${k}' is not a decoder layer index in [0, ${d.nLayers})`);
    if (d.layers[l].mlp !== 'moe') throw badField(p, `'${param}': decoder layer ${l} is dense, it has no experts`);
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((e) => Number.isInteger(e) && e >= 0 && e < d.moe.experts)) {
      throw badField(p, `'${p}' must be a non-empty array of expert ids in [0, ${d.moe.experts}), got ${describe(ids)}`);
    }
    if (new Set(ids).size !== ids.length) throw badField(p, `'${p}' lists an expert twice`);
    out[l] = [...(ids as number[])].sort((a, b) => a - b);
  }
  return out;
}

/** the sub-model and trace flag of a request (a 400 naming the field for anything wrong) */
export async function moeRequest(d: ModelDesc, b: Json, prompt: number[], resolve: PatternResolver): Promise<MoeRequest> {
  const f = fields(b);
  const none: MoeRequest = { sub: undefined, trace: false, report: { pattern: null, submodel: null } };
  if (!f) return none;
  let trace = false;
  if (f['trace'] !== undefined) {
    if (typeof f['trace'] !== 'boolean') throw badField('moekit.trace', `'moekit.trace' must be a boolean, got ${describe(f['trace'])}`);
    trace = f['trace'];
  }
  let keep: KeepSet | null = null;
  let pattern: string | null = null;
  const ex = f['experts'];
  if (typeof ex === 'string') {
    const r = await resolve(ex, prompt);
    keep = keepSet(d, r.keep, 'moekit.experts.layers');
    pattern = r.name;
  } else if (ex !== undefined) {
    if (ex === null || typeof ex !== 'object' || Array.isArray(ex) || Object.keys(ex).some((k) => k !== 'layers')) {
      throw badField('moekit.experts', `'moekit.experts' must be "auto", a stored task name or {"layers": {"<decoder layer>": [expert ids]}}, got ${describe(ex)}`);
    }
    keep = keepSet(d, (ex as Json)['layers'], 'moekit.experts.layers');
    pattern = 'keep set';
  }
  let layers: number[] | undefined;
  let topK: number | undefined;
  const sm = f['submodel'];
  if (sm !== undefined) {
    if (sm === null || typeof sm !== 'object' || Array.isArray(sm)) throw badField('moekit.submodel', `'moekit.submodel' must be an object {layers | depth, experts, top_k}, got ${describe(sm)}`);
    const s = sm as Json;
    const unknown = Object.keys(s).filter((k) => !['layers', 'depth', 'experts', 'top_k'].includes(k));
    if (unknown.length) throw badField(`moekit.submodel.${unknown[0]}`, `unknown field 'moekit.submodel.${unknown[0]}' (it takes layers or depth, experts, top_k)`);
    if (s['layers'] !== undefined && s['depth'] !== undefined) throw badField('moekit.submodel.depth', `give 'moekit.submodel.layers' or 'moekit.submodel.depth', not both`);
    if (s['layers'] !== undefined) {
      const v = s['layers'];
      if (!Array.isArray(v) || v.length === 0 || !v.every((l, i) => Number.isInteger(l) && l >= 0 && l < d.nLayers && (i === 0 || l > v[i - 1]))) {
        throw badField('moekit.submodel.layers', `'moekit.submodel.layers' must be decoder layer indices in [0, ${d.nLayers}), ascending, each once, got ${describe(v)}`);
      }
      layers = v as number[];
    }
    if (s['depth'] !== undefined) {
      const v = s['depth'];
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > d.nLayers) throw badField('moekit.submodel.depth', `'moekit.submodel.depth' must be an integer in [1, ${d.nLayers}], got ${describe(v)}`);
      layers = depthLayers(d.nLayers, v as number);
    }
    const e = s['experts'];
    if (e !== undefined) {
      if (keep) throw badField('moekit.submodel.experts', `give the experts in 'moekit.experts' or 'moekit.submodel.experts', not both`);
      if (typeof e === 'number') {
        try {
          keep = firstExperts(d, e);
        } catch (err) {
          throw badField('moekit.submodel.experts', `'moekit.submodel.experts': ${(err as MoekitError).message.replace(/^--experts /, '')}`);
        }
        if (layers) keep = Object.fromEntries(Object.entries(keep).filter(([l]) => layers!.includes(Number(l))));
      } else keep = keepSet(d, e, 'moekit.submodel.experts');
    }
    if (s['top_k'] !== undefined) {
      const v = s['top_k'];
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > d.moe.experts) throw badField('moekit.submodel.top_k', `'moekit.submodel.top_k' must be an integer in [1, ${d.moe.experts}], got ${describe(v)}`);
      topK = v as number;
    }
  }
  if (!keep && layers === undefined && topK === undefined) return { ...none, trace };
  // the SubModel: masks per MoE layer; top-k per MoE layer (at most the experts a layer keeps, as extract writes it)
  const moeLayers = d.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
  const experts = moeLayers.map((l) => {
    const ids = keep?.[l];
    if (!ids) return null;
    const m = new Uint8Array(d.moe.experts);
    for (const e of ids) m[e] = 1;
    return m;
  });
  const k = moeLayers.map((l) => Math.min(topK ?? d.moe.topK, keep?.[l]?.length ?? d.moe.experts));
  const sub: SubModel = { ...(layers ? { layers } : {}), ...(keep ? { experts } : {}), topK: k };
  try {
    resolveSub(d, sub);
  } catch (err) {
    throw badField(sm !== undefined ? 'moekit.submodel' : 'moekit.experts', (err as Error).message);
  }
  if (topK !== undefined && k.some((x) => x < topK)) {
    throw badField('moekit.submodel.top_k', `'moekit.submodel.top_k' ${topK} exceeds the ${Math.min(...k)} experts kept in some layer`);
  }
  return {
    sub, trace,
    report: {
      pattern,
      submodel: { layers: layers ?? [...Array(d.nLayers).keys()], experts: moeLayers.map((l) => keep?.[l] ?? null), top_k: k },
    },
  };
}
