/**
 * Hardware presets for the planner. Every number carries a `source`: the datasheet, paper or
 * measurement it comes from. All fields can be overridden in a spec's `hardware` section.
 *
 * Conventions (so the numbers compose):
 *  - bandwidths are unidirectional bytes/s per device (what one device can send while it also
 *    receives the same amount); NVLink "900 GB/s" datasheet figures are bidirectional, so 450 here.
 *  - `inter_bw` is the scale-out NIC bandwidth per device (one NIC per device on all presets).
 *  - `peak_bf16` / `peak_fp8` are DENSE tensor-core peaks (no 2:4 sparsity). MFU and HFU always
 *    divide by `peak_bf16` (the convention of Megatron, Llama 3, Mixtral-folding and Pangu papers),
 *    even when the run computes GEMMs in FP8; `peak_fp8` only speeds up the FP8 GEMMs.
 *  - efficiencies (`gemm_eff`, `bw_eff`, `coll_eff`) are what the roofline divides the peaks by; they
 *    are fitted or measured (H200, bench/plan/measure_ops.py; the values and their provenance are in fitted.ts,
 *    not here) or assumed, and each says which.
 */
import { MoekitError } from '../util/errors.js';
import { FITTED, type Fitted } from './fitted.js';

export type Topology = 'switch' | 'full-mesh';

export interface Hardware {
  preset: string;
  name: string;
  devices_per_node: number;
  /** devices reachable over the intra-node fabric (NVLink domain / HCCS / UB supernode) */
  scaleup_domain: number;
  intra_bw: number;
  intra_topology: Topology;
  inter_bw: number;
  /** host link (PCIe / C2C) bandwidth per device and direction, for activation offload */
  host_bw: number;
  hbm_bytes: number;
  hbm_bw: number;
  peak_bf16: number;
  /** 0 when the device has no FP8 tensor cores (A100/A800, Ascend 910B) */
  peak_fp8: number;
  /** fraction of peak_bf16 (or peak_fp8) that large GEMMs reach, the alpha of op.ts' roofline */
  gemm_eff: number;
  /** fraction of peak_fp8 that FP8 GEMMs with fine-grained (block) scaling reach */
  fp8_gemm_eff: number;
  /**
   * multiplier of the attention kernels' efficiencies (the SDPA fractions of peak measured on the H200, fitted.ts
   * sdpa_cudnn_*); absent: 1
   */
  attn_eff?: number;
  /** fraction of hbm_bw that streaming kernels reach */
  bw_eff: number;
  /** fraction of link bandwidth that collectives (NCCL/HCCL) reach */
  coll_eff: number;
  /** latency of one collective step, seconds */
  coll_latency: number;
  /** per-number provenance, keyed by field name */
  source: Record<string, string>;
}

const GB = 1e9;
const TF = 1e12;
const MiB = 2 ** 20;

/** the efficiencies of every NVIDIA preset: fitted or measured on one H200, or chosen against the calibration rows (fitted.ts) */
const NV_EFF = { gemm_eff: FITTED.gemm_eff.value, fp8_gemm_eff: FITTED.fp8_gemm_eff.value, bw_eff: FITTED.bw_eff.value };

/**
 * Blackwell (B200, GB200): the Hopper-measured GEMM and attention efficiencies times one factor, fitted on the
 * reference set's GB200 fit rows (fitted.ts blackwell_kernel_eff): the same kernels reach a smaller fraction of the
 * doubled peak (fixed per-kernel latencies, small expert GEMMs that do not fill the larger tensor cores).
 */
export function blackwellEfficiencies(f: number = FITTED.blackwell_kernel_eff.value): { gemm_eff: number; fp8_gemm_eff: number; attn_eff: number } {
  return { gemm_eff: FITTED.gemm_eff.value * f, fp8_gemm_eff: FITTED.fp8_gemm_eff.value * f, attn_eff: f };
}
const BLACKWELL_EFF_SOURCE = {
  gemm_eff: `the Hopper fit (${FITTED.gemm_eff.value}) times blackwell_kernel_eff (${FITTED.blackwell_kernel_eff.value}, fitted on the reference set's GB200 fit rows: src/plan/fitted.ts)`,
  fp8_gemm_eff: `the Hopper fit (${FITTED.fp8_gemm_eff.value}) times blackwell_kernel_eff (${FITTED.blackwell_kernel_eff.value}, src/plan/fitted.ts)`,
  attn_eff: `blackwell_kernel_eff (${FITTED.blackwell_kernel_eff.value}, src/plan/fitted.ts): the H200-measured SDPA efficiencies scaled as the GEMMs`,
};

const fittedSource = (k: 'gemm_eff' | 'fp8_gemm_eff' | 'bw_eff') =>
  `${(FITTED[k] as Fitted).kind === 'chosen' ? 'chosen against the calibration rows' : FITTED[k].kind} (src/plan/fitted.ts): ${FITTED[k].fitted_on}`;

const NV_EFF_SOURCE = {
  gemm_eff: fittedSource('gemm_eff'),
  fp8_gemm_eff: fittedSource('fp8_gemm_eff'),
  bw_eff: fittedSource('bw_eff'),
  coll_eff:
    'assumption: NCCL bus bandwidth ~0.7-0.8 of link rate (nccl-tests all_reduce busbw on DGX H100 ~360-380 of 450 GB/s NVLink; ~40 of 50 GB/s IB NDR)',
  coll_latency: 'assumption: ~20 us per collective step (NCCL small-message latency across IB)',
};

const PRESETS: Record<string, Hardware> = {
  a100: {
    preset: 'a100', name: 'NVIDIA A100 SXM4 80GB (DGX A100)',
    devices_per_node: 8, scaleup_domain: 8, intra_bw: 300 * GB, intra_topology: 'switch', inter_bw: 25 * GB,
    host_bw: 32 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 2.039e12, peak_bf16: 312 * TF, peak_fp8: 0,
    ...NV_EFF, coll_eff: 0.75, coll_latency: 20e-6,
    source: {
      host_bw: 'NVIDIA A100 datasheet: PCIe Gen4 64 GB/s (bidirectional) -> 32 GB/s per direction',
      devices_per_node: 'NVIDIA DGX A100 datasheet: 8x A100 80GB',
      intra_bw: 'NVIDIA A100 datasheet: NVLink 600 GB/s (bidirectional) -> 300 GB/s per direction, NVSwitch',
      inter_bw: 'NVIDIA DGX A100 datasheet: 8x 200 Gb/s HDR InfiniBand (one per GPU) = 25 GB/s',
      hbm_bytes: 'NVIDIA A100 datasheet: 80 GB HBM2e; nvidia-smi reports 81,559 MiB', hbm_bw: 'NVIDIA A100 datasheet: 2,039 GB/s (SXM 80GB)',
      peak_bf16: 'NVIDIA A100 datasheet: BF16 tensor core 312 TFLOPS dense (624 with sparsity)', peak_fp8: 'A100 has no FP8 tensor cores',
      ...NV_EFF_SOURCE,
    },
  },
  a800: {
    preset: 'a800', name: 'NVIDIA A800 SXM4 80GB',
    devices_per_node: 8, scaleup_domain: 8, intra_bw: 200 * GB, intra_topology: 'switch', inter_bw: 25 * GB,
    host_bw: 32 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 2.039e12, peak_bf16: 312 * TF, peak_fp8: 0,
    ...NV_EFF, coll_eff: 0.75, coll_latency: 20e-6,
    source: {
      host_bw: 'NVIDIA A800 product brief: PCIe Gen4 64 GB/s (bidirectional) -> 32 GB/s per direction',
      devices_per_node: 'NVIDIA A800 SXM4 product brief: HGX A800 8-GPU',
      intra_bw: 'NVIDIA A800 product brief: NVLink 400 GB/s (bidirectional; the export-limited A100) -> 200 GB/s per direction',
      inter_bw: 'assumption: one 200 Gb/s HDR NIC per GPU as on DGX A100 (Skywork-MoE report does not state its fabric)',
      hbm_bytes: 'NVIDIA A800 product brief: 80 GB HBM2e; 81,559 MiB as the A100', hbm_bw: 'NVIDIA A800 product brief: 2,039 GB/s',
      peak_bf16: 'NVIDIA A800 product brief: BF16 312 TFLOPS dense (same SM array as A100)', peak_fp8: 'no FP8 tensor cores',
      ...NV_EFF_SOURCE,
    },
  },
  h100: {
    preset: 'h100', name: 'NVIDIA H100 SXM5 80GB (DGX H100)',
    devices_per_node: 8, scaleup_domain: 8, intra_bw: 450 * GB, intra_topology: 'switch', inter_bw: 50 * GB,
    host_bw: 64 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 3.35e12, peak_bf16: 989 * TF, peak_fp8: 1979 * TF,
    ...NV_EFF, coll_eff: 0.75, coll_latency: 20e-6,
    source: {
      host_bw: 'NVIDIA H100 datasheet: PCIe Gen5 128 GB/s (bidirectional) -> 64 GB/s per direction',
      devices_per_node: 'NVIDIA DGX H100 datasheet: 8x H100 SXM',
      intra_bw: 'NVIDIA H100 datasheet: NVLink 900 GB/s (bidirectional) -> 450 GB/s per direction, NVSwitch',
      inter_bw: 'NVIDIA DGX H100 datasheet: 8x 400 Gb/s ConnectX-7 (one per GPU) = 50 GB/s',
      hbm_bytes: 'NVIDIA H100 datasheet: 80 GB HBM3; nvidia-smi reports 81,559 MiB', hbm_bw: 'NVIDIA H100 datasheet: 3.35 TB/s (SXM)',
      peak_bf16: 'NVIDIA H100 datasheet: BF16 1,979 TFLOPS with sparsity -> 989 dense', peak_fp8: 'NVIDIA H100 datasheet: FP8 3,958 TFLOPS with sparsity -> 1,979 dense',
      ...NV_EFF_SOURCE,
    },
  },
  h800: {
    preset: 'h800', name: 'NVIDIA H800 SXM5 80GB',
    devices_per_node: 8, scaleup_domain: 8, intra_bw: 200 * GB, intra_topology: 'switch', inter_bw: 50 * GB,
    host_bw: 64 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 3.35e12, peak_bf16: 989 * TF, peak_fp8: 1979 * TF,
    ...NV_EFF, coll_eff: 0.75, coll_latency: 20e-6,
    source: {
      host_bw: 'NVIDIA H800 product brief: PCIe Gen5 128 GB/s (bidirectional) -> 64 GB/s per direction',
      devices_per_node: 'DeepSeek-V3 technical report (arXiv 2412.19437) sec. 3.1: 8 GPUs per node',
      intra_bw: 'NVIDIA H800 product brief: NVLink 400 GB/s bidirectional -> 200 GB/s per direction (DeepSeek-V3 report sec. 3.2.2 quotes 160 GB/s achieved)',
      inter_bw: 'DeepSeek-V3 technical report sec. 3.2.2: IB 50 GB/s per GPU',
      hbm_bytes: 'NVIDIA H800 product brief: 80 GB HBM3; 81,559 MiB as the H100', hbm_bw: 'NVIDIA H800 product brief: 3.35 TB/s',
      peak_bf16: 'NVIDIA H800 product brief: same tensor cores as H100 SXM, 989 TFLOPS dense BF16', peak_fp8: 'NVIDIA H800 product brief: 1,979 TFLOPS dense FP8',
      ...NV_EFF_SOURCE,
    },
  },
  h200: {
    preset: 'h200', name: 'NVIDIA H200 SXM 141GB (HGX H200)',
    devices_per_node: 8, scaleup_domain: 8, intra_bw: 450 * GB, intra_topology: 'switch', inter_bw: 50 * GB,
    host_bw: 64 * GB, hbm_bytes: 143771 * MiB, hbm_bw: 4.8e12, peak_bf16: 989 * TF, peak_fp8: 1979 * TF,
    ...NV_EFF, coll_eff: 0.75, coll_latency: 20e-6,
    source: {
      host_bw: 'NVIDIA H200 datasheet: PCIe Gen5 128 GB/s (bidirectional) -> 64 GB/s per direction',
      devices_per_node: 'NVIDIA HGX H200 datasheet: 8x H200 SXM',
      intra_bw: 'NVIDIA H200 datasheet: NVLink 900 GB/s (bidirectional) -> 450 GB/s per direction',
      inter_bw: 'NVIDIA HGX H200 reference: one 400 Gb/s ConnectX-7 per GPU = 50 GB/s',
      hbm_bytes: 'NVIDIA H200 datasheet: 141 GB HBM3e; nvidia-smi on the device machine reports 143,771 MiB', hbm_bw: 'NVIDIA H200 datasheet: 4.8 TB/s',
      peak_bf16: 'NVIDIA H200 datasheet: BF16 1,979 TFLOPS with sparsity -> 989 dense', peak_fp8: 'NVIDIA H200 datasheet: FP8 3,958 TFLOPS with sparsity -> 1,979 dense',
      ...NV_EFF_SOURCE,
    },
  },
  b200: {
    preset: 'b200', name: 'NVIDIA B200 (DGX/HGX B200)',
    devices_per_node: 8, scaleup_domain: 8, intra_bw: 900 * GB, intra_topology: 'switch', inter_bw: 50 * GB,
    host_bw: 64 * GB, hbm_bytes: 180 * GB, hbm_bw: 8e12, peak_bf16: 2250 * TF, peak_fp8: 4500 * TF,
    ...NV_EFF, ...blackwellEfficiencies(), coll_eff: 0.75, coll_latency: 20e-6,
    source: {
      host_bw: 'NVIDIA HGX B200: PCIe Gen5 x16 per GPU, 64 GB/s per direction',
      devices_per_node: 'NVIDIA DGX B200 datasheet: 8x B200',
      intra_bw: 'NVIDIA DGX B200 datasheet: NVLink 5, 1.8 TB/s per GPU bidirectional -> 900 GB/s per direction',
      inter_bw: 'NVIDIA DGX B200 datasheet: 8x 400 Gb/s ConnectX-7 = 50 GB/s per GPU',
      hbm_bytes: 'NVIDIA DGX B200 datasheet: 1,440 GB HBM3e total / 8 = 180 GB', hbm_bw: 'NVIDIA DGX B200 datasheet: 64 TB/s total / 8 = 8 TB/s',
      peak_bf16: 'NVIDIA HGX B200 datasheet: BF16 4.5 PFLOPS with sparsity -> 2.25 dense', peak_fp8: 'NVIDIA HGX B200 datasheet: FP8 9 PFLOPS with sparsity -> 4.5 dense',
      ...NV_EFF_SOURCE,
      ...BLACKWELL_EFF_SOURCE,
    },
  },
  gb200: {
    preset: 'gb200', name: 'NVIDIA GB200 NVL72',
    devices_per_node: 4, scaleup_domain: 72, intra_bw: 900 * GB, intra_topology: 'switch', inter_bw: 50 * GB,
    host_bw: 450 * GB, hbm_bytes: 186 * GB, hbm_bw: 8e12, peak_bf16: 2500 * TF, peak_fp8: 5000 * TF,
    ...NV_EFF, ...blackwellEfficiencies(), coll_eff: 0.75, coll_latency: 20e-6,
    source: {
      host_bw: 'NVIDIA GB200 NVL72 datasheet: NVLink-C2C 900 GB/s (bidirectional) to the Grace CPU -> 450 GB/s per direction',
      devices_per_node: 'NVIDIA GB200 NVL72 datasheet: 18 compute trays of 2 Grace + 4 Blackwell',
      scaleup_domain: 'NVIDIA GB200 NVL72 datasheet: one NVLink domain of 72 GPUs',
      intra_bw: 'NVIDIA GB200 NVL72 datasheet: NVLink 5, 1.8 TB/s per GPU bidirectional -> 900 GB/s per direction, NVLink switch trays',
      inter_bw: 'assumption: one 400 Gb/s ConnectX-7 per GPU for scale-out (as the GB200 reference architecture)',
      hbm_bytes: 'NVIDIA GB200 NVL72 datasheet: 13.4 TB HBM3e / 72 = 186 GB', hbm_bw: 'NVIDIA GB200 NVL72 datasheet: 576 TB/s / 72 = 8 TB/s',
      peak_bf16: 'NVIDIA GB200 NVL72 datasheet: FP16/BF16 360 PFLOPS with sparsity / 72 -> 2.5 dense', peak_fp8: 'NVIDIA GB200 NVL72 datasheet: FP8 720 PFLOPS with sparsity / 72 -> 5 dense',
      ...NV_EFF_SOURCE,
      ...BLACKWELL_EFF_SOURCE,
    },
  },
  '910b': {
    preset: '910b', name: 'Huawei Ascend 910B (Atlas 800T A2)',
    devices_per_node: 8, scaleup_domain: 8, intra_bw: 392 * GB, intra_topology: 'full-mesh', inter_bw: 25 * GB,
    host_bw: 32 * GB, hbm_bytes: 64 * 1024 * MiB, hbm_bw: 1.6e12, peak_bf16: 313 * TF, peak_fp8: 0,
    gemm_eff: 0.72, fp8_gemm_eff: 0, bw_eff: 0.8, coll_eff: 0.7, coll_latency: 30e-6,
    source: {
      host_bw: 'assumption: PCIe 4.0 x16 to the host, 32 GB/s per direction (not in a Huawei datasheet we could check)',
      devices_per_node: 'Huawei Atlas 800T A2 training server spec: 8x Ascend 910B',
      intra_bw: 'Huawei Atlas 800T A2 spec: HCCS full mesh, 7 links x 56 GB/s = 392 GB/s per NPU (a device reaches each peer over its own 56 GB/s link)',
      inter_bw: 'Huawei Atlas 800T A2 spec: 8x 200 GE RoCE per server, one per NPU = 25 GB/s',
      hbm_bytes: 'Huawei Atlas 800T A2 spec / openPangu-Ultra-MoE-718B README: 64 GB per NPU (taken as 64 GiB)', hbm_bw: 'widely reported Ascend 910B figure: 1.6 TB/s HBM2e (not in a Huawei datasheet we could check)',
      peak_bf16: 'widely reported Ascend 910B figure: ~313 TFLOPS FP16/BF16 cube (Atlas 800T A2: ~2.5 PFLOPS FP16 per 8 NPUs); not verified in-session against the datasheet', peak_fp8: 'Ascend 910B has no FP8 cube',
      fp8_gemm_eff: 'no FP8', gemm_eff: `assumption: cube GEMM efficiency 0.72 (below the fitted ${FITTED.gemm_eff.value} of Hopper; the Pangu Ultra MoE paper reports operator-level validation but no number we could read)`,
      bw_eff: 'assumption', coll_eff: 'assumption: HCCL at ~0.7 of link rate', coll_latency: 'assumption',
    },
  },
  '910c': {
    preset: '910c', name: 'Huawei Ascend 910C (CloudMatrix 384)',
    devices_per_node: 8, scaleup_domain: 384, intra_bw: 392 * GB, intra_topology: 'switch', inter_bw: 50 * GB,
    host_bw: 64 * GB, hbm_bytes: 128 * 1024 * MiB, hbm_bw: 3.2e12, peak_bf16: 752 * TF, peak_fp8: 0,
    gemm_eff: 0.72, fp8_gemm_eff: 0, bw_eff: 0.8, coll_eff: 0.7, coll_latency: 30e-6,
    source: {
      host_bw: 'assumption: PCIe 5.0 x16 to the host, 64 GB/s per direction',
      devices_per_node: 'CloudMatrix384 paper (arXiv 2506.12708): 8 NPUs per compute node',
      scaleup_domain: 'CloudMatrix384 paper (arXiv 2506.12708): 384 NPUs (48 nodes) in one UB supernode',
      intra_bw: 'CloudMatrix384 paper: unified-bus (UB) fabric, 392 GB/s unidirectional per 910C, non-blocking across the 384 NPUs',
      inter_bw: 'CloudMatrix384 paper: RDMA plane for scale-out beyond the supernode; 400 Gb/s per NPU assumed',
      hbm_bytes: 'CloudMatrix384 paper: 128 GB HBM per 910C (two dies of 64 GB)', hbm_bw: 'CloudMatrix384 paper: 3.2 TB/s per 910C',
      peak_bf16: 'CloudMatrix384 paper: ~752 TFLOPS dense BF16/FP16 per 910C (two dies); not verified in-session', peak_fp8: 'Ascend 910C has no FP8 cube (INT8 only)',
      fp8_gemm_eff: 'no FP8', gemm_eff: 'assumption: as 910B', bw_eff: 'assumption', coll_eff: 'assumption', coll_latency: 'assumption',
    },
  },
};

const ALIASES: Record<string, string> = {
  'h100-sxm': 'h100', 'h100sxm': 'h100', 'a100-80g': 'a100', 'ascend-910b': '910b', 'atlas-800t-a2': '910b',
  'ascend-910c': '910c', 'cloudmatrix-384': '910c', 'cloudmatrix384': '910c', 'gb200-nvl72': 'gb200',
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** Look a preset up by name (case-insensitive, a few aliases). */
export function hardwarePreset(name: string, where = 'hardware.preset'): Hardware {
  const key = name.toLowerCase();
  const hw = PRESETS[key] ?? PRESETS[ALIASES[key] ?? ''];
  if (!hw) throw new MoekitError(`unknown hardware preset '${name}' (known: ${presetNames().join(', ')})`, where);
  const source = { ...hw.source };
  source.scaleup_domain ??= 'the scale-up (NVLink / HCCS) domain is one node: devices_per_node';
  return { ...hw, source };
}

const NUMERIC_OVERRIDES = [
  'devices_per_node', 'scaleup_domain', 'intra_bw', 'inter_bw', 'host_bw', 'hbm_bytes', 'hbm_bw', 'peak_bf16', 'peak_fp8',
  'gemm_eff', 'fp8_gemm_eff', 'attn_eff', 'bw_eff', 'coll_eff', 'coll_latency',
] as const;

/**
 * The range of each override, in the units the spec gives it (GB/s, GB, TB/s, TFLOP/s where the key says so):
 * efficiencies are fractions of a peak, so in [0, 1] (a gemm_eff of 5 gave an MFU of 1.26); rates and sizes stay
 * far above any device (1e6 GB/s, 1e6 GB, 1e6 TFLOP/s) and finite through every product the simulator forms.
 */
const OVERRIDE_RANGE: Record<string, [number, number, boolean]> = {
  devices_per_node: [1, 65536, true], scaleup_domain: [1, 2 ** 20, true],
  gemm_eff: [0, 1, false], fp8_gemm_eff: [0, 1, false], attn_eff: [0, 1.9, false], bw_eff: [0, 1, false], coll_eff: [0, 1, false],
  coll_latency: [0, 1, false],
  intra_bw: [0, 1e15, false], inter_bw: [0, 1e15, false], host_bw: [0, 1e15, false], hbm_bytes: [0, 1e15, false],
  hbm_bw: [0, 1e15, false], peak_bf16: [0, 1e18, false], peak_fp8: [0, 1e18, false],
  intra_gbps: [0, 1e6, false], inter_gbps: [0, 1e6, false], host_gbps: [0, 1e6, false], hbm_gb: [0, 1e6, false],
  hbm_tbps: [0, 1e3, false], peak_bf16_tflops: [0, 1e6, false], peak_fp8_tflops: [0, 1e6, false],
};

/**
 * Resolve a spec's `hardware` section: a preset plus overrides. Overrides may use convenient units:
 * `*_gbps` fields are GB/s, `hbm_gb` is GB, `peak_bf16_tflops` / `peak_fp8_tflops` are TFLOP/s.
 */
export function resolveHardware(raw: Record<string, unknown>): Hardware {
  const preset = raw.preset;
  if (typeof preset !== 'string') throw new MoekitError('missing hardware preset (one of ' + presetNames().join(', ') + ')', 'hardware.preset');
  const hw = hardwarePreset(preset);
  const unit: Record<string, [keyof Hardware, number]> = {
    intra_gbps: ['intra_bw', GB], inter_gbps: ['inter_bw', GB], host_gbps: ['host_bw', GB], hbm_gb: ['hbm_bytes', GB], hbm_tbps: ['hbm_bw', 1e12],
    peak_bf16_tflops: ['peak_bf16', TF], peak_fp8_tflops: ['peak_fp8', TF],
  };
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'preset' || k === 'devices') continue;
    if (k === 'intra_topology') {
      if (v !== 'switch' && v !== 'full-mesh') throw new MoekitError(`must be 'switch' or 'full-mesh'`, 'hardware.intra_topology');
      hw.intra_topology = v; hw.source.intra_topology = 'spec override';
      continue;
    }
    const field = (NUMERIC_OVERRIDES as readonly string[]).includes(k) ? (k as keyof Hardware) : unit[k]?.[0];
    if (!field) throw new MoekitError(`unknown hardware field '${k}'`, `hardware.${k}`);
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new MoekitError(`must be a non-negative number (got ${JSON.stringify(v)})`, `hardware.${k}`);
    const [lo, hi, int] = OVERRIDE_RANGE[k] ?? [0, 1e6, false];
    if (v < lo || v > hi || (int && !Number.isInteger(v))) {
      throw new MoekitError(`must be ${int ? 'an integer' : 'a number'} in [${lo}, ${hi}] (got ${v})`, `hardware.${k}`);
    }
    (hw as unknown as Record<string, number>)[field] = unit[k] ? v * unit[k][1] : v;
    hw.source[field] = 'spec override';
  }
  if (hw.devices_per_node < 1 || !Number.isInteger(hw.devices_per_node)) throw new MoekitError('must be a positive integer', 'hardware.devices_per_node');
  if (hw.scaleup_domain < hw.devices_per_node) hw.scaleup_domain = hw.devices_per_node;
  for (const f of ['peak_bf16', 'hbm_bytes', 'hbm_bw', 'intra_bw', 'inter_bw', 'gemm_eff', 'bw_eff', 'coll_eff'] as const) {
    if (!(hw[f] > 0)) throw new MoekitError('must be positive', `hardware.${f}`);
  }
  // FP8 GEMMs run at fp8_gemm_eff x peak_fp8 whenever peak_fp8 > 0: a zero efficiency would make them take forever
  if (hw.peak_fp8 > 0 && !(hw.fp8_gemm_eff > 0)) throw new MoekitError('must be positive when peak_fp8 > 0 (set peak_fp8_tflops: 0 for no FP8)', 'hardware.fp8_gemm_eff');
  // attention kernels run at attn_eff x the fitted SDPA efficiency: zero would make them take forever
  if (hw.attn_eff !== undefined && !(hw.attn_eff > 0)) throw new MoekitError('must be positive (attention runs at attn_eff x the fitted SDPA efficiency)', 'hardware.attn_eff');
  return hw;
}
