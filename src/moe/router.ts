/**
 * Phase 1, route: router logits [N, E] → the K experts of each token and their weights.
 * Every variant the supported families use (see RouterKind in src/models/desc.ts).
 */
import type { Kernels } from '../tensor/kernels.js';
import type { MoeDesc } from '../models/desc.js';

export interface Routing {
  idx: Int32Array; // [N, K] chosen experts
  w: Float32Array; // [N, K] their combine weights
}

const f = Math.fround;

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** top groups of `choice` [E] (group score = sum of its top-2, or max): 0 outside them */
function maskGroups(choice: Float32Array, E: number, nGroup: number, topkGroup: number, byMax: boolean): void {
  if (nGroup <= 1) return;
  const per = E / nGroup;
  const gs: { g: number; s: number }[] = [];
  for (let g = 0; g < nGroup; g++) {
    let a = -Infinity, b = -Infinity;
    for (let j = 0; j < per; j++) {
      const v = choice[g * per + j];
      if (v > a) { b = a; a = v; } else if (v > b) b = v;
    }
    gs.push({ g, s: byMax || per < 2 ? a : f(a + b) });
  }
  gs.sort((x, y) => y.s - x.s || x.g - y.g);
  const keep = new Set(gs.slice(0, topkGroup).map((x) => x.g));
  for (let g = 0; g < nGroup; g++) if (!keep.has(g)) choice.fill(0, g * per, (g + 1) * per);
}

/**
 * logits [N, E] (not modified) → Routing. `bias` [E] is the selection-only correction bias.
 */
export function route(k: Kernels, m: MoeDesc, logits: Float32Array, N: number, bias: Float32Array | null): Routing {
  const E = m.experts, K = m.topK;
  const idx = new Int32Array(N * K);
  const w = new Float32Array(N * K);
  const probs = logits.slice(); // [N, E]
  const tmp = new Float32Array(K);
  switch (m.router) {
    case 'softmax_topk':
      k.softmax(probs, N, E);
      k.topk(probs, N, E, K, idx, w);
      break;
    case 'topk_softmax':
      k.topk(probs, N, E, K, idx, w);
      k.softmax(w, N, K);
      break;
    case 'softmax_bias':
    case 'softmax_group':
    case 'sigmoid_group': {
      if (m.router === 'sigmoid_group') for (let i = 0; i < probs.length; i++) probs[i] = f(sigmoid(probs[i]));
      else k.softmax(probs, N, E);
      const choice = new Float32Array(E);
      const ci = new Int32Array(K);
      for (let n = 0; n < N; n++) {
        const p = probs.subarray(n * E, (n + 1) * E);
        for (let e = 0; e < E; e++) choice[e] = bias ? f(p[e] + bias[e]) : p[e];
        if (m.router !== 'softmax_bias') maskGroups(choice, E, m.nGroup, m.topkGroup, m.router === 'softmax_group');
        k.topk(choice, 1, E, K, ci, tmp);
        for (let j = 0; j < K; j++) { idx[n * K + j] = ci[j]; w[n * K + j] = p[ci[j]]; }
      }
      break;
    }
  }
  // renormalisation and scaling, per family
  for (let n = 0; n < N; n++) {
    const r = w.subarray(n * K, (n + 1) * K);
    let s = 0;
    for (let j = 0; j < K; j++) s += r[j];
    s = f(s);
    if (m.router === 'softmax_bias') {
      const den = Math.max(s, m.normMin);
      for (let j = 0; j < K; j++) r[j] = f(r[j] / den);
    } else if (m.router === 'sigmoid_group') {
      if (m.normTopK) for (let j = 0; j < K; j++) r[j] = f(r[j] / f(s + 1e-20));
      for (let j = 0; j < K; j++) r[j] = f(r[j] * m.routedScaling);
    } else if (m.router === 'softmax_group') {
      if (K > 1 && m.normTopK) for (let j = 0; j < K; j++) r[j] = f(r[j] / f(s + 1e-20));
      else for (let j = 0; j < K; j++) r[j] = f(r[j] * m.routedScaling);
    } else if (m.router === 'softmax_topk' && m.normTopK) {
      for (let j = 0; j < K; j++) r[j] = f(r[j] / s);
    }
  }
  return { idx, w };
}
