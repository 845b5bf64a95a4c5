/**
 * src/plan/memory.ts worked by hand on small made-up shapes (fast: the mutation run executes this file for every
 * covered mutant; test/plan/memory.test.ts checks the same model on published presets). Every expected number is
 * derived in a comment from the formula's source:
 *  - model states: Megatron-LM's mixed precision (bf16 weights 2 B, fp32 grad buffer 4 B or bf16 2 B, fp32 master + Adam
 *    m, v = 12 B, or 8 B with bf16 m, v as DeepSeek-V3 sec. 3.3.3) and ZeRO / the distributed optimizer (Rajbhandari et
 *    al. 2020): stage 1 shards the optimizer, 2 also the gradients, 3 also the weights, over dp*cp for dense parameters
 *    and the expert-data-parallel group tp*cp*dp/(ep*etp) for expert parameters;
 *  - local parameters: dense ones split by tp, routed experts by ep (whole experts) and etp (width), layers by pp, the
 *    embedding on the first stage and LM head + MTP on the last (the larger reported; both with pp = 1);
 *  - activations per token per layer with sequence parallelism and flash attention (Korthikanti et al. 2022, Table 2
 *    without the s^2 and dropout terms), each term freed by recomputing its module; full recompute keeps 2h / tp;
 *  - the first stage's micro-batches in flight per schedule (schedule.ts), offload, the last stage's fp32 logits.
 */
import { describe, expect, it } from 'vitest';
import { paramCounts } from '../../src/plan/flops.js';
import {
  activationBytesPerMicrobatch, activationBytesPerToken, gradBytes, localParams, memoryPerDevice, recomputeModules, RUNTIME_RESERVED_BYTES,
} from '../../src/plan/memory.js';
import type { ModelShape } from '../../src/plan/models.js';
import { resolveParallel, type Parallel, type Training } from '../../src/plan/spec.js';
import { MoekitError } from '../../src/util/errors.js';

const P = (o: Partial<Parallel> = {}): Parallel => ({
  tp: 1, pp: 1, vpp: 1, ep: 1, etp: 1, cp: 1, dp: 1, zero: 0, recompute: 'none', offload: 0, schedule: '1f1b', ep_overlap: 'none',
  a2a: 'flat', tp_overlap: true, dispatcher: 'alltoall', shared_expert_overlap: false, dp_overlap: true, cuda_graphs: false, ...o,
});
/** micro-batch 2 x 8 tokens; a fixed expert load imbalance of 1.25 (the busiest EP rank gets 1.25x the mean rows) */
const T = (o: Partial<Training> = {}): Training => ({
  seq_len: 8, micro_batch: 2, global_batch: 16, precision: 'bf16', optimizer_precision: 'fp32', grad_precision: 'fp32',
  load_imbalance: 1.25, expert_load_cv: 0, dispatch_bytes: 2, node_limit: 0, capacity_factor: 0, ...o,
});
const NO_MLA = { q_lora_rank: 0, kv_lora_rank: 0, qk_nope_head_dim: 0, qk_rope_head_dim: 0, v_head_dim: 0 };

/**
 * GQA MoE: 4 MoE layers, hidden 64, 4 query heads and 2 KV heads of 16, vocab 100, 8 experts of width 32, top-2, one
 * shared expert of width 48, one MTP module, untied. Parameters:
 *   attention Q 64x64 + K,V 2x64x2x16 + O 64x64 = 4096 + 4096 + 4096 = 12288
 *   expert 3x64x32 = 6144; shared 3x64x48 = 9216; router 64x8 = 512; embedding = head = 100x64 = 6400
 *   MoE layer: dense part 12288 + 9216 + 512 = 22016, experts 8 x 6144 = 49152
 *   MTP module: one MoE layer + 2h x h = 22016 + 49152 + 8192 = 79360 (its experts 49152, the rest 30208)
 *   total 2 x 6400 + 4 x (22016 + 49152) = 297472
 */
const G: ModelShape = {
  name: 'tiny-gqa', layers: 4, hidden: 64, heads: 4, kv_heads: 2, head_dim: 16, attention: 'gqa', ...NO_MLA, vocab: 100,
  dense_layers: 0, dense_ffn: 96, experts: 8, shared_experts: 1, shared_ffn: 48, top_k: 2, expert_ffn: 32, mtp_layers: 1, tied_embeddings: false,
};
/** MLA MoE (flops.test.ts's tiny-mla): hidden 64, 4 heads, q LoRA 32, kv LoRA 16, nope 8, rope 4, v 8; 4 experts of 16, top-2, one shared */
const M: ModelShape = {
  name: 'tiny-mla', layers: 3, hidden: 64, heads: 4, kv_heads: 4, head_dim: 0, attention: 'mla',
  q_lora_rank: 32, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8,
  vocab: 50, dense_layers: 1, dense_ffn: 48, experts: 4, shared_experts: 1, top_k: 2, expert_ffn: 16, mtp_layers: 0, tied_embeddings: false,
};
/** dense: 4 layers, hidden 64, 4 heads of 16 (MHA), FFN 96: attention 4096 + 2x64x4x16 + 4096 = 16384, FFN 3x64x96 = 18432 */
const D: ModelShape = {
  name: 'tiny-dense', layers: 4, hidden: 64, heads: 4, kv_heads: 4, head_dim: 16, attention: 'gqa', ...NO_MLA, vocab: 100,
  dense_layers: 4, dense_ffn: 96, experts: 0, shared_experts: 0, top_k: 0, expert_ffn: 0, mtp_layers: 0, tied_embeddings: false,
};

describe('the fixtures\' parameters (flops.ts, by hand)', () => {
  it('GQA MoE and dense', () => {
    const pc = paramCounts(G);
    expect([pc.attention, pc.expert, pc.shared, pc.router, pc.embedding, pc.head, pc.mtp, pc.moe_layers]).toEqual([12288, 6144, 9216, 512, 6400, 6400, 79360, 4]);
    expect(pc.total).toBe(297472);
    const pd = paramCounts(D);
    expect([pd.attention, pd.dense_ffn, pd.router, pd.shared, pd.moe_layers]).toEqual([16384, 18432, 0, 0, 0]);
  });
});

describe('bytes per element', () => {
  it('gradients: 4 B in Megatron-LM\'s fp32 grad buffer, 2 B with --grad-reduce-in-bf16', () => {
    expect(gradBytes(T({ grad_precision: 'fp32' }))).toBe(4);
    expect(gradBytes(T({ grad_precision: 'bf16' }))).toBe(2);
  });
  it('a fixed runtime reserve of 3 GiB', () => {
    expect(RUNTIME_RESERVED_BYTES).toBe(3 * 1024 * 1024 * 1024);
  });
});

describe('recomputeModules', () => {
  it('none: nothing; selective: the attention core (Korthikanti et al.); full: everything; a list: those modules', () => {
    expect([...recomputeModules('none')]).toEqual([]);
    expect([...recomputeModules('selective')]).toEqual(['core_attn']);
    expect([...recomputeModules('full')]).toEqual(['all']);
    expect([...recomputeModules(['moe', 'layernorm', 'moe'])].sort()).toEqual(['layernorm', 'moe']);
    expect([...recomputeModules([])]).toEqual([]);
  });
  it('the spec turns its forms into those (a single module name is a one-module list); anything else is an error', () => {
    const rc = (recompute: unknown) => resolveParallel({ recompute }, 1, G, false).parallel.recompute;
    expect(rc(undefined)).toBe('none');
    expect(rc('selective')).toBe('selective');
    expect(rc('moe_act')).toEqual(['moe_act']);
    expect(rc(['mla_up', 'mlp'])).toEqual(['mla_up', 'mlp']);
    const err = (recompute: unknown) => {
      try { rc(recompute); } catch (e) { if (e instanceof MoekitError) return [e.file, e.message]; throw e; }
      throw new Error('no error');
    };
    expect(err(['moe', 'attn'])).toEqual(['parallel.recompute[1]', 'must be one of attention, core_attn, mla_up, mlp, moe, moe_act, layernorm (got "attn")']);
    expect(err('some')[0]).toBe('parallel.recompute');
  });
});

/**
 * Local parameters counted naively for a model whose layers are all MoE: walk the first stage's layers and add each
 * module, then the edge of the larger of the first stage (embedding) and the last (head, its own copy when tied with
 * pp > 1, + MTP modules); with pp = 1 the one stage holds both.
 */
function naiveLocal(m: ModelShape, par: Parallel): { dense: number; expert: number } {
  const h = m.hidden;
  const attn = h * m.heads * m.head_dim + 2 * h * m.kv_heads * m.head_dim + m.heads * m.head_dim * h;
  const layerDense = attn + 3 * h * (m.shared_ffn ?? 0) + h * m.experts;
  const layerExperts = m.experts * 3 * h * m.expert_ffn;
  let dense = 0, expert = 0;
  for (let layer = 0; layer < m.layers / par.pp; layer++) { dense += layerDense; expert += layerExperts; }
  const first = { dense: m.vocab * h, expert: 0 };
  const head = m.tied_embeddings && par.pp === 1 ? 0 : m.vocab * h;
  const last = { dense: head + m.mtp_layers * (layerDense + 2 * h * h), expert: m.mtp_layers * layerExperts };
  if (par.pp === 1) { dense += first.dense + last.dense; expert += last.expert; }
  else if (last.dense + last.expert > first.dense) { dense += last.dense; expert += last.expert; }
  else dense += first.dense;
  return { dense: dense / par.tp, expert: expert / (par.ep * par.etp) };
}

describe('localParams', () => {
  it('one device holds everything: the model card total plus the MTP module', () => {
    // dense: 4 x 22016 + embedding 6400 + head 6400 + MTP's non-expert 30208 = 131072; experts: 4 x 49152 + 49152 = 245760
    expect(localParams(G, P())).toEqual({ dense: 131072, expert: 245760, moeLayersPerStage: 4, layersPerStage: 4 });
    expect(131072 + 245760).toBe(paramCounts(G).total + paramCounts(G).mtp);
  });
  it('TP2 PP2 EP2 ETP2: half the layers; dense by tp, experts by ep x etp; the last stage (head + MTP) is the larger', () => {
    // dense: (2 x 22016 + head 6400 + MTP 30208) / 2 = 80640 / 2 = 40320; the embedding (6400) sits on the smaller first stage
    // experts: (2 x 8 x 6144 + the MTP module's 49152) / (2 x 2) = 147456 / 4 = 36864
    expect(localParams(G, P({ tp: 2, pp: 2, ep: 2, etp: 2, dp: 2 }))).toEqual({ dense: 40320, expert: 36864, moeLayersPerStage: 2, layersPerStage: 2 });
  });
  it('no MTP, untied, pp 2: first and last stage tie (embedding = head = 6400)', () => {
    const g = { ...G, mtp_layers: 0 };
    // (2 x 22016 + 6400) / 2 = 25216; experts 2 x 49152 / 2 = 49152
    expect(localParams(g, P({ tp: 2, pp: 2, ep: 2 }))).toMatchObject({ dense: 25216, expert: 49152 });
    // pp 1: (4 x 22016 + 6400 + 6400) / 2 = 50432
    expect(localParams(g, P({ tp: 2, ep: 2 }))).toMatchObject({ dense: 50432, expert: 98304 });
  });
  it('tied embeddings: one copy with pp 1, a second one for the LM head on the last stage with pp > 1', () => {
    // vocab 1000: embedding 64000, larger than the MTP module's non-expert 30208
    const g = { ...G, vocab: 1000, tied_embeddings: true };
    // pp 1: 4 x 22016 + 64000 (shared by embedding and head) + 30208 = 182272; experts 4 x 49152 + 49152 = 245760
    expect(localParams(g, P())).toMatchObject({ dense: 182272, expert: 245760 });
    expect(182272 + 245760).toBe(paramCounts(g).total + paramCounts(g).mtp);
    // pp 2: the last stage's head copy 64000 + MTP 30208 = 94208 > 64000: 2 x 22016 + 94208 = 138240; experts 2 x 49152 + 49152
    expect(localParams(g, P({ pp: 2 }))).toMatchObject({ dense: 138240, expert: 147456 });
  });
  it('a dense model: the FFN of each of its layers per stage, no experts', () => {
    // TP2 PP2: (2 x 16384 + 2 x 18432 + 6400) / 2 = 76032 / 2 = 38016
    expect(localParams(D, P({ tp: 2, pp: 2 }))).toEqual({ dense: 38016, expert: 0, moeLayersPerStage: 0, layersPerStage: 2 });
    // an MTP module on a dense model: a dense layer + 2h x h, on the last stage; no experts
    expect(localParams({ ...D, mtp_layers: 1 }, P({ pp: 2 }))).toEqual({ dense: 2 * 16384 + 2 * 18432 + 6400 + (16384 + 18432 + 8192), expert: 0, moeLayersPerStage: 0, layersPerStage: 2 });
  });
  it('virtual stages and DualPipe do not change what a device holds (the same layers, in more chunks)', () => {
    const base = localParams(G, P({ pp: 2, ep: 2 }));
    expect(localParams(G, P({ pp: 2, ep: 2, vpp: 2, schedule: 'interleaved' }))).toEqual(base);
    expect(localParams(G, P({ pp: 2, ep: 2, schedule: 'dualpipe' }))).toEqual(base);
  });
  it('equals the naive layer walk for every tp, pp, ep, etp (tied or not, 0-2 MTP modules)', () => {
    for (const m of [G, { ...G, tied_embeddings: true }, { ...G, mtp_layers: 0 }, { ...G, mtp_layers: 2, vocab: 2000 }, { ...G, vocab: 2000, tied_embeddings: true }]) {
      for (const tp of [1, 2]) for (const pp of [1, 2, 4]) for (const ep of [1, 2, 8]) for (const etp of [1, 2]) {
        const par = P({ tp, pp, ep, etp });
        const want = naiveLocal(m, par);
        const got = localParams(m, par);
        expect([got.dense, got.expert], `${m.tied_embeddings} mtp ${m.mtp_layers} V${m.vocab} tp${tp} pp${pp} ep${ep} etp${etp}`).toEqual([want.dense, want.expert]);
        expect(got.layersPerStage).toBe(4 / pp);
      }
    }
  });
  // Found writing these tests (then mended): localParams charged the router and the shared experts (MoE-layer modules)
  // to every layer, the leading dense layers too, so a MoE with dense layers got dense_layers x (shared + router)
  // parameters it does not have (DeepSeek-V3: 3 x (44M + 1.8M) = 138M per device at TP1 PP1).
  it('a MoE with leading dense layers: one device holds the model card total plus MTP (router and shared experts only on MoE layers)', () => {
    const g = { ...G, dense_layers: 2 };
    const lp = localParams(g, P());
    expect(lp.dense + lp.expert).toBe(paramCounts(g).total + paramCounts(g).mtp);
  });
});

describe('activationBytesPerToken (Korthikanti et al. 2022 with sequence parallelism and flash attention)', () => {
  // G at TP2 ETP2 EP2, bf16, imbalance 1.25; h = 64, n = 4 heads, g = 2 KV heads, d = 16, f = 96, E = 8, k = 2:
  //   layernorm input 2h / tp = 64 (each of the 2 norms)
  //   QKV: (2h input + 2(n + 2g)d outputs) / tp = (128 + 256) / 2 = 192; flash output 2nd + fp32 lse 4n: (128 + 16) / 2 = 72
  //   dense FFN: (fc1 input 2h + fc1 output 4f + activation 2f) / tp = (128 + 384 + 192) / 2 = 352
  //   router: input 2h / tp + fp32 probabilities 8E / tp = 64 + 32 = 96
  //   routed rows per token k x etp x 1.25 / tp = 2.5, each: expert input 2h + expert output 2h + fc1 4I + act 2I with
  //     I = 32 / etp = 16: 128 + 128 + 64 + 32 = 352, so 880
  //   shared expert (2h + 6 x 48) / tp = 208
  // attention block 64 + 192 + 72 = 328; dense layer 328 + 64 + 352 = 744; MoE layer 328 + 64 + 96 + 880 + 208 = 1576
  const par = (recompute: Parallel['recompute']) => P({ tp: 2, etp: 2, ep: 2, dp: 2, recompute });
  const at = (recompute: Parallel['recompute'], t = T(), m = G) => activationBytesPerToken(m, par(recompute), t);
  it('no recompute', () => {
    expect(at('none')).toEqual([744, 1576]);
  });
  it('each recomputed module frees its own terms', () => {
    expect(at('selective')).toEqual([744 - 264, 1576 - 264]); // the attention core: QKV outputs and flash output
    expect(at(['core_attn'])).toEqual([480, 1312]);
    expect(at(['attention'])).toEqual([480, 1312]);
    expect(at(['layernorm'])).toEqual([744 - 128, 1576 - 128]); // both norms' inputs
    expect(at(['mlp'])).toEqual([744 - 352, 1576]);
    expect(at(['moe'])).toEqual([744, 1576 - 96 - 880 - 208]); // router, routed rows, shared expert
    expect(at(['moe_act'])).toEqual([744, 1576 - 2.5 * 32]); // the activation output 2I of each row
    expect(at(['mla_up'])).toEqual([744, 1576]); // nothing to free in GQA
    expect(at(['layernorm', 'core_attn', 'mlp', 'moe'])).toEqual([0, 0]);
  });
  it('full recompute keeps only the layer input, 2h / tp', () => {
    expect(at('full')).toEqual([64, 64]);
    expect(activationBytesPerToken(G, P({ recompute: 'full' }), T())).toEqual([128, 128]);
  });
  it('sequence parallelism: at TP1 every term is twice TP2\'s (ETP1 both)', () => {
    // TP1 ETP1: 2 x 744 = 1488; MoE rows 2 x 1.25 = 2.5 of 128 + 128 + 128 + 64 = 448 -> 1120;
    //   MoE layer 656 + 128 + 192 + 1120 + 416 = 2512 = 2 x 1256 (TP2 ETP1: rows 1.25 x 448 = 560, 328 + 64 + 96 + 560 + 208)
    expect(activationBytesPerToken(G, P(), T())).toEqual([1488, 2512]);
    expect(activationBytesPerToken(G, P({ tp: 2 }), T())).toEqual([744, 1256]);
  });
  it('no shared expert: no shared-expert term', () => {
    expect(at('none', T(), { ...G, shared_experts: 0, shared_ffn: 0 })).toEqual([744, 1576 - 208]);
  });
  it('FP8 caches the flash output and the expert inputs in 1 B, and with the SwiGLU recomputed its input too', () => {
    // flash (1 x 64 + 16) / 2 = 40 (32 less); per row expert input h = 64 (64 less), activation output I = 16 (16 less)
    expect(at('none', T({ precision: 'fp8' }))).toEqual([744 - 32, 1576 - 32 - 2.5 * (64 + 16)]);
    // moe_act under FP8: per row 64 + 128 + 2I = 224 (the activation output freed, fc1's output cached in 2 B not 4 B)
    expect(at(['moe_act'], T({ precision: 'fp8' }))).toEqual([712, 296 + 64 + 96 + 2.5 * 224 + 208]);
  });
  it('MLA: the down-projection input on the SP shard, the latents whole, the up-projection outputs split by tp', () => {
    // M at TP2, ETP1: h = 64, n = 4, d_qk = 8 + 4 = 12, d_v = 8, f = 48, E = 4, k = 2, I = 16, shared 16
    //   projections: 2h / tp + 2 (q_lora + kv_lora + rope) + 2n(2 d_qk + d_v) / tp = 64 + 104 + 128 = 296
    //   flash: (2 n d_v + 4n) / tp = (64 + 16) / 2 = 40; attention block 64 + 296 + 40 = 400
    //   dense: 64 + (128 + 6 x 48) / 2 = 272 -> 672
    //   MoE: 64 + (64 + 8 x 4 / 2) + rows 2 x 1.25 / 2 = 1.25 of (128 + 128 + 64 + 32) + (128 + 96) / 2 = 64 + 80 + 440 + 112 = 696 -> 1096
    const mp = (recompute: Parallel['recompute']) => P({ tp: 2, ep: 2, dp: 2, recompute });
    expect(activationBytesPerToken(M, mp('none'), T())).toEqual([672, 1096]);
    // recomputing the up-projections (DeepSeek-V3 sec. 3.2.3) frees their 128
    expect(activationBytesPerToken(M, mp(['mla_up']), T())).toEqual([672 - 128, 1096 - 128]);
    expect(activationBytesPerToken(M, mp('selective'), T())).toEqual([672 - 336, 1096 - 336]);
    // FP8: flash (32 + 16) / 2 = 24 (16 less); rows' expert input 64 and activation output 16 instead of 128 and 32
    expect(activationBytesPerToken(M, mp('none'), T({ precision: 'fp8' }))).toEqual([672 - 16, 1096 - 16 - 1.25 * (64 + 16)]);
    // the latents are not split by tp: at TP1 the attention block is 128 + (128 + 104 + 256) + 80 = 696, not 2 x 400;
    // the dense FFN part 128 + (128 + 192 + 96) = 544
    expect(activationBytesPerToken(M, P({ ep: 2, dp: 2 }), T())[0]).toBe(696 + 544);
  });
});

describe('activationBytesPerMicrobatch', () => {
  it('tokens of one micro-batch on this CP rank x (dense layers + MoE layers of the stage)', () => {
    // G with 2 leading dense layers at TP2 PP2 CP2 EP2 ETP2: per-token bytes [744, 1576] as above; 2 x 8 / 2 = 8 tokens;
    // per stage 1 dense and 1 MoE layer: 8 x (744 + 1576) = 18560
    const g = { ...G, dense_layers: 2 };
    expect(activationBytesPerMicrobatch(g, P({ tp: 2, pp: 2, cp: 2, dp: 2, ep: 2, etp: 2 }), T())).toBe(18560);
    // PP1 CP1: 16 tokens x (2 x 744 + 2 x 1576)
    expect(activationBytesPerMicrobatch(g, P({ tp: 2, dp: 2, ep: 2, etp: 2 }), T())).toBe(16 * (2 * 744 + 2 * 1576));
  });
});

describe('memoryPerDevice', () => {
  // G at TP2 CP2 DP2 EP2 ETP2 (8 devices), PP1: local dense (4 x 22016 + 6400 + 6400 + 30208) / 2 = 65536, experts
  // (4 x 49152 + 49152) / 4 = 61440 (local 126976). Shards: dense over dp x cp = 4 -> 16384, experts over
  // tp x cp x dp / (ep x etp) = 2 -> 30720 (sharded 47104).
  const lay = (o: Partial<Parallel> = {}) => P({ tp: 2, cp: 2, dp: 2, ep: 2, etp: 2, ...o });
  // activations: 2 x 8 / cp 2 = 8 tokens x 4 MoE layers x 1576 B = 50432 per micro-batch; 1F1B with pp 1 holds one;
  // fp32 logits of the micro-batch and the MTP module's: 8 x 100 x 4 x 2 / tp 2 = 3200 -> 53632
  // comm buffers: all-to-all send + receive of 8 / 2 x 2 x 2 x 1.25 = 20 rows x 64 x 2 B = 5120; TP all-gather
  // 8 x 64 x 2 = 1024; two 40M-element fp32 DP buckets 320e6
  const ACTS = 53632, COMM = 5120 + 1024 + 320e6, RES = 3 * 2 ** 30;
  const mem = (o: Partial<Parallel> = {}, t: Partial<Training> = {}, mbs = 8, m = G) => memoryPerDevice(m, lay(o), T(t), mbs);
  it('ZeRO 0: 2 + 4 + 12 B per local parameter, and every other field', () => {
    const r = mem({ zero: 0 });
    expect(r).toEqual({ weights: 2 * 126976, gradients: 4 * 126976, optimizer: 12 * 126976, activations: ACTS, comm_buffers: COMM, reserved: RES,
      total: 18 * 126976 + ACTS + COMM + RES });
  });
  it('ZeRO 1 shards the optimizer, 2 also the gradients, 3 also the weights', () => {
    expect(mem({ zero: 1 })).toMatchObject({ weights: 2 * 126976, gradients: 4 * 126976, optimizer: 12 * 47104 });
    expect(mem({ zero: 2 })).toMatchObject({ weights: 2 * 126976, gradients: 4 * 47104, optimizer: 12 * 47104 });
    expect(mem({ zero: 3 })).toMatchObject({ weights: 2 * 47104, gradients: 4 * 47104, optimizer: 12 * 47104, total: 18 * 47104 + ACTS + COMM + RES });
  });
  it('bf16 gradients 2 B; bf16 Adam moments 4 + 2 + 2 = 8 B', () => {
    expect(mem({ zero: 1 }, { grad_precision: 'bf16' })).toMatchObject({ gradients: 2 * 126976, optimizer: 12 * 47104 });
    expect(mem({ zero: 1 }, { optimizer_precision: 'bf16' })).toMatchObject({ gradients: 4 * 126976, optimizer: 8 * 47104 });
    expect(mem({ zero: 0 }, { optimizer_precision: 'bf16' }).optimizer).toBe(8 * 126976);
  });
  it('the expert-data-parallel group is tp x cp x dp / (ep x etp), the dense one dp x cp', () => {
    // EP4 ETP1: experts (4 x 49152 + 49152) / 4 = 61440 again, but sharded over 2 x 2 x 2 / 4 = 2; EP2 ETP1: experts
    // 245760 / 2 = 122880 sharded over 8 / 2 = 4; dense 65536 sharded over dp x cp = 4 in both
    expect(mem({ zero: 3, ep: 4, etp: 1 }).weights).toBe(2 * (16384 + 30720));
    expect(mem({ zero: 3, ep: 2, etp: 1 }).weights).toBe(2 * (16384 + 30720));
    // TP2 CP1 DP4 EP2 ETP2: the dense group dp x cp = 4, the expert group 2 x 1 x 4 / 4 = 2 (the same numbers, other factors)
    expect(mem({ zero: 1, cp: 1, dp: 4 }).optimizer).toBe(12 * 47104);
    // DP1 CP4: dense group 4, expert group 2 x 4 x 1 / 4 = 2
    expect(mem({ zero: 1, cp: 4, dp: 1 }, { seq_len: 16 }).optimizer).toBe(12 * 47104);
  });
  it('CP shards the tokens of a micro-batch', () => {
    // CP1 DP4: 16 tokens, twice the activations and logits, a2a rows and TP all-gather of CP2
    const r = mem({ cp: 1, dp: 4 });
    expect(r.activations).toBe(2 * ACTS);
    expect(r.comm_buffers).toBe(2 * (5120 + 1024) + 320e6);
  });
  it('without EP no all-to-all buffers; a dense model neither', () => {
    expect(mem({ ep: 1 }).comm_buffers).toBe(1024 + 320e6);
    // D at TP2 CP2 DP2: 8 tokens x 64 x 2 = 1024
    expect(memoryPerDevice(D, P({ tp: 2, cp: 2, dp: 2 }), T(), 8).comm_buffers).toBe(1024 + 320e6);
  });
  it('offload moves a fraction of the stored activations to the host (not the logits)', () => {
    expect(mem({}, {}, 8).activations).toBe(ACTS);
    expect(mem({ offload: 0.25 }).activations).toBe(0.75 * 50432 + 3200);
    expect(mem({ offload: 1 }).activations).toBe(3200);
  });
  it('full recompute: 2h / tp = 64 B per token per layer', () => {
    expect(mem({ recompute: 'full' }).activations).toBe(8 * 4 * 64 + 3200);
  });
  describe('pipelines (PP2: 2 layers a stage, local dense 40320, experts 36864, 77184 in all)', () => {
    // per micro-batch 8 tokens x 2 layers x 1576 = 25216; the last stage's logits 3200 (not on the first)
    it('1F1B: the first stage holds pp = 2 micro-batches; the last stage one and the logits, the larger reported', () => {
      expect(mem({ pp: 2 }, {}, 8)).toMatchObject({ weights: 2 * 77184, activations: 2 * 25216 });
      // one micro-batch per step: the first stage 25216, the last 25216 + 3200
      expect(mem({ pp: 2 }, {}, 1).activations).toBe(25216 + 3200);
      // a large vocabulary (100000: logits 8 x 1e5 x 4 x 2 / 2 = 3.2e6) makes the last stage the larger
      const big = { ...G, vocab: 100000 };
      expect(mem({ pp: 2 }, {}, 8, big).activations).toBe(25216 + 3.2e6);
      // offloading half: last 12608 + 3.2e6 still larger than the first's 25216
      expect(mem({ pp: 2, offload: 0.5 }, {}, 8, big).activations).toBe(12608 + 3.2e6);
    });
    it('interleaved (vpp 2): p (1 + (p - 1) / (p v)) = 2.5 micro-batches (Narayanan et al. 2021)', () => {
      expect(mem({ pp: 2, vpp: 2, schedule: 'interleaved' }).activations).toBe(2.5 * 25216);
    });
    it('DualPipe: (p + 1) / 2 = 1.5 micro-batches; two parameter copies, the optimizer sharded over both with ZeRO >= 1', () => {
      const z0 = mem({ pp: 2, schedule: 'dualpipe', zero: 0 });
      expect(z0).toMatchObject({ weights: 2 * 2 * 77184, gradients: 2 * 4 * 77184, optimizer: 2 * 12 * 77184, activations: 1.5 * 25216 });
      // ZeRO 1: dense 40320 / 4 + experts 36864 / 2 = 28512, once
      const z1 = mem({ pp: 2, schedule: 'dualpipe', zero: 1 });
      expect(z1).toMatchObject({ weights: 2 * 2 * 77184, gradients: 2 * 4 * 77184, optimizer: 12 * 28512 });
      // DualPipeV: one copy
      expect(mem({ pp: 2, schedule: 'dualpipev', zero: 0 })).toMatchObject({ weights: 2 * 77184, optimizer: 12 * 77184, activations: 1.5 * 25216 });
    });
  });
});
