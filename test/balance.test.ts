/**
 * Load-balancing losses: each gradient with respect to the router weights equals central finite differences
 * (the selection held fixed), on softmax and sigmoid routers; the switch loss equals transformers'
 * load_balancing_loss_func (as loadBalancingLoss computes it); the auxiliary-loss-free bias update moves load
 * toward the mean; load statistics.
 */
import { describe, expect, it } from 'vitest';
import { moeDefaults } from '../src/models/common.js';
import { balanceLoss, loadStats, updateSelectionBias, type BalanceWeights } from '../src/moe/balance.js';
import { loadBalancingLoss } from '../src/moe/layer.js';
import { route } from '../src/moe/router.js';
import { getKernels } from '../src/tensor/index.js';
import { randomTools } from './helpers.js';

const k = getKernels();

describe.each([
  ['softmax_topk', { router: 'softmax_topk' as const }],
  ['sigmoid_group (DeepSeek-V3)', { router: 'sigmoid_group' as const, normTopK: true, nGroup: 2, topkGroup: 1, selectionBias: true }],
  ['softmax_bias (ERNIE)', { router: 'softmax_bias' as const, normTopK: true, selectionBias: true }],
])('balance losses, %s router', (_, over) => {
  const B = 3, T = 5, N = B * T, H = 6, E = 8, K = 2;
  const m = moeDefaults({ experts: E, topK: K, expertFfn: 4, ...over });
  const { randn } = randomTools(11);
  const x = randn(N * H), W = randn(E * H, 0.8), bias = m.selectionBias ? randn(E, 0.1) : null;
  const logitsOf = () => {
    const l = new Float32Array(N * E);
    for (let n = 0; n < N; n++) for (let e = 0; e < E; e++) { let s = 0; for (let h = 0; h < H; h++) s += x[n * H + h] * W[e * H + h]; l[n * E + e] = s; }
    return l;
  };
  const cases: [string, BalanceWeights][] = [['switch', { switch: 1 }], ['seq', { seq: 1 }], ['zloss', { zloss: 1 }], ['global', { global: 1 }], ['all', { switch: 0.3, seq: 0.5, zloss: 0.01, global: 0.2 }]];
  const globalCounts = { counts: Float64Array.from({ length: E }, (_, e) => 3 + e), tokens: 40 };
  it.each(cases)('%s: d/dW_router equals finite differences', (_n, w) => {
    const r0 = route(k, m, logitsOf(), N, bias);
    const sig = r0.experts.join();
    const res = balanceLoss(m, r0, N, T, w, globalCounts);
    // dW = dlᵀ · x
    const dW = new Float64Array(E * H);
    for (let n = 0; n < N; n++) for (let e = 0; e < E; e++) for (let h = 0; h < H; h++) dW[e * H + h] += res.dlogits[n * E + e] * x[n * H + h];
    const L = () => { const r = route(k, m, logitsOf(), N, bias); return r.experts.join() === sig ? balanceLoss(m, r, N, T, w, globalCounts).loss : NaN; };
    let checked = 0;
    for (let i = 0; i < E * H; i += 2) {
      const w0 = W[i], h = 1e-3;
      W[i] = w0 + h; const a = L();
      W[i] = w0 - h; const b = L();
      W[i] = w0;
      if (Number.isNaN(a) || Number.isNaN(b)) continue;
      expect(Math.abs((a - b) / (2 * h) - dW[i]), `W[${i}]`).toBeLessThanOrEqual(2e-3 * Math.max(1, Math.abs(dW[i])));
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
    expect(Number.isFinite(res.loss) && res.loss > 0).toBe(true);
  });
  if (m.router !== 'sigmoid_group') it('the switch loss is transformers\' load_balancing_loss_func', () => {
    const r = route(k, { ...m, selectionBias: false }, logitsOf(), N, null);
    expect(balanceLoss(m, r, N, T, { switch: 1 }).parts.switch).toBeCloseTo(loadBalancingLoss(m, [r], N)!, 6);
  });
});

describe('auxiliary-loss-free balancing and load statistics', () => {
  it('the bias update moves selection toward even load; stats report it', () => {
    const m = moeDefaults({ experts: 8, topK: 2, expertFfn: 4, router: 'sigmoid_group', selectionBias: true });
    const { randn } = randomTools(5);
    const N = 256, logits = randn(N * 8, 1);
    for (let n = 0; n < N; n++) logits[n * 8] += 2; // expert 0 overloaded
    const bias = new Float32Array(8);
    const countsOf = () => { const c = new Float64Array(8); for (const e of route(k, m, logits, N, bias).experts) c[e]++; return c; };
    const before = loadStats(countsOf());
    for (let s = 0; s < 200; s++) updateSelectionBias(bias, countsOf(), 0.01);
    const after = loadStats(countsOf());
    expect(before.maxOverMean).toBeGreaterThan(2);
    expect(after.maxOverMean).toBeLessThan(before.maxOverMean * 0.7);
    expect(after.entropy).toBeGreaterThan(before.entropy);
    expect(loadStats([4, 4, 4, 4])).toEqual({ maxOverMean: 1, entropy: 1 });
    expect(loadStats([8, 0, 0, 0]).entropy).toBe(0);
  });
});
