/**
 * Granite 4.0-H (granitemoehybrid): a hybrid of Mamba-2 layers (`linear_attention`, legacy `mamba`: models/mamba2.ts)
 * and Granite attention layers (`full_attention`, legacy `attention`: GQA scaled by attention_multiplier, RoPE only
 * when position_embedding_type is 'rope' — the published models are NoPE), each followed by Granite-MoE-Shared's MLP:
 * the fused top-k-softmax experts (input_linear [E, 2I, H], output_linear [E, H, I]) plus the ungated shared_mlp of
 * shared_intermediate_size S (input_linear [2S, H], output_linear [H, S]); with num_local_experts 0, the shared_mlp
 * alone (a dense layer). Granite's embedding, residual and logit multipliers. The Mamba-2 state is the decode cache.
 */
import { ConfigReader } from '../io/config.js';
import type { ArchSpec } from './arch.js';
import type { Mamba2Desc, ModelDesc } from './desc.js';
import { baseDesc, gqa, loadGqa, moeDefaults, norms } from './common.js';
import { graniteFfn, graniteMoe } from './granite.js';
import { mamba2Dims } from './mamba2.js';
import { linear, type LayerTensors, type TensorSource } from './weights.js';

/** transformers' remap_legacy_layer_types: the names of the first Granite 4.0 configs */
const LEGACY: Record<string, string> = { mamba: 'linear_attention', attention: 'full_attention' };

/** a bound of time_step_limit: a number, or the infinities as configs write them ("inf", {"__float__": "Infinity"}) */
function bound(c: ConfigReader, v: unknown): number {
  const s = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)['__float__'] : v;
  const x = typeof s === 'number' ? s : s === 'inf' || s === 'Infinity' ? Infinity : s === '-inf' || s === '-Infinity' ? -Infinity : NaN;
  c.ensure(!Number.isNaN(x), `key 'time_step_limit' must list two numbers [min, max], got ${JSON.stringify(c.raw['time_step_limit'])}`);
  return x;
}

function mamba2Desc(c: ConfigReader): Mamba2Desc {
  const H = c.int('hidden_size');
  const nHeads = c.int('mamba_n_heads', 128, { min: 1 });
  const inner = c.int('mamba_expand', 2, { min: 1 }) * H;
  c.ensure(inner % nHeads === 0, `mamba_n_heads (${nHeads}) must divide mamba_expand × hidden_size (${inner})`);
  const rawHead = c.raw['mamba_d_head'];
  const headDim = rawHead === 'auto' || rawHead === undefined || rawHead === null ? inner / nHeads : c.int('mamba_d_head', undefined, { min: 1 });
  c.ensure(headDim * nHeads === inner, `mamba_d_head × mamba_n_heads (${headDim} × ${nHeads}) must equal mamba_expand × hidden_size (${inner})`);
  const nGroups = c.int('mamba_n_groups', 1, { min: 1 });
  c.ensure(nHeads % nGroups === 0, `mamba_n_groups (${nGroups}) must divide mamba_n_heads (${nHeads})`);
  const lim = c.arr('time_step_limit') ?? [0, Infinity];
  c.ensure(lim.length === 2, `key 'time_step_limit' must list two numbers [min, max], got ${JSON.stringify(lim)}`);
  const [dtMin, dtMax] = [bound(c, lim[0]), bound(c, lim[1])];
  c.ensure(dtMin <= dtMax, `key 'time_step_limit' must be [min, max] with min ≤ max, got [${dtMin}, ${dtMax}]`);
  return {
    nHeads, headDim, nGroups, dState: c.int('mamba_d_state', 256, { min: 1 }),
    convKernel: c.int('mamba_d_conv', 4, { min: 2, max: 64 }), convBias: c.bool('mamba_conv_bias', true),
    projBias: c.bool('mamba_proj_bias', false), dtMin, dtMax,
  };
}

function describeGraniteHybrid(c: ConfigReader): ModelDesc {
  const bias = c.bool('attention_bias', false);
  const attention = gqa(c, { qkvBias: bias, oBias: bias, scale: c.num('attention_multiplier', 1) });
  const L = c.int('num_hidden_layers');
  const types = (c.arr('layer_types') ?? new Array(L).fill('linear_attention')).map((t) => (typeof t === 'string' ? LEGACY[t] ?? t : t));
  c.ensure(types.length === L && types.every((t) => t === 'full_attention' || t === 'linear_attention'),
    `key 'layer_types' must list ${L} of 'full_attention' / 'linear_attention' (or 'attention' / 'mamba'), got ${JSON.stringify(c.raw['layer_types']).slice(0, 80)}`);
  // transformers builds the rotary embedding only for 'rope' (None and the published 'nope': no positions at all)
  const useRope = c.has('position_embedding_type') && c.str('position_embedding_type') === 'rope';
  const hasTheta = c.has('rope_theta') || (typeof c.raw['rope_parameters'] === 'object' && c.raw['rope_parameters'] !== null);
  const rope = useRope || hasTheta ? c.rope(attention.headDim, false)
    : new ConfigReader({ rope_theta: 10000 }, c.file).rope(attention.headDim, false); // unused: every layer is NoPE
  const E = c.int('num_local_experts', 8);
  const S = c.int('shared_intermediate_size', 1024, { min: 1 });
  const d = baseDesc(c, 'granitemoehybrid', attention, rope, {
    layers: types.map((t) => ({
      mlp: E > 0 ? ('moe' as const) : ('dense' as const), slidingWindow: null,
      ...(t === 'linear_attention' ? { mixer: 'mamba2' as const } : useRope ? {} : { noRope: true }),
    })),
    denseFfn: S, // with no experts, the shared_mlp is the layer's dense FFN
    moe: moeDefaults({
      experts: E, topK: c.int('num_experts_per_tok', 2), expertFfn: c.int('intermediate_size'), router: 'topk_softmax',
      sharedFfn: E > 0 ? S : 0,
    }),
  });
  d.embeddingMultiplier = c.num('embedding_multiplier', 1);
  d.residualMultiplier = c.num('residual_multiplier', 1);
  d.logitsScale = c.num('logits_scaling', 1);
  d.mamba2 = mamba2Desc(c);
  return d;
}

function loadLayer(src: TensorSource, d: ModelDesc, l: number): LayerTensors {
  const p = `model.layers.${l}`, H = d.hidden, S = d.denseFfn;
  const shared = graniteFfn(src.getMatrix(`${p}.shared_mlp.input_linear.weight`, [2 * S, H]), src.getMatrix(`${p}.shared_mlp.output_linear.weight`, [H, S]), H, S);
  let mixer: Pick<LayerTensors, 'attn' | 'mamba2'>;
  if (d.layers[l].mixer === 'mamba2') {
    const m = d.mamba2!, s = `${p}.mamba`, { I, Cch, proj } = mamba2Dims(m);
    mixer = {
      mamba2: {
        inProj: linear(src, `${s}.in_proj`, proj, H, m.projBias), // [I + C + nH, H]: z | xBC | dt
        conv: src.get(`${s}.conv1d.weight`, [Cch, 1, m.convKernel]), // [C, K]
        convBias: m.convBias ? src.get(`${s}.conv1d.bias`, [Cch]) : null,
        dtBias: src.get(`${s}.dt_bias`, [m.nHeads]),
        aLog: src.get(`${s}.A_log`, [m.nHeads]),
        D: src.get(`${s}.D`, [m.nHeads]),
        norm: src.get(`${s}.norm.weight`, [I]),
        out: linear(src, `${s}.out_proj`, H, I, m.projBias),
      },
    };
  } else {
    mixer = { attn: loadGqa(src, d, p) };
  }
  if (d.layers[l].mlp === 'dense') return { ...norms(src, d, p), ...mixer, dense: shared };
  return {
    ...norms(src, d, p), ...mixer,
    moe: { router: linear(src, `${p}.block_sparse_moe.router.layer`, d.moe.experts, H, false), selectionBias: null, shared, sharedGate: null },
  };
}

export const graniteMoeHybrid: ArchSpec = {
  name: 'granitemoehybrid', modelTypes: ['granitemoehybrid'], describe: describeGraniteHybrid, loadLayer,
  expert: graniteMoe.expert, expertTensors: graniteMoe.expertTensors, // the fused layout of Granite-MoE
};
