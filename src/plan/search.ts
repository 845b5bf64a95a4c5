/**
 * Layout search: enumerate every valid parallel layout of a model on a cluster, simulate each, and rank
 * the ones that fit in memory by throughput.
 *
 * A layout is (tp, cp, pp, vpp, ep, etp) with dp derived; for each layout the search also tries the
 * "knobs" that change memory and speed but not the mapping: recompute (none, selective, full, or the
 * spec's own list) and, for a hierarchical-allgather template, that and the flat all-to-all; the exhaustive mode
 * also varies micro_batch (the spec's, 1, 2) and the ZeRO stage (0-3). A layout ranks by its best fitting knob setting. Fields the spec's `parallel` section gives and that the
 * search does not vary (zero, a2a, ep_overlap, offload, tp_overlap, schedule family) are kept.
 *
 * Validity (spec.layoutProblem, Megatron-Core's rules): tp | heads, tp <= devices_per_node, ep | experts,
 * ep*etp | tp*cp*dp, etp | tp, cp | seq_len, dp | global_batch / micro_batch, layers >= pp*vpp.
 */
import { layoutProblem, type Parallel, type Recompute, type Spec, type Training } from './spec.js';
import { simulate, type SimResult } from './simulate.js';

export interface Ranked {
  layout: string;
  parallel: Parallel;
  training: Training;
  result: SimResult;
}

export interface SearchResult {
  layouts_enumerated: number;
  simulations: number;
  fitting_layouts: number;
  top: Ranked[];
  /** when nothing fits: the layout whose memory overshoots least */
  closest?: Ranked;
  /** when no layout could be simulated at all: why (no valid layout, or the batch rule every layout broke) */
  no_valid_layout?: string;
  elapsed_s: number;
}

export interface SearchOptions {
  top?: number;
  /** also vary micro_batch and ZeRO stage (the bench's exhaustive mode) */
  exhaustive?: boolean;
  /** layout fields pinned by the caller (the CLI's --tp/--pp/... flags): only layouts with these values are searched */
  fixed?: Partial<Pick<Parallel, 'tp' | 'pp' | 'vpp' | 'ep' | 'etp' | 'cp' | 'dp'>>;
}

/** the divisors of n, ascending, from its prime factorisation (trial division to √n, not a count to n) */
export function divisors(n: number): number[] {
  let d = [1];
  let rest = n;
  for (let p = 2; p * p <= rest; p++) {
    if (rest % p !== 0) continue;
    let e = 0;
    while (rest % p === 0) { rest /= p; e++; }
    const next: number[] = [];
    for (const x of d) for (let i = 0, q = 1; i <= e; i++, q *= p) next.push(x * q);
    d = next;
  }
  if (rest > 1) d = [...d, ...d.map((x) => x * rest)];
  return d.sort((a, b) => a - b);
}
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const pow2Upto = (n: number): number[] => {
  const r: number[] = [];
  for (let i = 1; i <= n; i *= 2) r.push(i);
  return r;
};

export function layoutKey(p: Parallel): string {
  return `TP${p.tp} PP${p.pp}${p.vpp > 1 ? ` VPP${p.vpp}` : ''} EP${p.ep}${p.etp !== p.tp ? ` ETP${p.etp}` : ''}${p.cp > 1 ? ` CP${p.cp}` : ''} DP${p.dp}`;
}

/** Every (tp, cp, pp, vpp, ep, etp, dp) that passes layoutProblem for this spec's model and device count. */
export function enumerateLayouts(spec: Spec, fixed: SearchOptions['fixed'] = {}): Parallel[] {
  const { model: m, devices, hardware: hw } = spec;
  const base = spec.parallel;
  const fixedSchedule = base.schedule === 'dualpipe' || base.schedule === 'dualpipev' || base.schedule === 'zero-bubble' ? base.schedule : undefined;
  const out: Parallel[] = [];
  const tps = pow2Upto(Math.min(hw.devices_per_node, 64)).filter((t) => m.heads % t === 0);
  const cps = [1, 2, 4, 8].filter((c) => spec.training.seq_len % (2 * c) === 0 || c === 1);
  for (const tp of tps) {
    for (const cp of cps) {
      if (devices % (tp * cp) !== 0) continue;
      for (const pp of divisors(devices / (tp * cp))) {
        if (pp > m.layers) break;
        const dp = devices / (tp * cp * pp);
        const vpps = fixedSchedule ? [1] : [1, 2, 4, 8].filter((v) => v === 1 || (pp > 1 && m.layers >= pp * v));
        // ep divides the experts and (with etp) tp*cp*dp: only the common divisors can pass layoutProblem
        const eps = m.experts > 0 ? divisors(gcd(m.experts, tp * cp * dp)) : [1];
        const etps = m.experts > 0 ? pow2Upto(tp) : [tp];
        for (const vpp of vpps) {
          for (const ep of eps) {
            for (const etp of etps) {
              const schedule = fixedSchedule ?? (vpp > 1 ? 'interleaved' : '1f1b');
              const p: Parallel = { ...base, tp, cp, pp, vpp, ep, etp, dp, schedule, recompute: base.recompute };
              if (layoutProblem(p, devices, m)) continue;
              if ((Object.keys(fixed) as (keyof typeof fixed)[]).some((k) => fixed[k] !== undefined && p[k] !== fixed[k])) continue;
              out.push(p);
            }
          }
        }
      }
    }
  }
  return out;
}

interface Knob { recompute: Recompute; micro_batch: number; zero: Parallel['zero']; a2a: Parallel['a2a'] }

function knobs(spec: Spec, exhaustive: boolean): Knob[] {
  const recs: Recompute[] = ['none', 'selective', 'full'];
  if (Array.isArray(spec.parallel.recompute)) recs.unshift(spec.parallel.recompute);
  const mbs = [...new Set([spec.training.micro_batch, 1, 2])];
  const zeros = exhaustive ? ([0, 1, 2, 3] as const) : ([spec.parallel.zero] as const);
  // MindSpeed's hierarchical all-to-allv is an option, not a must: a layout may do better with the flat one
  const a2as: Parallel['a2a'][] = spec.parallel.a2a === 'hierarchical-allgather' ? ['hierarchical-allgather', 'flat'] : [spec.parallel.a2a];
  const r: Knob[] = [];
  for (const zero of zeros) for (const micro_batch of exhaustive ? mbs : [spec.training.micro_batch]) for (const recompute of recs) for (const a2a of a2as) r.push({ recompute, micro_batch, zero, a2a });
  return r;
}

/**
 * Why a (layout, batch) pair cannot run, beyond layoutProblem: Megatron-Core's interleaved schedule (core_r0.8.0,
 * the base of MindSpeed-LLM; megatron/core/pipeline_parallel/schedules.py) needs the micro-batch count to be a
 * multiple of pp; every schedule needs global_batch = dp x micro_batch x (integer micro-batches).
 */
export function batchProblem(par: Parallel, t: Training): string | undefined {
  if (t.global_batch % (t.micro_batch * par.dp) !== 0) return `global_batch ${t.global_batch} not divisible by micro_batch*dp = ${t.micro_batch * par.dp}`;
  const m = t.global_batch / (t.micro_batch * par.dp);
  if (par.schedule === 'interleaved' && par.vpp > 1 && m % par.pp !== 0) return `interleaved schedule: ${m} micro-batches not a multiple of pp ${par.pp}`;
  return undefined;
}

export function search(spec: Spec, opts: SearchOptions = {}): SearchResult {
  const t0 = performance.now();
  const layouts = enumerateLayouts(spec, opts.fixed);
  const ks = knobs(spec, opts.exhaustive ?? false);
  const best: Ranked[] = [];
  let closest: Ranked | undefined;
  let closestOver = Infinity;
  let sims = 0;
  let firstProblem: string | undefined;
  for (const lay of layouts) {
    let bestHere: Ranked | undefined;
    for (const k of ks) {
      const training = { ...spec.training, micro_batch: k.micro_batch };
      const bp = batchProblem(lay, training);
      if (bp) { firstProblem ??= `${layoutKey(lay)}: ${bp}`; continue; }
      if (k.a2a === 'hierarchical-allgather' && !hierarchicalAllgatherValid(lay, spec.hardware.devices_per_node)) continue;
      const parallel = { ...lay, recompute: k.recompute, zero: k.zero, a2a: k.a2a };
      const result = simulate({ model: spec.model, hardware: spec.hardware, devices: spec.devices, parallel, training });
      sims++;
      const r = { layout: layoutKey(parallel), parallel, training, result };
      if (result.fits) {
        if (!bestHere || result.tokens_per_s > bestHere.result.tokens_per_s) bestHere = r;
      } else {
        const over = (result.memory_gib_per_device * 2 ** 30) / spec.hardware.hbm_bytes;
        if (over < closestOver) { closestOver = over; closest = r; }
      }
    }
    if (bestHere) best.push(bestHere);
  }
  best.sort((a, b) => b.result.tokens_per_s - a.result.tokens_per_s);
  return {
    layouts_enumerated: layouts.length,
    simulations: sims,
    fitting_layouts: best.length,
    top: best.slice(0, opts.top ?? 10),
    closest: best.length === 0 ? closest : undefined,
    no_valid_layout: sims > 0 ? undefined : layouts.length === 0
      ? `no (tp, cp, pp, vpp, ep, etp) layout of ${spec.model.layers} layers, ${spec.model.heads} heads, ${spec.model.experts} experts passes Megatron-Core's rules on ${spec.devices} devices`
      : `none of the ${layouts.length} layouts suits the batch (e.g. ${firstProblem})`,
    elapsed_s: (performance.now() - t0) / 1e3,
  };
}

/** 1-based rank of the layout matching `want` (tp, pp, vpp, ep, etp, cp) in a search's full ranking, or -1. */
export function rankOf(spec: Spec, want: Partial<Parallel>, opts: SearchOptions = {}): { rank: number; of: number; result: SearchResult } {
  const res = search(spec, { ...opts, top: Infinity });
  const keys = Object.keys(want) as (keyof Parallel)[];
  const i = res.top.findIndex((r) => keys.every((k) => r.parallel[k] === want[k]));
  return { rank: i < 0 ? -1 : i + 1, of: res.top.length, result: res };
}

/**
 * MindSpeed's --moe-hierarchical-alltoallv (mindspeed/arguments.py validation, MindSpeed 4825e32, Feb 2025): needs
 * --moe-tp-extend-ep (tp > 1, experts whole: etp 1, ep a multiple of tp) and tp equal to the devices of a node
 * (`tp != torch.npu.device_count()` is rejected).
 */
export function hierarchicalAllgatherValid(lay: Pick<Parallel, 'tp' | 'etp' | 'ep'>, devicesPerNode: number): boolean {
  return lay.tp > 1 && lay.etp === 1 && lay.ep % lay.tp === 0 && lay.tp === devicesPerNode;
}
