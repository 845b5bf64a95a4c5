/**
 * Collective communication times on the real topology.
 *
 * On a full-mesh node (Ascend 910B) a group uses only the links to its own members (scaleUpBw).
 *
 * Rank order is Megatron-Core's default (tp fastest, then cp, then dp, then pp; expert ranks etp, ep, edp
 * inside tp*cp*dp: megatron/core/parallel_state.py). A group of size n and stride s spans n*s consecutive
 * ranks; it stays on the scale-up fabric (NVLink / HCCS / UB) when that span fits in `scaleup_domain`,
 * otherwise the scale-out NIC (`inter_bw` per device) is the bottleneck.
 *
 * Ring algorithms (Thakur et al. 2005; NCCL): for a tensor of S bytes over n ranks,
 *   all-reduce 2(n-1)/n * S / bw,  all-gather and reduce-scatter (n-1)/n * S / bw,
 * plus `coll_latency` per step. bw = link bandwidth * coll_eff.
 *
 * EP all-to-all (dispatch / combine) on each device moves V = T_dev * k * h * bytes (its tokens, one copy per
 * chosen expert). Destinations are uniform over the ep ranks, so a fraction (ep - r)/ep leaves the node (r = EP
 * ranks per node) and (r - 1)/ep stays on it; the two fabrics work at once, so t = max(inter, intra). The most
 * loaded rank receives `skew` times the mean, and it sets the pace.
 * Hierarchical all-to-all (Pangu Ultra MoE, arXiv 2505.04519 sec. 4; DeepSeek-V3's node-limited dispatch,
 * arXiv 2412.19437 sec. 3.2.2): each token crosses to a remote node once, however many of its k experts live
 * there: expected remote nodes per token (N-1)(1-(1-1/N)^k) for N nodes in the group; then an intra-node
 * all-to-all spreads the copies. The two stages run one after the other.
 */
import type { Hardware } from './hardware.js';

/**
 * Scale-up bandwidth one device gets when it talks to `peers` other devices of its node. On a switch (NVSwitch,
 * UB) that is the full per-device rate; on a full mesh (Ascend 910B HCCS: a dedicated 56 GB/s link to each of the
 * other 7 NPUs) only the links to those peers carry the traffic: peers * intra_bw / (devices_per_node - 1).
 */
export function scaleUpBw(hw: Hardware, peers: number): number {
  if (hw.intra_topology !== 'full-mesh') return hw.intra_bw;
  const links = Math.max(1, hw.devices_per_node - 1);
  return (Math.min(Math.max(peers, 1), links) * hw.intra_bw) / links;
}

export function groupBw(hw: Hardware, n: number, stride: number): number {
  if (n <= 1) return Infinity;
  return (n * stride <= hw.scaleup_domain ? scaleUpBw(hw, n - 1) : hw.inter_bw) * hw.coll_eff;
}

export function allReduce(hw: Hardware, bytes: number, n: number, stride: number): number {
  if (n <= 1 || bytes <= 0) return 0;
  return (2 * (n - 1) / n) * bytes / groupBw(hw, n, stride) + 2 * Math.log2(n) * hw.coll_latency;
}

/** all-gather or reduce-scatter of a tensor whose FULL size is `bytes` */
export function allGather(hw: Hardware, bytes: number, n: number, stride: number): number {
  if (n <= 1 || bytes <= 0) return 0;
  return ((n - 1) / n) * bytes / groupBw(hw, n, stride) + Math.log2(n) * hw.coll_latency;
}

export const reduceScatter = allGather;

export function p2p(hw: Hardware, bytes: number, sameNode: boolean): number {
  if (bytes <= 0) return 0;
  return bytes / ((sameNode ? hw.intra_bw : hw.inter_bw) * hw.coll_eff) + hw.coll_latency;
}

export interface A2AArgs {
  /** tokens entering the MoE layer on this device */
  tokens: number;
  hidden: number;
  top_k: number;
  ep: number;
  /** stride of the EP group in rank space (etp) */
  stride: number;
  /** bytes per element of the payload */
  bytes: number;
  skew: number;
  hierarchical: boolean;
  /** node-limited routing (DeepSeek-V3: each token to experts on at most 4 nodes); 0 = no limit */
  nodeLimit?: number;
  /**
   * MindSpeed's --moe-hierarchical-alltoallv (with --moe-tp-extend-ep): the EP group is the TP group (inner, size
   * `inner`) times an outer group; tokens are all-gathered over the outer group (every token to every outer peer,
   * whatever its routing), then an all-to-allv inside the TP group delivers the rows. Set `inner` to tp.
   */
  allgatherInner?: number;
}

/** One all-to-all (dispatch or combine) of one MoE layer on the most-loaded device, seconds. */
export function epAllToAll(hw: Hardware, a: A2AArgs): number {
  if (a.ep <= 1) return 0;
  const span = a.ep * a.stride;
  const nodes = Math.max(1, Math.ceil(span / hw.scaleup_domain));
  const perNode = a.ep / nodes; // EP ranks on one node
  const V = a.tokens * a.top_k * a.hidden * a.bytes * a.skew;
  const interBw = hw.inter_bw * hw.coll_eff;
  const intraBw = scaleUpBw(hw, (nodes === 1 ? a.ep : a.ep / nodes) - 1) * hw.coll_eff;
  const lat = hw.coll_latency * 2;
  if (nodes === 1) return ((a.ep - 1) / a.ep) * V / intraBw + lat;
  if (a.allgatherInner && a.allgatherInner > 1 && a.stride === 1 && a.ep % a.allgatherInner === 0) {
    // MindSpeed hierarchical all-to-allv (docs/features/hierarchical-alltoallv.md): outer all-gather + inner all-to-allv
    const inner = a.allgatherInner;
    const outer = a.ep / inner;
    const localOuter = Math.max(1, Math.min(outer, Math.floor(hw.scaleup_domain / inner))); // outer peers on this node, self included
    const tok = a.tokens * a.hidden * a.bytes;
    const agInter = ((outer - localOuter) * tok) / interBw;
    const agIntra = localOuter > 1 ? ((localOuter - 1) * tok) / (scaleUpBw(hw, localOuter - 1) * hw.coll_eff) : 0;
    const innerBw = scaleUpBw(hw, inner - 1) * hw.coll_eff;
    const a2a = ((inner - 1) / inner) * V / innerBw;
    return Math.max(agInter, agIntra) + a2a + Math.log2(outer) * hw.coll_latency + lat;
  }
  if (!a.hierarchical) {
    const inter = ((a.ep - perNode) / a.ep) * V / interBw;
    const intra = ((perNode - 1) / a.ep) * V / intraBw;
    return Math.max(inter, intra) + lat;
  }
  let remoteNodes = (nodes - 1) * (1 - Math.pow(1 - 1 / nodes, a.top_k));
  // node-limited routing: experts on at most M nodes, the local one among them with probability M/N
  const limit = a.nodeLimit ?? 0;
  if (limit > 0) remoteNodes = Math.min(remoteNodes, limit * (1 - 1 / nodes));
  const inter = (a.tokens * a.hidden * a.bytes * a.skew * remoteNodes) / interBw;
  const intra = ((perNode - 1) / perNode) * V / intraBw;
  return inter + intra + 2 * lat;
}
