/**
 * The planner's small terms pinned by hand-computed cases: the ring collectives' volumes (all-reduce 2(n−1)/n S,
 * all-gather and reduce-scatter (n−1)/n S, plus their latency steps), point-to-point, the full-mesh bandwidth, the
 * EP all-to-all's variants, and in a step: the pipeline's p2p, the optimizer's HBM traffic and the DP collectives at
 * ZeRO-0 (all-reduce) and ZeRO-1 (reduce-scatter + all-gather). These are terms of under ~5% of a calibrated step,
 * which the calibration table cannot see. The step cases run on a machine whose compute is free (infinite peak and
 * HBM bandwidth, no launch or host overhead), so the step is the communication terms alone and each is checked exactly.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { allGather, allReduce, epAllToAll, groupBw, p2p, reduceScatter, scaleUpBw } from '../../src/plan/comm.js';
import type { Hardware } from '../../src/plan/hardware.js';
import { localParams } from '../../src/plan/memory.js';
import { simulate, trainConstants } from '../../src/plan/simulate.js';
import { resolveSpec } from '../../src/plan/spec.js';

const GB = 1e9;
/** round numbers: 8 devices a node, NVSwitch 100 GB/s, 10 GB/s NIC, collectives at half the link rate, 10 us a step */
const HW: Hardware = {
  preset: 'test', name: 'hand-computed', devices_per_node: 8, scaleup_domain: 8, intra_bw: 100 * GB, intra_topology: 'switch',
  inter_bw: 10 * GB, host_bw: 20 * GB, hbm_bytes: 80e9, hbm_bw: 2e12, peak_bf16: 1e15, peak_fp8: 0, gemm_eff: 0.5,
  fp8_gemm_eff: 0.5, bw_eff: 0.8, coll_eff: 0.5, coll_latency: 1e-5, source: {},
};
const MESH: Hardware = { ...HW, intra_topology: 'full-mesh', intra_bw: 56 * GB };
const close = (got: number, want: number) => expect(Math.abs(got - want), `${got} vs ${want}`).toBeLessThanOrEqual(1e-12 * Math.abs(want) + 1e-18);

describe('collectives (ring algorithms)', () => {
  it('all-reduce moves 2(n−1)/n of the tensor, with 2 log2 n latency steps', () => {
    // 4 ranks on one node: 50 GB/s; 2 * 3/4 * 1 GB / 50 GB/s = 30 ms, + 2 * 2 * 10 us
    close(allReduce(HW, 1e9, 4, 1), 0.03 + 4e-5);
    // stride 4: the group spans 16 ranks, past the 8-device domain: the NIC at 5 GB/s
    close(allReduce(HW, 1e9, 4, 4), 0.3 + 4e-5);
    // 2 ranks: 2 * 1/2 = 1 tensor's worth
    close(allReduce(HW, 5e8, 2, 1), 0.01 + 2e-5);
    expect([allReduce(HW, 1e9, 1, 1), allReduce(HW, 0, 8, 1)]).toEqual([0, 0]);
  });

  it('all-gather and reduce-scatter move (n−1)/n of the full tensor, with log2 n latency steps', () => {
    close(allGather(HW, 1e9, 4, 1), 0.015 + 2e-5);
    close(reduceScatter(HW, 1e9, 8, 1), (7 / 8) * 1e9 / 50e9 + 3e-5);
    close(allGather(HW, 1e9, 2, 8), 0.5e9 / 5e9 + 1e-5);
    expect([allGather(HW, 1e9, 1, 1), allGather(HW, -1, 4, 1), allGather(HW, 0, 4, 1)]).toEqual([0, 0, 0]);
    // no group (n = 0) moves nothing and waits for nothing
    expect([allReduce(HW, 1e9, 0, 1), allGather(HW, 1e9, 0, 1)]).toEqual([0, 0]);
  });

  it('point-to-point: bytes over the link at coll_eff, plus one latency', () => {
    close(p2p(HW, 1e6, true), 1e6 / 50e9 + 1e-5);
    close(p2p(HW, 1e6, false), 1e6 / 5e9 + 1e-5);
    expect(p2p(HW, 0, false)).toBe(0);
  });

  it('group bandwidth: the scale-up fabric while the span fits the domain, else the NIC', () => {
    expect(groupBw(HW, 8, 1)).toBe(50 * GB);
    expect(groupBw(HW, 2, 4)).toBe(50 * GB);
    expect(groupBw(HW, 2, 5)).toBe(5 * GB);
    expect(groupBw(HW, 1, 1)).toBe(Infinity);
  });

  it('a full mesh gives a group only the links to its own members', () => {
    // 7 links of 8 GB/s each (56 / 7)
    close(scaleUpBw(MESH, 3), 24 * GB);
    close(scaleUpBw(MESH, 7), 56 * GB);
    close(scaleUpBw(MESH, 12), 56 * GB);
    close(scaleUpBw(MESH, 0), 8 * GB);
    expect(scaleUpBw(HW, 1)).toBe(100 * GB);
    close(groupBw(MESH, 4, 1), 24 * GB * 0.5);
    close(allReduce(MESH, 1e9, 2, 1), 1e9 / (8 * GB * 0.5) + 2e-5);
  });
});

describe('EP all-to-all', () => {
  // V = tokens * k * hidden * bytes * skew = 1000 * 2 * 1000 * 2 * 1.5 = 6 MB
  const a = { tokens: 1000, hidden: 1000, top_k: 2, bytes: 2, skew: 1.5, stride: 1, hierarchical: false };
  const V = 6e6;
  it('inside one node: (ep−1)/ep of V over the scale-up fabric, 2 latencies', () => {
    close(epAllToAll(HW, { ...a, ep: 4 }), (3 / 4) * V / 50e9 + 2e-5);
    expect(epAllToAll(HW, { ...a, ep: 1 })).toBe(0);
    // on a full mesh only the 3 links to the other members: 24 GB/s
    close(epAllToAll(MESH, { ...a, ep: 4 }), (3 / 4) * V / (24e9 * 0.5) + 2e-5);
  });
  it('across nodes, flat: the remote (ep − r)/ep and the local (r − 1)/ep at once, the slower sets the time', () => {
    // ep 16 over 2 nodes, 8 a node: remote 8/16 V at 5 GB/s, local 7/16 V at 50 GB/s
    close(epAllToAll(HW, { ...a, ep: 16 }), Math.max((8 / 16) * V / 5e9, (7 / 16) * V / 50e9) + 2e-5);
  });
  it('hierarchical: each token crosses to a remote node once, (N−1)(1 − (1 − 1/N)^k) nodes on average, then spreads', () => {
    // ep 32 on 4 nodes, k 2: 3 (1 − (3/4)^2) = 1.3125 remote nodes per token
    const inter = (1000 * 1000 * 2 * 1.5 * 1.3125) / 5e9, intra = (7 / 8) * V / 50e9;
    close(epAllToAll(HW, { ...a, ep: 32, hierarchical: true }), inter + intra + 4e-5);
    // node-limited to 1 node: at most 1 (1 − 1/4) = 0.75 remote nodes
    const limited = (1000 * 1000 * 2 * 1.5 * 0.75) / 5e9;
    close(epAllToAll(HW, { ...a, ep: 32, hierarchical: true, nodeLimit: 1 }), limited + intra + 4e-5);
    // a limit above the expectation changes nothing
    close(epAllToAll(HW, { ...a, ep: 32, hierarchical: true, nodeLimit: 4 }), inter + intra + 4e-5);
  });
  it('MindSpeed hierarchical all-to-allv: an all-gather over the outer group, then an all-to-allv inside the TP group', () => {
    // ep 16 = inner 4 x outer 4; 2 outer peers share a node (8 / 4): 2 remote over the NIC, 1 local over NVSwitch
    const tok = 1000 * 1000 * 2;
    const agInter = (2 * tok) / 5e9, agIntra = tok / 50e9;
    const a2a = (3 / 4) * V / 50e9;
    close(epAllToAll(HW, { ...a, ep: 16, allgatherInner: 4 }), Math.max(agInter, agIntra) + a2a + Math.log2(4) * 1e-5 + 2e-5);
  });
  // a full mesh whose NIC is free: the node's links alone set the time, and each term counts its own peers' links
  const MESH_FREE_NIC: Hardware = { ...MESH, inter_bw: 1e15 };
  it('flat across nodes on a full mesh: the local part over the links to the r − 1 node peers; the group spans ep × stride ranks', () => {
    // ep 8, stride 2 (etp 2): the group spans 16 ranks, 2 nodes, 4 EP ranks a node: 3 peers' links, 24 GB/s
    const inter = (4 / 8) * V / (1e15 * 0.5), intra = (3 / 8) * V / (24e9 * 0.5);
    close(epAllToAll(MESH_FREE_NIC, { ...a, ep: 8, stride: 2 }), Math.max(inter, intra) + 2e-5);
    // stride 1: the same 8 ranks fit one node, all 7 links
    close(epAllToAll(MESH_FREE_NIC, { ...a, ep: 8 }), (7 / 8) * V / (56e9 * 0.5) + 2e-5);
  });
  it('MindSpeed all-to-allv on a full mesh: the all-gather to the local outer peer over 1 link, the all-to-allv over the 3 TP peers\' links', () => {
    const tok = 1000 * 1000 * 2;
    const agInter = (2 * tok) / (1e15 * 0.5), agIntra = tok / (8e9 * 0.5);
    const a2a = (3 / 4) * V / (24e9 * 0.5);
    close(epAllToAll(MESH_FREE_NIC, { ...a, ep: 16, allgatherInner: 4 }), Math.max(agInter, agIntra) + a2a + 2e-5 + 2e-5);
    // inner 8 leaves one outer rank a node: the all-gather is all remote, the all-to-allv spans the node's 7 links
    const one = (1 * tok) / (1e15 * 0.5) + (7 / 8) * V / (56e9 * 0.5) + 1e-5 + 2e-5;
    close(epAllToAll(MESH_FREE_NIC, { ...a, ep: 16, allgatherInner: 8 }), one);
  });
  it('the all-to-allv applies only to an inner group > 1 that divides ep at stride 1; otherwise the flat all-to-all', () => {
    for (const hw of [HW, MESH_FREE_NIC]) {
      const flat16 = epAllToAll(hw, { ...a, ep: 16 });
      expect(epAllToAll(hw, { ...a, ep: 16, allgatherInner: 1 })).toBe(flat16);
      expect(epAllToAll(hw, { ...a, ep: 16, allgatherInner: 3 })).toBe(flat16);
      expect(epAllToAll(hw, { ...a, ep: 8, stride: 2, allgatherInner: 4 })).toBe(epAllToAll(hw, { ...a, ep: 8, stride: 2 }));
    }
  });
  it('node limit 0 is no limit', () => {
    expect(epAllToAll(HW, { ...a, ep: 32, hierarchical: true, nodeLimit: 0 })).toBe(epAllToAll(HW, { ...a, ep: 32, hierarchical: true }));
  });
});

describe('step terms on a machine whose compute is free', () => {
  const FREE: Hardware = { ...HW, peak_bf16: 1e40, hbm_bw: 1e40, host_bw: 1e40 };
  // (set in beforeEach, not at collection time: StrykerJS runs every test file for a mutant reached while a file is collected)
  let constants: ReturnType<typeof trainConstants>;
  beforeEach(() => { constants = { ...trainConstants(FREE), launch_s: 0 }; });
  const specOf = (parallel: Record<string, unknown>, devices: number) =>
    resolveSpec({ model: 'mixtral-8x7b', hardware: { preset: 'h100', devices }, parallel, training: { seq_len: 4096, global_batch: 64, micro_batch: 1 } });
  const run = (parallel: Record<string, unknown>, devices: number, hw: Hardware = FREE) => {
    const spec = specOf(parallel, devices);
    return { spec, r: simulate({ ...spec, hardware: hw }, { constants, hostKernelS: 0 }) };
  };

  it('pipeline p2p: 2 (pp − 1) vpp sends of one micro-batch activation [T/tp, h] in bf16 over the NIC', () => {
    for (const [pp, vpp] of [[4, 1], [2, 1], [4, 2]]) {
      const { spec, r } = run({ tp: 1, pp, vpp, ep: 1, dp: 1, zero: 1 }, pp);
      const bytes = (1 * 4096) * spec.model.hidden * 2;
      close(r.breakdown.pp_comm, 2 * (pp - 1) * vpp * (bytes / 5e9 + 1e-5));
    }
    expect(run({ tp: 1, pp: 1, ep: 1, dp: 1 }, 1).r.breakdown.pp_comm).toBe(0);
  });

  it('ZeRO-0: the gradients are all-reduced in fp32 (2(n−1)/n), nothing is gathered; exposed whole when compute is free', () => {
    const { spec, r } = run({ tp: 1, pp: 1, ep: 1, dp: 8, zero: 0 }, 8);
    expect(spec.parallel.zero).toBe(0);
    const lp = localParams(spec.model, spec.parallel);
    const bytes = (lp.dense + lp.expert) * 4;
    // dense and expert gradients each all-reduced over the 8 DP ranks of one node (50 GB/s)
    const want = (2 * 7 / 8) * bytes / 50e9 + 2 * (2 * 3 * 1e-5);
    expect(Math.abs(r.breakdown.dp_comm - want) / want).toBeLessThan(1e-9);
    // the optimizer updates every local parameter (no sharding): 30 bytes each at hbm_bw * bw_eff
    const withHbm = run({ tp: 1, pp: 1, ep: 1, dp: 8, zero: 0 }, 8, { ...FREE, hbm_bw: 2e12 }).r;
    close(withHbm.breakdown.optimizer, ((lp.dense + lp.expert) * 30) / (2e12 * 0.8));
  });

  it('ZeRO-1: reduce-scatter of the gradients plus all-gather of the bf16 parameters; the optimizer on a 1/dp shard', () => {
    const { spec, r } = run({ tp: 1, pp: 1, ep: 1, dp: 16, zero: 1 }, 16);
    const lp = localParams(spec.model, spec.parallel);
    // 16 DP ranks span 2 nodes: the NIC at 5 GB/s; log2 16 = 4 steps each
    const rs = (15 / 16) * (lp.dense + lp.expert) * 4 / 5e9 + 2 * 4e-5;
    const ag = (15 / 16) * (lp.dense + lp.expert) * 2 / 5e9 + 2 * 4e-5;
    expect(Math.abs(r.breakdown.dp_comm - (rs + ag)) / (rs + ag)).toBeLessThan(1e-9);
    const withHbm = run({ tp: 1, pp: 1, ep: 1, dp: 16, zero: 1 }, 16, { ...FREE, hbm_bw: 2e12 }).r;
    close(withHbm.breakdown.optimizer, ((lp.dense / 16 + lp.expert / 16) * 30) / (2e12 * 0.8));
  });

  it('bf16 gradients halve the ZeRO-0 all-reduce', () => {
    const spec = resolveSpec({ model: 'mixtral-8x7b', hardware: { preset: 'h100', devices: 8 }, parallel: { tp: 1, pp: 1, ep: 1, dp: 8, zero: 0 },
      training: { seq_len: 4096, global_batch: 64, micro_batch: 1, grad_precision: 'bf16' } });
    const lp = localParams(spec.model, spec.parallel);
    const want = (2 * 7 / 8) * (lp.dense + lp.expert) * 2 / 50e9 + 2 * (2 * 3 * 1e-5);
    expect(Math.abs(simulate({ ...spec, hardware: FREE }, { constants, hostKernelS: 0 }).breakdown.dp_comm - want) / want).toBeLessThan(1e-9);
  });

  it('the step is the sum of its terms', () => {
    const { r } = run({ tp: 1, pp: 4, ep: 1, dp: 2, zero: 0 }, 8, HW);
    const sum = Object.values(r.breakdown).reduce((x, y) => x + y, 0);
    expect(Math.abs(sum - r.step_time_s) / r.step_time_s).toBeLessThan(1e-12);
  });
});

describe('MoE all-to-all overlap in the combined 1F1B schedule (--overlap-moe-expert-parallel-comm)', () => {
  it('each all-to-all hides behind its partner stage only: attention for the combines, MoE compute for the dispatches', async () => {
    const { pairedChunkExposed } = await import('../../src/plan/schedule.js');
    // forward dispatch 3 beside backward MoE 2: 1 exposed; backward dispatch 2 beside forward MoE 1: 1; forward
    // combine 1 beside backward attention 0.5: 0.5; backward combine 4 beside forward attention 5: hidden
    expect(pairedChunkExposed({ dF: 3, cF: 1, dB: 2, cB: 4 }, { aF: 5, aB: 0.5, mF: 1, mB: 2 })).toBe(2.5);
    // the whole layer's compute (8.5) against all its communication (10) would have left only 1.5 exposed
    expect(pairedChunkExposed({ dF: 1, cF: 1, dB: 1, cB: 1 }, { aF: 1, aB: 1, mF: 1, mB: 1 })).toBe(0);
    expect(pairedChunkExposed({ dF: 1, cF: 2, dB: 3, cB: 4 }, { aF: 0, aB: 0, mF: 0, mB: 0 })).toBe(10);
  });

  it('with free compute nothing hides: the overlap mode gives the step of no overlap at all', () => {
    const FREE: Hardware = { ...HW, peak_bf16: 1e30, hbm_bw: 1e30 };
    const sp = (ep_overlap: string) => {
      const s = resolveSpec({
        model: { preset: 'qwen3-30b-a3b' }, hardware: { preset: 'h100', devices: 16 },
        parallel: { tp: 1, pp: 2, vpp: 2, ep: 8, ep_overlap, dispatcher: 'alltoall', recompute: 'none' },
        training: { seq_len: 1024, micro_batch: 1, global_batch: 64, precision: 'bf16', capacity_factor: 1 },
      });
      return { ...s, hardware: FREE };
    };
    const opts = { constants: { ...trainConstants(FREE), launch_s: 0 }, hostKernelS: 0 };
    const a = simulate(sp('a2a-1f1b'), opts);
    const n = simulate(sp('none'), opts);
    expect(a.breakdown.dispatch + a.breakdown.combine).toBeGreaterThan(0);
    expect(Math.abs(a.step_time_s / n.step_time_s - 1)).toBeLessThan(1e-12);
  });
});
