import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CALIBRATION } from '../../src/plan/calibration.js';
import { exportPlan, type Engine, type ExportResult } from '../../src/plan/export.js';
import { resolveSpec } from '../../src/plan/spec.js';
import { MoekitError } from '../../src/util/errors.js';
import { rowSpec } from './helpers.js';

/** every calibration row with each variant's overrides merged in, where the layout allows them */
function* calibrationVariants(variants: Record<string, Record<string, unknown>>[]) {
  for (const row of CALIBRATION) {
    for (const v of variants) {
      const raw = structuredClone(row.spec) as Record<string, Record<string, unknown>>;
      for (const [k, x] of Object.entries(v)) raw[k] = { ...raw[k], ...x };
      let spec;
      try { spec = resolveSpec(raw); } catch { continue; } // a variant the layout does not allow
      yield { spec, where: `${row.id} ${JSON.stringify(v)}` };
    }
  }
}

describe('export', () => {
  it('Megatron-Core arguments for DeepSeek-V3 plan', () => {
    const e = exportPlan(rowSpec('deepseek-v3'), 'megatron');
    const a = e.args.join(' ');
    expect(a).toContain('--pipeline-model-parallel-size 16');
    expect(a).toContain('--expert-model-parallel-size 64');
    expect(a).toContain('--num-experts 256 --moe-router-topk 8 --moe-ffn-hidden-size 2048');
    expect(a).toContain('--multi-latent-attention');
    expect(a).toContain('--moe-layer-freq ([0]*3+[1]*58)');
    expect(a).toContain('--fp8-format e4m3');
    expect(e.notes.join(' ')).toMatch(/dualpipe/);
  });
  it('MindSpeed arguments for Pangu Ultra MoE plan', () => {
    const e = exportPlan(rowSpec('pangu-ultra-moe'), 'mindspeed');
    const a = e.args.join(' ');
    expect(a).toContain('--tensor-model-parallel-size 8');
    expect(a).toContain('--num-layers-per-virtual-pipeline-stage 2');
    expect(a).toContain('--expert-model-parallel-size 4'); // ep 32 = tp 8 x MindSpeed's ep 4 under --moe-tp-extend-ep
    expect(a).toContain('--moe-tp-extend-ep');
    expect(a).not.toContain('--expert-tensor-parallel-size');
    expect(a).toContain('--moe-hierarchical-alltoallv');
    expect(a).toContain('--moe-alltoall-overlap-comm');
    expect(a).toContain('--recompute-norm');
    expect(e.command).toMatch(/^torchrun --nnodes 768 --nproc-per-node 8 /);
  });
  it('every Megatron flag emitted is an option of Megatron-LM\'s own parser (commit d98e8a6, dumped on the device machine)', () => {
    const options = new Set<string>(JSON.parse(readFileSync('test/plan/fixtures/megatron-lm-options.json', 'utf8')));
    const variants: Record<string, Record<string, unknown>>[] = [{}, { parallel: { zero: 3 } }, { parallel: { zero: 0 } }, { parallel: { recompute: 'full' } },
      { parallel: { recompute: 'selective' } }, { parallel: { recompute: ['moe_act', 'layernorm', 'mla_up', 'moe', 'mlp', 'core_attn'] } },
      { parallel: { offload: 0.5 } }, { training: { grad_precision: 'bf16', optimizer_precision: 'bf16' } }, { parallel: { cp: 2 } }, { parallel: { tp_overlap: true } },
      { parallel: { ep_overlap: 'adaptive', shared_expert_overlap: true } }, { parallel: { ep_overlap: 'adaptive', dispatcher: 'allgather', a2a: 'flat' } },
      { parallel: { dispatcher: 'flex', a2a: 'flat' }, training: { capacity_factor: 1.25 } }, { parallel: { shared_expert_overlap: true, dispatcher: 'allgather', a2a: 'flat' } }];
    let checked = 0;
    for (const { spec, where } of calibrationVariants(variants)) {
      const args = exportPlan(spec, 'megatron').args;
      for (const a of args) {
        if (!a.startsWith('--')) continue;
        expect(options.has(a), `${a} (${where})`).toBe(true);
        checked++;
      }
      // Megatron-Core's rules for the EP all-to-all overlap (transformer_config.py)
      if (args.includes('--overlap-moe-expert-parallel-comm')) {
        const p = spec.parallel;
        expect(p.ep > 1 && (p.pp === 1 || p.vpp > 1) && p.recompute !== 'full', where).toBe(true);
        expect(Array.isArray(p.recompute) && p.recompute.includes('moe')).toBe(false);
        expect(['alltoall', 'flex']).toContain(args[args.indexOf('--moe-token-dispatcher-type') + 1]);
        // "disable moe_shared_expert_overlap when enabling overlap_moe_expert_parallel_comm"
        expect(args.includes('--moe-shared-expert-overlap'), where).toBe(false);
      }
      // "moe_shared_expert_overlap only works with alltoall token dispatcher" (core_r0.13 to core_r0.17)
      if (args.includes('--moe-shared-expert-overlap')) expect(args[args.indexOf('--moe-token-dispatcher-type') + 1], where).toBe('alltoall');
      // flex runs on DeepEP (core_r0.13 asserts --moe-enable-deepep), needs TP x EP > 1 and refuses the capacity padding;
      // DeepEP needs flex
      const flex = args[args.indexOf('--moe-token-dispatcher-type') + 1] === 'flex';
      expect(args.includes('--moe-enable-deepep'), where).toBe(flex);
      if (flex) {
        expect(spec.parallel.tp * spec.parallel.ep, where).toBeGreaterThan(1);
        expect(args.includes('--moe-pad-expert-input-to-capacity'), where).toBe(false);
      }
    }
    expect(checked).toBeGreaterThan(500);
  });
  it('MindSpeed: every flag exists in the 2025 stack (core_r0.8.0 + MindSpeed + MindSpeed-LLM) and passes MindSpeed\'s MoE rules', () => {
    const options = new Set<string>(JSON.parse(readFileSync('test/plan/fixtures/mindspeed-stack-options.json', 'utf8')).options);
    const variants: Record<string, Record<string, unknown>>[] = [{}, { parallel: { zero: 3 } }, { parallel: { zero: 3, dp_overlap: false } }, { parallel: { recompute: 'full' } },
      { parallel: { recompute: ['moe_act', 'layernorm', 'mla_up', 'moe'] } }, { parallel: { offload: 0.5 } },
      { training: { optimizer_precision: 'bf16' } }, { parallel: { a2a: 'hierarchical-allgather', ep_overlap: 'adaptive' } }];
    let checked = 0;
    for (const { spec, where } of calibrationVariants(variants)) {
      const args = exportPlan(spec, 'mindspeed').args;
      const flags = args.filter((x) => x.startsWith('--'));
      for (const fl of flags) expect(options.has(fl), `${fl} (${where})`).toBe(true);
      expect(new Set(flags).size, `a flag given twice (${where})`).toBe(flags.length);
      const has = (fl: string) => flags.includes(fl);
      const val = (fl: string) => args[args.indexOf(fl) + 1];
      // mindspeed/arguments.py (4825e32) validation
      if (has('--moe-tp-extend-ep')) {
        expect(has('--moe-permutation-async-comm') && has('--moe-grouped-gemm'), where).toBe(true);
        expect(spec.model.experts % (spec.parallel.tp * Number(val('--expert-model-parallel-size'))), where).toBe(0);
      }
      if (has('--moe-alltoall-overlap-comm')) {
        expect(val('--moe-token-dispatcher-type'), where).toBe('alltoall');
        expect(has('--moe-permutation-async-comm') && has('--moe-grouped-gemm'), where).toBe(true);
        expect(spec.parallel.tp === 1 || has('--moe-tp-extend-ep'), where).toBe(true);
      }
      if (has('--moe-hierarchical-alltoallv')) {
        expect(has('--moe-tp-extend-ep') && spec.parallel.tp === spec.hardware.devices_per_node, where).toBe(true);
      }
      if (!spec.parallel.dp_overlap) expect(has('--overlap-grad-reduce') || has('--overlap-param-gather'), where).toBe(false);
      // core_r0.8.0: layers divide by pp x (layers per virtual stage)
      const L = Number(val('--num-layers')), pp = Number(val('--pipeline-model-parallel-size'));
      expect(L % pp, where).toBe(0);
      if (has('--num-layers-per-virtual-pipeline-stage')) expect((L / pp) % Number(val('--num-layers-per-virtual-pipeline-stage')), where).toBe(0);
      checked += flags.length;
    }
    expect(checked).toBeGreaterThan(500);
    // Pangu Ultra MoE's 61 layers on PP16 x VPP2: padded to 64 with three no-op layers, as the paper counts them
    const pg = exportPlan(rowSpec('pangu-ultra-moe'), 'mindspeed').args.join(' ');
    expect(pg).toContain('--num-layers 64 ');
    expect(pg).toContain('--noop-layers 61,62,63');
    expect(pg).toContain('--num-layers-per-virtual-pipeline-stage 2');
  });
  it('gradient precision: bf16 reduction is --grad-reduce-in-bf16 on Megatron; fp32 (the default) emits nothing', () => {
    const row = CALIBRATION.find((r) => r.id === 'qwen3-235b-a22b')!;
    const bf = exportPlan(resolveSpec(structuredClone(row.spec)), 'megatron');
    expect(bf.args).toContain('--grad-reduce-in-bf16');
    const raw = structuredClone(row.spec) as { training: Record<string, unknown> };
    delete raw.training.grad_precision;
    expect(exportPlan(resolveSpec(raw), 'megatron').args).not.toContain('--grad-reduce-in-bf16');
    expect(exportPlan(resolveSpec(structuredClone(row.spec)), 'mindspeed').notes.join(' ')).toMatch(/grad_precision bf16/);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// Hand-made specs: every expected argument below is read off src/plan/export.ts line by line, with the spec defaults of
// src/plan/spec.ts (resolveModel / resolveParallel / resolveTraining) written out where they matter.
// ---------------------------------------------------------------------------------------------------------------------

type Section = Record<string, unknown>;
type Over = Partial<Record<'model' | 'hardware' | 'parallel' | 'training', Section>>;

/**
 * Base: a 4-layer MoE with plain multi-head attention on 8 H100s, every layout knob at its default.
 * Resolved (spec.ts): attention 'gqa' (kv_lora_rank 0), kv_heads = heads = 8, head_dim = 256 / 8 = 32, dense_layers 0,
 * dense_ffn 0, shared_experts 0, mtp_layers 0, tied_embeddings false; tp = pp = cp = vpp = ep = 1, etp = tp = 1,
 * dp = 8 / (1*1*1) = 8, zero 1, recompute 'none', offload 0, schedule '1f1b', ep_overlap 'none', dispatcher 'alltoall',
 * a2a 'flat', tp_overlap true, shared_expert_overlap false, dp_overlap true, cuda_graphs false; micro_batch 1,
 * precision bf16, grad / optimizer precision fp32, capacity_factor 0. h100: devices_per_node 8.
 */
const BASE = (): Record<string, Section> => ({
  model: { layers: 4, hidden: 256, heads: 8, vocab: 1000, experts: 8, top_k: 2, expert_ffn: 512 },
  hardware: { preset: 'h100', devices: 8 },
  parallel: {},
  training: { seq_len: 1024, global_batch: 16 },
});
const mk = (over: Over = {}) => {
  const raw = BASE();
  for (const [k, v] of Object.entries(over)) raw[k] = { ...raw[k], ...v };
  return resolveSpec(raw);
};
const meg = (over: Over = {}) => exportPlan(mk(over), 'megatron');
const msp = (over: Over = {}) => exportPlan(mk(over), 'mindspeed');
/** whether `s` ("--flag" or "--flag value") appears as whole words in the argument list */
const has = (e: ExportResult, s: string) => ` ${e.args.join(' ')} `.includes(` ${s} `);
/** the arguments strictly between the first `from` and the first `to` after it */
const between = (e: ExportResult, from: string, to: string) => {
  const i = e.args.indexOf(from);
  expect(i, from).toBeGreaterThanOrEqual(0);
  const j = e.args.indexOf(to, i + 1);
  expect(j, to).toBeGreaterThan(i);
  return e.args.slice(i + 1, j);
};
const LAUNCH_1x8 = 'torchrun --nnodes 1 --nproc-per-node 8 --node-rank $NODE_RANK --master-addr $MASTER_ADDR --master-port 6000';

// the model / attention / MoE head of the base spec, common to both engines up to the MoE FFN width flag
const HEAD = ['--num-layers', '4', '--hidden-size', '256', '--num-attention-heads', '8',
  '--seq-length', '1024', '--max-position-embeddings', '1024', // seq_len on both
  '--normalization', 'RMSNorm', '--swiglu', '--position-embedding-type', 'rope', '--disable-bias-linear',
  '--untie-embeddings-and-output-weights', // tied_embeddings false
  '--kv-channels', '32', // plain attention: head_dim 256/8; kv_heads = heads so no GQA flags
  '--num-experts', '8', '--moe-router-topk', '2'];
const MEG_BASE = [...HEAD, '--moe-ffn-hidden-size', '512',
  '--moe-token-dispatcher-type', 'alltoall', '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss',
  '--moe-permute-fusion', // Megatron branch of the permutation flag
  '--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1',
  '--expert-model-parallel-size', '1', '--expert-tensor-parallel-size', '1', // Megatron: ep and etp as they are
  '--micro-batch-size', '1', '--global-batch-size', '16', '--bf16',
  '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather', // zero 1 with dp_overlap
  '--attention-backend', 'fused'];
const MS_BASE = [...HEAD, '--moe-intermediate-size', '512',
  '--moe-token-dispatcher-type', 'alltoall', '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss',
  '--moe-permutation-async-comm', // MindSpeed branch
  '--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1',
  '--expert-model-parallel-size', '1', // no TP-extend-EP (tp 1), no --expert-tensor-parallel-size on core_r0.8.0
  '--micro-batch-size', '1', '--global-batch-size', '16', '--bf16',
  '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather',
  '--use-mcore-models', '--use-flash-attn', '--use-fused-rmsnorm', '--use-fused-swiglu', '--use-fused-rotary-pos-emb'];

describe('exportPlan: full argument lists of hand-made specs', () => {
  it('base MoE spec on Megatron: every flag, the command line and no notes', () => {
    const e = meg();
    expect(e.engine).toBe('megatron');
    expect(e.args).toEqual(MEG_BASE);
    // 8 devices, 8 per node: 1 node x 8 processes; no argument needs shell quoting
    expect(e.command).toBe(`${LAUNCH_1x8} pretrain_gpt.py --num-layers 4 --hidden-size 256 --num-attention-heads 8 --seq-length 1024 `
      + '--max-position-embeddings 1024 --normalization RMSNorm --swiglu --position-embedding-type rope --disable-bias-linear '
      + '--untie-embeddings-and-output-weights --kv-channels 32 --num-experts 8 --moe-router-topk 2 --moe-ffn-hidden-size 512 '
      + '--moe-token-dispatcher-type alltoall --moe-grouped-gemm --moe-router-load-balancing-type aux_loss --moe-permute-fusion '
      + '--tensor-model-parallel-size 1 --pipeline-model-parallel-size 1 --expert-model-parallel-size 1 --expert-tensor-parallel-size 1 '
      + '--micro-batch-size 1 --global-batch-size 16 --bf16 --use-distributed-optimizer --overlap-grad-reduce --overlap-param-gather '
      + '--attention-backend fused');
    expect(e.notes).toEqual([]);
  });
  it('base MoE spec on MindSpeed: every flag, the command line (script name without the comment) and no notes', () => {
    const e = msp();
    expect(e.engine).toBe('mindspeed');
    expect(e.args).toEqual(MS_BASE);
    // the script 'pretrain_gpt.py  # MindSpeed-LLM' keeps only its first word
    expect(e.command).toBe(`${LAUNCH_1x8} pretrain_gpt.py ${MS_BASE.join(' ')}`);
    expect(e.command).toMatch(/ pretrain_gpt\.py --num-layers 4 /);
    expect(e.notes).toEqual([]);
  });
  it('dense model (experts 0) on Megatron: no MoE or expert-parallel flag', () => {
    // experts 0: resolveModel sets dense_layers = layers = 4 and needs dense_ffn > 0
    const e = meg({ model: { experts: 0, dense_ffn: 1024 } });
    expect(e.args).toEqual(['--num-layers', '4', '--hidden-size', '256', '--num-attention-heads', '8',
      '--seq-length', '1024', '--max-position-embeddings', '1024',
      '--normalization', 'RMSNorm', '--swiglu', '--position-embedding-type', 'rope', '--disable-bias-linear',
      '--untie-embeddings-and-output-weights', '--kv-channels', '32',
      '--ffn-hidden-size', '1024', // dense_ffn > 0
      '--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1',
      '--micro-batch-size', '1', '--global-batch-size', '16', '--bf16',
      '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather',
      '--attention-backend', 'fused']);
    expect(e.notes).toEqual([]);
  });
  it('dense model on MindSpeed: no MoE flags either', () => {
    const e = msp({ model: { experts: 0, dense_ffn: 1024 } });
    expect(e.args).toEqual(['--num-layers', '4', '--hidden-size', '256', '--num-attention-heads', '8',
      '--seq-length', '1024', '--max-position-embeddings', '1024',
      '--normalization', 'RMSNorm', '--swiglu', '--position-embedding-type', 'rope', '--disable-bias-linear',
      '--untie-embeddings-and-output-weights', '--kv-channels', '32', '--ffn-hidden-size', '1024',
      '--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1',
      '--micro-batch-size', '1', '--global-batch-size', '16', '--bf16',
      '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather',
      '--use-mcore-models', '--use-flash-attn', '--use-fused-rmsnorm', '--use-fused-swiglu', '--use-fused-rotary-pos-emb']);
    expect(e.notes).toEqual([]);
  });

  /**
   * Rich: a 5-layer DeepSeek-like model (MLA, 1 dense leading layer, 2 shared experts, 1 MTP layer, tied embeddings) on
   * 16 H100s with tp 2, pp 2, vpp 2 (schedule defaults to interleaved), ep 4, etp 1 and the adaptive EP overlap.
   * dp = 16 / (2*2*1) = 4; ep*etp = 4 divides tp*cp*dp = 8; pipeline chunks = pp*vpp = 4, and 5 % 4 = 1 (uneven).
   */
  const RICH: Over = {
    model: { layers: 5, hidden: 256, heads: 8, vocab: 1000, attention: 'mla', q_lora_rank: 64, kv_lora_rank: 32, qk_nope_head_dim: 16,
      qk_rope_head_dim: 8, v_head_dim: 16, dense_layers: 1, dense_ffn: 1024, experts: 16, shared_experts: 2, top_k: 4, expert_ffn: 128,
      mtp_layers: 1, tied_embeddings: true },
    hardware: { preset: 'h100', devices: 16 },
    parallel: { tp: 2, pp: 2, vpp: 2, ep: 4, etp: 1, ep_overlap: 'adaptive' },
    training: { seq_len: 2048, micro_batch: 2, global_batch: 64 },
  };
  const RICH_TAIL = ['--micro-batch-size', '2', '--global-batch-size', '64', '--bf16',
    '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather'];
  it('rich MLA / dense-first / shared / MTP / VPP spec on Megatron', () => {
    const e = meg(RICH);
    const expected = ['--num-layers', '5', '--hidden-size', '256', '--num-attention-heads', '8', // Megatron: never padded
      '--seq-length', '2048', '--max-position-embeddings', '2048',
      '--normalization', 'RMSNorm', '--swiglu', '--position-embedding-type', 'rope', '--disable-bias-linear',
      // tied embeddings: no --untie-embeddings-and-output-weights
      '--multi-latent-attention', '--q-lora-rank', '64', '--kv-lora-rank', '32',
      '--qk-head-dim', '16', '--qk-pos-emb-head-dim', '8', // Megatron: qk-head-dim = nope part, pos-emb = rope part
      '--v-head-dim', '16',
      '--ffn-hidden-size', '1024',
      '--num-experts', '16', '--moe-router-topk', '4', '--moe-ffn-hidden-size', '128',
      '--moe-shared-expert-intermediate-size', '256', // sharedWidth: shared_ffn 0 -> 2 experts x 128
      '--moe-layer-freq', '([0]*1+[1]*4)', // 1 dense layer, 5 - 1 = 4 MoE layers
      '--moe-token-dispatcher-type', 'alltoall', '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss', '--moe-permute-fusion',
      '--mtp-num-layers', '1',
      '--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '2', '--sequence-parallel', // tp > 1
      '--num-virtual-stages-per-pipeline-rank', '2', // Megatron: vpp itself
      '--expert-model-parallel-size', '4', '--expert-tensor-parallel-size', '1',
      ...RICH_TAIL,
      '--tp-comm-overlap', // tp_overlap (default true) with tp 2
      '--overlap-moe-expert-parallel-comm', // ep 4 > 1, vpp 2 > 1, no full recompute, 1 MTP layer: allowed; adaptive: no delay-wgrad
      '--attention-backend', 'fused'];
    expect(e.args).toEqual(expected);
    // 16 devices / 8 per node = 2 nodes; the moe-layer-freq value has ( [ * so it is single-quoted
    expect(e.command).toBe('torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK --master-addr $MASTER_ADDR --master-port 6000 '
      + `pretrain_gpt.py ${expected.join(' ').replace('([0]*1+[1]*4)', "'([0]*1+[1]*4)'")}`);
    expect(e.command).toContain(" --moe-layer-freq '([0]*1+[1]*4)' --moe-token-dispatcher-type alltoall ");
    expect(e.notes).toEqual(['layers do not divide evenly over pipeline chunks: set --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers']);
  });
  it('rich spec on MindSpeed: 5 layers padded to 8, MindSpeed MLA / MoE / MTP names, TP-extend-EP', () => {
    const e = msp(RICH);
    const expected = ['--num-layers', '8', '--hidden-size', '256', '--num-attention-heads', '8', // ceil(5/4)*4 = 8
      '--noop-layers', '5,6,7', // layers 5..7 (0-based) are the 8 - 5 = 3 no-op layers
      '--seq-length', '2048', '--max-position-embeddings', '2048',
      '--normalization', 'RMSNorm', '--swiglu', '--position-embedding-type', 'rope', '--disable-bias-linear',
      '--multi-head-latent-attention', '--q-lora-rank', '64', '--kv-lora-rank', '32',
      '--qk-rope-head-dim', '8', '--qk-nope-head-dim', '16', '--v-head-dim', '16',
      '--ffn-hidden-size', '1024',
      '--num-experts', '16', '--moe-router-topk', '4', '--moe-intermediate-size', '128',
      '--n-shared-experts', '2', '--first-k-dense-replace', '1',
      '--moe-token-dispatcher-type', 'alltoall', '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss', '--moe-permutation-async-comm',
      '--num-nextn-predict-layers', '1',
      '--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '2', '--sequence-parallel',
      '--num-layers-per-virtual-pipeline-stage', '2', // padded 8 / 4 chunks
      '--expert-model-parallel-size', '2', // TP-extend-EP (tp 2 > 1, etp 1, 4 % 2 = 0, 4 > 2): ep / tp = 2
      ...RICH_TAIL,
      // no --tp-comm-overlap on MindSpeed
      '--moe-alltoall-overlap-comm', // tp 2 > 1 but TP-extend-EP
      '--moe-tp-extend-ep',
      '--use-mcore-models', '--use-flash-attn', '--use-fused-rmsnorm', '--use-fused-swiglu', '--use-fused-rotary-pos-emb'];
    expect(e.args).toEqual(expected);
    expect(e.command).toBe(`torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK --master-addr $MASTER_ADDR --master-port 6000 pretrain_gpt.py ${expected.join(' ')}`);
    expect(e.notes).toEqual([
      '5 layers padded to 8 with no-op layers (--noop-layers) so that 4 pipeline chunks split evenly',
      "--moe-tp-extend-ep: experts spread over the TP group too; MindSpeed's --expert-model-parallel-size is ep/tp = 2",
    ]);
  });
  it('the unknown-engine error names the engine and the flag', () => {
    const s = mk();
    expect(() => exportPlan(s, 'deepspeed' as Engine)).toThrow(new MoekitError("unknown engine 'deepspeed' (megatron or mindspeed)", '--engine'));
    try { exportPlan(s, 'deepspeed' as Engine); } catch (err) {
      expect(err).toBeInstanceOf(MoekitError);
      expect((err as MoekitError).message).toBe("unknown engine 'deepspeed' (megatron or mindspeed)");
      expect((err as MoekitError).file).toBe('--engine');
    }
  });
});

describe('exportPlan: model flags', () => {
  it('GQA: --group-query-attention with --num-query-groups only when kv_heads differs from heads', () => {
    const g = meg({ model: { kv_heads: 2 } });
    expect(between(g, '--disable-bias-linear', '--num-experts')).toEqual(['--untie-embeddings-and-output-weights', '--kv-channels', '32', '--group-query-attention', '--num-query-groups', '2']);
    expect(has(msp({ model: { kv_heads: 2 } }), '--group-query-attention --num-query-groups 2')).toBe(true);
    expect(meg().args).not.toContain('--group-query-attention');
  });
  it('explicit head_dim goes to --kv-channels', () => {
    expect(has(meg({ model: { head_dim: 64 } }), '--kv-channels 64')).toBe(true);
  });
  it('MLA without a query low-rank projection (q_lora_rank 0) emits no --q-lora-rank', () => {
    const mla = { attention: 'mla', kv_lora_rank: 32, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16 };
    const e = meg({ model: mla });
    expect(between(e, '--untie-embeddings-and-output-weights', '--num-experts')).toEqual(['--multi-latent-attention', '--kv-lora-rank', '32',
      '--qk-head-dim', '16', '--qk-pos-emb-head-dim', '8', '--v-head-dim', '16']);
    expect(e.args).not.toContain('--kv-channels');
    const s = msp({ model: mla });
    expect(between(s, '--untie-embeddings-and-output-weights', '--num-experts')).toEqual(['--multi-head-latent-attention', '--kv-lora-rank', '32',
      '--qk-rope-head-dim', '8', '--qk-nope-head-dim', '16', '--v-head-dim', '16']);
  });
  it('shared experts: total width on Megatron (shared_ffn when given), the count on MindSpeed; none without', () => {
    // sharedWidth: shared_ffn 384 > 0 wins over 2 x 512
    expect(has(meg({ model: { shared_experts: 2, shared_ffn: 384 } }), '--moe-ffn-hidden-size 512 --moe-shared-expert-intermediate-size 384 --moe-token-dispatcher-type')).toBe(true);
    expect(has(meg({ model: { shared_experts: 1 } }), '--moe-shared-expert-intermediate-size 512')).toBe(true); // 1 x 512
    expect(has(msp({ model: { shared_experts: 3 } }), '--moe-intermediate-size 512 --n-shared-experts 3 --moe-token-dispatcher-type')).toBe(true);
    expect(meg().args).not.toContain('--moe-shared-expert-intermediate-size');
    expect(msp().args).not.toContain('--n-shared-experts');
    expect(msp({ model: { shared_experts: 3 } }).notes).toEqual([]);
  });
  it('MindSpeed shared width is --n-shared-experts x --moe-intermediate-size: a custom shared_ffn as that count, or a note', () => {
    // shared_ffn 1024 = 2 x 512: --n-shared-experts 2 gives the width, though the plan counts 1 shared expert
    const two = msp({ model: { shared_experts: 1, shared_ffn: 1024 } });
    expect(has(two, '--moe-intermediate-size 512 --n-shared-experts 2 --moe-token-dispatcher-type')).toBe(true);
    expect(two.notes).toEqual(["shared expert width 1024 = 2 x --moe-intermediate-size 512: --n-shared-experts 2 emitted, not the plan's 1 (MindSpeed-LLM sizes the shared experts as one MLP of that width)"]);
    // shared_ffn 1024 = 2 x 512 with 2 shared experts: the plan's own count, no note
    const same = msp({ model: { shared_experts: 2, shared_ffn: 1024 } });
    expect(has(same, '--moe-intermediate-size 512 --n-shared-experts 2 --moe-token-dispatcher-type')).toBe(true);
    expect(same.notes).toEqual([]);
    // shared_ffn 384, not a multiple of 512: the plan's count 2 is emitted (2 x 512 = 1024 wide) and noted
    const odd = msp({ model: { shared_experts: 2, shared_ffn: 384 } });
    expect(has(odd, '--moe-intermediate-size 512 --n-shared-experts 2 --moe-token-dispatcher-type')).toBe(true);
    expect(odd.notes).toEqual(['shared expert width 384 is not a multiple of --moe-intermediate-size 512: not expressible on MindSpeed-LLM (width = --n-shared-experts x --moe-intermediate-size); 2 x 512 = 1024 emitted']);
    // Megatron takes the width itself
    expect(meg({ model: { shared_experts: 2, shared_ffn: 384 } }).notes).toEqual([]);
  });
  it('dense leading layers: --moe-layer-freq list on Megatron, --first-k-dense-replace on MindSpeed', () => {
    const over: Over = { model: { dense_layers: 3, dense_ffn: 2048 } };
    const e = meg(over);
    // 3 dense + (4 - 3) = 1 MoE layer
    expect(has(e, '--ffn-hidden-size 2048 --num-experts 8 --moe-router-topk 2 --moe-ffn-hidden-size 512 --moe-layer-freq ([0]*3+[1]*1) --moe-token-dispatcher-type alltoall')).toBe(true);
    expect(e.command).toContain("--moe-layer-freq '([0]*3+[1]*1)' ");
    expect(has(msp(over), '--moe-intermediate-size 512 --first-k-dense-replace 3 --moe-token-dispatcher-type')).toBe(true);
    expect(meg().args).not.toContain('--moe-layer-freq');
    expect(msp().args).not.toContain('--first-k-dense-replace');
  });
  it('MTP layers: --mtp-num-layers on Megatron, --num-nextn-predict-layers on MindSpeed', () => {
    expect(has(meg({ model: { mtp_layers: 2 } }), '--moe-permute-fusion --mtp-num-layers 2 --tensor-model-parallel-size 1')).toBe(true);
    expect(has(msp({ model: { mtp_layers: 2 } }), '--moe-permutation-async-comm --num-nextn-predict-layers 2 --tensor-model-parallel-size 1')).toBe(true);
    expect(meg().args).not.toContain('--mtp-num-layers');
    expect(msp().args).not.toContain('--num-nextn-predict-layers');
  });
  it('capacity factor: capacity and padding flags on both engines; none when dropless', () => {
    for (const e of [meg({ training: { capacity_factor: 1.5 } }), msp({ training: { capacity_factor: 1.5 } })]) {
      expect(has(e, '--moe-router-load-balancing-type aux_loss --moe-expert-capacity-factor 1.5 --moe-pad-expert-input-to-capacity')).toBe(true);
    }
    expect(meg().args).not.toContain('--moe-expert-capacity-factor');
    expect(meg().args).not.toContain('--moe-pad-expert-input-to-capacity');
  });
  it('capacity factor with the flex dispatcher: capacity kept, padding dropped with a note (flex refuses it)', () => {
    // ep 2, dispatcher flex (a2a defaults to hierarchical): tp x ep = 2 > 1, so flex stays
    const e = meg({ parallel: { ep: 2, dispatcher: 'flex' }, training: { capacity_factor: 1.5 } });
    expect(between(e, '--moe-token-dispatcher-type', '--tensor-model-parallel-size')).toEqual(['flex', '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss',
      '--moe-expert-capacity-factor', '1.5', '--moe-permute-fusion']);
    expect(e.notes).toEqual([
      "--moe-pad-expert-input-to-capacity dropped: the flex (DeepEP) dispatcher refuses it; tokens over capacity are still dropped, the experts' inputs are not padded to capacity",
      'hierarchical all-to-all: DeepEP (--moe-enable-deepep, the flex dispatcher) does node-deduplicated dispatch on NVIDIA',
    ]);
    // MindSpeed emits alltoall whatever the dispatcher, so it pads
    expect(has(msp({ parallel: { ep: 2, dispatcher: 'flex' }, training: { capacity_factor: 1.5 } }), '--moe-expert-capacity-factor 1.5 --moe-pad-expert-input-to-capacity')).toBe(true);
  });
  it('shared-expert overlap: Megatron only, and only with shared experts', () => {
    expect(has(meg({ model: { shared_experts: 1 }, parallel: { shared_expert_overlap: true } }), '--moe-router-load-balancing-type aux_loss --moe-shared-expert-overlap --moe-permute-fusion')).toBe(true);
    expect(meg({ parallel: { shared_expert_overlap: true } }).args).not.toContain('--moe-shared-expert-overlap'); // no shared experts
    expect(msp({ model: { shared_experts: 1 }, parallel: { shared_expert_overlap: true } }).args).not.toContain('--moe-shared-expert-overlap');
    expect(meg({ model: { shared_experts: 1 } }).args).not.toContain('--moe-shared-expert-overlap'); // overlap off
    expect(meg({ model: { shared_experts: 1 }, parallel: { shared_expert_overlap: true } }).notes).toEqual([]);
  });
  it('shared-expert overlap needs the alltoall dispatcher (core_r0.13 to core_r0.17): not emitted with allgather or flex, and noted', () => {
    const ag = meg({ model: { shared_experts: 1 }, parallel: { shared_expert_overlap: true, dispatcher: 'allgather' } });
    expect(has(ag, '--moe-router-load-balancing-type aux_loss --moe-permute-fusion')).toBe(true);
    expect(ag.notes).toEqual(['--moe-shared-expert-overlap needs the alltoall token dispatcher, not allgather: not emitted']);
    // flex with ep 2 (tp x ep = 2); a2a defaults to hierarchical: the DeepEP note comes after
    const fx = meg({ model: { shared_experts: 1 }, parallel: { ep: 2, shared_expert_overlap: true, dispatcher: 'flex' } });
    expect(fx.args).not.toContain('--moe-shared-expert-overlap');
    expect(fx.notes).toEqual(['--moe-shared-expert-overlap needs the alltoall token dispatcher, not flex: not emitted',
      'hierarchical all-to-all: DeepEP (--moe-enable-deepep, the flex dispatcher) does node-deduplicated dispatch on NVIDIA']);
  });
});

describe('exportPlan: parallel layout', () => {
  it('tp 2: sequence parallelism; --tp-comm-overlap on Megatron only and only with tp_overlap', () => {
    // etp defaults to tp = 2
    const e = meg({ parallel: { tp: 2 } });
    expect(between(e, '--moe-permute-fusion', '--micro-batch-size')).toEqual(['--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '1',
      '--sequence-parallel', '--expert-model-parallel-size', '1', '--expert-tensor-parallel-size', '2']);
    expect(between(e, '--overlap-param-gather', '--attention-backend')).toEqual(['--tp-comm-overlap']);
    expect(meg({ parallel: { tp: 2, tp_overlap: false } }).args).not.toContain('--tp-comm-overlap');
    expect(meg({ parallel: { tp_overlap: true } }).args).not.toContain('--tp-comm-overlap'); // tp 1
    expect(meg().args).not.toContain('--sequence-parallel');
    const s = msp({ parallel: { tp: 2 } });
    expect(s.args).not.toContain('--tp-comm-overlap');
    // etp 2 = tp: experts split over the TP group, as core_r0.8.0 does; no note
    expect(between(s, '--moe-permutation-async-comm', '--micro-batch-size')).toEqual(['--tensor-model-parallel-size', '2', '--pipeline-model-parallel-size', '1',
      '--sequence-parallel', '--expert-model-parallel-size', '1']);
    expect(s.notes).toEqual([]);
  });
  it('context parallelism: --context-parallel-size after the expert flags when cp > 1', () => {
    // cp 2: dp = 8 / 2 = 4; seq_len 1024 % 2 = 0
    expect(between(meg({ parallel: { cp: 2 } }), '--expert-tensor-parallel-size', '--micro-batch-size')).toEqual(['1', '--context-parallel-size', '2']);
    expect(between(msp({ parallel: { cp: 2 } }), '--expert-model-parallel-size', '--micro-batch-size')).toEqual(['1', '--context-parallel-size', '2']);
    expect(meg().args).not.toContain('--context-parallel-size');
  });
  it('vpp dividing the layers: no padding, no note; the virtual-stage flag per engine', () => {
    // layers 8, pp 2, vpp 2: 4 chunks, 8 % 4 = 0; dp = 8 / 2 = 4
    const over: Over = { model: { layers: 8 }, parallel: { pp: 2, vpp: 2 } };
    const e = meg(over);
    expect(has(e, '--num-layers 8 --hidden-size')).toBe(true);
    expect(between(e, '--moe-permute-fusion', '--expert-model-parallel-size')).toEqual(['--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '2',
      '--num-virtual-stages-per-pipeline-rank', '2']);
    expect(e.notes).toEqual([]);
    const s = msp(over);
    expect(has(s, '--num-layers 8 --hidden-size')).toBe(true);
    expect(s.args).not.toContain('--noop-layers');
    expect(between(s, '--moe-permutation-async-comm', '--expert-model-parallel-size')).toEqual(['--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '2',
      '--num-layers-per-virtual-pipeline-stage', '2']); // 8 / 4 chunks
    expect(s.notes).toEqual([]);
  });
  it('pp not dividing the layers without vpp: MindSpeed pads one no-op layer, Megatron notes the uneven split', () => {
    // layers 5, pp 2: chunks 2, 5 % 2 = 1; dp = 4
    const over: Over = { model: { layers: 5 }, parallel: { pp: 2 } };
    const s = msp(over);
    expect(s.args.slice(0, 8)).toEqual(['--num-layers', '6', '--hidden-size', '256', '--num-attention-heads', '8', '--noop-layers', '5']); // ceil(5/2)*2 = 6
    expect(s.args).not.toContain('--num-layers-per-virtual-pipeline-stage');
    expect(s.notes).toEqual(['5 layers padded to 6 with no-op layers (--noop-layers) so that 2 pipeline chunks split evenly']);
    const e = meg(over);
    expect(e.args.slice(0, 2)).toEqual(['--num-layers', '5']);
    expect(e.args).not.toContain('--noop-layers');
    expect(e.args).not.toContain('--num-virtual-stages-per-pipeline-rank');
    expect(e.notes).toEqual(['layers do not divide evenly over pipeline chunks: set --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers']);
  });
  it('Megatron: ep and etp as given (no TP-extend-EP even when MindSpeed would use it)', () => {
    // tp 2, etp 1, ep 4: ep*etp = 4 divides tp*dp = 2*4
    const e = meg({ parallel: { tp: 2, etp: 1, ep: 4 } });
    expect(between(e, '--sequence-parallel', '--micro-batch-size')).toEqual(['--expert-model-parallel-size', '4', '--expert-tensor-parallel-size', '1']);
    expect(e.args).not.toContain('--moe-tp-extend-ep');
    expect(e.notes).toEqual([]);
  });
  it('MindSpeed TP-extend-EP: needs tp > 1, etp 1, tp | ep and ep > tp', () => {
    const extend = "--moe-tp-extend-ep: experts spread over the TP group too; MindSpeed's --expert-model-parallel-size is ep/tp = 2";
    const yes = msp({ parallel: { tp: 2, etp: 1, ep: 4 } });
    expect(between(yes, '--sequence-parallel', '--micro-batch-size')).toEqual(['--expert-model-parallel-size', '2']); // 4 / 2
    expect(between(yes, '--overlap-param-gather', '--use-mcore-models')).toEqual(['--moe-tp-extend-ep']);
    expect(yes.notes).toEqual([extend]);
    // tp 1: no TP group to extend over (etp = tp = 1: nothing to note either)
    const tp1 = msp({ parallel: { ep: 4 } });
    expect(between(tp1, '--pipeline-model-parallel-size', '--micro-batch-size')).toEqual(['1', '--expert-model-parallel-size', '4']);
    expect(tp1.args).not.toContain('--moe-tp-extend-ep');
    expect(tp1.notes).toEqual([]);
    // etp 2 = tp: ep*etp = 8 divides tp*dp = 8; experts over the TP group as core_r0.8.0 does
    const etp2 = msp({ parallel: { tp: 2, etp: 2, ep: 4 } });
    expect(between(etp2, '--sequence-parallel', '--micro-batch-size')).toEqual(['--expert-model-parallel-size', '4']);
    expect(etp2.args).not.toContain('--moe-tp-extend-ep');
    expect(etp2.notes).toEqual([]);
    // ep = tp = 2 (the ep > tp boundary): not extended, and etp 1 != tp 2 cannot be expressed
    const eq = msp({ parallel: { tp: 2, etp: 1, ep: 2 } });
    expect(between(eq, '--sequence-parallel', '--micro-batch-size')).toEqual(['--expert-model-parallel-size', '2']);
    expect(eq.args).not.toContain('--moe-tp-extend-ep');
    expect(eq.notes).toEqual(['expert TP 1 is not expressible on Megatron core_r0.8.0 (experts use the TP group, 2); plan with etp = tp or TP-extend-EP']);
    // tp 2, etp 1, ep 1 (ep < tp)
    expect(msp({ parallel: { tp: 2, etp: 1 } }).notes).toEqual(['expert TP 1 is not expressible on Megatron core_r0.8.0 (experts use the TP group, 2); plan with etp = tp or TP-extend-EP']);
  });
  it('MindSpeed TP-extend-EP needs ep a multiple of tp (tp 4, ep 6: not extended)', () => {
    // 12 experts, 24 devices, tp 4: dp 6; ep*etp = 6 divides tp*dp = 24; 6 % 4 = 2
    const e = msp({ model: { experts: 12 }, hardware: { preset: 'h100', devices: 24 }, parallel: { tp: 4, etp: 1, ep: 6 }, training: { global_batch: 24 } });
    expect(between(e, '--sequence-parallel', '--micro-batch-size')).toEqual(['--expert-model-parallel-size', '6']);
    expect(e.args).not.toContain('--moe-tp-extend-ep');
    expect(e.notes).toEqual(['expert TP 1 is not expressible on Megatron core_r0.8.0 (experts use the TP group, 4); plan with etp = tp or TP-extend-EP']);
    // 24 devices on 8 per node: 3 nodes
    expect(e.command.startsWith('torchrun --nnodes 3 --nproc-per-node 8 ')).toBe(true);
  });
});

describe('exportPlan: pipeline schedules without an engine flag', () => {
  it.each(['dualpipe', 'dualpipev', 'zero-bubble'])('%s: a note naming the engine, 1F1B emitted (ep 1: no EP overlap, none promised)', (schedule) => {
    // pp 2 (even, as DualPipe needs), ep 1: no EP overlap emitted; chunks 2 divide 4 layers
    const over: Over = { parallel: { pp: 2, schedule } };
    const e = meg(over);
    expect(e.notes).toEqual([`schedule ${schedule} has no upstream Megatron-LM flag; emitted 1F1B instead`]);
    expect(between(e, '--moe-permute-fusion', '--expert-model-parallel-size')).toEqual(['--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '2']);
    expect(msp(over).notes).toEqual([`schedule ${schedule} has no upstream MindSpeed flag; emitted 1F1B instead`]);
  });
  it('zero-bubble with pp 1 and EP on Megatron: the EP overlap is emitted, and the note says so', () => {
    // zero-bubble keeps vpp 1 but, unlike DualPipe, allows pp 1: Megatron-Core's pipeline rule does not apply
    const e = meg({ parallel: { ep: 2, schedule: 'zero-bubble', ep_overlap: 'adaptive' } });
    expect(e.args).toContain('--overlap-moe-expert-parallel-comm');
    expect(e.notes).toEqual(['schedule zero-bubble has no upstream Megatron-LM flag; emitted 1F1B with EP all-to-all overlap instead']);
  });
  it('1f1b and interleaved: no schedule note', () => {
    expect(meg({ parallel: { pp: 2, schedule: '1f1b' } }).notes).toEqual([]);
    expect(msp({ parallel: { pp: 2, vpp: 2, schedule: 'interleaved' } }).notes).toEqual([]);
  });
  it('dualpipe with EP on Megatron: the EP overlap is refused (pp 2, no vpp), and the schedule note promises none', () => {
    // ep_overlap defaults to 'dualpipe' under schedule dualpipe; pp 2 > 1 and vpp 1 <= 1. On Megatron this holds for
    // every dualpipe plan: dualpipe forces vpp 1 and an even pp >= 2
    const e = meg({ parallel: { pp: 2, ep: 2, schedule: 'dualpipe' } });
    expect(e.notes).toEqual([
      'schedule dualpipe has no upstream Megatron-LM flag; emitted 1F1B instead',
      '--overlap-moe-expert-parallel-comm needs a virtual pipeline (vpp > 1) when pp > 1: no EP overlap emitted',
    ]);
    expect(e.args).not.toContain('--overlap-moe-expert-parallel-comm');
    // MindSpeed has no such rule: tp 1, so its all-to-all overlap is emitted
    const s = msp({ parallel: { pp: 2, ep: 2, schedule: 'dualpipe' } });
    expect(between(s, '--overlap-param-gather', '--use-mcore-models')).toEqual(['--moe-alltoall-overlap-comm']);
    expect(s.notes).toEqual(['schedule dualpipe has no upstream MindSpeed flag; emitted 1F1B with EP all-to-all overlap instead']);
    // MindSpeed with tp 2 (etp 2, not TP-extend-EP): its overlap refused, the schedule note promises none
    const t2 = msp({ parallel: { pp: 2, ep: 2, tp: 2, schedule: 'dualpipe' } });
    expect(t2.args).not.toContain('--moe-alltoall-overlap-comm');
    expect(t2.notes).toEqual(['schedule dualpipe has no upstream MindSpeed flag; emitted 1F1B instead',
      'MindSpeed overlaps the EP all-to-all only with tp 1 or --moe-tp-extend-ep: no overlap emitted']);
  });
  it('the Megatron dualpipe note never promises an EP all-to-all overlap the same export does not emit', () => {
    for (const schedule of ['dualpipe', 'dualpipev']) {
      for (const ep_overlap of ['dualpipe', 'adaptive', 'a2a-1f1b']) {
        const e = meg({ parallel: { pp: 2, ep: 2, schedule, ep_overlap } });
        expect(e.args).not.toContain('--overlap-moe-expert-parallel-comm');
        expect(e.notes.filter((n) => n.includes('with EP all-to-all overlap'))).toEqual([]);
      }
    }
  });
});

describe('exportPlan: precision', () => {
  it('fp8: e4m3 blockwise on Megatron after --bf16; a note on MindSpeed (no FP8 on Ascend)', () => {
    const e = meg({ training: { precision: 'fp8' } });
    expect(between(e, '--global-batch-size', '--use-distributed-optimizer')).toEqual(['16', '--bf16', '--fp8-format', 'e4m3', '--fp8-recipe', 'blockwise']);
    expect(e.notes).toEqual([]);
    const s = msp({ training: { precision: 'fp8' } });
    expect(between(s, '--global-batch-size', '--use-distributed-optimizer')).toEqual(['16', '--bf16']);
    expect(s.notes).toEqual(['Ascend 910B/910C have no FP8 GEMMs: fp8 ignored, bf16 emitted']);
    expect(meg().args).not.toContain('--fp8-format');
  });
  it('bf16 gradient reduction: --grad-reduce-in-bf16 on Megatron, a note on MindSpeed; nothing for fp32', () => {
    const over: Over = { training: { grad_precision: 'bf16' } };
    expect(between(meg(over), '--overlap-param-gather', '--attention-backend')).toEqual(['--grad-reduce-in-bf16']);
    const s = msp(over);
    expect(s.args).toEqual(MS_BASE);
    expect(s.notes).toEqual(["grad_precision bf16: Megatron core_r0.8.0 (MindSpeed-LLM's base) has no --grad-reduce-in-bf16; gradients stay fp32"]);
    expect(meg({ training: { grad_precision: 'fp32' } }).args).toEqual(MEG_BASE);
  });
  it('bf16 optimizer moments: the precision-aware optimizer on Megatron, a note on MindSpeed', () => {
    const over: Over = { training: { optimizer_precision: 'bf16' } };
    expect(between(meg(over), '--overlap-param-gather', '--attention-backend')).toEqual(['--use-precision-aware-optimizer', '--exp-avg-dtype', 'bf16', '--exp-avg-sq-dtype', 'bf16']);
    const s = msp(over);
    expect(s.args).toEqual(MS_BASE);
    expect(s.notes).toEqual(['optimizer_precision bf16: core_r0.8.0 has no precision-aware optimizer; Adam moments stay fp32 (memory will exceed the plan)']);
  });
  it('both bf16: gradient flag before the optimizer flags; both notes in that order on MindSpeed', () => {
    const over: Over = { training: { grad_precision: 'bf16', optimizer_precision: 'bf16' } };
    expect(between(meg(over), '--overlap-param-gather', '--attention-backend')).toEqual(['--grad-reduce-in-bf16', '--use-precision-aware-optimizer', '--exp-avg-dtype', 'bf16', '--exp-avg-sq-dtype', 'bf16']);
    expect(msp(over).notes).toEqual([
      "grad_precision bf16: Megatron core_r0.8.0 (MindSpeed-LLM's base) has no --grad-reduce-in-bf16; gradients stay fp32",
      'optimizer_precision bf16: core_r0.8.0 has no precision-aware optimizer; Adam moments stay fp32 (memory will exceed the plan)',
    ]);
  });
});

describe('exportPlan: ZeRO and data-parallel overlap', () => {
  const megZero = (parallel: Section) => between(meg({ parallel }), '--bf16', '--attention-backend');
  const msZero = (parallel: Section) => between(msp({ parallel }), '--bf16', '--use-mcore-models');
  it('zero 1 and 2: the distributed optimizer, with both overlaps when dp_overlap', () => {
    for (const zero of [1, 2]) {
      expect(megZero({ zero })).toEqual(['--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather']);
      expect(msZero({ zero })).toEqual(['--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather']);
      expect(megZero({ zero, dp_overlap: false })).toEqual(['--use-distributed-optimizer']);
      expect(msZero({ zero, dp_overlap: false })).toEqual(['--use-distributed-optimizer']);
    }
    expect(meg({ parallel: { zero: 2 } }).notes).toEqual([]);
  });
  it('zero 0: only the gradient-reduce overlap, and nothing without dp_overlap', () => {
    expect(megZero({ zero: 0 })).toEqual(['--overlap-grad-reduce']);
    expect(msZero({ zero: 0 })).toEqual(['--overlap-grad-reduce']);
    expect(megZero({ zero: 0, dp_overlap: false })).toEqual([]);
    expect(msZero({ zero: 0, dp_overlap: false })).toEqual([]);
  });
  it('zero 3: Megatron FSDP on Megatron; the distributed optimizer and a note on MindSpeed', () => {
    expect(megZero({ zero: 3 })).toEqual(['--use-megatron-fsdp', '--data-parallel-sharding-strategy', 'optim_grads_params']);
    expect(megZero({ zero: 3, dp_overlap: false })).toEqual(['--use-megatron-fsdp', '--data-parallel-sharding-strategy', 'optim_grads_params']);
    expect(meg({ parallel: { zero: 3 } }).notes).toEqual([]);
    const note = 'ZeRO-3 has no MindSpeed-LLM (core_r0.8.0) flag: the distributed optimizer (ZeRO-1) emitted; memory will exceed the plan';
    // MindSpeed's fallback is ZeRO-1's: the two overlaps only with dp_overlap
    expect(msZero({ zero: 3 })).toEqual(['--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather']);
    expect(msZero({ zero: 3, dp_overlap: false })).toEqual(['--use-distributed-optimizer']);
    for (const dp_overlap of [true, false]) expect(msp({ parallel: { zero: 3, dp_overlap } }).notes).toEqual([note]);
  });
  it('CUDA graphs: --enable-cuda-graph on Megatron, a note on MindSpeed', () => {
    expect(megZero({ cuda_graphs: true })).toEqual(['--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather', '--enable-cuda-graph']);
    const s = msp({ parallel: { cuda_graphs: true } });
    expect(s.args).toEqual(MS_BASE);
    expect(s.notes).toEqual(['CUDA graphs: no Ascend counterpart, not emitted']);
    expect(meg({ parallel: { cuda_graphs: false } }).args).not.toContain('--enable-cuda-graph');
  });
});

describe('exportPlan: recompute', () => {
  const megRc = (recompute: unknown) => between(meg({ parallel: { recompute } }), '--overlap-param-gather', '--attention-backend');
  const msRc = (recompute: unknown) => between(msp({ parallel: { recompute } }), '--overlap-param-gather', '--use-mcore-models');
  it('none and an empty module list: nothing', () => {
    expect(megRc('none')).toEqual([]);
    expect(msRc('none')).toEqual([]);
    expect(megRc([])).toEqual([]);
    expect(msRc([])).toEqual([]);
  });
  it('full: uniform, one layer per checkpoint, on both engines', () => {
    expect(megRc('full')).toEqual(['--recompute-granularity', 'full', '--recompute-method', 'uniform', '--recompute-num-layers', '1']);
    expect(msRc('full')).toEqual(['--recompute-granularity', 'full', '--recompute-method', 'uniform', '--recompute-num-layers', '1']);
  });
  it('selective on both engines', () => {
    expect(megRc('selective')).toEqual(['--recompute-granularity', 'selective']);
    expect(msRc('selective')).toEqual(['--recompute-granularity', 'selective']);
  });
  it('Megatron module list: every planner module mapped to its Megatron name, duplicates dropped, input order kept', () => {
    // mla_up -> mla_up_proj, attention -> core_attn, then core_attn again is a duplicate
    expect(megRc(['mla_up', 'attention', 'core_attn', 'moe_act', 'layernorm', 'moe', 'mlp'])).toEqual(['--recompute-granularity', 'selective',
      '--recompute-modules', 'mla_up_proj', 'core_attn', 'moe_act', 'layernorm', 'moe', 'mlp']);
    expect(megRc(['moe_act'])).toEqual(['--recompute-granularity', 'selective', '--recompute-modules', 'moe_act']);
    expect(megRc('layernorm')).toEqual(['--recompute-granularity', 'selective', '--recompute-modules', 'layernorm']); // one module as a string
  });
  it('MindSpeed module list: activation-function and norm recompute, selective only for the other modules', () => {
    expect(msRc(['moe_act'])).toEqual(['--recompute-activation-function']);
    expect(msRc(['layernorm'])).toEqual(['--recompute-norm']);
    expect(msRc(['layernorm', 'moe_act'])).toEqual(['--recompute-activation-function', '--recompute-norm']);
    expect(msRc(['mlp'])).toEqual(['--recompute-granularity', 'selective']);
    expect(msRc(['moe_act', 'layernorm', 'core_attn'])).toEqual(['--recompute-activation-function', '--recompute-norm', '--recompute-granularity', 'selective']);
    expect(msp({ parallel: { recompute: ['moe_act', 'mla_up'] } }).notes).toEqual([]);
  });
});

describe('exportPlan: EP all-to-all overlap', () => {
  // ep 2: experts 8 % 2 = 0, ep*etp = 2 divides tp*cp*dp = 8
  const megEp = (parallel: Section, model: Section = {}) => meg({ parallel: { ep: 2, ...parallel }, model });
  const tail = (e: ExportResult) => between(e, '--overlap-param-gather', '--attention-backend');
  it('Megatron: adaptive emits --overlap-moe-expert-parallel-comm; a2a-1f1b adds --delay-wgrad-compute', () => {
    const a = megEp({ ep_overlap: 'adaptive' });
    expect(tail(a)).toEqual(['--overlap-moe-expert-parallel-comm']);
    expect(a.notes).toEqual([]);
    expect(tail(megEp({ ep_overlap: 'dualpipe' }))).toEqual(['--overlap-moe-expert-parallel-comm']);
    expect(tail(megEp({ ep_overlap: 'a2a-1f1b' }))).toEqual(['--overlap-moe-expert-parallel-comm', '--delay-wgrad-compute']);
  });
  it('Megatron: none, or ep 1, emits nothing', () => {
    expect(tail(megEp({ ep_overlap: 'none' }))).toEqual([]);
    const one = meg({ parallel: { ep_overlap: 'a2a-1f1b' } });
    expect(tail(one)).toEqual([]);
    expect(one.notes).toEqual([]);
  });
  it('Megatron: pp > 1 needs vpp > 1 (pp 2 vpp 1 refused, pp 2 vpp 2 allowed)', () => {
    const refused = megEp({ ep_overlap: 'adaptive', pp: 2 });
    expect(tail(refused)).toEqual([]);
    expect(refused.notes).toEqual(['--overlap-moe-expert-parallel-comm needs a virtual pipeline (vpp > 1) when pp > 1: no EP overlap emitted']);
    const allowed = megEp({ ep_overlap: 'adaptive', pp: 2, vpp: 2 }); // 4 chunks, 4 layers
    expect(tail(allowed)).toEqual(['--overlap-moe-expert-parallel-comm']);
    expect(allowed.notes).toEqual([]);
  });
  it('Megatron: full recompute and recomputing moe are refused; other modules are not', () => {
    const full = megEp({ ep_overlap: 'adaptive', recompute: 'full' });
    expect(tail(full)).toEqual(['--recompute-granularity', 'full', '--recompute-method', 'uniform', '--recompute-num-layers', '1']);
    expect(full.notes).toEqual(['--overlap-moe-expert-parallel-comm is incompatible with full recompute: no EP overlap emitted']);
    const moe = megEp({ ep_overlap: 'adaptive', recompute: ['moe'] });
    expect(moe.args).not.toContain('--overlap-moe-expert-parallel-comm');
    expect(moe.notes).toEqual(["--overlap-moe-expert-parallel-comm is incompatible with recomputing 'moe': no EP overlap emitted"]);
    const mlp = megEp({ ep_overlap: 'adaptive', recompute: ['mlp'] });
    expect(tail(mlp)).toEqual(['--recompute-granularity', 'selective', '--recompute-modules', 'mlp', '--overlap-moe-expert-parallel-comm']);
    expect(mlp.notes).toEqual([]);
    expect(tail(megEp({ ep_overlap: 'adaptive', recompute: 'selective' }))).toEqual(['--recompute-granularity', 'selective', '--overlap-moe-expert-parallel-comm']);
  });
  it('Megatron: at most one MTP layer (1 allowed, 2 refused)', () => {
    expect(tail(megEp({ ep_overlap: 'adaptive' }, { mtp_layers: 1 }))).toEqual(['--overlap-moe-expert-parallel-comm']);
    const two = megEp({ ep_overlap: 'adaptive' }, { mtp_layers: 2 });
    expect(tail(two)).toEqual([]);
    expect(two.notes).toEqual(['--overlap-moe-expert-parallel-comm supports at most one MTP layer: no EP overlap emitted']);
  });
  it('Megatron: the first failing rule is the one reported', () => {
    // pp 2 without vpp and full recompute: the pipeline rule comes first
    expect(megEp({ ep_overlap: 'adaptive', pp: 2, recompute: 'full' }).notes).toEqual(['--overlap-moe-expert-parallel-comm needs a virtual pipeline (vpp > 1) when pp > 1: no EP overlap emitted']);
    // full recompute before the MTP rule
    expect(megEp({ ep_overlap: 'adaptive', recompute: 'full' }, { mtp_layers: 2 }).notes).toEqual(['--overlap-moe-expert-parallel-comm is incompatible with full recompute: no EP overlap emitted']);
    // recomputing moe before the MTP rule
    expect(megEp({ ep_overlap: 'adaptive', recompute: ['moe'] }, { mtp_layers: 2 }).notes).toEqual(["--overlap-moe-expert-parallel-comm is incompatible with recomputing 'moe': no EP overlap emitted"]);
  });
  it('MindSpeed: --moe-alltoall-overlap-comm with tp 1 (even with pp 2 and full recompute), refused with tp > 1 without TP-extend-EP', () => {
    const msTail = (e: ExportResult) => between(e, '--overlap-param-gather', '--use-mcore-models');
    expect(msTail(msp({ parallel: { ep: 2, ep_overlap: 'adaptive' } }))).toEqual(['--moe-alltoall-overlap-comm']);
    expect(msTail(msp({ parallel: { ep: 2, ep_overlap: 'a2a-1f1b', pp: 2, recompute: 'full' } }))).toEqual(['--recompute-granularity', 'full', '--recompute-method', 'uniform',
      '--recompute-num-layers', '1', '--moe-alltoall-overlap-comm']);
    // tp 2, etp 2, ep 2: ep*etp = 4 divides 8; not TP-extend (etp != 1)
    const refused = msp({ parallel: { tp: 2, ep: 2, ep_overlap: 'adaptive' } });
    expect(msTail(refused)).toEqual([]);
    expect(refused.notes).toEqual(['MindSpeed overlaps the EP all-to-all only with tp 1 or --moe-tp-extend-ep: no overlap emitted']);
    expect(msTail(msp({ parallel: { ep: 2 } }))).toEqual([]); // ep_overlap none
    expect(msTail(msp({ parallel: { ep_overlap: 'adaptive' } }))).toEqual([]); // ep 1
  });
  it('Megatron: the allgather dispatcher is refused (Megatron-Core asserts alltoall or flex); flex is allowed', () => {
    // transformer_config.py: "overlap_moe_expert_parallel_comm is supported with alltoall/flex token dispatcher"
    const ag = megEp({ ep_overlap: 'adaptive', dispatcher: 'allgather' });
    expect(ag.args).toEqual(MEG_BASE.map((x, i) => (MEG_BASE[i - 1] === '--moe-token-dispatcher-type' ? 'allgather' : MEG_BASE[i - 1] === '--expert-model-parallel-size' ? '2' : x)));
    expect(ag.notes).toEqual(['--overlap-moe-expert-parallel-comm needs the alltoall or flex token dispatcher, not allgather: no EP overlap emitted']);
    // the dispatcher rule comes after the pipeline rule and before the recompute rule
    expect(megEp({ ep_overlap: 'adaptive', dispatcher: 'allgather', pp: 2 }).notes).toEqual(['--overlap-moe-expert-parallel-comm needs a virtual pipeline (vpp > 1) when pp > 1: no EP overlap emitted']);
    expect(megEp({ ep_overlap: 'adaptive', dispatcher: 'allgather', recompute: 'full' }).notes).toEqual(['--overlap-moe-expert-parallel-comm needs the alltoall or flex token dispatcher, not allgather: no EP overlap emitted']);
    // allgather with a2a hierarchical runs flex (DeepEP): allowed, --moe-enable-deepep after the overlap
    const hier = megEp({ ep_overlap: 'adaptive', dispatcher: 'allgather', a2a: 'hierarchical' });
    expect(has(hier, '--moe-token-dispatcher-type flex')).toBe(true);
    expect(tail(hier)).toEqual(['--overlap-moe-expert-parallel-comm', '--moe-enable-deepep']);
    expect(hier.notes).toEqual(['hierarchical all-to-all: DeepEP (--moe-enable-deepep, the flex dispatcher) does node-deduplicated dispatch on NVIDIA']);
    expect(tail(megEp({ ep_overlap: 'a2a-1f1b', dispatcher: 'flex' }))).toEqual(['--overlap-moe-expert-parallel-comm', '--delay-wgrad-compute', '--moe-enable-deepep']);
  });
  it('Megatron: with the EP overlap, --moe-shared-expert-overlap is dropped (Megatron-Core asserts not both) and noted', () => {
    // transformer_config.py: "disable moe_shared_expert_overlap when enabling overlap_moe_expert_parallel_comm"
    const e = megEp({ ep_overlap: 'adaptive', shared_expert_overlap: true }, { shared_experts: 1 });
    expect(e.args).toEqual([...HEAD, '--moe-ffn-hidden-size', '512', '--moe-shared-expert-intermediate-size', '512', // 1 x 512
      '--moe-token-dispatcher-type', 'alltoall', '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss',
      '--moe-permute-fusion', // no --moe-shared-expert-overlap before it
      '--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1', '--expert-model-parallel-size', '2', '--expert-tensor-parallel-size', '1',
      '--micro-batch-size', '1', '--global-batch-size', '16', '--bf16', '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather',
      '--overlap-moe-expert-parallel-comm', '--attention-backend', 'fused']);
    expect(e.notes).toEqual(['--moe-shared-expert-overlap dropped: Megatron-Core refuses it together with --overlap-moe-expert-parallel-comm']);
    // the EP overlap refused (pp 2 without vpp): the shared-expert overlap stays
    const kept = megEp({ ep_overlap: 'adaptive', shared_expert_overlap: true, pp: 2 }, { shared_experts: 1 });
    expect(has(kept, '--moe-router-load-balancing-type aux_loss --moe-shared-expert-overlap --moe-permute-fusion')).toBe(true);
    expect(kept.args).not.toContain('--overlap-moe-expert-parallel-comm');
    expect(kept.notes).toEqual(['--overlap-moe-expert-parallel-comm needs a virtual pipeline (vpp > 1) when pp > 1: no EP overlap emitted']);
  });
});

describe('exportPlan: dispatcher and hierarchical all-to-all', () => {
  it('allgather dispatcher: as given on Megatron, alltoall and a note on MindSpeed', () => {
    expect(has(meg({ parallel: { dispatcher: 'allgather' } }), '--moe-token-dispatcher-type allgather --moe-grouped-gemm')).toBe(true);
    const s = msp({ parallel: { dispatcher: 'allgather' } });
    expect(s.args).toEqual(MS_BASE);
    expect(s.notes).toEqual(["dispatcher allgather: MindSpeed's all-to-all overlap needs alltoall, emitted instead"]);
  });
  const deepep = 'hierarchical all-to-all: DeepEP (--moe-enable-deepep, the flex dispatcher) does node-deduplicated dispatch on NVIDIA';
  const msHier = 'node-deduplicated (DeepEP-style) dispatch has no MindSpeed (2025) flag: plain all-to-all emitted; its --moe-hierarchical-alltoallv is the all-gather variant (a2a: hierarchical-allgather)';
  it('hierarchical on Megatron: DeepEP, and the dispatcher value rewritten to flex', () => {
    for (const dispatcher of ['alltoall', 'allgather', 'flex']) {
      // a2a defaults to hierarchical under flex; set explicitly for the other two
      const e = meg({ parallel: { ep: 2, dispatcher, a2a: 'hierarchical' } });
      expect(e.args).toEqual([...MEG_BASE.slice(0, MEG_BASE.indexOf('--moe-token-dispatcher-type')), '--moe-token-dispatcher-type', 'flex',
        '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss', '--moe-permute-fusion',
        '--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1', '--expert-model-parallel-size', '2', '--expert-tensor-parallel-size', '1',
        '--micro-batch-size', '1', '--global-batch-size', '16', '--bf16', '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather',
        '--moe-enable-deepep', '--attention-backend', 'fused']);
      expect(e.notes).toEqual([deepep]);
    }
    const flex = meg({ parallel: { ep: 2, dispatcher: 'flex' } }); // a2a default: hierarchical
    expect(flex.args).toContain('--moe-enable-deepep');
  });
  const flexArgs = (ep: string) => [...MEG_BASE.slice(0, MEG_BASE.indexOf('--moe-token-dispatcher-type')), '--moe-token-dispatcher-type', 'flex',
    '--moe-grouped-gemm', '--moe-router-load-balancing-type', 'aux_loss', '--moe-permute-fusion',
    '--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1', '--expert-model-parallel-size', ep, '--expert-tensor-parallel-size', '1',
    '--micro-batch-size', '1', '--global-batch-size', '16', '--bf16', '--use-distributed-optimizer', '--overlap-grad-reduce', '--overlap-param-gather',
    '--moe-enable-deepep', '--attention-backend', 'fused'];
  it('flex with a2a flat on Megatron: --moe-enable-deepep all the same (core_r0.13 asserts it), and a note that DeepEP is what runs', () => {
    const e = meg({ parallel: { ep: 2, dispatcher: 'flex', a2a: 'flat' } });
    expect(e.args).toEqual(flexArgs('2'));
    expect(e.notes).toEqual(["dispatcher flex: Megatron-Core runs it on DeepEP (--moe-enable-deepep), whose dispatch is node-deduplicated (a2a hierarchical), not the plan's a2a flat"]);
    // a2a hierarchical-allgather: the same note, and none saying plain all-to-all is emitted
    const ha = meg({ parallel: { ep: 2, dispatcher: 'flex', a2a: 'hierarchical-allgather' } });
    expect(ha.args).toEqual(flexArgs('2'));
    expect(ha.notes).toEqual(["dispatcher flex: Megatron-Core runs it on DeepEP (--moe-enable-deepep), whose dispatch is node-deduplicated (a2a hierarchical), not the plan's a2a hierarchical-allgather"]);
  });
  it('flex (or a2a hierarchical) with tp x ep = 1 on Megatron: alltoall emitted, no DeepEP, and a note', () => {
    // MoEFlexTokenDispatcher: "Flex token dispatcher requires TPxEP > 1"
    const note = 'DeepEP (the flex dispatcher) needs tp x ep > 1 (Megatron-Core asserts it): alltoall emitted; with tp 1 and ep 1 no token leaves its device';
    for (const parallel of [{ dispatcher: 'flex' }, { dispatcher: 'flex', a2a: 'flat' }, { a2a: 'hierarchical' }]) {
      const e = meg({ parallel });
      expect(e.args).toEqual(MEG_BASE);
      expect(e.notes).toEqual([note]);
    }
    // tp 2, ep 1 (etp defaults to 2): tp x ep = 2, flex stays; --tp-comm-overlap comes before --moe-enable-deepep
    const tp2 = meg({ parallel: { tp: 2, dispatcher: 'flex' } });
    expect(has(tp2, '--moe-token-dispatcher-type flex')).toBe(true);
    expect(between(tp2, '--overlap-param-gather', '--attention-backend')).toEqual(['--tp-comm-overlap', '--moe-enable-deepep']);
    expect(tp2.notes).toEqual(['hierarchical all-to-all: DeepEP (--moe-enable-deepep, the flex dispatcher) does node-deduplicated dispatch on NVIDIA']);
    // MindSpeed emits alltoall anyway: its own dispatcher note, no DeepEP note
    expect(msp({ parallel: { dispatcher: 'flex', a2a: 'flat' } }).notes).toEqual(["dispatcher flex: MindSpeed's all-to-all overlap needs alltoall, emitted instead"]);
  });
  it('hierarchical on MindSpeed: a note, plain all-to-all; flex also gets the dispatcher note first', () => {
    const s = msp({ parallel: { ep: 2, a2a: 'hierarchical' } });
    expect(s.args).toEqual(MS_BASE.map((x, i) => (MS_BASE[i - 1] === '--expert-model-parallel-size' ? '2' : x)));
    expect(s.notes).toEqual([msHier]);
    expect(msp({ parallel: { ep: 2, dispatcher: 'flex' } }).notes).toEqual(["dispatcher flex: MindSpeed's all-to-all overlap needs alltoall, emitted instead", msHier]);
  });
  it('hierarchical or hierarchical-allgather on a dense model: nothing', () => {
    for (const a2a of ['hierarchical', 'hierarchical-allgather']) {
      for (const e of [meg({ model: { experts: 0, dense_ffn: 1024 }, parallel: { a2a } }), msp({ model: { experts: 0, dense_ffn: 1024 }, parallel: { a2a } })]) {
        expect(e.notes).toEqual([]);
        expect(e.args).not.toContain('--moe-enable-deepep');
        expect(e.args).not.toContain('--moe-hierarchical-alltoallv');
      }
    }
  });
  it('hierarchical-allgather: --moe-hierarchical-alltoallv on MindSpeed with TP-extend-EP and tp = devices per node', () => {
    // devices_per_node 2 = tp; tp 2, etp 1, ep 4: TP-extend-EP. 8 devices / 2 per node = 4 nodes
    const e = msp({ hardware: { preset: 'h100', devices: 8, devices_per_node: 2 }, parallel: { tp: 2, etp: 1, ep: 4, a2a: 'hierarchical-allgather' } });
    expect(between(e, '--overlap-param-gather', '--use-mcore-models')).toEqual(['--moe-tp-extend-ep', '--moe-hierarchical-alltoallv']);
    expect(e.notes).toEqual(["--moe-tp-extend-ep: experts spread over the TP group too; MindSpeed's --expert-model-parallel-size is ep/tp = 2"]);
    expect(e.command.startsWith('torchrun --nnodes 4 --nproc-per-node 2 --node-rank $NODE_RANK ')).toBe(true);
  });
  it('hierarchical-allgather otherwise: a note naming the node size, plain all-to-all', () => {
    const note = 'hierarchical-allgather needs MindSpeed --moe-tp-extend-ep with tp = 8 (the NPUs of a node): plain all-to-all emitted';
    // TP-extend-EP but tp 2 != 8 per node
    const s = msp({ parallel: { tp: 2, etp: 1, ep: 4, a2a: 'hierarchical-allgather' } });
    expect(between(s, '--overlap-param-gather', '--use-mcore-models')).toEqual(['--moe-tp-extend-ep']);
    expect(s.notes).toEqual(["--moe-tp-extend-ep: experts spread over the TP group too; MindSpeed's --expert-model-parallel-size is ep/tp = 2", note]);
    // tp 1: no TP-extend-EP
    const t1 = msp({ parallel: { ep: 4, a2a: 'hierarchical-allgather' } });
    expect(t1.args).not.toContain('--moe-hierarchical-alltoallv');
    expect(t1.notes).toEqual([note]);
    // Megatron: never, even where MindSpeed would take it
    const m = meg({ hardware: { preset: 'h100', devices: 8, devices_per_node: 2 }, parallel: { tp: 2, etp: 1, ep: 4, a2a: 'hierarchical-allgather' } });
    expect(m.args).not.toContain('--moe-hierarchical-alltoallv');
    expect(m.notes).toEqual(['hierarchical-allgather needs MindSpeed --moe-tp-extend-ep with tp = 2 (the NPUs of a node): plain all-to-all emitted']);
  });
});

describe('exportPlan: activation offload', () => {
  it('Megatron: fine-grained offloading of the MoE layer inputs, with the fraction', () => {
    const e = meg({ parallel: { offload: 0.5 } });
    expect(between(e, '--overlap-param-gather', '--attention-backend')).toEqual(['--fine-grained-activation-offloading',
      '--offload-modules', 'core_attn', 'attn_proj', 'expert_fc1', 'moe_act', '--activation-offload-fraction', '0.5']);
    expect(e.notes).toEqual([]);
  });
  it('Megatron, dense model: the dense layer module list', () => {
    const e = meg({ model: { experts: 0, dense_ffn: 1024 }, parallel: { offload: 0.25 } });
    expect(between(e, '--overlap-param-gather', '--attention-backend')).toEqual(['--fine-grained-activation-offloading',
      '--offload-modules', 'qkv_linear', 'core_attn', 'attn_proj', 'mlp_norm', '--activation-offload-fraction', '0.25']);
  });
  it('MindSpeed: swap-attention and a note with the fraction', () => {
    const e = msp({ parallel: { offload: 0.5 } });
    expect(between(e, '--overlap-param-gather', '--use-mcore-models')).toEqual(['--swap-attention']);
    expect(e.notes).toEqual(['activation offload fraction 0.5: MindSpeed swaps attention activations (--swap-attention); tune --swap-modules']);
  });
  it('no offload: neither', () => {
    expect(meg({ parallel: { offload: 0 } }).args).toEqual(MEG_BASE);
    expect(msp({ parallel: { offload: 0 } }).args).toEqual(MS_BASE);
  });
});

describe('exportPlan: launcher', () => {
  const launch = (devices: number, global_batch: number, devices_per_node?: number) =>
    meg({ hardware: { preset: 'h100', devices, ...(devices_per_node ? { devices_per_node } : {}) }, training: { global_batch } });
  const prefix = (e: ExportResult) => e.command.slice(0, e.command.indexOf(' --node-rank'));
  it('a multiple of the node size: whole nodes, no note', () => {
    const e = launch(16, 16); // 16 / 8 = 2 nodes
    expect(prefix(e)).toBe('torchrun --nnodes 2 --nproc-per-node 8');
    expect(e.notes).toEqual([]);
  });
  it('fewer devices than a node: one node of that many, no note', () => {
    const e = launch(4, 16); // min(8, 4) = 4, 4 % 4 = 0
    expect(prefix(e)).toBe('torchrun --nnodes 1 --nproc-per-node 4');
    expect(e.notes).toEqual([]);
    expect(prefix(launch(1, 16))).toBe('torchrun --nnodes 1 --nproc-per-node 1');
    expect(prefix(launch(7, 14))).toBe('torchrun --nnodes 1 --nproc-per-node 7');
  });
  it('more devices than a node but not a multiple: the largest per-node count dividing them, and a note', () => {
    const e = launch(12, 24); // 12 % 8, 7, then 6 divides: 2 nodes x 6
    expect(prefix(e)).toBe('torchrun --nnodes 2 --nproc-per-node 6');
    expect(e.notes).toEqual(['12 devices are not a multiple of 8 per node: launched as 2 nodes x 6 processes']);
    const n = launch(9, 18); // 9: 8, 7, 6, 5, 4 fail, 3 divides: 3 nodes x 3
    expect(prefix(n)).toBe('torchrun --nnodes 3 --nproc-per-node 3');
    expect(n.notes).toEqual(['9 devices are not a multiple of 8 per node: launched as 3 nodes x 3 processes']);
  });
  it('a custom node size', () => {
    expect(prefix(launch(8, 16, 4))).toBe('torchrun --nnodes 2 --nproc-per-node 4');
  });
});
