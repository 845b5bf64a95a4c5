/**
 * src/plan/hardware.ts by hand: every preset's numbers against the vendor's datasheet (dense tensor-core peaks, HBM
 * size and bandwidth, per-direction link bandwidths: hardware.ts' conventions), the lookup (case, aliases, the copy it
 * returns, the unknown-name error) and resolveHardware's overrides: each key, its unit, its range at both ends, and
 * the exact text and spec path of every validation error. Fast: no simulation.
 */
import { describe, expect, it } from 'vitest';
import { FITTED } from '../../src/plan/fitted.js';
import { blackwellEfficiencies, hardwarePreset, presetNames, resolveHardware, type Hardware } from '../../src/plan/hardware.js';
import { MoekitError } from '../../src/util/errors.js';

const GB = 1e9;
const TF = 1e12;
const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** the error a call throws: a MoekitError, with its message and spec path */
function caught(fn: () => unknown): { message: string; file: string | undefined } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MoekitError);
    return { message: (e as MoekitError).message, file: (e as MoekitError).file };
  }
  throw new Error('expected a MoekitError, nothing was thrown');
}

const KNOWN = 'a100, a800, h100, h800, h200, b200, gb200, 910b, 910c';
/** NVIDIA efficiencies: the H200 fits (fitted.ts) */
const NV = { gemm_eff: FITTED.gemm_eff.value, fp8_gemm_eff: FITTED.fp8_gemm_eff.value, bw_eff: FITTED.bw_eff.value, coll_eff: 0.75, coll_latency: 20e-6 };
/** Blackwell: the Hopper fits times blackwell_kernel_eff: 0.73 x 0.425 = 0.31025, 0.60 x 0.425 = 0.255, attention 0.425 */
const BW_F = FITTED.blackwell_kernel_eff.value;
const BW = { ...NV, gemm_eff: FITTED.gemm_eff.value * BW_F, fp8_gemm_eff: FITTED.fp8_gemm_eff.value * BW_F, attn_eff: BW_F };
const ASCEND = { gemm_eff: 0.72, fp8_gemm_eff: 0, bw_eff: 0.8, coll_eff: 0.7, coll_latency: 30e-6 };

/** every number of every preset, each from the vendor's datasheet (bidirectional link figures halved) */
const EXPECTED: Record<string, Omit<Hardware, 'source'>> = {
  // A100 SXM4 80GB: BF16 312 TFLOPS dense (624 sparse), no FP8; HBM2e 2,039 GB/s; NVLink 3 600 GB/s bidirectional;
  // DGX A100: 8 GPUs, 8x HDR 200 Gb/s = 25 GB/s per GPU; PCIe Gen4 64 GB/s bidirectional; nvidia-smi 81,559 MiB
  a100: {
    preset: 'a100', name: 'NVIDIA A100 SXM4 80GB (DGX A100)', devices_per_node: 8, scaleup_domain: 8, intra_bw: 300 * GB, intra_topology: 'switch',
    inter_bw: 25 * GB, host_bw: 32 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 2039 * GB, peak_bf16: 312 * TF, peak_fp8: 0, ...NV,
  },
  // A800: the A100 with NVLink cut to 400 GB/s bidirectional
  a800: {
    preset: 'a800', name: 'NVIDIA A800 SXM4 80GB', devices_per_node: 8, scaleup_domain: 8, intra_bw: 200 * GB, intra_topology: 'switch',
    inter_bw: 25 * GB, host_bw: 32 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 2039 * GB, peak_bf16: 312 * TF, peak_fp8: 0, ...NV,
  },
  // H100 SXM5: BF16 989 TFLOPS dense (1,979 sparse), FP8 1,979 dense (3,958 sparse); HBM3 3.35 TB/s; NVLink 4 900 GB/s
  // bidirectional; DGX H100: 8x ConnectX-7 400 Gb/s = 50 GB/s per GPU; PCIe Gen5 128 GB/s bidirectional
  h100: {
    preset: 'h100', name: 'NVIDIA H100 SXM5 80GB (DGX H100)', devices_per_node: 8, scaleup_domain: 8, intra_bw: 450 * GB, intra_topology: 'switch',
    inter_bw: 50 * GB, host_bw: 64 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 3350 * GB, peak_bf16: 989 * TF, peak_fp8: 1979 * TF, ...NV,
  },
  // H800: the H100's tensor cores and HBM, NVLink cut to 400 GB/s bidirectional
  h800: {
    preset: 'h800', name: 'NVIDIA H800 SXM5 80GB', devices_per_node: 8, scaleup_domain: 8, intra_bw: 200 * GB, intra_topology: 'switch',
    inter_bw: 50 * GB, host_bw: 64 * GB, hbm_bytes: 81559 * MiB, hbm_bw: 3350 * GB, peak_bf16: 989 * TF, peak_fp8: 1979 * TF, ...NV,
  },
  // H200 SXM: the H100's peaks, 141 GB HBM3e at 4.8 TB/s (nvidia-smi: 143,771 MiB)
  h200: {
    preset: 'h200', name: 'NVIDIA H200 SXM 141GB (HGX H200)', devices_per_node: 8, scaleup_domain: 8, intra_bw: 450 * GB, intra_topology: 'switch',
    inter_bw: 50 * GB, host_bw: 64 * GB, hbm_bytes: 143771 * MiB, hbm_bw: 4800 * GB, peak_bf16: 989 * TF, peak_fp8: 1979 * TF, ...NV,
  },
  // DGX B200: 1,440 GB and 64 TB/s over 8 GPUs = 180 GB, 8 TB/s; BF16 2.25 PF dense, FP8 4.5 PF dense; NVLink 5 1.8 TB/s
  b200: {
    preset: 'b200', name: 'NVIDIA B200 (DGX/HGX B200)', devices_per_node: 8, scaleup_domain: 8, intra_bw: 900 * GB, intra_topology: 'switch',
    inter_bw: 50 * GB, host_bw: 64 * GB, hbm_bytes: 180 * GB, hbm_bw: 8000 * GB, peak_bf16: 2250 * TF, peak_fp8: 4500 * TF, ...BW,
  },
  // GB200 NVL72: 72 GPUs in one NVLink domain, 4 a compute tray; 13.4 TB / 72 = 186 GB, 576 TB/s / 72 = 8 TB/s; BF16 360 PF
  // sparse / 72 / 2 = 2.5 PF dense, FP8 5 PF dense; NVLink-C2C 900 GB/s bidirectional to Grace
  gb200: {
    preset: 'gb200', name: 'NVIDIA GB200 NVL72', devices_per_node: 4, scaleup_domain: 72, intra_bw: 900 * GB, intra_topology: 'switch',
    inter_bw: 50 * GB, host_bw: 450 * GB, hbm_bytes: 186 * GB, hbm_bw: 8000 * GB, peak_bf16: 2500 * TF, peak_fp8: 5000 * TF, ...BW,
  },
  // Atlas 800T A2: 8 NPUs, HCCS full mesh of 7 x 56 GB/s = 392 GB/s, 200 GE RoCE per NPU = 25 GB/s; 64 GB; ~313 TF
  '910b': {
    preset: '910b', name: 'Huawei Ascend 910B (Atlas 800T A2)', devices_per_node: 8, scaleup_domain: 8, intra_bw: 392 * GB, intra_topology: 'full-mesh',
    inter_bw: 25 * GB, host_bw: 32 * GB, hbm_bytes: 64 * GiB, hbm_bw: 1600 * GB, peak_bf16: 313 * TF, peak_fp8: 0, ...ASCEND,
  },
  // CloudMatrix384: 384 NPUs in one UB supernode, 8 a node, 392 GB/s UB per NPU; 128 GB, 3.2 TB/s, ~752 TF BF16
  '910c': {
    preset: '910c', name: 'Huawei Ascend 910C (CloudMatrix 384)', devices_per_node: 8, scaleup_domain: 384, intra_bw: 392 * GB, intra_topology: 'switch',
    inter_bw: 50 * GB, host_bw: 64 * GB, hbm_bytes: 128 * GiB, hbm_bw: 3200 * GB, peak_bf16: 752 * TF, peak_fp8: 0, ...ASCEND,
  },
};

const NV_SOURCE_KEYS = ['host_bw', 'devices_per_node', 'scaleup_domain', 'intra_bw', 'inter_bw', 'hbm_bytes', 'hbm_bw', 'peak_bf16', 'peak_fp8', 'gemm_eff', 'fp8_gemm_eff', 'bw_eff', 'coll_eff', 'coll_latency'];
const SOURCE_KEYS: Record<string, string[]> = {
  a100: NV_SOURCE_KEYS, a800: NV_SOURCE_KEYS, h100: NV_SOURCE_KEYS, h800: NV_SOURCE_KEYS, h200: NV_SOURCE_KEYS,
  b200: [...NV_SOURCE_KEYS, 'attn_eff'], gb200: [...NV_SOURCE_KEYS, 'attn_eff'], '910b': NV_SOURCE_KEYS, '910c': NV_SOURCE_KEYS,
};
/** the datasheet figure each preset's source must quote for its peak, HBM bandwidth and link */
const QUOTES: Record<string, { peak_bf16: RegExp; hbm_bw: RegExp; intra_bw: RegExp }> = {
  a100: { peak_bf16: /312 TFLOPS dense/, hbm_bw: /2,039 GB\/s/, intra_bw: /600 GB\/s \(bidirectional\) -> 300 GB\/s/ },
  a800: { peak_bf16: /312 TFLOPS dense/, hbm_bw: /2,039 GB\/s/, intra_bw: /400 GB\/s .*-> 200 GB\/s/ },
  h100: { peak_bf16: /1,979 TFLOPS with sparsity -> 989 dense/, hbm_bw: /3\.35 TB\/s/, intra_bw: /900 GB\/s \(bidirectional\) -> 450 GB\/s/ },
  h800: { peak_bf16: /989 TFLOPS dense/, hbm_bw: /3\.35 TB\/s/, intra_bw: /400 GB\/s bidirectional -> 200 GB\/s/ },
  h200: { peak_bf16: /-> 989 dense/, hbm_bw: /4\.8 TB\/s/, intra_bw: /900 GB\/s \(bidirectional\) -> 450 GB\/s/ },
  b200: { peak_bf16: /4\.5 PFLOPS with sparsity -> 2\.25 dense/, hbm_bw: /64 TB\/s total \/ 8 = 8 TB\/s/, intra_bw: /1\.8 TB\/s .*-> 900 GB\/s/ },
  gb200: { peak_bf16: /360 PFLOPS with sparsity \/ 72 -> 2\.5 dense/, hbm_bw: /576 TB\/s \/ 72 = 8 TB\/s/, intra_bw: /1\.8 TB\/s .*-> 900 GB\/s/ },
  '910b': { peak_bf16: /313 TFLOPS/, hbm_bw: /1\.6 TB\/s/, intra_bw: /7 links x 56 GB\/s = 392 GB\/s/ },
  '910c': { peak_bf16: /752 TFLOPS/, hbm_bw: /3\.2 TB\/s/, intra_bw: /392 GB\/s unidirectional/ },
};

describe('presets', () => {
  it('presetNames lists the nine presets in order', () => {
    expect(presetNames()).toEqual(['a100', 'a800', 'h100', 'h800', 'h200', 'b200', 'gb200', '910b', '910c']);
  });

  it('HBM sizes in bytes: nvidia-smi MiB and datasheet GB', () => {
    // 81,559 MiB x 1,048,576 = 85,520,809,984 B; 143,771 MiB = 150,754,820,096 B; 64 GiB = 68,719,476,736 B
    expect(hardwarePreset('h100').hbm_bytes).toBe(85_520_809_984);
    expect(hardwarePreset('h200').hbm_bytes).toBe(150_754_820_096);
    expect(hardwarePreset('910b').hbm_bytes).toBe(68_719_476_736);
    expect(hardwarePreset('910c').hbm_bytes).toBe(137_438_953_472);
  });

  for (const name of Object.keys(EXPECTED)) {
    it(`${name}: every number as the datasheet gives it, every one with a source`, () => {
      const { source, ...rest } = hardwarePreset(name);
      expect(rest).toStrictEqual(EXPECTED[name]);
      expect(Object.keys(source).sort()).toEqual([...SOURCE_KEYS[name]].sort());
      for (const [k, s] of Object.entries(source)) {
        expect(typeof s, `${name}.${k}`).toBe('string');
        expect(s.length, `${name}.${k}`).toBeGreaterThan(5); // the shortest: "no FP8"
      }
      const q = QUOTES[name];
      expect(source.peak_bf16).toMatch(q.peak_bf16);
      expect(source.hbm_bw).toMatch(q.hbm_bw);
      expect(source.intra_bw).toMatch(q.intra_bw);
    });
  }

  it('the Blackwell efficiencies are the Hopper fits times 0.425 (0.31025, 0.255; attention 0.425)', () => {
    for (const p of ['b200', 'gb200']) {
      const hw = hardwarePreset(p);
      expect(hw.gemm_eff).toBeCloseTo(0.73 * 0.425, 14);
      expect(hw.fp8_gemm_eff).toBeCloseTo(0.6 * 0.425, 14);
      expect(hw.attn_eff).toBe(0.425);
    }
    for (const p of ['a100', 'a800', 'h100', 'h800', 'h200', '910b', '910c']) expect('attn_eff' in hardwarePreset(p), p).toBe(false);
  });

  it('source texts: fitted efficiencies name their kind and data; Blackwell names the factor; the scale-up domain default', () => {
    const h = hardwarePreset('h100').source;
    // FITTED.gemm_eff and fp8_gemm_eff are kind 'fit', bw_eff 'measured': '<kind> (src/plan/fitted.ts): <fitted_on>'
    expect(h.gemm_eff).toBe(`fit (src/plan/fitted.ts): ${FITTED.gemm_eff.fitted_on}`);
    expect(h.fp8_gemm_eff).toBe(`fit (src/plan/fitted.ts): ${FITTED.fp8_gemm_eff.fitted_on}`);
    expect(h.bw_eff).toBe(`measured (src/plan/fitted.ts): ${FITTED.bw_eff.fitted_on}`);
    expect(h.coll_eff).toMatch(/^assumption: NCCL bus bandwidth ~0\.7-0\.8 of link rate/);
    expect(h.coll_latency).toBe('assumption: ~20 us per collective step (NCCL small-message latency across IB)');
    // a preset without its own scale-up source gets the one-node default; GB200 and 910C keep theirs
    expect(h.scaleup_domain).toBe('the scale-up (NVLink / HCCS) domain is one node: devices_per_node');
    expect(hardwarePreset('910b').source.scaleup_domain).toBe('the scale-up (NVLink / HCCS) domain is one node: devices_per_node');
    expect(hardwarePreset('gb200').source.scaleup_domain).toBe('NVIDIA GB200 NVL72 datasheet: one NVLink domain of 72 GPUs');
    expect(hardwarePreset('910c').source.scaleup_domain).toBe('CloudMatrix384 paper (arXiv 2506.12708): 384 NPUs (48 nodes) in one UB supernode');
    for (const p of ['b200', 'gb200']) {
      const s = hardwarePreset(p).source;
      expect(s.gemm_eff).toBe("the Hopper fit (0.73) times blackwell_kernel_eff (0.425, fitted on the reference set's GB200 fit rows: src/plan/fitted.ts)");
      expect(s.fp8_gemm_eff).toBe('the Hopper fit (0.6) times blackwell_kernel_eff (0.425, src/plan/fitted.ts)');
      expect(s.attn_eff).toBe('blackwell_kernel_eff (0.425, src/plan/fitted.ts): the H200-measured SDPA efficiencies scaled as the GEMMs');
      expect(s.bw_eff).toBe(`measured (src/plan/fitted.ts): ${FITTED.bw_eff.fitted_on}`);
    }
    expect(hardwarePreset('910b').source.gemm_eff).toBe(
      'assumption: cube GEMM efficiency 0.72 (below the fitted 0.73 of Hopper; the Pangu Ultra MoE paper reports operator-level validation but no number we could read)');
  });
});

describe('blackwellEfficiencies', () => {
  it('default factor: the fitted 0.425', () => {
    const e = blackwellEfficiencies();
    expect(e).toEqual({ gemm_eff: FITTED.gemm_eff.value * BW_F, fp8_gemm_eff: FITTED.fp8_gemm_eff.value * BW_F, attn_eff: BW_F });
    expect(e.gemm_eff).toBeCloseTo(0.31025, 14);
    expect(e.fp8_gemm_eff).toBeCloseTo(0.255, 14);
  });
  it('a given factor multiplies both GEMM efficiencies and is the attention multiplier: 0.73 x 0.5, 0.6 x 0.5', () => {
    expect(blackwellEfficiencies(0.5)).toEqual({ gemm_eff: 0.365, fp8_gemm_eff: 0.3, attn_eff: 0.5 });
    expect(blackwellEfficiencies(1)).toEqual({ gemm_eff: 0.73, fp8_gemm_eff: 0.6, attn_eff: 1 });
  });
});

describe('hardwarePreset', () => {
  it('is case-insensitive', () => {
    expect(hardwarePreset('H100').preset).toBe('h100');
    expect(hardwarePreset('GB200').preset).toBe('gb200');
    expect(hardwarePreset('910B').preset).toBe('910b');
  });

  it('knows the aliases', () => {
    const aliases: [string, string][] = [
      ['h100-sxm', 'h100'], ['h100sxm', 'h100'], ['a100-80g', 'a100'], ['ascend-910b', '910b'], ['atlas-800t-a2', '910b'],
      ['ascend-910c', '910c'], ['cloudmatrix-384', '910c'], ['cloudmatrix384', '910c'], ['gb200-nvl72', 'gb200'], ['GB200-NVL72', 'gb200'],
    ];
    for (const [alias, preset] of aliases) expect(hardwarePreset(alias).preset, alias).toBe(preset);
  });

  it('an unknown name: the message lists the presets, the spec path defaults to hardware.preset', () => {
    expect(caught(() => hardwarePreset('x100'))).toEqual({ message: `unknown hardware preset 'x100' (known: ${KNOWN})`, file: 'hardware.preset' });
    expect(caught(() => hardwarePreset('H999', 'search.hardware'))).toEqual({ message: `unknown hardware preset 'H999' (known: ${KNOWN})`, file: 'search.hardware' });
    expect(caught(() => hardwarePreset(''))).toEqual({ message: `unknown hardware preset '' (known: ${KNOWN})`, file: 'hardware.preset' });
  });

  it('returns a copy: changing it (numbers or sources) leaves the preset alone', () => {
    const a = hardwarePreset('h100');
    a.peak_bf16 = 1;
    a.source.peak_bf16 = 'changed';
    a.source.scaleup_domain = 'changed';
    const b = hardwarePreset('h100');
    expect(b.peak_bf16).toBe(989 * TF);
    expect(b.source.peak_bf16).toMatch(/989 dense/);
    expect(b.source.scaleup_domain).toBe('the scale-up (NVLink / HCCS) domain is one node: devices_per_node');
  });
});

describe('resolveHardware: preset and passthrough keys', () => {
  it('a preset alone resolves to the preset; devices is the spec\'s, not a hardware field', () => {
    expect(resolveHardware({ preset: 'h100' })).toEqual(hardwarePreset('h100'));
    expect(resolveHardware({ preset: 'H100', devices: 16 })).toEqual(hardwarePreset('h100'));
    expect('devices' in resolveHardware({ preset: 'h100', devices: 16 })).toBe(false);
  });

  it('a missing or non-string preset: the list of presets, at hardware.preset', () => {
    const msg = `missing hardware preset (one of ${KNOWN})`;
    expect(caught(() => resolveHardware({}))).toEqual({ message: msg, file: 'hardware.preset' });
    expect(caught(() => resolveHardware({ preset: 100 }))).toEqual({ message: msg, file: 'hardware.preset' });
    expect(caught(() => resolveHardware({ preset: 'nope' }))).toEqual({ message: `unknown hardware preset 'nope' (known: ${KNOWN})`, file: 'hardware.preset' });
  });

  it('an unknown field is named', () => {
    expect(caught(() => resolveHardware({ preset: 'h100', foo: 1 }))).toEqual({ message: "unknown hardware field 'foo'", file: 'hardware.foo' });
    expect(caught(() => resolveHardware({ preset: 'h100', name: 'x' }))).toEqual({ message: "unknown hardware field 'name'", file: 'hardware.name' });
  });

  it('intra_topology: switch or full-mesh, recorded as an override; anything else refused', () => {
    const a = resolveHardware({ preset: 'h100', intra_topology: 'full-mesh' });
    expect(a.intra_topology).toBe('full-mesh');
    expect(a.source.intra_topology).toBe('spec override');
    const b = resolveHardware({ preset: '910b', intra_topology: 'switch' });
    expect(b.intra_topology).toBe('switch');
    expect(b.source.intra_topology).toBe('spec override');
    expect('intra_topology' in hardwarePreset('h100').source).toBe(false);
    for (const v of ['ring', '', 1]) {
      expect(caught(() => resolveHardware({ preset: 'h100', intra_topology: v }))).toEqual({ message: "must be 'switch' or 'full-mesh'", file: 'hardware.intra_topology' });
    }
  });

  it('overrides leave the preset table alone', () => {
    resolveHardware({ preset: 'h100', intra_gbps: 1, gemm_eff: 0.1 });
    expect(hardwarePreset('h100').intra_bw).toBe(450 * GB);
    expect(hardwarePreset('h100').gemm_eff).toBe(FITTED.gemm_eff.value);
    expect(hardwarePreset('h100').source.intra_bw).toMatch(/NVLink 900 GB\/s/);
  });
});

/**
 * Each override key: the field it sets, the unit factor, its range [lo, hi], integer or not. At hi it is accepted,
 * just above refused with the range in the message; a fractional value is accepted unless the key is an integer.
 */
const KEYS: { key: string; field: keyof Hardware; unit: number; hi: number; hiText: string; over: number; int: boolean; frac: number }[] = [
  { key: 'devices_per_node', field: 'devices_per_node', unit: 1, hi: 65536, hiText: '65536', over: 65537, int: true, frac: 2.5 },
  { key: 'scaleup_domain', field: 'scaleup_domain', unit: 1, hi: 2 ** 20, hiText: '1048576', over: 2 ** 20 + 1, int: true, frac: 9.5 },
  { key: 'intra_bw', field: 'intra_bw', unit: 1, hi: 1e15, hiText: '1000000000000000', over: 2e15, int: false, frac: 123.5 },
  { key: 'inter_bw', field: 'inter_bw', unit: 1, hi: 1e15, hiText: '1000000000000000', over: 2e15, int: false, frac: 12.5 },
  { key: 'host_bw', field: 'host_bw', unit: 1, hi: 1e15, hiText: '1000000000000000', over: 2e15, int: false, frac: 0.5 },
  { key: 'hbm_bytes', field: 'hbm_bytes', unit: 1, hi: 1e15, hiText: '1000000000000000', over: 2e15, int: false, frac: 1.5 },
  { key: 'hbm_bw', field: 'hbm_bw', unit: 1, hi: 1e15, hiText: '1000000000000000', over: 2e15, int: false, frac: 2.5 },
  { key: 'peak_bf16', field: 'peak_bf16', unit: 1, hi: 1e18, hiText: '1000000000000000000', over: 2e18, int: false, frac: 3.5 },
  { key: 'peak_fp8', field: 'peak_fp8', unit: 1, hi: 1e18, hiText: '1000000000000000000', over: 2e18, int: false, frac: 4.5 },
  { key: 'gemm_eff', field: 'gemm_eff', unit: 1, hi: 1, hiText: '1', over: 1.5, int: false, frac: 0.5 },
  { key: 'fp8_gemm_eff', field: 'fp8_gemm_eff', unit: 1, hi: 1, hiText: '1', over: 1.5, int: false, frac: 0.25 },
  { key: 'attn_eff', field: 'attn_eff', unit: 1, hi: 1.9, hiText: '1.9', over: 2, int: false, frac: 1.5 },
  { key: 'bw_eff', field: 'bw_eff', unit: 1, hi: 1, hiText: '1', over: 1.5, int: false, frac: 0.75 },
  { key: 'coll_eff', field: 'coll_eff', unit: 1, hi: 1, hiText: '1', over: 1.5, int: false, frac: 0.125 },
  { key: 'coll_latency', field: 'coll_latency', unit: 1, hi: 1, hiText: '1', over: 1.5, int: false, frac: 0.5 },
  // convenient units: GB/s, GB, TB/s, TFLOP/s
  { key: 'intra_gbps', field: 'intra_bw', unit: 1e9, hi: 1e6, hiText: '1000000', over: 2e6, int: false, frac: 100.5 },
  { key: 'inter_gbps', field: 'inter_bw', unit: 1e9, hi: 1e6, hiText: '1000000', over: 2e6, int: false, frac: 12.5 },
  { key: 'host_gbps', field: 'host_bw', unit: 1e9, hi: 1e6, hiText: '1000000', over: 2e6, int: false, frac: 0.5 },
  { key: 'hbm_gb', field: 'hbm_bytes', unit: 1e9, hi: 1e6, hiText: '1000000', over: 2e6, int: false, frac: 96.5 },
  { key: 'hbm_tbps', field: 'hbm_bw', unit: 1e12, hi: 1e3, hiText: '1000', over: 2e3, int: false, frac: 2.5 },
  { key: 'peak_bf16_tflops', field: 'peak_bf16', unit: 1e12, hi: 1e6, hiText: '1000000', over: 2e6, int: false, frac: 0.5 },
  { key: 'peak_fp8_tflops', field: 'peak_fp8', unit: 1e12, hi: 1e6, hiText: '1000000', over: 2e6, int: false, frac: 1.5 },
];

describe('resolveHardware: numeric overrides', () => {
  for (const k of KEYS) {
    it(`${k.key}: sets ${k.field} (x ${k.unit}), range [${k.int ? 1 : 0}, ${k.hiText}]${k.int ? ', integer' : ''}`, () => {
      const at = resolveHardware({ preset: 'h100', [k.key]: k.hi });
      expect(at[k.field]).toBe(k.hi * k.unit);
      expect(at.source[k.field]).toBe('spec override');
      if (k.unit !== 1) expect(k.key in at.source).toBe(false);
      expect(caught(() => resolveHardware({ preset: 'h100', [k.key]: k.over }))).toEqual({
        message: `must be ${k.int ? 'an integer' : 'a number'} in [${k.int ? 1 : 0}, ${k.hiText}] (got ${k.over})`, file: `hardware.${k.key}`,
      });
      if (k.int) {
        expect(caught(() => resolveHardware({ preset: 'h100', [k.key]: k.frac }))).toEqual({
          message: `must be an integer in [1, ${k.hiText}] (got ${k.frac})`, file: `hardware.${k.key}`,
        });
      } else {
        expect(resolveHardware({ preset: 'h100', [k.key]: k.frac })[k.field]).toBe(k.frac * k.unit);
      }
    });
  }

  it('unit conversions on ordinary values: 100.5 GB/s, 96.5 GB, 2.5 TB/s, 0.5 TFLOP/s', () => {
    const hw = resolveHardware({ preset: 'h100', intra_gbps: 100.5, inter_gbps: 12.5, host_gbps: 0.5, hbm_gb: 96.5, hbm_tbps: 2.5, peak_bf16_tflops: 0.5, peak_fp8_tflops: 1.5 });
    expect([hw.intra_bw, hw.inter_bw, hw.host_bw, hw.hbm_bytes, hw.hbm_bw, hw.peak_bf16, hw.peak_fp8]).toEqual([100.5e9, 12.5e9, 0.5e9, 96.5e9, 2.5e12, 0.5e12, 1.5e12]);
  });

  it('the integer keys\' lower end is 1: 0 refused, 1 accepted', () => {
    expect(caught(() => resolveHardware({ preset: 'h100', devices_per_node: 0 }))).toEqual({ message: 'must be an integer in [1, 65536] (got 0)', file: 'hardware.devices_per_node' });
    expect(caught(() => resolveHardware({ preset: 'h100', scaleup_domain: 0 }))).toEqual({ message: 'must be an integer in [1, 1048576] (got 0)', file: 'hardware.scaleup_domain' });
    expect(resolveHardware({ preset: 'h100', devices_per_node: 1 }).devices_per_node).toBe(1);
  });

  it('0 is in range for the keys that may be zero', () => {
    const hw = resolveHardware({ preset: 'h100', host_bw: 0, coll_latency: 0, peak_fp8: 0, fp8_gemm_eff: 0 });
    expect([hw.host_bw, hw.coll_latency, hw.peak_fp8, hw.fp8_gemm_eff]).toEqual([0, 0, 0, 0]);
  });

  it('attn_eff 0 is refused (attention would take forever); the smallest positive value and the presets without one pass', () => {
    expect(caught(() => resolveHardware({ preset: 'h100', attn_eff: 0 }))).toEqual({ message: 'must be positive (attention runs at attn_eff x the fitted SDPA efficiency)', file: 'hardware.attn_eff' });
    expect(resolveHardware({ preset: 'h100', attn_eff: Number.MIN_VALUE }).attn_eff).toBe(Number.MIN_VALUE);
    expect(resolveHardware({ preset: 'h100' }).attn_eff).toBeUndefined();
  });

  it('a value that is not a non-negative finite number: the value, JSON-quoted, in the message', () => {
    const bad: [unknown, string][] = [['1', '"1"'], [null, 'null'], [true, 'true'], [-0.5, '-0.5'], [-1e-300, '-1e-300'], [NaN, 'null'], [Infinity, 'null'], [-Infinity, 'null'], [undefined, 'undefined']];
    for (const [v, shown] of bad) {
      expect(caught(() => resolveHardware({ preset: 'h100', gemm_eff: v })), String(v)).toEqual({ message: `must be a non-negative number (got ${shown})`, file: 'hardware.gemm_eff' });
    }
  });
});

describe('resolveHardware: the resolved hardware is checked', () => {
  it('the scale-up domain is at least one node: raised to devices_per_node, never lowered', () => {
    expect(resolveHardware({ preset: 'h100', devices_per_node: 16 }).scaleup_domain).toBe(16);
    expect(resolveHardware({ preset: 'h100', scaleup_domain: 4 }).scaleup_domain).toBe(8);
    expect(resolveHardware({ preset: 'h100', devices_per_node: 4 }).scaleup_domain).toBe(8);
    expect(resolveHardware({ preset: 'gb200', devices_per_node: 8 }).scaleup_domain).toBe(72);
    expect(resolveHardware({ preset: 'gb200', devices_per_node: 72 }).scaleup_domain).toBe(72);
    expect(resolveHardware({ preset: 'gb200', devices_per_node: 73 }).scaleup_domain).toBe(73);
  });

  it('the fields the simulator divides by must be positive: each named at its field, whatever key set it', () => {
    const zero: [Record<string, number>, string][] = [
      [{ peak_bf16: 0 }, 'peak_bf16'], [{ peak_bf16_tflops: 0 }, 'peak_bf16'], [{ hbm_bytes: 0 }, 'hbm_bytes'], [{ hbm_gb: 0 }, 'hbm_bytes'],
      [{ hbm_bw: 0 }, 'hbm_bw'], [{ hbm_tbps: 0 }, 'hbm_bw'], [{ intra_bw: 0 }, 'intra_bw'], [{ intra_gbps: 0 }, 'intra_bw'],
      [{ inter_bw: 0 }, 'inter_bw'], [{ inter_gbps: 0 }, 'inter_bw'], [{ gemm_eff: 0 }, 'gemm_eff'], [{ bw_eff: 0 }, 'bw_eff'], [{ coll_eff: 0 }, 'coll_eff'],
    ];
    for (const [o, f] of zero) expect(caught(() => resolveHardware({ preset: 'h100', ...o })), f).toEqual({ message: 'must be positive', file: `hardware.${f}` });
    // the smallest positive values pass
    const hw = resolveHardware({ preset: 'h100', peak_bf16: 1e-9, hbm_bytes: 1e-9, hbm_bw: 1e-9, intra_bw: 1e-9, inter_bw: 1e-9, gemm_eff: 1e-9, bw_eff: 1e-9, coll_eff: 1e-9 });
    expect(hw.peak_bf16).toBe(1e-9);
  });

  it('FP8 GEMMs need an efficiency when the device has FP8 (peak_fp8 > 0); peak_fp8 0 allows fp8_gemm_eff 0', () => {
    const msg = { message: 'must be positive when peak_fp8 > 0 (set peak_fp8_tflops: 0 for no FP8)', file: 'hardware.fp8_gemm_eff' };
    expect(caught(() => resolveHardware({ preset: 'h100', fp8_gemm_eff: 0 }))).toEqual(msg);
    expect(caught(() => resolveHardware({ preset: '910b', peak_fp8_tflops: 1 }))).toEqual(msg);
    expect(resolveHardware({ preset: 'h100', peak_fp8_tflops: 0, fp8_gemm_eff: 0 }).peak_fp8).toBe(0);
    expect(resolveHardware({ preset: '910b' }).fp8_gemm_eff).toBe(0);
    const hw = resolveHardware({ preset: '910b', peak_fp8_tflops: 1, fp8_gemm_eff: 0.5 });
    expect([hw.peak_fp8, hw.fp8_gemm_eff]).toEqual([1e12, 0.5]);
  });
});
