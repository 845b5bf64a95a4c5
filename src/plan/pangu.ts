/**
 * Pangu Ultra MoE (arXiv 2505.04519) without its unknowns hidden (issue 13, item 5). The paper publishes the layout
 * (TP8 PP16 VPP2 EP4, read as MindSpeed TP-extend-EP: experts over 32 NPUs), micro-batch 2, ~6K NPUs, 1.46M tokens/s
 * and 30.0% MFU, but not the sequence length, the global batch, the exact NPU count, nor the peak (and FLOP
 * convention) behind its MFU. Each becomes a named assumption with a range; `panguOverAssumptions` searches every
 * combination and reports the published layout's rank and its predicted throughput, instead of one tuned point.
 */
import { CALIBRATION } from './calibration.js';
import { rankOf } from './search.js';
import { resolveSpec } from './spec.js';

export interface PanguAssumption { name: string; values: number[]; why: string }

/** the assumptions, each with its range and where the range comes from */
export const PANGU_ASSUMPTIONS: PanguAssumption[] = [
  { name: 'seq_len', values: [4096, 8192], why: 'not stated for the pre-training runs; 4K is the DeepSeek-V3 and Pangu Ultra (dense) pre-training length, 8K its long stage' },
  { name: 'global_batch', values: [1536, 3072, 6144], why: 'not stated; 3,072 sequences (the calibration row) halved and doubled (6-25M tokens a step at 4K, the range of published MoE runs)' },
  { name: 'devices', values: [5632, 6144], why: '"~6K NPUs": whole DP replicas of the published 128-NPU model-parallel group (TP8 x PP16): 44 or 48 replicas' },
  { name: 'peak_bf16_tflops', values: [220, 280, 313], why: 'the 910B dense BF16 peak behind the MFU: 220 is what the paper\'s own throughput/MFU pair implies under our FLOP count, 313 the widely reported figure (unverified), 280 between' },
];

/** the published layout (MindSpeed TP-extend-EP reading, calibration.ts) */
export const PANGU_LAYOUT = { tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, cp: 1 } as const;

export interface PanguPoint { assumptions: Record<string, number>; rank: number; of: number; tokens_per_s: number; best_tokens_per_s: number; best_layout: string }

/** every combination of `assumptions` (default: all of PANGU_ASSUMPTIONS; pass fewer values for a quick scan) */
export function panguOverAssumptions(assumptions: PanguAssumption[] = PANGU_ASSUMPTIONS): PanguPoint[] {
  const base = CALIBRATION.find((r) => r.id === 'pangu-ultra-moe')!.spec as Record<string, Record<string, unknown>>;
  const combos: Record<string, number>[] = [{}];
  for (const a of assumptions) {
    const next: Record<string, number>[] = [];
    for (const c of combos) for (const v of a.values) next.push({ ...c, [a.name]: v });
    combos.splice(0, combos.length, ...next);
  }
  return combos.map((a) => {
    const raw = structuredClone(base);
    if (a.seq_len !== undefined) raw.training.seq_len = a.seq_len;
    if (a.global_batch !== undefined) raw.training.global_batch = a.global_batch;
    if (a.devices !== undefined) raw.hardware.devices = a.devices;
    if (a.peak_bf16_tflops !== undefined) raw.hardware.peak_bf16_tflops = a.peak_bf16_tflops;
    const spec = resolveSpec(raw, 'pangu-ultra-moe', { template: true });
    const { rank, of, result } = rankOf(spec, PANGU_LAYOUT);
    const mine = rank > 0 ? result.top[rank - 1] : undefined;
    return {
      assumptions: a, rank, of,
      tokens_per_s: mine ? mine.result.tokens_per_s : NaN,
      best_tokens_per_s: result.top[0]?.result.tokens_per_s ?? NaN,
      best_layout: result.top[0]?.layout ?? '',
    };
  });
}
