/**
 * Elastic training (ERNIE 5.0's elastic depth × expert width × routing sparsity): each step samples
 * sub-models along three axes, each with its own distribution over choices:
 * - depth d: the sub-model runs d decoder layers: layers 0 … d − 2 and the last one (the others pass the residual
 *   through). Deeper-but-not-last layers are the most removable (Gromov et al. 2024; Men et al. 2024, ShortGPT),
 *   and keeping the last layer keeps the LM head's input distribution;
 * - expert width n: every MoE layer keeps the first n experts of a fixed order (0, 1, …; the first n/G of each of
 *   the G routing groups for group-limited routers), masked before top-k: widths are nested prefixes, so the
 *   sub-model of width n is the same experts in every step and `moekit extract --experts n` is well defined
 *   (Matryoshka MoE nests the same way);
 * - routing sparsity k: the top-k of every MoE layer (clamped to the experts kept).
 * The full model trains every step beside the sampled ones; sub-models may be distilled from the full model's
 * logits (KL, weight `distill`).
 */
import type { ModelDesc } from '../models/desc.js';
import type { SubModel } from '../models/pass.js';
import { MoekitError } from '../util/errors.js';

export interface ElasticAxis {
  choices: number[];
  /** probabilities of the choices (default uniform) */
  probs?: number[];
}

export interface ElasticConfig {
  depth?: ElasticAxis;
  experts?: ElasticAxis;
  topK?: ElasticAxis;
  /** sub-models sampled per step beside the full model */
  samples: number;
  /** weight of the KL divergence of a sub-model's next-token distribution from the full model's (0: none) */
  distill: number;
}

/** check an elastic configuration against the model (errors name the field) */
export function checkElastic(d: ModelDesc, c: ElasticConfig): void {
  const E = d.moe.experts, G = d.moe.nGroup;
  const axis = (name: string, a: ElasticAxis | undefined, lo: number, hi: number, extra?: (v: number) => string | null) => {
    if (!a) return;
    if (!Array.isArray(a.choices) || a.choices.length === 0) throw new MoekitError(`elastic.${name}.choices: give at least one choice`);
    for (const v of a.choices) {
      if (!Number.isInteger(v) || v < lo || v > hi) throw new MoekitError(`elastic.${name}.choices: ${v} must be an integer in [${lo}, ${hi}]`);
      const e = extra?.(v);
      if (e) throw new MoekitError(`elastic.${name}.choices: ${e}`);
    }
    if (a.probs) {
      if (a.probs.length !== a.choices.length) throw new MoekitError(`elastic.${name}.probs: ${a.probs.length} probabilities for ${a.choices.length} choices`);
      if (a.probs.some((p) => !(p >= 0)) || !(a.probs.reduce((s, p) => s + p, 0) > 0)) throw new MoekitError(`elastic.${name}.probs: probabilities must be ≥ 0 and not all 0 (the distribution would sample nothing)`);
    }
  };
  axis('depth', c.depth, 1, d.nLayers);
  axis('experts', c.experts, 1, E, (v) => (v % G ? `${v} experts do not split evenly over the ${G} routing groups` : null));
  axis('top_k', c.topK, 1, E);
  if (!Number.isInteger(c.samples) || c.samples < 0) throw new MoekitError(`elastic.samples must be a non-negative integer, got ${c.samples}`);
  if (!(c.distill >= 0)) throw new MoekitError(`elastic.distill must be ≥ 0, got ${c.distill}`);
}

function draw(a: ElasticAxis, r: () => number): number {
  const p = a.probs ?? a.choices.map(() => 1);
  const total = p.reduce((s, x) => s + x, 0);
  let u = r() * total;
  for (let i = 0; i < a.choices.length; i++) { u -= p[i]; if (u < 0) return a.choices[i]; }
  return a.choices[a.choices.length - 1];
}

/** the layers a depth-d sub-model runs: 0 … d − 2 and the last */
export function depthLayers(nLayers: number, d: number): number[] {
  if (d >= nLayers) return [...Array(nLayers).keys()];
  return [...Array(d - 1).keys(), nLayers - 1];
}

/** the allowed-experts mask of width n: the first n/G experts of each routing group */
export function widthMask(E: number, G: number, n: number): Uint8Array {
  const per = E / G;
  return Uint8Array.from({ length: E }, (_, e) => (e % per < n / G ? 1 : 0));
}

export interface SampledSub { sub: SubModel; depth: number; experts: number; topK: number }

/** the sub-model at one point of the grid */
export function gridSub(d: ModelDesc, depth: number, experts: number, topK: number): SampledSub {
  const nMoe = d.layers.filter((l) => l.mlp === 'moe').length;
  const mask = experts < d.moe.experts ? widthMask(d.moe.experts, d.moe.nGroup, experts) : null;
  const k = Math.min(topK, experts);
  return {
    sub: { layers: depthLayers(d.nLayers, depth), experts: Array.from({ length: nMoe }, () => mask), topK: k },
    depth: Math.min(depth, d.nLayers), experts, topK: k,
  };
}

/** one sampled sub-model */
export function sampleSub(d: ModelDesc, c: ElasticConfig, r: () => number): SampledSub {
  return gridSub(d, c.depth ? draw(c.depth, r) : d.nLayers, c.experts ? draw(c.experts, r) : d.moe.experts, c.topK ? draw(c.topK, r) : d.moe.topK);
}
