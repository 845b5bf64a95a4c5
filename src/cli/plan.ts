/**
 * `moekit plan ...`: simulate, search, sweep, export, op, calibrate, presets.
 * Every subcommand takes --json for machine-readable output on stdout.
 */
import { parseArgs as nodeParseArgs, type ParseArgsConfig } from 'node:util';
import { MoekitError } from '../util/errors.js';
import { accountedThroughput, CALIBRATION, type CalibrationRow } from '../plan/calibration.js';
import { bandFor, withinBands, type Band } from '../plan/band.js';
import { gemmTime, KERNEL_CONSTANTS, SDPA_BACKENDS, sdpaTime, type SdpaBackend } from '../plan/fit-kernels.js';
export { accountedThroughput } from '../plan/calibration.js';
import { exportPlan, type Engine } from '../plan/export.js';
import { hardwarePreset, presetNames } from '../plan/hardware.js';
import { MODEL_PRESETS, modelPresetNames } from '../plan/models.js';
import { predictAttention, predictMoeLayer } from '../plan/op.js';
import { search, type SearchOptions } from '../plan/search.js';
import { simulate, type SimResult } from '../plan/simulate.js';
import { readSpecFile, resolveSpec, type Spec } from '../plan/spec.js';
import { sweep } from '../plan/sweep.js';

const USAGE = `usage: moekit plan <command> [options]
  simulate [SPEC]               step time, tokens/s, MFU/HFU, memory per device for the spec's layout
                                (SPEC optional: flags alone, e.g. --model deepseek-v3 --hardware h800 --devices 2048
                                --pp 16 --ep 64 --seq-len 4096 --global-batch 15360)
  search [SPEC] [--top N]       rank every valid layout that fits
  sweep SPEC                    shape sweep (the spec's sweep section) with its Pareto front, and by time-to-quality
  export [SPEC] --engine megatron|mindspeed   launch arguments for the plan
  op moe-layer --hardware H --tokens T --hidden H --experts E --top-k K --expert-ffn I
  op attention --hardware H --batch B --seq S --hidden H --heads N --kv-heads G --head-dim D
  op gemm --hardware H --m M --n N --k K [--groups G] [--precision bf16|fp8]   one (grouped) GEMM kernel
  op sdpa --hardware H --batch B --seq S --heads N --kv-heads G --head-dim D [--backend flash|efficient|cudnn]
  calibrate                     the calibration table: predicted vs published runs
  presets                       hardware and model presets
options: --json, and spec overrides: --hardware P --devices N --model PRESET --tp --pp --vpp --ep --etp --cp --dp --zero
  --schedule S --recompute R --seq-len --micro-batch --global-batch --precision bf16|fp8 --grad-precision fp32|bf16`;

const OVERRIDES = {
  hardware: { type: 'string' }, devices: { type: 'string' }, model: { type: 'string' },
  tp: { type: 'string' }, pp: { type: 'string' }, vpp: { type: 'string' }, ep: { type: 'string' }, etp: { type: 'string' },
  cp: { type: 'string' }, dp: { type: 'string' }, zero: { type: 'string' }, schedule: { type: 'string' }, recompute: { type: 'string' },
  'seq-len': { type: 'string' }, 'micro-batch': { type: 'string' }, 'global-batch': { type: 'string' }, precision: { type: 'string' },
  'grad-precision': { type: 'string' },
} as const;

/** node:util parseArgs with its errors (unknown option, missing value) as one-line MoekitErrors */
function parseArgs<T extends ParseArgsConfig>(config: T, where: string): ReturnType<typeof nodeParseArgs<T>> {
  try {
    return nodeParseArgs(config);
  } catch (e) {
    throw new MoekitError((e as Error).message.split('\n')[0], where);
  }
}

function intFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  // digits only: Number('') is 0, Number('1e308') an integer, Number('0x10') 16; 2^53 + 1 is not exact
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new MoekitError(`must be a non-negative integer (got '${v}')`, `--${flag}`);
  return n;
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

type Vals = Record<string, string | boolean | undefined>;

/** Read SPEC and merge flag overrides into it. */
function specFrom(path: string | undefined, v: Vals, template: boolean): Spec {
  // without a SPEC file the flags make the whole spec (--model, --hardware, --devices, --seq-len, --global-batch, ...)
  if (!path && v.model === undefined && v.hardware === undefined) {
    throw new MoekitError('missing SPEC file (JSON or YAML), or flags giving at least --model, --hardware, --devices, --seq-len and --global-batch', 'plan');
  }
  const raw = path ? readSpecFile(path) : {};
  const sec = (k: string): Record<string, unknown> => {
    const cur = raw[k];
    if (typeof cur === 'string') raw[k] = { preset: cur };
    else if (cur === undefined || typeof cur !== 'object' || cur === null) raw[k] = {};
    return raw[k] as Record<string, unknown>;
  };
  if (typeof v.model === 'string') raw.model = { preset: v.model };
  if (typeof v.hardware === 'string') sec('hardware').preset = v.hardware;
  const dev = intFlag(v.devices as string | undefined, 'devices');
  if (dev !== undefined) sec('hardware').devices = dev;
  for (const k of ['tp', 'pp', 'vpp', 'ep', 'etp', 'cp', 'dp', 'zero'] as const) {
    const n = intFlag(v[k] as string | undefined, k);
    if (n !== undefined) sec('parallel')[k] = n;
  }
  if (typeof v.schedule === 'string') sec('parallel').schedule = v.schedule;
  // --recompute none|selective|full, or module names (one, or a comma-separated list: moe_act / moe,layernorm)
  if (typeof v.recompute === 'string') {
    const modules = ['attention', 'core_attn', 'mla_up', 'mlp', 'moe', 'moe_act', 'layernorm'];
    for (const r of v.recompute.split(',')) {
      if (!modules.includes(r) && !(['none', 'selective', 'full'].includes(r) && !v.recompute.includes(','))) {
        throw new MoekitError(`must be none, selective, full, or module names separated by commas (${modules.join(', ')}); got '${r}'`, '--recompute');
      }
    }
    sec('parallel').recompute = v.recompute.includes(',') || !['none', 'selective', 'full'].includes(v.recompute) ? v.recompute.split(',') : v.recompute;
  }
  const tmap: [string, string][] = [['seq-len', 'seq_len'], ['micro-batch', 'micro_batch'], ['global-batch', 'global_batch']];
  for (const [flag, key] of tmap) {
    const n = intFlag(v[flag] as string | undefined, flag);
    if (n !== undefined) sec('training')[key] = n;
  }
  if (typeof v.precision === 'string') sec('training').precision = v.precision;
  if (typeof v['grad-precision'] === 'string') sec('training').grad_precision = v['grad-precision'];
  return resolveSpec(raw, path ?? 'flags', { template });
}

/** --tp/--pp/--vpp/--ep/--etp/--cp/--dp given to search or sweep: pin those layout fields (the template's are searched) */
function fixedLayout(v: Vals): NonNullable<SearchOptions['fixed']> {
  const fixed: NonNullable<SearchOptions['fixed']> = {};
  for (const k of ['tp', 'pp', 'vpp', 'ep', 'etp', 'cp', 'dp'] as const) {
    const n = intFlag(v[k] as string | undefined, k);
    if (n !== undefined) fixed[k] = n;
  }
  return fixed;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const secs = (x: number) => (x >= 1 ? `${x.toFixed(2)} s` : `${(1e3 * x).toFixed(1)} ms`);

/** the band of a result: its throughput range from the validation residuals */
export function bandJson(r: SimResult, b: Band): Record<string, unknown> {
  return {
    p80_rel_error: b.p80_rel_error,
    tokens_per_s: [r.tokens_per_s * b.lo_factor, r.tokens_per_s * b.hi_factor],
    tokens_per_s_per_device: [r.tokens_per_s_per_device * b.lo_factor, r.tokens_per_s_per_device * b.hi_factor],
    mfu: [r.mfu * b.lo_factor, r.mfu * b.hi_factor],
    basis: b.basis,
  };
}

export function simJson(r: SimResult, band?: Band): Record<string, unknown> {
  return {
    ...(band ? { band: bandJson(r, band) } : {}),
    step_time_s: r.step_time_s,
    tokens_per_s: r.tokens_per_s,
    tokens_per_s_per_device: r.tokens_per_s_per_device,
    mfu: r.mfu,
    hfu: r.hfu,
    memory_gib_per_device: r.memory_gib_per_device,
    fits: r.fits,
    breakdown: r.breakdown,
    memory_breakdown_gib: r.memory_breakdown_gib,
    microbatches: r.microbatches,
    model_flops_per_token: r.model_flops_per_token,
    parallel: r.parallel,
    stage_split: r.stage_split,
  };
}

function simText(spec: Spec, r: SimResult, band: Band): string {
  const p = r.parallel;
  const lines = [
    `${spec.model.name} on ${spec.devices} x ${spec.hardware.name}`,
    `layout      TP${p.tp} PP${p.pp} VPP${p.vpp} EP${p.ep} ETP${p.etp} CP${p.cp} DP${p.dp}, ${p.schedule}, ZeRO-${p.zero}, recompute ${JSON.stringify(p.recompute)}`,
    `step        ${secs(r.step_time_s)}  (${r.microbatches} micro-batches per pipeline)`,
    `throughput  ${Math.round(r.tokens_per_s).toLocaleString('en-US')} tokens/s (${r.tokens_per_s_per_device.toFixed(0)} per device)`,
    `band        ${(r.tokens_per_s_per_device * band.lo_factor).toFixed(0)}-${(r.tokens_per_s_per_device * band.hi_factor).toFixed(0)} per device (+-${pct(band.p80_rel_error)}, p80 of ${band.basis})`,
    `MFU         ${pct(r.mfu)}   HFU ${pct(r.hfu)}  (of dense BF16 peak ${(spec.hardware.peak_bf16 / 1e12).toFixed(0)} TFLOP/s)`,
    `memory      ${r.memory_gib_per_device.toFixed(1)} GiB per device of ${(spec.hardware.hbm_bytes / 2 ** 30).toFixed(1)} GiB: ${r.fits ? 'fits' : 'DOES NOT FIT'}`,
    '  ' + Object.entries(r.memory_breakdown_gib).filter(([k]) => k !== 'total').map(([k, x]) => `${k} ${x.toFixed(1)}`).join(', '),
    'breakdown of the step:',
    ...Object.entries(r.breakdown).map(([k, x]) => `  ${k.padEnd(10)} ${secs(x).padStart(10)}  ${pct(x / r.step_time_s).padStart(6)}`),
  ];
  const sp = r.stage_split;
  if (sp.layers.length > 1) {
    const over = sp.busiest_over_mean - 1;
    lines.push(`stages      layers per stage ${sp.layers.join(',')}: the busiest stage has ${pct(over)} more work than the mean` +
      (over > 0.05 ? ' (not in the step time above, which assumes balanced stages; pick pp so the layers split evenly)' : ''));
  }
  return lines.join('\n');
}

export async function runPlanCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    out(USAGE);
    return sub ? 0 : 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(USAGE);
    return 0;
  }
  switch (sub) {
    case 'simulate':
    case 'search':
    case 'sweep':
    case 'export': {
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true, strict: true,
        options: { json: { type: 'boolean' }, top: { type: 'string' }, engine: { type: 'string' }, ...OVERRIDES },
      }, `plan ${sub}`);
      if (positionals.length > 1) throw new MoekitError(`one SPEC expected, got ${positionals.length}`, `plan ${sub}`);
      // --top only means something to search, --engine only to export: elsewhere they used to be ignored silently
      if (values.top !== undefined && sub !== 'search') throw new MoekitError(`only for plan search, not plan ${sub}`, '--top');
      if (values.engine !== undefined && sub !== 'export') throw new MoekitError(`only for plan export, not plan ${sub}`, '--engine');
      const json = Boolean(values.json);
      if (sub === 'simulate') {
        const spec = specFrom(positionals[0], values, false);
        const r = simulate(spec);
        const band = bandFor(spec.hardware);
        out(json ? JSON.stringify(simJson(r, band), null, 1) : simText(spec, r, band));
        return 0;
      }
      if (sub === 'search') {
        const spec = specFrom(positionals[0], values, true);
        const top = intFlag(values.top, 'top') ?? 10;
        // --top 0 would list nothing and then report that no layout fits
        if (top < 1) throw new MoekitError(`must be at least 1 (got ${top})`, '--top');
        const r = search(spec, { top, fixed: fixedLayout(values) });
        const band = bandFor(spec.hardware);
        const best = r.top[0]?.result.tokens_per_s;
        // the layouts whose band overlaps the best one's: the ranking among them is not resolved
        const tied = r.top.filter((x) => best !== undefined && withinBands(best, x.result.tokens_per_s, band)).length;
        if (json) {
          out(JSON.stringify({
            layouts_enumerated: r.layouts_enumerated, simulations: r.simulations, fitting_layouts: r.fitting_layouts, elapsed_s: r.elapsed_s,
            band: { p80_rel_error: band.p80_rel_error, basis: band.basis, within_band_of_best: tied },
            top: r.top.map((x, i) => ({
              layout: x.layout, micro_batch: x.training.micro_batch, ...simJson(x.result, band),
              within_band_of_best: best !== undefined && withinBands(best, x.result.tokens_per_s, band),
              within_band_of_next: i + 1 < r.top.length ? withinBands(x.result.tokens_per_s, r.top[i + 1].result.tokens_per_s, band) : undefined,
            })),
            closest: r.closest ? { layout: r.closest.layout, ...simJson(r.closest.result) } : undefined,
            no_valid_layout: r.no_valid_layout,
          }, null, 1));
        } else {
          out(`${r.layouts_enumerated} layouts, ${r.simulations} simulations in ${r.elapsed_s.toFixed(2)} s; ${r.fitting_layouts} fit in memory`);
          if (r.no_valid_layout) {
            out(`no valid layout: ${r.no_valid_layout}`);
            return 1;
          }
          if (r.top.length === 0) {
            out('no layout fits in memory.');
            if (r.closest) out(`closest: ${r.closest.layout}, recompute ${JSON.stringify(r.closest.parallel.recompute)}: ${r.closest.result.memory_gib_per_device.toFixed(1)} GiB per device of ${(spec.hardware.hbm_bytes / 2 ** 30).toFixed(1)} GiB`);
            return 1;
          }
          out('rank  layout                               recompute          tokens/s/dev    MFU   memory GiB');
          r.top.forEach((x, i) => out(`${String(i + 1).padStart(4)}  ${x.layout.padEnd(36)} ${JSON.stringify(x.parallel.recompute).slice(0, 18).padEnd(18)} ${x.result.tokens_per_s_per_device.toFixed(0).padStart(12)} ${pct(x.result.mfu).padStart(6)} ${x.result.memory_gib_per_device.toFixed(1).padStart(8)}${best !== undefined && withinBands(best, x.result.tokens_per_s, band) ? '  ~best' : ''}`));
          out(`band: +-${pct(band.p80_rel_error)} (p80 of ${band.basis}); ${tied === 1 ? 'rank 1 is resolved: no other listed layout is within its band' : `ranks 1-${tied} (marked ~best) are within each other's band: the prediction does not resolve their order`}`);
        }
        return r.top.length ? 0 : 1;
      }
      if (sub === 'sweep') {
        const spec = specFrom(positionals[0], values, true);
        const r = sweep(spec, { fixed: fixedLayout(values) });
        if (json) out(JSON.stringify(r, null, 1));
        else {
          out(`${r.shapes_in_budget} of ${r.shapes_considered} shapes in budget (${r.elapsed_s.toFixed(1)} s); ranked by predicted MFU, * = Pareto front (total params, MFU)`);
          for (const x of r.rows) {
            const s = x.shape;
            out(`${x.pareto ? '*' : ' '} L${s.layers} H${s.hidden} E${s.experts} K${s.top_k} I${s.expert_ffn}  ${x.total_params_b.toFixed(0)}B total ${x.active_params_b.toFixed(1)}B active  ` +
              (x.best ? `${x.best.layout}  ${pct(x.best.mfu)} MFU  ${Math.round(x.best.tokens_per_s).toLocaleString('en-US')} tokens/s` : 'no fitting layout'));
          }
          if (r.quality_target) {
            out(`ranked by time-to-quality: days to the loss ${r.quality_target.loss.toFixed(4)} the base shape reaches after ${(r.quality_target.tokens / 1e12).toFixed(1)}T tokens (Krajewski et al. 2024 fine-grained MoE law)`);
            r.by_time_to_quality.forEach((x, i) => {
              const s = x.shape;
              const q = x.quality!;
              // Infinity: the law never reaches the target (tokens), or no layout fits (days)
              const tokens = Number.isFinite(q.tokens_to_target) ? `${(q.tokens_to_target / 1e12).toFixed(2)}T tokens` : 'target never reached';
              const days = !x.best ? 'no fitting layout' : Number.isFinite(q.days_to_target) ? `${q.days_to_target.toFixed(1)} days` : 'never';
              out(`${String(i + 1).padStart(3)} L${s.layers} H${s.hidden} E${s.experts} K${s.top_k} I${s.expert_ffn}  G ${q.granularity.toFixed(2)}  loss@budget ${q.loss_at_budget.toFixed(4)}  ` +
                `${tokens}  ${days}`);
            });
          }
        }
        return 0;
      }
      const engine = values.engine;
      if (engine !== 'megatron' && engine !== 'mindspeed') throw new MoekitError(`must be megatron or mindspeed (got '${engine ?? ''}')`, '--engine');
      const spec = specFrom(positionals[0], values, false);
      const e = exportPlan(spec, engine as Engine);
      if (json) out(JSON.stringify(e, null, 1));
      else {
        out(e.command);
        for (const n of e.notes) out(`# note: ${n}`);
      }
      return 0;
    }
    case 'op': {
      const [kind, ...opArgs] = rest;
      const { values } = parseArgs({
        args: opArgs, allowPositionals: false, strict: true,
        options: {
          json: { type: 'boolean' }, hardware: { type: 'string' }, tokens: { type: 'string' }, hidden: { type: 'string' }, experts: { type: 'string' },
          'top-k': { type: 'string' }, 'expert-ffn': { type: 'string' }, batch: { type: 'string' }, seq: { type: 'string' }, heads: { type: 'string' },
          'kv-heads': { type: 'string' }, 'head-dim': { type: 'string' }, m: { type: 'string' }, n: { type: 'string' }, k: { type: 'string' },
          groups: { type: 'string' }, precision: { type: 'string' }, backend: { type: 'string' },
        },
      }, 'plan op');
      // a flag of the other op (e.g. --heads for moe-layer) used to be ignored silently
      const own: Record<string, string[]> = {
        'moe-layer': ['tokens', 'hidden', 'experts', 'top-k', 'expert-ffn'], attention: ['batch', 'seq', 'hidden', 'heads', 'kv-heads', 'head-dim'],
        gemm: ['m', 'n', 'k', 'groups', 'precision'], sdpa: ['batch', 'seq', 'heads', 'kv-heads', 'head-dim', 'backend'],
      };
      if (kind && own[kind]) {
        for (const [k, v] of Object.entries(values)) {
          if (v !== undefined && k !== 'json' && k !== 'hardware' && !own[kind].includes(k)) throw new MoekitError(`not an option of plan op ${kind} (${own[kind].map((x) => `--${x}`).join(' ')})`, `--${k}`);
        }
      }
      const hw = hardwarePreset(String(values.hardware ?? 'h200'), '--hardware');
      const need = (k: string): number => {
        const n = intFlag(values[k as keyof typeof values] as string | undefined, k);
        if (n === undefined || n < 1) throw new MoekitError('required, a positive integer', `--${k}`);
        if (n > 2 ** 30) throw new MoekitError(`must be at most ${2 ** 30} (got ${n})`, `--${k}`);
        return n;
      };
      if (kind === 'gemm' || kind === 'sdpa') {
        // one kernel on one GPU, the H200 kernel fit (fit-kernels.ts, docs/plan-kernels-h200.json): back-to-back calls
        let r: Record<string, unknown>;
        if (kind === 'gemm') {
          const precision = String(values.precision ?? 'bf16');
          if (precision !== 'bf16' && precision !== 'fp8') throw new MoekitError(`must be bf16 or fp8 (got ${JSON.stringify(precision)})`, '--precision');
          if (precision === 'fp8' && !(hw.peak_fp8 > 0)) throw new MoekitError(`${hw.preset} has no FP8 GEMMs`, '--precision');
          const groups = values.groups ? need('groups') : 1;
          const shape = { m: need('m'), n: need('n'), k: need('k'), groups };
          const ms = 1e3 * gemmTime(hw, KERNEL_CONSTANTS, shape.m, shape.n, shape.k, precision === 'fp8', groups);
          r = { op: kind, hardware: hw.preset, precision, ...shape, ms, tflops: (2 * shape.m * shape.n * shape.k) / (ms * 1e-3) / 1e12 };
          if (!values.json) out(`gemm [${shape.m},${shape.k}] x [${shape.k},${shape.n}]${groups > 1 ? ` over ${groups} groups` : ''} on one ${hw.name}, ${precision}: ${ms.toFixed(4)} ms (${(r.tflops as number).toFixed(0)} TFLOP/s)`);
        } else {
          const backend = String(values.backend ?? 'cudnn') as SdpaBackend;
          if (!SDPA_BACKENDS.includes(backend)) throw new MoekitError(`must be one of ${SDPA_BACKENDS.join(', ')} (got ${JSON.stringify(backend)})`, '--backend');
          const s = { B: need('batch'), S: need('seq'), N: need('heads'), G: values['kv-heads'] ? need('kv-heads') : need('heads'), D: need('head-dim') };
          if (s.N % s.G !== 0) throw new MoekitError(`heads ${s.N} not a multiple of kv-heads ${s.G}`, '--kv-heads');
          const t = sdpaTime(hw, KERNEL_CONSTANTS, backend, s);
          r = { op: kind, hardware: hw.preset, backend, batch: s.B, seq: s.S, heads: s.N, kv_heads: s.G, head_dim: s.D, fwd_ms: 1e3 * t.fwd, fwd_bwd_ms: 1e3 * t.fwd_bwd };
          if (!values.json) out(`causal sdpa (${backend}) on one ${hw.name}: forward ${(1e3 * t.fwd).toFixed(3)} ms, forward+backward ${(1e3 * t.fwd_bwd).toFixed(3)} ms`);
        }
        if (values.json) out(JSON.stringify(r, null, 1));
        return 0;
      }
      let pred;
      let shape: Record<string, number>;
      if (kind === 'moe-layer') {
        shape = { tokens: need('tokens'), hidden: need('hidden'), experts: need('experts'), top_k: need('top-k'), expert_ffn: need('expert-ffn') };
        if (shape.top_k > shape.experts) throw new MoekitError(`top-k ${shape.top_k} exceeds experts ${shape.experts}`, '--top-k');
        pred = predictMoeLayer(shape as never, hw);
      } else if (kind === 'attention') {
        shape = { batch: need('batch'), seq: need('seq'), hidden: need('hidden'), heads: need('heads'), kv_heads: values['kv-heads'] ? need('kv-heads') : need('heads'), head_dim: need('head-dim') };
        if (shape.heads % shape.kv_heads !== 0) throw new MoekitError(`heads ${shape.heads} not a multiple of kv-heads ${shape.kv_heads}`, '--kv-heads');
        pred = predictAttention(shape as never, hw);
      } else throw new MoekitError(`unknown op '${kind ?? ''}' (moe-layer, attention, gemm or sdpa)`, 'plan op');
      if (values.json) out(JSON.stringify({ op: kind, hardware: hw.preset, precision: 'bf16', ...shape, ...pred }, null, 1));
      else {
        out(`${kind} on one ${hw.name}, bf16: forward ${pred.fwd_ms.toFixed(2)} ms, forward+backward ${pred.fwd_bwd_ms.toFixed(2)} ms`);
        out('  forward by phase: ' + Object.entries(pred.phases_fwd_ms).map(([k, x]) => `${k} ${x.toFixed(2)} ms`).join(', '));
      }
      return 0;
    }
    case 'calibrate': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true }, 'plan calibrate');
      const rows = calibrationTable();
      if (values.json) out(JSON.stringify(rows, null, 1));
      else {
        out('run                                               metric      predicted   published   error');
        for (const r of rows) out(`${r.name.padEnd(50)} ${r.metric.padEnd(10)} ${r.predicted_text.padStart(10)} ${r.published_text.padStart(11)}  ${r.error_text.padStart(7)} ${r.within ? 'ok' : 'MISS'}`);
      }
      return 0;
    }
    case 'presets': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true }, 'plan presets');
      const hw = presetNames().map((n) => hardwarePreset(n));
      const models = modelPresetNames().map((n) => ({ preset: n, ...MODEL_PRESETS[n] }));
      if (values.json) out(JSON.stringify({ hardware: hw, models }, null, 1));
      else {
        for (const h of hw) {
          out(`${h.preset}: ${h.name}`);
          const nums: [string, string][] = [
            ['devices_per_node', String(h.devices_per_node)], ['scaleup_domain', String(h.scaleup_domain)],
            ['intra_bw', `${h.intra_bw / 1e9} GB/s (${h.intra_topology})`], ['inter_bw', `${h.inter_bw / 1e9} GB/s`], ['host_bw', `${h.host_bw / 1e9} GB/s`],
            ['hbm_bytes', `${(h.hbm_bytes / 2 ** 30).toFixed(1)} GiB`], ['hbm_bw', `${h.hbm_bw / 1e12} TB/s`],
            ['peak_bf16', `${h.peak_bf16 / 1e12} TFLOP/s (MFU divides by this)`], ['peak_fp8', `${h.peak_fp8 / 1e12} TFLOP/s`],
            ['gemm_eff', String(h.gemm_eff)], ['fp8_gemm_eff', String(h.fp8_gemm_eff)], ['bw_eff', String(h.bw_eff)], ['coll_eff', String(h.coll_eff)],
          ];
          for (const [k, v] of nums) out(`  ${k.padEnd(16)} ${v.padEnd(44)} ${h.source[k] ?? ''}`);
        }
        out('models: ' + models.map((m) => `${m.preset} (${m.source})`).join('\n        '));
      }
      return 0;
    }
    default:
      throw new MoekitError(`unknown plan command '${sub}' (simulate, search, sweep, export, op, calibrate, presets)`, 'plan');
  }
}

export interface CalibrationOutcome {
  id: string;
  name: string;
  metric: 'mfu' | 'throughput';
  predicted_tokens_per_s_per_device: number;
  predicted_mfu: number;
  published_tokens_per_s_per_device?: number;
  published_mfu?: number;
  error: number;
  within: boolean;
  predicted_text: string;
  published_text: string;
  error_text: string;
  memory_gib_per_device: number;
  fits: boolean;
  source: string;
  assumptions: string;
  /** steady-state prediction (before ramp-up and goodput, for rows compared on a cost-accounting figure) */
  steady_tokens_per_s_per_device: number;
  /** predicted / steady-state: ramp-up x goodput (1 when the row has no accounting) */
  accounting_factor: number;
}


/** Simulate every calibration row (or the rows given). MFU rows pass within 3 points, throughput rows within 10%. */
export function calibrationTable(rows: readonly (typeof CALIBRATION)[number][] = CALIBRATION): CalibrationOutcome[] {
  return rows.map((row) => {
    const spec = resolveSpec(structuredClone(row.spec), row.id);
    const r = simulate(spec);
    const steady = r.tokens_per_s_per_device;
    const tps = accountedThroughput(row, steady);
    const pub = row.published;
    let error: number;
    let within: boolean;
    let predicted_text: string;
    let published_text: string;
    let error_text: string;
    if (row.metric === 'mfu') {
      error = r.mfu - (pub.mfu ?? NaN);
      within = Math.abs(error) <= 0.03;
      predicted_text = pct(r.mfu);
      published_text = pct(pub.mfu ?? NaN);
      error_text = `${error >= 0 ? '+' : ''}${(100 * error).toFixed(1)} pt`;
    } else {
      error = tps / (pub.tokens_per_s_per_device ?? NaN) - 1;
      within = Math.abs(error) <= 0.1;
      predicted_text = `${tps.toFixed(0)} t/s/d`;
      published_text = `${(pub.tokens_per_s_per_device ?? NaN).toFixed(0)} t/s/d`;
      error_text = `${error >= 0 ? '+' : ''}${(100 * error).toFixed(1)}%`;
    }
    return {
      id: row.id, name: row.name, metric: row.metric,
      predicted_tokens_per_s_per_device: tps, predicted_mfu: (r.mfu * tps) / steady,
      steady_tokens_per_s_per_device: steady, accounting_factor: tps / steady,
      published_tokens_per_s_per_device: pub.tokens_per_s_per_device, published_mfu: pub.mfu,
      error, within, predicted_text, published_text, error_text,
      memory_gib_per_device: r.memory_gib_per_device, fits: r.fits, source: row.source, assumptions: row.assumptions,
    };
  });
}
