/**
 * The data behind the dashboard's elastic and PreMoe views:
 *   GET /moekit/submodels  the elastic grid (depth × experts × top-k): each point's layers, total and active
 *                          parameters (from the description), and, when the model directory has an
 *                          elastic-grid.json (bench/elastic-grid.mjs's measurements), its held-out accuracy
 *                          and decode speed. A point is what `moekit.submodel` {depth, experts, top_k} runs.
 *   GET /moekit/premoe     memory per keep ratio (the routed experts kept, the rest of the model whole), and
 *                          the pattern store's state: its tasks and the checkpoint bytes of one pattern (moekit serve --store).
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

/** what the PreMoe view shows of a loaded pattern store (src/server/patterns.ts's info) */
export interface PatternInfo { store: string; tasks: string[]; score: string; keepExperts: number; topK: number; patternBytes: number; fullBytes: number }

export function dashboardRoutes(app: FastifyInstance, dir: string, desc: () => ModelDesc, patterns: PatternInfo | null): void {
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
    const p = paramCounts(d);
    const bytes = 4; // f32 in memory (bf16 checkpoints are held as bf16: half)
    const E = d.moe.experts;
    const ratios = [...new Set([1, 2, 4, 8, 16, 32, 64, 128, 256].filter((n) => n <= E).map((n) => n / E).concat([1]))].sort((a, b) => a - b);
    return {
      store: patterns ? patterns.store : null,
      message: patterns ? null : 'no pattern store loaded: moekit.experts takes an explicit keep set {"layers": {"<layer>": [expert ids]}}',
      tasks: patterns?.tasks ?? [],
      pattern: patterns ? { score: patterns.score, keep_experts: patterns.keepExperts, top_k: patterns.topK, mib: patterns.patternBytes / 2 ** 20, full_mib: patterns.fullBytes / 2 ** 20 } : null,
      memory: ratios.map((r) => ({ keep_ratio: r, experts_kept: Math.round(r * E), params: p.total - p.routedExperts * (1 - r), mib: ((p.total - p.routedExperts * (1 - r)) * bytes) / 2 ** 20 })),
    };
  });
}
