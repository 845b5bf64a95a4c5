/**
 * Writing a pruned checkpoint: a keep set (decoder layer → expert ids, every MoE layer, one length) as a
 * standalone checkpoint, through the sub-model extractor (src/models/extract.ts: router rows, router
 * biases and selection-only correction biases sliced, fused and per-expert layouts, tensors streamed one
 * at a time and copied as stored, config rewritten, tokenizer files copied). The whole directory is
 * written under a temporary name beside `out` and renamed into place, so `out` is never half written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readConfig } from '../io/config.js';
import type { ModelDesc } from '../models/desc.js';
import { extractSubModel } from '../models/extract.js';
import { describeModel } from '../models/registry.js';
import { MoekitError } from '../util/errors.js';
import { checkBudget } from './select.js';

/** the keep set's length, checked: every MoE layer listed (and nothing else), all of one length */
export function keepCount(d: ModelDesc, keep: Record<number, number[]>): number {
  const moe = d.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
  for (const k of Object.keys(keep)) if (!moe.includes(Number(k))) throw new MoekitError(`the keep set lists layer ${k}, which is not a MoE layer (MoE layers: ${moe.join(', ')})`);
  const missing = moe.filter((l) => !keep[l]);
  if (missing.length) throw new MoekitError(`the keep set has no list for MoE layer${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (every MoE layer needs one)`);
  const counts = new Set(moe.map((l) => keep[l].length));
  if (counts.size > 1) throw new MoekitError(`the keep set keeps [${moe.map((l) => keep[l].length).join(', ')}] experts in its MoE layers; a config has one expert count for all layers`);
  return keep[moe[0]].length;
}

/** write the pruned checkpoint of dir's model to out; top-k defaults to min(k, M) within the group limits */
export function pruneCheckpoint(dir: string, out: string, keep: Record<number, number[]>, topK?: number): { files: string[]; config: Record<string, unknown>; topK: number; keep: number } {
  const { desc: d } = describeModel(readConfig(dir));
  const M = keepCount(d, keep);
  const K = topK ?? checkBudget(d, M, 'the keep set\'s size').topK;
  const abs = path.resolve(out);
  if (abs === path.resolve(dir)) throw new MoekitError('--out must not be the model directory itself', out);
  const tmp = `${abs}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    const r = extractSubModel(dir, tmp, { experts: keep, topK: K });
    let old: string | null = null;
    if (fs.existsSync(abs)) { old = `${abs}.old-${process.pid}`; fs.renameSync(abs, old); }
    fs.renameSync(tmp, abs);
    if (old) fs.rmSync(old, { recursive: true, force: true });
    return { files: r.files.map((f) => path.join(out, path.relative(tmp, f))), config: r.config, topK: K, keep: M };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
