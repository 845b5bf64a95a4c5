/**
 * The data behind the dashboard's elastic and PreMoe views:
 *   GET /moekit/submodels  the elastic grid (depth × experts × top-k): each point's layers, total and active
 *                          parameters (from the description), and, when the model directory has an
 *                          elastic-grid.json (bench/elastic-grid.mjs's measurements), its held-out accuracy
 *                          and decode speed. A point is what `moekit.submodel` {depth, experts, top_k} runs.
 *   GET /moekit/premoe     memory per keep ratio (the routed experts kept, the rest of the model whole), and
 *                          the pattern store's state: its tasks and the checkpoint bytes of one pattern (moekit serve --store);
 *                          with an evaluation (`moekit experts eval … --json`: the store's eval.json, else the model
 *                          directory's premoe-eval.json), its accuracy curves: mean held-out accuracy per keep ratio for each
 *                          scoring method, retrieval accuracy and the retrieved-pattern (end-to-end) points.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ModelDesc } from '../models/desc.js';
import { paramCounts } from '../models/params.js';
import { depthLayers } from '../train/elastic.js';

interface Measured { depth: number; experts: number; top_k: number; text: number | null; image: number | null; mean: number | null; decode_tok_s: number | null }

/** the description of a sub-model: the kept layers, n experts per MoE layer, top-k */
function subDesc(d: ModelDesc, layers: number[], experts: number, topK: number): ModelDesc {
  return { ...d, nLayers: layers.length, layers: layers.map((l) => d.layers[l]), moe: { ...d.moe, experts, topK } };
}

export function gridPoints(d: ModelDesc) {
  const E = d.moe.experts, G = d.moe.nGroup;
  const widths = [...new Set([E / 4, E / 2, E].filter((n) => Number.isInteger(n) && n >= 1 && n % G === 0 && n >= d.moe.topK))];
  const ks = [...new Set([1, d.moe.topK])];
  const out: { depth: number; experts: number; top_k: number; layers: number[]; total_params: number; active_params: number }[] = [];
  for (let depth = Math.min(2, d.nLayers); depth <= d.nLayers; depth++) {
    for (const experts of widths) {
      for (const k of ks) {
        if (k > experts) continue;
        const layers = depthLayers(d.nLayers, depth);
        const p = paramCounts(subDesc(d, layers, experts, k));
        out.push({ depth, experts, top_k: k, layers, total_params: p.total, active_params: p.activePerToken });
      }
    }
  }
  return out;
}

/** one row of `moekit experts eval --json`'s grid (src/experts/evaluate.ts) as the page plots it */
interface EvalRow { score: string; ratio: number; keep: number; mean: number; relative: number; tasks: Record<string, number>; bytesLoaded?: number; decodeTokS?: number }

/** the evaluation's accuracy curves, or why there are none (the file absent: null; unreadable: a message) */
export function evaluationCurves(file: string): { source: string; n: number; tasks: string[]; curves: { score: string; points: EvalRow[] }[]; full: EvalRow | null;
  retrieval: { accuracy: number; layers: number[] } | null; end_to_end: EvalRow[] } | { source: string; error: string } | null {
  if (!fs.existsSync(file)) return null;
  let j: { n?: unknown; tasks?: unknown; grid?: unknown; retrieval?: { accuracy?: unknown; layers?: unknown }; endToEnd?: unknown };
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return { source: file, error: `not JSON (${(e as Error).message})` };
  }
  const rowOk = (r: unknown): r is EvalRow => {
    const x = r as EvalRow;
    return typeof x === 'object' && x !== null && typeof x.score === 'string' && Number.isFinite(x.ratio) && Number.isFinite(x.mean) && Number.isFinite(x.keep);
  };
  if (!j || !Array.isArray(j.grid) || !j.grid.every(rowOk)) return { source: file, error: 'no "grid" of {score, ratio, keep, mean} rows (write it with moekit experts eval --json)' };
  const grid = j.grid as EvalRow[];
  const full = grid.find((r) => r.score === 'full') ?? null;
  const scores = [...new Set(grid.filter((r) => r.score !== 'full').map((r) => r.score))];
  const curves = scores.map((score) => ({
    score,
    // each curve ends at the full model (ratio 1), sorted by keep ratio
    points: [...grid.filter((r) => r.score === score), ...(full && !grid.some((r) => r.score === score && r.ratio === 1) ? [full] : [])].sort((a, b) => a.ratio - b.ratio),
  }));
  const ret = j.retrieval && Number.isFinite(j.retrieval.accuracy) ? { accuracy: j.retrieval.accuracy as number, layers: Array.isArray(j.retrieval.layers) ? j.retrieval.layers as number[] : [] } : null;
  return {
    source: path.join(path.basename(path.dirname(file)), path.basename(file)), n: Number.isFinite(j.n) ? j.n as number : 0, tasks: Array.isArray(j.tasks) ? j.tasks as string[] : [], curves, full, retrieval: ret,
    end_to_end: Array.isArray(j.endToEnd) ? (j.endToEnd as unknown[]).filter(rowOk) : [],
  };
}

/** what the PreMoe view shows of a loaded pattern store (src/server/patterns.ts's info) */
export interface PatternInfo { store: string; tasks: string[]; score: string; keepExperts: number; topK: number; patternBytes: number; fullBytes: number }

export function dashboardRoutes(app: FastifyInstance, dir: string, desc: () => ModelDesc, patternInfo: () => PatternInfo | null): void {
  app.get('/moekit/submodels', async () => {
    const d = desc();
    let measured: { source: string; grid: Measured[] } | null = null;
    const f = path.join(dir, 'elastic-grid.json');
    if (fs.existsSync(f)) {
      try { measured = JSON.parse(fs.readFileSync(f, 'utf8')); } catch { measured = null; }
    }
    const grid = gridPoints(d).map((g) => {
      const m = measured?.grid.find((x) => x.depth === g.depth && x.experts === g.experts && x.top_k === g.top_k);
      return { ...g, accuracy: m ? { text: m.text, image: m.image, mean: m.mean } : null, decode_tok_s: m?.decode_tok_s ?? null };
    });
    return { full: { depth: d.nLayers, experts: d.moe.experts, top_k: d.moe.topK }, source: measured?.source ?? null, grid };
  });
  app.get('/moekit/premoe', async () => {
    const d = desc();
    const patterns = patternInfo();
    const p = paramCounts(d);
    const bytes = 4; // f32 in memory (bf16 checkpoints are held as bf16: half)
    const E = d.moe.experts;
    const ratios = [...new Set([1, 2, 4, 8, 16, 32, 64, 128, 256].filter((n) => n <= E).map((n) => n / E).concat([1]))].sort((a, b) => a - b);
    const evalFile = patterns && fs.existsSync(path.join(patterns.store, 'eval.json')) ? path.join(patterns.store, 'eval.json') : path.join(dir, 'premoe-eval.json');
    return {
      store: patterns ? patterns.store : null,
      evaluation: evaluationCurves(evalFile),
      message: patterns ? null : 'no pattern store loaded: moekit.experts takes an explicit keep set {"layers": {"<layer>": [expert ids]}}',
      tasks: patterns?.tasks ?? [],
      pattern: patterns ? { score: patterns.score, keep_experts: patterns.keepExperts, top_k: patterns.topK, mib: patterns.patternBytes / 2 ** 20, full_mib: patterns.fullBytes / 2 ** 20 } : null,
      memory: ratios.map((r) => ({ keep_ratio: r, experts_kept: Math.round(r * E), params: p.total - p.routedExperts * (1 - r), mib: ((p.total - p.routedExperts * (1 - r)) * bytes) / 2 ** 20 })),
    };
  });
}
