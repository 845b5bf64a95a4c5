import { describe, expect, it } from 'vitest';
import { paramCounts } from '../../src/plan/flops.js';
import { activationBytesPerToken, memoryPerDevice } from '../../src/plan/memory.js';
import { loadImbalance } from '../../src/plan/balance.js';
import { modelPreset } from '../../src/plan/models.js';
import { resolveSpec } from '../../src/plan/spec.js';

const rel = (a: number, b: number) => expect(Math.abs(a / b - 1)).toBeLessThan(1e-9);

const spec = (model: string, devices: number, parallel: Record<string, unknown>, training: Record<string, unknown> = {}) =>
  resolveSpec({ model: { preset: model }, hardware: { preset: 'h100', devices }, parallel, training: { seq_len: 4096, global_batch: 1024, ...training } });

describe('model states (ZeRO paper, Rajbhandari et al. 2020: 2 + 2 + 12 bytes per parameter with mixed-precision Adam)', () => {
  it('one device, ZeRO-0: 16 bytes per parameter with bf16 gradients, 18 with Megatron-LM\'s fp32 gradients (the default)', () => {
    const bf = spec('mixtral-8x7b', 1, { zero: 0 }, { grad_precision: 'bf16' });
    const fp = spec('mixtral-8x7b', 1, { zero: 0 });
    expect(fp.training.grad_precision).toBe('fp32');
    const n = paramCounts(bf.model).total;
    const a = memoryPerDevice(bf.model, bf.parallel, bf.training, 1024);
    const b = memoryPerDevice(fp.model, fp.parallel, fp.training, 1024);
    expect((a.weights + a.gradients + a.optimizer) / (16 * n)).toBeCloseTo(1, 6);
    expect((b.weights + b.gradients + b.optimizer) / (18 * n)).toBeCloseTo(1, 6);
    rel(b.gradients, 2 * a.gradients);
  });
  it('ZeRO-1 over DP 8 divides only the optimizer; ZeRO-3 divides all three', () => {
    const z1 = spec('mixtral-8x7b', 8, { zero: 1 });
    const z3 = spec('mixtral-8x7b', 8, { zero: 3 }, { grad_precision: 'bf16' });
    const n = paramCounts(z1.model).total;
    const a = memoryPerDevice(z1.model, z1.parallel, z1.training, 128);
    const b = memoryPerDevice(z3.model, z3.parallel, z3.training, 128);
    rel(a.weights, 2 * n);
    rel(a.gradients, 4 * n);
    rel(a.optimizer, (12 * n) / 8);
    rel(b.weights + b.gradients + b.optimizer, (16 * n) / 8);
  });
  it('DualPipe keeps two copies of weights and gradients, but ZeRO-1 shards the optimizer over both copies', () => {
    const one = spec('deepseek-v3', 2048, { pp: 16, ep: 64, zero: 1, schedule: '1f1b' });
    const two = spec('deepseek-v3', 2048, { pp: 16, ep: 64, zero: 1, schedule: 'dualpipe' });
    const a = memoryPerDevice(one.model, one.parallel, one.training, 8);
    const b = memoryPerDevice(two.model, two.parallel, two.training, 8);
    rel(b.weights, 2 * a.weights);
    rel(b.gradients, 2 * a.gradients);
    rel(b.optimizer, a.optimizer);
  });
  it('experts shard over EP and their optimizer over the expert-data-parallel group', () => {
    const s = spec('mixtral-8x7b', 8, { ep: 8, zero: 1 });
    const pc = paramCounts(s.model);
    const mb = memoryPerDevice(s.model, s.parallel, s.training, 128);
    const experts = pc.moe_layers * 8 * pc.expert;
    const dense = pc.total - experts;
    // weights: all dense params + one expert per layer; EDP = tp*cp*dp/(ep*etp) = 1 so expert optimizer unsharded
    rel(mb.weights, 2 * (dense + experts / 8));
    rel(mb.optimizer, 12 * (dense / 8 + experts / 8));
  });
});

describe('activations', () => {
  it('full recompute keeps 2h bytes per token per layer (the layer input), times micro-batches in flight', () => {
    const s = spec('llama3.1-405b', 128, { tp: 8, pp: 16, recompute: 'full' }, { global_batch: 64 });
    const mb = memoryPerDevice(s.model, s.parallel, s.training, 64);
    const m = modelPreset('llama3.1-405b');
    // 1F1B: the first stage holds pp = 16 micro-batches of 126/16 layers; 2h/tp bytes per token
    rel(mb.activations, 16 * 4096 * (126 / 16) * ((2 * m.hidden) / 8));
  });
  it('selective < none, and interleaving holds more micro-batches than 1F1B', () => {
    const none = spec('mixtral-8x22b', 128, { tp: 2, pp: 8, ep: 8, etp: 1, recompute: 'none' });
    const sel = spec('mixtral-8x22b', 128, { tp: 2, pp: 8, ep: 8, etp: 1, recompute: 'selective' });
    const il = spec('mixtral-8x22b', 128, { tp: 2, pp: 8, vpp: 7, ep: 8, etp: 1, recompute: 'none' });
    const a = memoryPerDevice(none.model, none.parallel, none.training, 128).activations;
    const b = memoryPerDevice(sel.model, sel.parallel, sel.training, 128).activations;
    const c = memoryPerDevice(il.model, il.parallel, il.training, 128).activations;
    expect(b).toBeLessThan(a);
    expect(c / a).toBeCloseTo(1 + 7 / 56, 5); // Narayanan et al.: p(1 + (p-1)/(p v)) vs p
  });
  it('FP8 caches the attention output, expert inputs and (with the SwiGLU recomputed) its input in FP8', () => {
    const par = { pp: 16, ep: 64, recompute: ['moe_act'] };
    const bf = spec('deepseek-v3', 2048, par, { precision: 'bf16' });
    const f8 = spec('deepseek-v3', 2048, par, { precision: 'fp8' });
    const [, a] = activationBytesPerToken(bf.model, bf.parallel, bf.training);
    const [, b] = activationBytesPerToken(f8.model, f8.parallel, f8.training);
    const m = bf.model;
    const rows = m.top_k * loadImbalance(m, bf.parallel, bf.training);
    // saved per token: flash output n*dv bytes, per routed row: expert input h and half of fc1's 4I output
    expect(a - b).toBeCloseTo(m.heads * m.v_head_dim + rows * (m.hidden + 2 * m.expert_ffn), 6);
  });
});
