/**
 * src/plan/calibration.ts: the calibration table checked field by field against the published figures its rows cite,
 * and accountedThroughput (whole-run throughput of a row whose published figure is cost accounting) worked by hand on
 * the DeepSeek-V3 row and on small made-up rows (fast: a few dozen simulations of one step, no searches).
 */
import { describe, expect, it } from 'vitest';
import { accountedThroughput, CALIBRATION, goodputFromInterruptions, PANGU_IMPLIED_PEAK_TFLOPS, type CalibrationRow } from '../../src/plan/calibration.js';
import { DSV3_PRETRAIN_DAYS, FITTED } from '../../src/plan/fitted.js';
import { simulate } from '../../src/plan/simulate.js';
import { resolveSpec } from '../../src/plan/spec.js';

const row = (id: string): CalibrationRow => CALIBRATION.find((r) => r.id === id)!;
/** steady-state tokens/s/device of `r`'s spec at another global batch (what accountedThroughput simulates per ramp step) */
const tpsAt = (r: CalibrationRow, global_batch: number): number => {
  const s = structuredClone(r.spec) as { training: Record<string, unknown> };
  s.training = { ...s.training, global_batch };
  return simulate(resolveSpec(s as Record<string, unknown>, r.id)).tokens_per_s_per_device;
};
/** the accounting formula written out: ramp steps at the given (hand-computed) batches, the rest at `steady` */
const naive = (r: CalibrationRow, steady: number, batches: number[]): number => {
  const a = r.accounting!;
  const ramp = a.ramp!;
  let time = 0;
  for (const b of batches) time += ramp.ramp_tokens / batches.length / tpsAt(r, b);
  time += (ramp.total_tokens - ramp.ramp_tokens) / steady;
  return (ramp.total_tokens / time) * a.goodput;
};

describe('the calibration table', () => {
  it('holds the seven published runs, ids unique, each with a name, a source, assumptions and a metric it has a figure for', () => {
    expect(CALIBRATION.map((r) => r.id)).toEqual([
      'deepseek-v3', 'pangu-ultra-moe', 'pangu-ultra-moe-baseline', 'mixtral-8x22b', 'qwen3-235b-a22b', 'skywork-moe', 'llama3.1-405b',
    ]);
    expect(CALIBRATION.map((r) => r.metric)).toEqual(['throughput', 'throughput', 'throughput', 'mfu', 'throughput', 'mfu', 'mfu']);
    for (const r of CALIBRATION) {
      expect(r.name.length, r.id).toBeGreaterThan(10);
      expect(r.source.length, r.id).toBeGreaterThan(50);
      expect(r.assumptions.length, r.id).toBeGreaterThan(50);
      if (r.metric === 'mfu') expect(r.published.mfu, r.id).toBeGreaterThan(0);
      else expect(r.published.tokens_per_s_per_device, r.id).toBeGreaterThan(0);
    }
  });

  it('every row is a valid spec as it stands (strict: its layout divides its devices and its batch)', () => {
    for (const r of CALIBRATION) {
      const s = resolveSpec(structuredClone(r.spec), r.id);
      expect(s.devices, r.id).toBe((r.spec.hardware as { devices: number }).devices);
    }
  });

  it('DeepSeek-V3: 2,048 H800, PP16 EP64 DualPipe, FP8, 15,360 x 4K after a 3,072 ramp; 180K GPU-hours per trillion tokens', () => {
    const r = row('deepseek-v3');
    expect(r.name).toBe('DeepSeek-V3 671B, 2,048 H800');
    expect(r.spec).toEqual({
      model: { preset: 'deepseek-v3' },
      hardware: { preset: 'h800', devices: 2048 },
      parallel: { tp: 1, pp: 16, ep: 64, etp: 1, zero: 1, schedule: 'dualpipe', ep_overlap: 'dualpipe', a2a: 'hierarchical', recompute: ['layernorm', 'mla_up', 'moe_act'] },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 15360, precision: 'fp8', optimizer_precision: 'bf16', node_limit: 4, dispatch_bytes: 1 },
    });
    // 1e12 tokens / (180e3 GPU-hours x 3600 s) = 1e12 / 6.48e8 = 1543.2098765432... tokens/s/GPU ("= 1,543" in the source)
    expect(r.published).toEqual({ tokens_per_s_per_device: 1e12 / 6.48e8 });
    expect(r.published.tokens_per_s_per_device).toBeCloseTo(1543.2098765432, 9);
    expect(r.source).toContain('arXiv 2412.19437');
    expect(r.source).toContain('180K H800 GPU-hours per trillion tokens = 1,543 tokens/s/GPU');
    expect(r.assumptions).toContain('3,072 -> 15,360 sequences over the first 469B tokens');
    expect(r.assumptions).toContain('goodput 0.955 assumed');
    // the ramp the report states (sec. 4.2) and the 14.8T-token stage
    expect(r.accounting!.ramp).toEqual({ from_batch: 3072, to_batch: 15360, ramp_tokens: 469e9, total_tokens: 14.8e12 });
    // goodput: 466 / (54 x 16384) interruptions per GPU-day x 2048 GPUs x D days x 1 h / (D x 24 h): D cancels,
    // 1 - 466 x 2048 / (54 x 16384 x 24) = 1 - 466 / 10368 = 9902 / 10368 = 0.955054012345679
    expect(r.accounting!.goodput).toBeCloseTo(9902 / 10368, 12);
    expect(r.accounting!.goodput).toBe(goodputFromInterruptions(2048, DSV3_PRETRAIN_DAYS, FITTED.goodput_hours_lost.value));
    expect(r.accounting!.goodput_why).toContain('466 per 54 days per 16,384 GPUs');
    // the run's length: 2,664K GPU-hours / 2,048 GPUs / 24 h = 54.19921875 days
    expect(DSV3_PRETRAIN_DAYS).toBe(54.19921875);
  });

  it('Pangu Ultra MoE (final): ~6K 910B at the implied 220 TFLOPS, TP8 PP16 VPP2 TP-extend-EP32, 1.46M tokens/s at 30.0% MFU', () => {
    const r = row('pangu-ultra-moe');
    expect(r.spec).toEqual({
      model: { preset: 'pangu-ultra-moe' },
      hardware: { preset: '910b', devices: 6144, peak_bf16_tflops: 220 },
      parallel: { tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, zero: 1, schedule: 'interleaved', ep_overlap: 'adaptive', a2a: 'hierarchical-allgather', recompute: ['moe', 'layernorm'] },
      training: { seq_len: 4096, micro_batch: 2, global_batch: 3072, precision: 'bf16' },
    });
    // 1.46e6 / 6144 = 237.630208333... tokens/s per NPU
    expect(r.published).toEqual({ mfu: 0.3, tokens_per_s: 1.46e6, tokens_per_s_per_device: 1.46e6 / 6144 });
    expect(r.published.tokens_per_s_per_device).toBeCloseTo(237.6302083333, 9);
    expect(r.source).toContain('arXiv 2505.04519');
    expect(r.source).toContain('1.46M tokens/s at 30.0% MFU');
    expect(r.assumptions).toContain('6,144 NPUs (48 DP replicas of 128)');
    expect(r.accounting).toBeUndefined();
  });

  it('Pangu Ultra MoE (baseline): 4K NPUs, flat all-to-all, no overlap, full recompute; 0.61M tokens/s at 18.9% MFU', () => {
    const r = row('pangu-ultra-moe-baseline');
    expect(r.spec).toEqual({
      model: { preset: 'pangu-ultra-moe' },
      hardware: { preset: '910b', devices: 4096, peak_bf16_tflops: 220 },
      parallel: { tp: 8, pp: 16, vpp: 2, ep: 32, etp: 1, zero: 1, schedule: 'interleaved', ep_overlap: 'none', a2a: 'flat', recompute: 'full' },
      training: { seq_len: 4096, micro_batch: 2, global_batch: 3072, precision: 'bf16' },
    });
    // 0.61e6 / 4096 = 148.92578125 tokens/s per NPU
    expect(r.published).toEqual({ mfu: 0.189, tokens_per_s: 0.61e6, tokens_per_s_per_device: 148.92578125 });
    expect(r.source).toContain('baseline 18.9% MFU, 0.61M tokens/s on 4K NPUs');
  });

  it('PANGU_IMPLIED_PEAK_TFLOPS: 220, what both Pangu pairs imply at 277.9 GFLOP per token', () => {
    expect(PANGU_IMPLIED_PEAK_TFLOPS).toBe(220);
    expect(PANGU_IMPLIED_PEAK_TFLOPS).toBe(FITTED.pangu_implied_peak_tflops.value);
    // final: 1.46e6 x 277.9e9 / (0.300 x 6144) = 4.05734e17 / 1843.2 = 220.1e12
    expect(Math.round((1.46e6 * 277.9e9) / (0.3 * 6144) / 1e12)).toBe(220);
    // baseline: 0.61e6 x 277.9e9 / (0.189 x 4096) = 1.695190e17 / 774.144 = 219.0e12
    expect(Math.round((0.61e6 * 277.9e9) / (0.189 * 4096) / 1e12)).toBe(219);
  });

  it('Mixtral 8x22B (Parallel Folding, 128 H100): TP2 PP8 VPP7 EP8, 46.3% MFU', () => {
    const r = row('mixtral-8x22b');
    expect(r.spec).toEqual({
      model: { preset: 'mixtral-8x22b' },
      hardware: { preset: 'h100', devices: 128 },
      parallel: { tp: 2, pp: 8, vpp: 7, ep: 8, etp: 1, zero: 1, schedule: 'interleaved', recompute: 'none' },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 256, precision: 'bf16' },
    });
    expect(r.published).toEqual({ mfu: 0.463 });
    expect(r.source).toBe('MoE Parallel Folding (arXiv 2504.14960), Mixtral 8x22B on 128 H100: 46.3% MFU');
  });

  it('Qwen3-235B-A22B (Megatron-Bridge 25.09): 256 H100, TP2 PP8 VP4 EP32, GBS 2048, 1,204 tokens/s/GPU', () => {
    const r = row('qwen3-235b-a22b');
    expect(r.spec).toEqual({
      model: { preset: 'qwen3-235b-a22b' },
      hardware: { preset: 'h100', devices: 256 },
      parallel: { tp: 2, pp: 8, vpp: 4, ep: 32, etp: 1, zero: 1, schedule: 'interleaved', recompute: 'none', ep_overlap: 'none', a2a: 'flat', tp_overlap: true },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 2048, precision: 'fp8', dispatch_bytes: 2, load_imbalance: 1, grad_precision: 'bf16' },
    });
    expect(r.published).toEqual({ tokens_per_s_per_device: 1204 });
    expect(r.source).toContain('256 GPUs, GBS 2048, MBS 1, seq 4096, TP2 PP8 CP1 VP4 EP32, GA 128, 1,204 tokens/s/GPU');
    // GA 128 = GBS 2048 / (MBS 1 x DP 16), DP = 256 / (TP2 x PP8) = 16: micro-batches per DP rank
    expect(2048 / (1 * (256 / (2 * 8)))).toBe(128);
  });

  it('Skywork-MoE: 1,536 A800 (192 nodes of 8), TP4 PP12 EP4 1F1B, 38% MFU', () => {
    const r = row('skywork-moe');
    expect(r.spec).toEqual({
      model: { preset: 'skywork-moe' },
      hardware: { preset: 'a800', devices: 1536 },
      parallel: { tp: 4, pp: 12, ep: 4, etp: 1, zero: 1, schedule: '1f1b', recompute: 'none' },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 1536, precision: 'bf16' },
    });
    expect(r.published).toEqual({ mfu: 0.38 });
    expect(r.source).toContain('192 nodes of 8 A800 (1,536 GPUs), 38% MFU');
    expect(192 * 8).toBe(1536);
  });

  it('Llama 3.1 405B (Table 4): 16,384 H100, TP8 CP1 PP16 DP128, seq 8,192, 16M tokens a batch, 41% MFU', () => {
    const r = row('llama3.1-405b');
    expect(r.spec).toEqual({
      model: { preset: 'llama3.1-405b' },
      hardware: { preset: 'h100', devices: 16384 },
      parallel: { tp: 8, pp: 16, vpp: 4, cp: 1, zero: 2, schedule: 'interleaved', recompute: 'none', tp_overlap: false },
      training: { seq_len: 8192, micro_batch: 1, global_batch: 2048, precision: 'bf16' },
    });
    expect(r.published).toEqual({ mfu: 0.41 });
    expect(r.source).toContain('16,384 H100, TP8 CP1 PP16 DP128, seq 8,192, 16M tokens per batch, 400 TFLOPs/GPU, 41% BF16 MFU');
    // DP128 = 16384 / (8 x 16); 16M tokens = 2048 sequences x 8192 = 16,777,216
    expect(16384 / (8 * 16)).toBe(128);
    expect(2048 * 8192).toBe(16777216);
  });
});

describe('goodputFromInterruptions (re-exported from fitted.ts)', () => {
  it('is the fitted.ts function: 1 - 466 / (54 x 16384) x gpus x hours_lost / 24', () => {
    // 16,384 GPUs x 54 days at 1 h each: 1 - 466 / 1296 = 0.640432...
    expect(goodputFromInterruptions(16384, 54, 1)).toBeCloseTo(1 - 466 / 1296, 12);
    // 8,192 GPUs, 10 days, 2 h: 1 - 466 x 8192 x 2 / (54 x 16384 x 24) = 1 - 932 / 2592 = 0.640432...
    expect(goodputFromInterruptions(8192, 10, 2)).toBeCloseTo(1 - 932 / 2592, 12);
  });
});

describe('accountedThroughput', () => {
  it('a row without accounting (a measured steady state): the steady figure itself', () => {
    expect(accountedThroughput(row('mixtral-8x22b'), 1234.5)).toBe(1234.5);
    expect(accountedThroughput(row('pangu-ultra-moe'), 237)).toBe(237);
  });

  it('accounting without a ramp: tokens 1 over time 1 / steady, times the goodput: 2000 x 0.9 = 1800', () => {
    const r: CalibrationRow = { ...row('mixtral-8x22b'), accounting: { goodput: 0.9, goodput_why: 'test' } };
    expect(accountedThroughput(r, 2000)).toBeCloseTo(1800, 9);
    expect(accountedThroughput({ ...r, accounting: { goodput: 1, goodput_why: 'test' } }, 2000)).toBeCloseTo(2000, 9);
  });

  it('DeepSeek-V3: 16 ramp steps at 3,456 + 768 i sequences, the rest of the 14.8T tokens at the steady rate, x goodput', () => {
    const r = row('deepseek-v3');
    // dp = 2048 / (tp 1 x pp 16) = 128, micro-batch 1: batches are multiples of 128.
    // step i of 16 at the middle of its sixteenth: 3072 + (i + 0.5) / 16 x (15360 - 3072) = 3072 + 768 (i + 0.5)
    // = 3456 + 768 i, already a multiple of 128 (3456 = 27 x 128, 768 = 6 x 128): 3456, 4224, ..., 14976
    const batches = Array.from({ length: 16 }, (_, i) => 3456 + 768 * i);
    expect(batches[15]).toBe(14976);
    // the ramp matters: the smallest batch runs slower per device than the largest (fewer micro-batches per bubble)
    expect(tpsAt(r, 3456)).toBeLessThan(tpsAt(r, 14976));
    const steady = 2000;
    // time = sum_i 469e9 / 16 / tps(b_i) + (14.8e12 - 469e9) / 2000; result = 14.8e12 / time x 0.955054...
    const want = naive(r, steady, batches);
    expect(accountedThroughput(r, steady)).toBeCloseTo(want, 6);
    // the goodput is the bulk of the drop (the ramp is 3% of the tokens and runs at most ~20% slower)
    expect(want / steady).toBeGreaterThan(0.93);
    expect(want / steady).toBeLessThan(9902 / 10368);
  });

  // a small made-up row: Mixtral 8x7B on 16 H100, PP2 (a bubble, so the rate depends on the batch) x DP8, micro-batch 2
  const small = (training: Record<string, unknown>, ramp: NonNullable<CalibrationRow['accounting']>['ramp']): CalibrationRow => ({
    id: 'small', name: 'small', metric: 'throughput', source: 'test', assumptions: 'test', published: {},
    spec: {
      model: { preset: 'mixtral-8x7b' },
      hardware: { preset: 'h100', devices: 16 },
      parallel: { tp: 1, pp: 2, ep: 8, etp: 1, zero: 1, schedule: '1f1b', recompute: 'full' },
      training: { seq_len: 1024, precision: 'bf16', ...training },
    },
    accounting: { ramp, goodput: 0.8, goodput_why: 'test' },
  });

  it('rounds each ramp batch to whole dp x micro-batch units, never below one unit', () => {
    const r = small({ micro_batch: 2, global_batch: 64 }, { from_batch: 0, to_batch: 32, ramp_tokens: 1e9, total_tokens: 4e9 });
    expect(resolveSpec(structuredClone(r.spec), 'small').parallel.dp).toBe(8);
    // unit = dp 8 x micro-batch 2 = 16; b_i = 0 + (i + 0.5) / 16 x 32 = 2 i + 1 = 1, 3, ..., 31
    // round(b_i / 16): 1/16 .. 7/16 -> 0 (i = 0..3, raised to one unit, 16); 9/16 .. 23/16 -> 1 (i = 4..11, 16);
    // 25/16 .. 31/16 -> 2 (i = 12..15, 32)
    const batches = [...Array(12).fill(16), ...Array(4).fill(32)];
    expect(tpsAt(r, 16)).not.toBeCloseTo(tpsAt(r, 32), 3);
    const steady = 5000;
    // time = 1e9/16 x (12 / tps(16) + 4 / tps(32)) + 3e9 / 5000; result = 4e9 / time x 0.8
    const want = (4e9 / (1e9 / 16 * (12 / tpsAt(r, 16) + 4 / tpsAt(r, 32)) + 3e9 / 5000)) * 0.8;
    expect(naive(r, steady, batches)).toBeCloseTo(want, 9);
    expect(accountedThroughput(r, steady)).toBeCloseTo(want, 6);
  });

  it('the ramp steps sit at the middle of each sixteenth (from 16 to 528: 32 i + 32, each a multiple of 16)', () => {
    const r = small({ micro_batch: 2, global_batch: 64 }, { from_batch: 16, to_batch: 528, ramp_tokens: 2e9, total_tokens: 3e9 });
    // b_i = 16 + (i + 0.5) / 16 x 512 = 16 + 32 i + 16 = 32 + 32 i: 32, 64, ..., 512
    const batches = Array.from({ length: 16 }, (_, i) => 32 + 32 * i);
    expect(tpsAt(r, 32)).toBeLessThan(tpsAt(r, 512));
    expect(accountedThroughput(r, 7000)).toBeCloseTo(naive(r, 7000, batches), 6);
  });

  it('a spec without micro_batch counts it as 1 (unit = dp 8)', () => {
    const r = small({ global_batch: 64 }, { from_batch: 8, to_batch: 136, ramp_tokens: 1e9, total_tokens: 2e9 });
    // unit 8 x 1; b_i = 8 + (i + 0.5) x 8 = 12 + 8 i; round(1.5 + i) = i + 2 (halves round up): 16, 24, ..., 136
    const batches = Array.from({ length: 16 }, (_, i) => 16 + 8 * i);
    expect(batches[15]).toBe(136);
    expect(accountedThroughput(r, 3000)).toBeCloseTo(naive(r, 3000, batches), 6);
  });

  it('leaves the row untouched', () => {
    const r = row('deepseek-v3');
    const before = structuredClone(r.spec);
    accountedThroughput(r, 1500);
    expect(r.spec).toEqual(before);
  });
});
