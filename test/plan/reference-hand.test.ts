/**
 * src/plan/reference.ts by hand (fast: no published row is simulated here; test/plan/reference.test.ts scores them).
 *  - the rows: every Megatron-Bridge row's layout, batch and published tokens/s/GPU against the 25.09 table
 *    (NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md, "25.09 NeMo Container"; the same table now in
 *    docs/performance-summary-archive.md), the recipe fields and the provenance text; the papers' rows from calibration.ts;
 *  - the helpers on a tiny made-up MoE (2 layers, hidden 64, 4 experts of width 32, one device), checked against a
 *    direct simulate() of the same spec: predictRow (the Blackwell factor on Blackwell rows only), referenceErrors'
 *    three kinds of row (error = predicted / published - 1, chosen so it is exact), fitReference's refusals, its grid
 *    with no rows and with one row whose optimum is planted off the grid (the one slow test: ~2,900 simulations of the
 *    tiny row, a few tenths of a second), and referenceStats on hand-made errors (median, worst, the 15% boundary).
 */
import { describe, expect, it } from 'vitest';
import { CALIBRATION, type CalibrationRow } from '../../src/plan/calibration.js';
import { FITTED } from '../../src/plan/fitted.js';
import {
  committedFramework, fitReference, MB_COMMIT, MB_ROWS, PAPER_ROWS, predictRow, REFERENCE, REFERENCE_SPLIT, referenceErrors, referenceStats,
  SAME_RUN, type FrameworkConstants, type ReferenceResult, type ReferenceRow,
} from '../../src/plan/reference.js';
import { simulate } from '../../src/plan/simulate.js';
import { resolveSpec } from '../../src/plan/spec.js';

// ---------------------------------------------------------------------------------------------------------------------
// the rows

const MB = 'NVIDIA-NeMo/Megatron-Bridge@fa0315ae2';
const TABLE = `${MB} docs/performance-summary.md (25.09 NeMo Container, Pre-Training Performance)`;
const RUN = `${MB} scripts/performance/run_script.py`;
const TOKEN_DROP = `${MB} src/megatron/bridge/training/utils/moe_token_drop.py (capacity factor 1.0, moe_pad_expert_input_to_capacity True, alltoall dispatcher)`;
const DSV3_RECIPE = `${MB} src/megatron/bridge/recipes/deepseek/deepseek_v3.py`;

/**
 * The 25.09 table's MoE rows: System, model, #-GPUs, GBS, MBS, TP, PP, VP, EP, tokens/s/GPU (main number; MXFP8 in
 * parentheses). VP "1" and "n/a" are no vpp in the spec.
 */
const TABLE_ROWS: { id: string; devices: number; gbs: number; mbs: number; tp: number; pp: number; vpp?: number; ep: number; tokens: number; split: 'fit' | 'validation' }[] = [
  { id: 'qwen3-30b-h100', devices: 16, gbs: 512, mbs: 2, tp: 1, pp: 2, vpp: 24, ep: 8, tokens: 10494, split: 'fit' },
  { id: 'qwen3-235b-h100', devices: 256, gbs: 2048, mbs: 1, tp: 2, pp: 8, vpp: 4, ep: 32, tokens: 1204, split: 'fit' },
  { id: 'qwen3-30b-gb200', devices: 8, gbs: 512, mbs: 4, tp: 1, pp: 1, ep: 8, tokens: 22775, split: 'fit' },
  { id: 'qwen3-30b-gb200-mx', devices: 8, gbs: 512, mbs: 4, tp: 1, pp: 1, ep: 8, tokens: 23723, split: 'fit' },
  { id: 'qwen3-235b-gb200', devices: 64, gbs: 1024, mbs: 1, tp: 2, pp: 1, ep: 64, tokens: 4452, split: 'fit' },
  { id: 'qwen3-235b-gb200-mx', devices: 64, gbs: 1024, mbs: 1, tp: 2, pp: 1, ep: 64, tokens: 4416, split: 'fit' },
  { id: 'qwen3-30b-b200', devices: 8, gbs: 512, mbs: 1, tp: 1, pp: 1, ep: 8, tokens: 18066, split: 'validation' },
  { id: 'qwen3-235b-b200', devices: 64, gbs: 1024, mbs: 1, tp: 1, pp: 8, vpp: 2, ep: 8, tokens: 4104, split: 'validation' },
  { id: 'qwen3-235b-b200-mx', devices: 64, gbs: 1024, mbs: 1, tp: 1, pp: 8, vpp: 2, ep: 8, tokens: 4275, split: 'validation' },
  { id: 'deepseek-v3-h100', devices: 1024, gbs: 8192, mbs: 1, tp: 2, pp: 8, vpp: 4, ep: 64, tokens: 1297, split: 'validation' },
  { id: 'deepseek-v3-b200', devices: 256, gbs: 2048, mbs: 1, tp: 1, pp: 16, ep: 8, tokens: 2265, split: 'validation' },
  { id: 'deepseek-v3-b200-mx', devices: 256, gbs: 2048, mbs: 1, tp: 1, pp: 16, ep: 8, tokens: 2159, split: 'validation' },
  { id: 'deepseek-v3-gb200', devices: 256, gbs: 2048, mbs: 1, tp: 1, pp: 4, vpp: 4, ep: 64, tokens: 3454, split: 'validation' },
];

const NAMES: Record<string, string> = {
  'qwen3-30b-h100': 'Qwen3-30B-A3B (tokendrop), 16 H100, FP8 per-tensor',
  'qwen3-235b-h100': 'Qwen3-235B-A22B (tokendrop), 256 H100, FP8 per-tensor',
  'qwen3-30b-gb200': 'Qwen3-30B-A3B (tokendrop), 8 GB200, FP8 per-tensor',
  'qwen3-30b-gb200-mx': 'Qwen3-30B-A3B (tokendrop), 8 GB200, MXFP8',
  'qwen3-235b-gb200': 'Qwen3-235B-A22B (tokendrop), 64 GB200, FP8 per-tensor',
  'qwen3-235b-gb200-mx': 'Qwen3-235B-A22B (tokendrop), 64 GB200, MXFP8',
  'qwen3-30b-b200': 'Qwen3-30B-A3B (tokendrop), 8 B200, FP8 per-tensor',
  'qwen3-235b-b200': 'Qwen3-235B-A22B (tokendrop), 64 B200, FP8 per-tensor',
  'qwen3-235b-b200-mx': 'Qwen3-235B-A22B (tokendrop), 64 B200, MXFP8',
  'deepseek-v3-h100': 'DeepSeek-V3 (dropless), 1024 H100, FP8 per-tensor',
  'deepseek-v3-b200': 'DeepSeek-V3 (tokendrop), 256 B200, FP8 per-tensor',
  'deepseek-v3-b200-mx': 'DeepSeek-V3 (tokendrop), 256 B200, MXFP8',
  'deepseek-v3-gb200': 'DeepSeek-V3 (tokendrop), 256 GB200, FP8 per-tensor',
};

const row = (id: string): ReferenceRow => {
  const r = REFERENCE.find((x) => x.id === id);
  if (!r) throw new Error(`no row ${id}`);
  return r;
};
const hwOf = (id: string) => (id.includes('gb200') ? 'gb200' : id.includes('b200') ? 'b200' : 'h100');

/** the Qwen3 recipe (run_script.py, qwen3_*_llm_pretrain.yaml): everything but the layout, batch and CUDA graphs */
function qwenSources(size: '30b' | '235b', hw: string, mx: boolean): Record<string, string> {
  const file = `${MB} scripts/performance/configs/qwen3/qwen3_${size === '30b' ? '30b_a3b' : '235b_a22b'}_llm_pretrain.yaml`;
  return {
    'published tokens/s/GPU': `${TABLE}, System: DGX-${hw.toUpperCase()}, row Qwen3_${size === '30b' ? '30B_a3B' : '235B_a22B'} (tokendrop)${mx ? ", the number in parentheses (MXFP8, 32x32 scaling: the table's footnote)" : ''}`,
    'hardware.devices, training.global_batch/micro_batch/seq_len, parallel.tp/pp/vpp/ep': `${TABLE}, the same row (#-GPUs, GBS, MBS, Sequence Length, TP, PP, VP, EP)`,
    'parallel.etp': `${file}: perf_matrix.${hw}.*.common.etp 1`,
    'parallel.cuda_graphs': `${file}: perf_matrix.${hw}.*.common.cuda_graphs`,
    'parallel.recompute': `${file}: model.recompute_granularity null`,
    'parallel.dispatcher, training.capacity_factor': `${RUN}: apply_moe_token_drop for qwen3; ${TOKEN_DROP}`,
    'parallel.tp_overlap': `${RUN}: CommOverlapConfig(tp_comm_overlap=True) for qwen3`,
    'parallel.ep_overlap': `${RUN}: overlap_moe_expert_parallel_comm set only for DeepSeek-V3 on H100`,
    'parallel.dp_overlap, parallel.zero': `${MB} src/megatron/bridge/recipes/qwen/qwen3_moe.py: DistributedDataParallelConfig(overlap_grad_reduce=True, overlap_param_gather=True, use_distributed_optimizer=True)`,
    'training.grad_precision': `${file}: mixed_precision.grad_reduce_in_fp32 false`,
    'training.precision': `${TABLE}: main numbers FP8 current (per-tensor) scaling (recipe fp8_cs, scripts/performance/utils/helpers.py get_precision_config); parentheses MXFP8`,
    'training.optimizer_precision': `${RUN}: the precision-aware optimizer (bf16 moments) only for compute_dtype bf16`,
  };
}

function dsv3Sources(hw: string, mx: boolean): Record<string, string> {
  const file = `${MB} scripts/performance/configs/deepseek/deepseek_v3_llm_pretrain.yaml`;
  return {
    'published tokens/s/GPU': `${TABLE}, System: DGX-${hw.toUpperCase()}, row DeepSeekV3 (${hw === 'h100' ? 'dropless' : 'tokendrop'})${mx ? ', the number in parentheses (MXFP8)' : ''}`,
    'hardware.devices, training.global_batch/micro_batch/seq_len, parallel.tp/pp/vpp/ep': `${TABLE}, the same row${mx ? ' (its parenthesised PP/VP)' : ''}`,
    'model (61 layers, 1 MTP layer)': `${DSV3_RECIPE}: mtp_num_layers 1; ${file}: pipeline_model_parallel_layout "Et|(tt|)*30mL"`,
    'parallel.recompute': `${RUN}: recompute_modules ["mla_up_proj", "mlp"] on h100, ["mla_up_proj", "mlp", "moe_act"] on gb200; b200: ${file} recompute_granularity selective with the default modules (Megatron-Core: core_attn)`,
    'parallel.dispatcher, training.capacity_factor / load_imbalance': `${RUN}: DeepEP (flex dispatcher) and moe_router_force_load_balancing on h100 (${TABLE} footnote: "In token-dropless MoE training benchmarks, we force-balance the token distribution among experts"); apply_moe_token_drop on b200/gb200 (${TOKEN_DROP})`,
    'parallel.ep_overlap': `${RUN}: overlap_moe_expert_parallel_comm and delay_wgrad_compute True on h100 only (A2A_1F1B)`,
    'parallel.shared_expert_overlap': `${RUN}: moe_shared_expert_overlap True when A2A_1F1B is off (b200, gb200), False on h100`,
    'parallel.dp_overlap': `${RUN}: overlap_grad_reduce True on b200/gb200, False on h100`,
    'parallel.tp_overlap': `${DSV3_RECIPE}: CommOverlapConfig(tp_comm_overlap=False) when none is given (run_script gives none for DeepSeek-V3)`,
    'parallel.cuda_graphs': `${file}: perf_matrix.b200 fp8_cs/fp8_mx cuda_graphs true; h100, gb200 false`,
    'training.grad_precision': `${file}: mixed_precision.grad_reduce_in_fp32 false`,
    'training.optimizer_precision': `${DSV3_RECIPE}: use_precision_aware_optimizer, exp_avg/exp_avg_sq bfloat16`,
    'training.node_limit': `${MB} src/megatron/bridge/models/deepseek/deepseek_provider.py: DeepSeekV3ModelProvider moe_router_num_groups 8, moe_router_group_topk 4 (group-limited routing; with 256 experts over EP64 on 8 nodes a group is a node's 32 experts: at most 4 nodes a token)`,
    'training.precision': `${TABLE}: FP8 current scaling (main numbers); parentheses MXFP8 (B200/GB200)`,
  };
}

describe('the Megatron-Bridge rows', () => {
  it('the commit they are read at', () => {
    expect(MB_COMMIT).toBe('fa0315ae2684693a666be9d247adf9baf1e30028');
  });

  it('thirteen rows, in order, with the 25.09 table\'s layout, batch and tokens/s/GPU', () => {
    expect(MB_ROWS.map((r) => r.id)).toEqual(TABLE_ROWS.map((t) => t.id));
    for (const t of TABLE_ROWS) {
      const r = row(t.id);
      const p = r.spec.parallel as Record<string, unknown>;
      const tr = r.spec.training as Record<string, unknown>;
      expect(r.tokens_per_s_per_device, t.id).toBe(t.tokens);
      expect(r.split, t.id).toBe(t.split);
      expect(r.spec.hardware, t.id).toEqual({ preset: hwOf(t.id), devices: t.devices });
      expect([p.tp, p.pp, p.vpp, p.ep, p.etp], t.id).toEqual([t.tp, t.pp, t.vpp, t.ep, 1]);
      expect('vpp' in p, t.id).toBe(t.vpp !== undefined);
      // more than one virtual stage: the interleaved schedule; none: 1F1B
      expect(p.schedule, t.id).toBe(t.vpp !== undefined && t.vpp > 1 ? 'interleaved' : '1f1b');
      expect([tr.seq_len, tr.micro_batch, tr.global_batch, tr.precision, tr.grad_precision], t.id).toEqual([4096, t.mbs, t.gbs, 'fp8', 'bf16']);
      expect(r.name, t.id).toBe(NAMES[t.id]);
      expect(r.hardware, t.id).toBe(hwOf(t.id));
      expect(r.generation, t.id).toBe(hwOf(t.id) === 'h100' ? 'hopper' : 'blackwell');
      expect(r.family, t.id).toBe(t.id.startsWith('qwen3') ? 'qwen3' : 'deepseek-v3');
      expect(r.calibration, t.id).toBeUndefined();
    }
  });

  it('Qwen3 on H100 (fp8_cs, no CUDA graphs): the whole spec', () => {
    expect(row('qwen3-30b-h100').spec).toStrictEqual({
      model: { preset: 'qwen3-30b-a3b' },
      hardware: { preset: 'h100', devices: 16 },
      parallel: {
        tp: 1, pp: 2, vpp: 24, ep: 8, etp: 1, zero: 1, schedule: 'interleaved', recompute: 'none', dispatcher: 'alltoall', ep_overlap: 'none',
        tp_overlap: true, dp_overlap: true, cuda_graphs: false,
      },
      training: { seq_len: 4096, micro_batch: 2, global_batch: 512, precision: 'fp8', grad_precision: 'bf16', optimizer_precision: 'fp32', capacity_factor: 1 },
    });
  });

  it('Qwen3-235B on GB200 (MXFP8, CUDA graphs, no vpp): the whole spec', () => {
    expect(row('qwen3-235b-gb200-mx').spec).toStrictEqual({
      model: { preset: 'qwen3-235b-a22b' },
      hardware: { preset: 'gb200', devices: 64 },
      parallel: {
        tp: 2, pp: 1, ep: 64, etp: 1, zero: 1, schedule: '1f1b', recompute: 'none', dispatcher: 'alltoall', ep_overlap: 'none',
        tp_overlap: true, dp_overlap: true, cuda_graphs: true,
      },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 1024, precision: 'fp8', grad_precision: 'bf16', optimizer_precision: 'fp32', capacity_factor: 1 },
    });
    // CUDA graphs per the recipes' perf_matrix: on for GB200 and Qwen3-30B on B200, off for H100 and Qwen3-235B on B200
    const graphs = Object.fromEntries(MB_ROWS.filter((r) => r.family === 'qwen3').map((r) => [r.id, (r.spec.parallel as { cuda_graphs: boolean }).cuda_graphs]));
    expect(graphs).toEqual({
      'qwen3-30b-h100': false, 'qwen3-235b-h100': false, 'qwen3-30b-gb200': true, 'qwen3-30b-gb200-mx': true, 'qwen3-235b-gb200': true,
      'qwen3-235b-gb200-mx': true, 'qwen3-30b-b200': true, 'qwen3-235b-b200': false, 'qwen3-235b-b200-mx': false,
    });
    expect((row('qwen3-235b-b200').spec.model as { preset: string }).preset).toBe('qwen3-235b-a22b');
    expect((row('qwen3-30b-b200').spec.model as { preset: string }).preset).toBe('qwen3-30b-a3b');
  });

  it('DeepSeek-V3 on H100: dropless, DeepEP, A2A overlap, force-balanced; the whole spec', () => {
    expect(row('deepseek-v3-h100').spec).toStrictEqual({
      model: { preset: 'deepseek-v3' },
      hardware: { preset: 'h100', devices: 1024 },
      parallel: {
        tp: 2, pp: 8, vpp: 4, ep: 64, etp: 1, zero: 1, schedule: 'interleaved', recompute: ['mla_up', 'mlp'], dispatcher: 'flex', ep_overlap: 'a2a-1f1b',
        shared_expert_overlap: false, tp_overlap: false, dp_overlap: false, cuda_graphs: false,
      },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 8192, precision: 'fp8', grad_precision: 'bf16', optimizer_precision: 'bf16', node_limit: 4, load_imbalance: 1 },
    });
  });

  it('DeepSeek-V3 on B200 and GB200: token drop, all-to-all, shared-expert overlap; recompute and graphs per system', () => {
    const blackwell = (hw: 'b200' | 'gb200', lay: Record<string, number>, schedule: string, recompute: string[]) => ({
      model: { preset: 'deepseek-v3' },
      hardware: { preset: hw, devices: 256 },
      parallel: {
        ...lay, etp: 1, zero: 1, schedule, recompute, dispatcher: 'alltoall', ep_overlap: 'none', shared_expert_overlap: true, tp_overlap: false,
        dp_overlap: true, cuda_graphs: hw === 'b200',
      },
      training: { seq_len: 4096, micro_batch: 1, global_batch: 2048, precision: 'fp8', grad_precision: 'bf16', optimizer_precision: 'bf16', node_limit: 4, capacity_factor: 1 },
    });
    expect(row('deepseek-v3-b200').spec).toStrictEqual(blackwell('b200', { tp: 1, pp: 16, ep: 8 }, '1f1b', ['core_attn']));
    expect(row('deepseek-v3-b200-mx').spec).toStrictEqual(blackwell('b200', { tp: 1, pp: 16, ep: 8 }, '1f1b', ['core_attn']));
    expect(row('deepseek-v3-gb200').spec).toStrictEqual(blackwell('gb200', { tp: 1, pp: 4, vpp: 4, ep: 64 }, 'interleaved', ['mla_up', 'mlp', 'moe_act']));
  });

  it('every row names its sources exactly (recipe file, run script, table row, MXFP8 parenthesis)', () => {
    for (const r of MB_ROWS) {
      const mx = r.id.endsWith('-mx');
      const want = r.family === 'qwen3' ? qwenSources(r.id.includes('235b') ? '235b' : '30b', r.hardware, mx) : dsv3Sources(r.hardware, mx);
      expect(r.sources, r.id).toStrictEqual(want);
    }
  });
});

describe('the papers\' rows and the split', () => {
  it('every calibration row but the one Megatron-Bridge also ran (Qwen3-235B on H100)', () => {
    expect(SAME_RUN).toEqual({ 'qwen3-235b-a22b': 'qwen3-235b-h100' });
    expect(PAPER_ROWS.map((r) => r.id)).toEqual(['deepseek-v3', 'pangu-ultra-moe', 'pangu-ultra-moe-baseline', 'mixtral-8x22b', 'skywork-moe', 'llama3.1-405b']);
    // family: the model preset without a trailing -moe / -ultra-moe; generation from the hardware preset
    const want: Record<string, [string, string, string]> = {
      'deepseek-v3': ['deepseek-v3', 'h800', 'hopper'], 'pangu-ultra-moe': ['pangu', '910b', 'ascend'], 'pangu-ultra-moe-baseline': ['pangu', '910b', 'ascend'],
      'mixtral-8x22b': ['mixtral-8x22b', 'h100', 'hopper'], 'skywork-moe': ['skywork', 'a800', 'ampere'], 'llama3.1-405b': ['llama3.1-405b', 'h100', 'hopper'],
    };
    for (const r of PAPER_ROWS) {
      const c = CALIBRATION.find((x) => x.id === r.id)!;
      expect([r.family, r.hardware, r.generation], r.id).toEqual(want[r.id]);
      expect(r.split, r.id).toBe('validation');
      expect(r.name, r.id).toBe(c.name);
      expect(r.spec, r.id).toBe(c.spec);
      expect(r.calibration, r.id).toBe(c);
      expect(r.tokens_per_s_per_device, r.id).toBe(0);
      expect(r.sources, r.id).toStrictEqual({ all: c.source, assumptions: c.assumptions });
    }
  });

  it('REFERENCE is the Megatron-Bridge rows then the papers\' rows; the split lists their ids', () => {
    expect(REFERENCE.map((r) => r.id)).toEqual([...MB_ROWS.map((r) => r.id), ...PAPER_ROWS.map((r) => r.id)]);
    expect(REFERENCE.length).toBe(19);
    expect(REFERENCE_SPLIT.fit).toEqual(['qwen3-30b-h100', 'qwen3-235b-h100', 'qwen3-30b-gb200', 'qwen3-30b-gb200-mx', 'qwen3-235b-gb200', 'qwen3-235b-gb200-mx']);
    expect(REFERENCE_SPLIT.validation).toEqual([
      'qwen3-30b-b200', 'qwen3-235b-b200', 'qwen3-235b-b200-mx', 'deepseek-v3-h100', 'deepseek-v3-b200', 'deepseek-v3-b200-mx', 'deepseek-v3-gb200',
      'deepseek-v3', 'pangu-ultra-moe', 'pangu-ultra-moe-baseline', 'mixtral-8x22b', 'skywork-moe', 'llama3.1-405b',
    ]);
  });

  it('committedFramework: the fitted host, launch and Blackwell constants', () => {
    expect(committedFramework()).toStrictEqual({ host_kernel_s: 4.83e-8, launch_train_s: 28.5e-6, blackwell_kernel_eff: 0.425 });
    expect(committedFramework()).toStrictEqual({
      host_kernel_s: FITTED.host_kernel_s.value, launch_train_s: FITTED.launch_train_s.value, blackwell_kernel_eff: FITTED.blackwell_kernel_eff.value,
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// the helpers on a tiny row

/** 2 MoE layers, hidden 64, 4 heads, vocab 128, 4 experts of width 32 (top-2), one device, 2 sequences of 64 tokens */
function tinySpec(hw: string, o: { experts?: number } = {}): Record<string, unknown> {
  const experts = o.experts ?? 4;
  return {
    model: experts > 0 ? { layers: 2, hidden: 64, heads: 4, vocab: 128, experts, top_k: 2, expert_ffn: 32 } : { layers: 2, hidden: 64, heads: 4, vocab: 128, dense_ffn: 128 },
    hardware: { preset: hw, devices: 1 },
    parallel: { tp: 1, pp: 1, ep: 1, recompute: 'none' },
    training: { seq_len: 64, micro_batch: 1, global_batch: 2, precision: 'bf16' },
  };
}
function tiny(o: Partial<ReferenceRow> & { hw?: string; experts?: number } = {}): ReferenceRow {
  const { hw = 'h100', experts, ...rest } = o;
  return {
    id: 'tiny', name: 'tiny MoE', family: 'tiny', hardware: hw, generation: 'hopper', split: 'fit', tokens_per_s_per_device: 1000, sources: {},
    spec: tinySpec(hw, { experts }), ...rest,
  };
}
/** the same spec simulated directly, the hardware optionally changed */
function direct(r: ReferenceRow, k: FrameworkConstants, hw: Record<string, number> = {}) {
  const spec = resolveSpec(structuredClone(r.spec), 'direct');
  return simulate({ ...spec, hardware: { ...spec.hardware, ...hw } }, { hostKernelS: k.host_kernel_s, launchS: k.launch_train_s });
}
const K: FrameworkConstants = { host_kernel_s: 2e-7, launch_train_s: 7e-6, blackwell_kernel_eff: 0.5 };

describe('predictRow', () => {
  it('a Hopper row: the spec simulated with the host and launch constants given', () => {
    const r = tiny();
    const p = predictRow(r, K);
    expect(p).toBe(direct(r, K).tokens_per_s_per_device);
    // the constants reach the simulator: launches of 3x the cost make the (launch-bound) step slower
    expect(predictRow(r, { ...K, launch_train_s: 21e-6 })).toBe(direct(r, { ...K, launch_train_s: 21e-6 }).tokens_per_s_per_device);
    expect(predictRow(r, { ...K, launch_train_s: 21e-6 })).toBeLessThan(p / 2);
    // a host at 100 us a kernel paces the step (each layer's kernels issue slower than they run)
    const slowHost = { ...K, host_kernel_s: 1e-4 };
    expect(predictRow(r, slowHost)).toBe(direct(r, slowHost).tokens_per_s_per_device);
    expect(predictRow(r, slowHost)).toBeLessThan(p / 2);
    // the Blackwell factor does not touch a Hopper row
    expect(predictRow(r, { ...K, blackwell_kernel_eff: 1 })).toBe(p);
    // the row's own spec is left as it was
    expect(r.spec).toStrictEqual(tinySpec('h100'));
  });

  it('a Blackwell row: the preset\'s efficiencies replaced by the Hopper fits times the factor given (0.73 x 0.5, 0.6 x 0.5, 0.5)', () => {
    const r = tiny({ hw: 'b200', generation: 'blackwell' });
    const p = predictRow(r, K);
    expect(p).toBe(direct(r, K, { gemm_eff: FITTED.gemm_eff.value * 0.5, fp8_gemm_eff: FITTED.fp8_gemm_eff.value * 0.5, attn_eff: 0.5 }).tokens_per_s_per_device);
    expect(p).not.toBe(direct(r, K).tokens_per_s_per_device);
    // a row on the same B200 not marked Blackwell keeps the preset's (committed-factor) efficiencies
    expect(predictRow({ ...r, generation: 'hopper' }, K)).toBe(direct(r, K).tokens_per_s_per_device);
    // a higher factor: faster kernels
    expect(predictRow(r, { ...K, blackwell_kernel_eff: 1 })).toBeGreaterThan(p);
  });
});

describe('referenceErrors', () => {
  it('a Megatron-Bridge-style row: throughput; error = predicted / published - 1 (published half the prediction: +100%)', () => {
    const p = predictRow(tiny(), K);
    const [res] = referenceErrors([tiny({ tokens_per_s_per_device: p / 2 })], K);
    expect(res).toStrictEqual({ id: 'tiny', name: 'tiny MoE', split: 'fit', generation: 'hopper', moe: true, predicted: p, published: p / 2, error: 1, metric: 'throughput' });
    // published twice the prediction: -50%; and the other fields pass through
    const [b] = referenceErrors([tiny({ id: 'b', name: 'B', split: 'validation', generation: 'ampere', tokens_per_s_per_device: 2 * p })], K);
    expect(b).toStrictEqual({ id: 'b', name: 'B', split: 'validation', generation: 'ampere', moe: true, predicted: p, published: 2 * p, error: -0.5, metric: 'throughput' });
  });

  it('the framework constants default to the committed ones', () => {
    const [res] = referenceErrors([tiny()]);
    expect(res.predicted).toBe(predictRow(tiny(), committedFramework()));
    expect(res.predicted).not.toBe(predictRow(tiny(), K));
  });

  it('a dense row is not MoE', () => {
    const [res] = referenceErrors([tiny({ experts: 0 })], K);
    expect(res.moe).toBe(false);
    expect(res.predicted).toBe(direct(tiny({ experts: 0 }), K).tokens_per_s_per_device);
  });

  const cal = (o: Partial<CalibrationRow>): CalibrationRow => ({ id: 'cal', name: 'cal', spec: tinySpec('h100'), published: {}, metric: 'throughput', source: 's', assumptions: 'a', ...o });

  it('a paper row compared on MFU: the simulated MFU against the published one', () => {
    const mfu = direct(tiny(), K).mfu;
    const [res] = referenceErrors([tiny({ id: 'cal', split: 'validation', tokens_per_s_per_device: 0, calibration: cal({ metric: 'mfu', published: { mfu: 2 * mfu } }) })], K);
    expect(res).toStrictEqual({ id: 'cal', name: 'tiny MoE', split: 'validation', generation: 'hopper', moe: true, predicted: mfu, published: 2 * mfu, error: -0.5, metric: 'mfu' });
    // no published MFU: NaN, not a number made up
    const [nan] = referenceErrors([tiny({ calibration: cal({ metric: 'mfu', published: { tokens_per_s_per_device: 5 } }) })], K);
    expect(nan.published).toBeNaN();
    expect(nan.error).toBeNaN();
    expect(nan.metric).toBe('mfu');
  });

  it('a paper row compared on throughput: its own published number, not the row\'s, through its accounting', () => {
    const p = direct(tiny(), K).tokens_per_s_per_device;
    const [res] = referenceErrors([tiny({ tokens_per_s_per_device: 1, calibration: cal({ published: { tokens_per_s_per_device: p / 2, mfu: 0.5 } }) })], K);
    expect(res).toStrictEqual({ id: 'tiny', name: 'tiny MoE', split: 'fit', generation: 'hopper', moe: true, predicted: p, published: p / 2, error: 1, metric: 'throughput' });
    // cost accounting with a goodput of 0.5 and no ramp: half the steady-state throughput
    const [acc] = referenceErrors([tiny({ calibration: cal({ published: { tokens_per_s_per_device: p / 2 }, accounting: { goodput: 0.5, goodput_why: 'half' } }) })], K);
    expect(acc.predicted / (p / 2)).toBeCloseTo(1, 12);
    expect(acc.error).toBeCloseTo(0, 12);
    // no published throughput: NaN
    const [nan] = referenceErrors([tiny({ calibration: cal({ published: { mfu: 0.5 } }) })], K);
    expect(nan.published).toBeNaN();
    expect(nan.error).toBeNaN();
    expect(nan.metric).toBe('throughput');
  });
});

describe('fitReference', () => {
  it('refuses rows outside the fit set, naming them all: validation rows and paper (calibration) rows', () => {
    // tiny rows, so that a broken check costs one tiny fit, not a fit over published rows
    const fit = tiny({ id: 'f' });
    const v1 = tiny({ id: 'v1', split: 'validation' });
    const v2 = tiny({ id: 'v2', split: 'validation' });
    expect(() => fitReference([fit, v1])).toThrow(/^fitReference was given rows outside the fit set: v1$/);
    expect(() => fitReference([v1, fit, v2])).toThrow(/^fitReference was given rows outside the fit set: v1, v2$/);
    // a row marked fit that is a paper's row is refused too
    expect(() => fitReference([tiny({ id: 'p', calibration: CALIBRATION[0] })])).toThrow(/^fitReference was given rows outside the fit set: p$/);
    expect(() => fitReference([v1, tiny({ id: 'p', calibration: CALIBRATION[0] })])).toThrow(/^fitReference was given rows outside the fit set: v1, p$/);
  });

  it('no rows: the loss is 0 everywhere, so the first grid point (host and launch 0.1 us, factor 0.25); RMS 0/0', () => {
    expect(fitReference([])).toStrictEqual({ host_kernel_s: 1e-7, launch_train_s: 1e-7, blackwell_kernel_eff: 0.25, rms_log_err: NaN });
  });

  it('an optimum off the grid: refined twice; the factor, which a Hopper row does not see, ends at the last grids\' lowest', () => {
    const r = tiny();
    const pub = predictRow(r, { host_kernel_s: 1e-7, launch_train_s: 5e-6, blackwell_kernel_eff: 1 });
    const fit = fitReference([{ ...r, tokens_per_s_per_device: pub }]);
    // every factor ties on a Hopper row; ties keep the first (lowest) point of the last grid that improved the loss,
    // and both refinements improve it (the planted point is on none of the grids): 0.25 / 1.8 / 1.15
    expect(fit.blackwell_kernel_eff).toBeCloseTo(0.25 / 1.8 / 1.15, 14);
    // the RMS log error is the row's |log(predicted / published)| at the constants returned
    expect(fit.rms_log_err).toBeCloseTo(Math.abs(Math.log(predictRow(r, fit) / pub)), 14);
    // the last grid's launch step is 1.15^(2/6) = 4.8%: the launch-only path alone gets within half a step (2.4%);
    // without the refinements the first grid's nearest point (5.62 us) is 12% off
    expect(fit.rms_log_err).toBeLessThan(0.024);
    expect(fit.rms_log_err).toBeGreaterThan(0);
  });
});

describe('referenceStats', () => {
  const res = (errors: number[], gens: ReferenceResult['generation'][] = []): ReferenceResult[] => errors.map((error, i) => ({
    id: `r${i}`, name: `r${i}`, split: 'validation', generation: gens[i] ?? 'hopper', moe: true, predicted: 1 + error, published: 1, error, metric: 'throughput',
  }));

  it('no rows: zeros, no worst row, no generations', () => {
    expect(referenceStats([])).toStrictEqual({ rows: 0, median_abs: 0, worst: 0, worst_at: '', within_15: 0, generations: [] });
  });

  it('an odd count: the middle |error|; the worst by |error|; within 15% counted', () => {
    // |errors| 0.1, 0.3, 0.05 -> sorted 0.05, 0.1, 0.3: median 0.1, worst 0.3 (r1), within 15%: 0.1 and 0.05
    expect(referenceStats(res([0.1, -0.3, 0.05]))).toStrictEqual({ rows: 3, median_abs: 0.1, worst: 0.3, worst_at: 'r1', within_15: 2, generations: ['hopper'] });
    expect(referenceStats(res([-0.2]))).toStrictEqual({ rows: 1, median_abs: 0.2, worst: 0.2, worst_at: 'r0', within_15: 0, generations: ['hopper'] });
  });

  it('an even count: the mean of the two middle |errors|', () => {
    // |errors| 0.4, 0.1, 0.2, 0.05 -> sorted 0.05, 0.1, 0.2, 0.4: median (0.1 + 0.2) / 2 = 0.15
    const s = referenceStats(res([0.4, -0.1, 0.2, 0.05]));
    expect(s.median_abs).toBeCloseTo(0.15, 15);
    expect([s.rows, s.worst, s.worst_at, s.within_15]).toEqual([4, 0.4, 'r0', 2]);
    // sorted numerically, not as strings: 10 > 9 > 2 > 1 -> median (2 + 9) / 2
    expect(referenceStats(res([10, 1, 9, 2])).median_abs).toBe(5.5);
  });

  it('within 15% includes 15% exactly, either sign; just above is out', () => {
    expect(referenceStats(res([0.15, -0.15, 0.1500001, -0.1500001, 0])).within_15).toBe(3);
  });

  it('ties for the worst go to the last row; all-zero errors still name a row', () => {
    expect(referenceStats(res([0.3, -0.3, 0.1])).worst_at).toBe('r1');
    expect(referenceStats(res([0, 0]))).toMatchObject({ worst: 0, worst_at: 'r1', median_abs: 0 });
  });

  it('generations: each once, in order of first appearance', () => {
    expect(referenceStats(res([0, 0, 0, 0], ['blackwell', 'hopper', 'blackwell', 'ascend'])).generations).toEqual(['blackwell', 'hopper', 'ascend']);
  });
});
