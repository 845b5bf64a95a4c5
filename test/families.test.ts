/**
 * The families of issue 16 (fixtures made by fixtures/hf-tiny-moe/make_fixtures_more.py) beyond the golden
 * checks of fixtures.test.ts: decoding with the KV cache gives the logits of one full forward (both kernel sets);
 * a sub-model (layer dropped, experts masked, top-k changed) routes only among its experts and passes skipped
 * layers through; training gradients equal central finite differences where the blocks are shared with trained
 * architectures.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as cacheCtor from '../src/models/kv-cache.js';
import { MoeModel } from '../src/models/model.js';
import type { SubModel } from '../src/models/pass.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { inspectModel } from '../src/models/inspect.js';
import { TrainableModel } from '../src/train/model.js';
import { maxAbsDiff } from './helpers.js';
import { writeBf16, writeDeepseekFp8 } from './quant-checkpoints.js';
import { NEW_ARCHS } from './archs.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
export { NEW_ARCHS };

describe.each(NEW_ARCHS.flatMap((a) => [[a, 'native'], [a, 'reference']] as const))('%s KV cache (%s kernels)', (arch, kernels) => {
  const prev = process.env.MOEKIT_KERNELS;
  beforeAll(() => { process.env.MOEKIT_KERNELS = kernels; });
  afterAll(() => { if (prev === undefined) delete process.env.MOEKIT_KERNELS; else process.env.MOEKIT_KERNELS = prev; });

  it('prefill + one-token steps give the logits of one full forward, for a batch of 2', () => {
    const m = MoeModel.load(path.join(ROOT, arch));
    const V = m.desc.vocab, T = 14, B = 2; // past dots1's sliding window of 8
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % V);
    const full = m.forward(ids, B, T); // [B, T, V]
    const cache = m.newCache(B, 4); // small capacity: exercises growth
    const P = 5;
    const pre = new Int32Array(B * P);
    for (let b = 0; b < B; b++) pre.set(ids.subarray(b * T, b * T + P), b * P);
    const lp = m.forward(pre, B, P, { cache }); // [B, P, V]
    for (let b = 0; b < B; b++) {
      expect(maxAbsDiff(lp.subarray(b * P * V, (b + 1) * P * V), full.subarray(b * T * V, (b * T + P) * V))).toBeLessThan(1e-5);
    }
    for (let t = P; t < T; t++) {
      const step = Int32Array.from({ length: B }, (_, b) => ids[b * T + t]);
      const lg = m.forward(step, B, 1, { cache }); // [B, 1, V]
      for (let b = 0; b < B; b++) {
        const want = full.subarray((b * T + t) * V, (b * T + t + 1) * V);
        expect(maxAbsDiff(lg.subarray(b * V, (b + 1) * V), want), `t=${t} b=${b}`).toBeLessThan(1e-5);
      }
    }
  });
});

describe.each(NEW_ARCHS)('%s sub-model', (arch) => {
  it('routes only among the allowed experts with its top-k; skipped layers leave the residual unchanged; it changes the logits', () => {
    const m = MoeModel.load(path.join(ROOT, arch));
    const d = m.desc, E = d.moe.experts, V = d.vocab;
    const moe = d.layers.flatMap((l, i) => (l.mlp === 'moe' ? [i] : []));
    const keep = [...Array(d.nLayers).keys()].filter((l) => l !== moe[0]); // drop the first MoE layer
    // per group the same count (group-limited routers): every other expert
    const experts = moe.map(() => Uint8Array.from({ length: E }, (_, e) => (e % 2 === 0 ? 1 : 0)));
    const sub: SubModel = { layers: keep, experts, topK: 1 };
    const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 29 + 3) % V);
    const seen: number[] = [];
    const hidden = new Map<number, Float32Array>();
    const a = m.forward(ids, 1, 12, {
      sub,
      trace: {
        moe: (ev) => {
          seen.push(ev.layer);
          expect(ev.K).toBe(1);
          for (const e of ev.experts) expect(e % 2).toBe(0);
        },
        hidden: (i, x) => hidden.set(i, x.slice()),
      },
    });
    expect(seen).toEqual(keep.filter((l) => d.layers[l].mlp === 'moe'));
    expect(hidden.get(moe[0] + 1)).toEqual(hidden.get(moe[0]));
    expect(maxAbsDiff(a, m.forward(ids, 1, 12))).toBeGreaterThan(1e-3);
  });
});

// the blocks shared with trained architectures: GQA with biases, q/k norms before RoPE (GLM, dots) and after it
// (Hunyuan), partial RoPE, sigmoid-group and softmax routers, shared experts (Granite's fused layout); FlexOlmo's
// norms after the blocks; Aria's experts; Mamba-2 (Granite 4.0-H)
const PROBES: Record<string, string[]> = {
  glm4_moe: ['model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.k_proj.bias', 'model.layers.1.self_attn.q_norm.weight',
    'model.layers.1.mlp.gate.weight', 'model.layers.2.mlp.shared_experts.up_proj.weight', 'model.layers.0.mlp.down_proj.weight'],
  dots1: ['model.layers.2.self_attn.k_proj.weight', 'model.layers.1.self_attn.k_norm.weight', 'model.layers.2.mlp.gate.weight',
    'model.layers.1.mlp.shared_experts.gate_proj.weight'],
  hunyuan_v1_moe: ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.query_layernorm.weight',
    'model.layers.2.self_attn.key_layernorm.weight', 'model.layers.1.mlp.gate.wg.weight', 'model.layers.0.mlp.shared_mlp.down_proj.weight'],
  // the Mamba-2 mixer through the whole model (models/mamba2.ts: its backward), NoPE attention, Granite's fused MoE + shared
  // MLP. Steps of 1e-2 on in_proj, out_proj or the conv bias move this fixture's routing (those differences are skipped), and
  // dt_bias and A_log have gradients of ~1e-6 here (its state barely decays): test/mamba2.test.ts holds every mixer weight
  // to finite differences on random mixers
  granitemoehybrid: ['model.layers.0.mamba.conv1d.weight', 'model.layers.2.mamba.conv1d.weight', 'model.layers.0.mamba.norm.weight',
    'model.layers.2.mamba.norm.weight', 'model.layers.0.mamba.D', 'model.layers.1.self_attn.q_proj.weight',
    'model.layers.1.self_attn.k_proj.weight', 'model.layers.2.block_sparse_moe.input_linear.weight', 'model.layers.0.shared_mlp.output_linear.weight'],
  granitemoeshared: ['model.layers.1.self_attn.v_proj.weight', 'model.layers.0.block_sparse_moe.router.layer.weight',
    'model.layers.2.shared_mlp.input_linear.weight', 'model.layers.1.shared_mlp.output_linear.weight'],
  // both MLA sublayers (LoRA-scaled q and latent), both dense MLPs and their norms, the router over routed + zero experts
  longcat_flash: ['model.layers.0.self_attn.0.q_b_proj.weight', 'model.layers.1.self_attn.1.kv_b_proj.weight',
    'model.layers.0.self_attn.1.kv_a_layernorm.weight', 'model.layers.1.mlps.0.up_proj.weight', 'model.layers.0.mlps.1.down_proj.weight',
    'model.layers.1.post_attention_layernorm.1.weight', 'model.layers.0.mlp.router.classifier.weight', 'model.layers.1.mlp.experts.3.gate_proj.weight'],
  // norms on the blocks' outputs (normPlacement 'post'), q/k norms over the whole projections
  flex_olmo: ['model.layers.1.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_norm.weight', 'model.layers.2.post_attention_layernorm.weight',
    'model.layers.1.post_feedforward_layernorm.weight', 'model.layers.0.mlp.gate.weight', 'model.layers.2.mlp.experts.3.up_proj.weight'],
  // Aria's fused fc1 / fc2 held as per-expert copies (named per expert), the top-k → softmax router, the shared experts
  aria_text: ['model.layers.1.self_attn.k_proj.weight', 'model.layers.0.mlp.router.weight', 'model.layers.2.mlp.experts.1.gate_proj.weight',
    'model.layers.1.mlp.experts.6.down_proj.weight', 'model.layers.0.mlp.shared_experts.up_proj.weight', 'model.layers.2.input_layernorm.weight'],
};

describe.each(Object.keys(PROBES))('%s training gradients', (arch) => {
  it('equal central finite differences', () => {
    const tm = TrainableModel.load(path.join(ROOT, arch));
    const V = tm.model.desc.vocab, B = 2, T = 10;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 41 + 7) % V);
    const { grads } = tm.forwardBackward(ids, B, T);
    const routing = () => {
      const fw = tm.forward(ids, B, T);
      return { loss: fw.loss, sig: fw.tape.layers.map((l) => (l?.moe ? l.moe.r.experts.join() : '')).join('|') };
    };
    const base = routing();
    const probes = PROBES[arch];
    let checked = 0;
    for (const name of probes) {
      const p = tm.params.get(name), g = grads.get(name);
      expect(p, name).toBeDefined();
      const byG = (ix: number[]) => ix.sort((a, b) => Math.abs(g![b]) - Math.abs(g![a]));
      // q/k projections: also the rows of each head's first rotated pair (the fastest-turning one; Hunyuan's NTK-alpha
      // RoPE barely turns the others at these positions, so only those rows show a wrong rotation)
      const D = tm.model.desc.attention.headDim, H = tm.model.desc.hidden;
      const fast = /self_attn\.[qk]_proj\.weight$/.test(name)
        ? byG([...g!.keys()].filter((i) => { const r = Math.floor(i / H) % D; return r === 0 || r === D / 2; })).slice(0, 3) : [];
      const order = [...new Set([...byG([...g!.keys()]).slice(0, 3), ...fast])];
      for (const i of order) {
        const h = 1e-2 * Math.max(1, Math.abs(p![i]));
        const x0 = p![i];
        p![i] = x0 + h; const a = routing();
        p![i] = x0 - h; const b = routing();
        p![i] = x0;
        if (a.sig !== base.sig || b.sig !== base.sig) continue; // the selection moved: top-k has no gradient there
        const num = (a.loss - b.loss) / (2 * h);
        expect(Math.abs(num - g![i]), `${name}[${i}]: fd ${num}, backward ${g![i]}`).toBeLessThanOrEqual(2e-3 * Math.max(1, Math.abs(g![i])) + 5e-4);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2 * probes.length);
  });
});

describe('longcat_flash training gradients, relative', () => {
  // its gradients are small (|g| ~ 5e-4 for q_b_proj): besides the shared check above (absolute floor 5e-4), each probe's
  // largest entries to 2 % of |g| (+ 2e-5: the f32 loss's noise over 2h), which a missed LoRA scale (×1.15) or a lost
  // zero-expert input gradient fails
  it('equal central finite differences to 2 %', () => {
    const tm = TrainableModel.load(path.join(ROOT, 'longcat_flash'));
    const V = tm.model.desc.vocab, B = 2, T = 10;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 41 + 7) % V);
    const { grads } = tm.forwardBackward(ids, B, T);
    const run = () => { const fw = tm.forward(ids, B, T); return { loss: fw.loss, sig: fw.tape.layers.map((l) => l!.moe!.r.experts.join()).join('|') }; };
    const base = run();
    let checked = 0;
    const probes = [...PROBES.longcat_flash, 'model.layers.0.input_layernorm.0.weight', 'model.layers.0.self_attn.0.q_a_proj.weight', 'model.layers.0.self_attn.0.kv_a_proj_with_mqa.weight'];
    for (const name of probes) {
      const p = tm.params.get(name)!, g = grads.get(name)!;
      expect(p, name).toBeDefined();
      for (const i of [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3)) {
        const h = 1e-2 * Math.max(1, Math.abs(p[i])), x0 = p[i];
        p[i] = x0 + h; const a = run();
        p[i] = x0 - h; const b = run();
        p[i] = x0;
        if (a.sig !== base.sig || b.sig !== base.sig) continue;
        const num = (a.loss - b.loss) / (2 * h);
        expect(Math.abs(num - g[i]), `${name}[${i}]: fd ${num}, backward ${g[i]}`).toBeLessThanOrEqual(2e-2 * Math.abs(g[i]) + 2e-5);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2 * probes.length);
  });
});

describe('what the trainer refuses', () => {
  it('PhiMoE (LayerNorm, sparsemixer routing: forward only) with an error naming why', () => {
    expect(() => TrainableModel.load(path.join(ROOT, 'phimoe'))).toThrow(/cannot train this phimoe model: its LayerNorms have no backward/);
  });
});

describe('published checkpoint forms', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-families-q-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('block-scaled FP8 (e4m3 weights + weight_scale_inv, quant_method fp8: the DeepSeek-V3 layout) of glm4_moe and dots1 loads as its dequantised f32 copy', () => {
    for (const arch of ['glm4_moe', 'dots1']) {
      const src = path.join(ROOT, arch);
      const dirs = writeDeepseekFp8(src, path.join(tmp, arch), 8, 8);
      const V = MoeModel.load(src).desc.vocab;
      const ids = Int32Array.from({ length: 10 }, (_, i) => (i * 13 + 5) % V);
      expect(maxAbsDiff(MoeModel.load(dirs.fp8).forward(ids, 1, 10), MoeModel.load(dirs.f32).forward(ids, 1, 10)), arch).toBeLessThan(1e-5);
      expect(inspectModel(dirs.fp8).parameters.total).toBe(inspectModel(src).parameters.total);
    }
  });

  it.each(NEW_ARCHS)('%s in bf16 (as published) gives the logits of its f32 weights rounded to bf16 read in f32', (arch) => {
    const src = path.join(ROOT, arch);
    const dir = writeBf16(src, path.join(tmp, `${arch}-bf16`));
    const m = MoeModel.load(dir), f = MoeModel.load(dir, { dtype: 'f32' });
    const ids = Int32Array.from({ length: 10 }, (_, i) => (i * 13 + 5) % m.desc.vocab);
    expect(maxAbsDiff(m.forward(ids, 1, 10), f.forward(ids, 1, 10))).toBeLessThan(1e-4);
    // and near the f32 model (bf16 rounding of the weights only)
    expect(maxAbsDiff(m.forward(ids, 1, 10), MoeModel.load(src).forward(ids, 1, 10))).toBeLessThan(0.1);
  });
});

describe('qwen3_next: the Gated DeltaNet state is the decode cache', () => {
  it('sequences of different lengths decode together; each one\'s state gives its own full-forward logits', () => {
    const m = MoeModel.load(path.join(ROOT, 'qwen3_next'));
    const V = m.desc.vocab, T = 11;
    const a = Int32Array.from({ length: T }, (_, i) => (i * 7 + 3) % V), b = Int32Array.from({ length: T }, (_, i) => (i * 11 + 5) % V);
    const fa = m.forward(a, 1, T), fb = m.forward(b, 1, T); // [T, V] each
    // a prefilled with 6 tokens, b with 3; then b catches up alone; then both step together
    const ca = m.newSeqCache(4), cb = m.newSeqCache(4);
    const { KvCache } = cacheCtor;
    m.forward(a.subarray(0, 6), 1, 6, { cache: new KvCache([ca]) });
    m.forward(b.subarray(0, 3), 1, 3, { cache: new KvCache([cb]) });
    m.forward(b.subarray(3, 6), 1, 3, { cache: new KvCache([cb]) });
    for (let t = 6; t < T; t++) {
      const lg = m.forward(Int32Array.from([a[t], b[t]]), 2, 1, { cache: new KvCache([ca, cb]) });
      expect(maxAbsDiff(lg.subarray(0, V), fa.subarray(t * V, (t + 1) * V)), `a t=${t}`).toBeLessThan(1e-5);
      expect(maxAbsDiff(lg.subarray(V, 2 * V), fb.subarray(t * V, (t + 1) * V)), `b t=${t}`).toBeLessThan(1e-5);
    }
    // the state is of fixed size: only the full-attention layer's cache grew
    expect(ca.layers[0].rec!.length).toBe(m.desc.deltanet!.nV * m.desc.deltanet!.Dk * m.desc.deltanet!.Dv);
    expect(ca.layers[0].k.length).toBe(0);
  });

  it('the trainer refuses it, naming the DeltaNet layers', () => {
    expect(() => TrainableModel.load(path.join(ROOT, 'qwen3_next'))).toThrow(/Gated DeltaNet layers have no backward/);
  });
});

describe('granitemoehybrid: the Mamba-2 state is the decode cache', () => {
  it('sequences of different lengths decode together; the Mamba-2 layers keep a state of fixed size, only the attention layer a growing cache', () => {
    const m = MoeModel.load(path.join(ROOT, 'granitemoehybrid'));
    const V = m.desc.vocab, T = 11, s = m.desc.mamba2!;
    const a = Int32Array.from({ length: T }, (_, i) => (i * 7 + 3) % V), b = Int32Array.from({ length: T }, (_, i) => (i * 11 + 5) % V);
    const fa = m.forward(a, 1, T), fb = m.forward(b, 1, T); // [T, V] each
    const ca = m.newSeqCache(4), cb = m.newSeqCache(4);
    const { KvCache } = cacheCtor;
    m.forward(a.subarray(0, 6), 1, 6, { cache: new KvCache([ca]) });
    m.forward(b.subarray(0, 2), 1, 2, { cache: new KvCache([cb]) }); // shorter than the conv window
    m.forward(b.subarray(2, 6), 1, 4, { cache: new KvCache([cb]) });
    for (let t = 6; t < T; t++) {
      const lg = m.forward(Int32Array.from([a[t], b[t]]), 2, 1, { cache: new KvCache([ca, cb]) });
      expect(maxAbsDiff(lg.subarray(0, V), fa.subarray(t * V, (t + 1) * V)), `a t=${t}`).toBeLessThan(1e-5);
      expect(maxAbsDiff(lg.subarray(V, 2 * V), fb.subarray(t * V, (t + 1) * V)), `b t=${t}`).toBeLessThan(1e-5);
    }
    expect(m.desc.layers.map((l) => l.mixer ?? 'attention')).toEqual(['mamba2', 'attention', 'mamba2']);
    expect(ca.layers[0].rec!.length).toBe(s.nHeads * s.headDim * s.dState);
    expect(ca.layers[0].k.length).toBe(0);
    expect(ca.layers[1].cap).toBeGreaterThanOrEqual(T);
  });
});

// the multimodal checkpoints as published: the text model's config under text_config, its tensors under
// language_model., beside a vision tower moekit does not read
const MULTIMODAL = [
  ['llama4_text', 'Llama4ForConditionalGeneration', 'llama4', 'vision_model.patch_embedding.linear.weight', { model_type: 'llama4_vision_model', hidden_size: 8 }],
  ['aria_text', 'AriaForConditionalGeneration', 'aria', 'vision_tower.embeddings.patch_embedding.weight', { model_type: 'idefics3_vision', hidden_size: 8 }],
] as const;

describe.each(MULTIMODAL)('%s as published: %s (model_type %s)', (textArch, cls, modelType, visionTensor, visionConfig) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `moekit-${modelType}-mm-`));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('its text model (text_config, tensors under language_model.) is the text model; the vision tower is left unread', async () => {
    const { Checkpoint } = await import('../src/io/checkpoint.js');
    const { writeSafetensors } = await import('../src/io/safetensors-write.js');
    const src = path.join(ROOT, textArch);
    const ck = Checkpoint.open(src);
    const entries = ck.names().map((n) => ({ name: `language_model.${n}`, dtype: 'F32' as const, shape: ck.info(n).shape, data: ck.readF32(n) }));
    ck.close();
    const vision = { name: visionTensor, dtype: 'F32' as const, shape: [8, 12], data: new Float32Array(96).fill(0.5) };
    writeSafetensors(path.join(tmp, 'model.safetensors'), [...entries, vision], { format: 'pt' });
    const text = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify({
      architectures: [cls], model_type: modelType, text_config: text, vision_config: visionConfig,
    }));
    const a = MoeModel.load(tmp), b = MoeModel.load(src);
    const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 17 + 2) % b.desc.vocab);
    expect(maxAbsDiff(a.forward(ids, 1, 12), b.forward(ids, 1, 12))).toBe(0);
    const lazy = MoeModel.load(tmp, { experts: 'lazy' });
    expect(maxAbsDiff(lazy.forward(ids, 1, 12), b.forward(ids, 1, 12))).toBe(0);
    lazy.close();
    const r = inspectModel(tmp), rt = inspectModel(src);
    expect(r.parameters.total).toBe(rt.parameters.total);
    expect(r.parameters.unused).toBe(96);
    const { extractSubModel } = await import('../src/models/extract.js');
    expect(() => extractSubModel(tmp, path.join(tmp, 'out'), {})).toThrow(/multimodal checkpoint .* not supported/);
  });
});

describe.each(NEW_ARCHS)('%s lazy expert store', (arch) => {
  it('reads each expert by itself (its tensors or its rows of fused ones) under a small budget: the eager logits', () => {
    const eager = MoeModel.load(path.join(ROOT, arch));
    const E = eager.desc.moe.experts;
    const one = eager.weights.layers.find((l) => l.moe)!.moe!.experts.residentBytes() / E; // bytes of one expert
    const lazy = MoeModel.load(path.join(ROOT, arch), { experts: 'lazy', expertBudgetBytes: Math.ceil(3 * one) });
    try {
      const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 23 + 1) % eager.desc.vocab);
      expect(maxAbsDiff(lazy.forward(ids, 2, 8), eager.forward(ids, 2, 8))).toBe(0);
      expect(lazy.expertStore!.counters.evictions).toBeGreaterThan(0);
    } finally {
      lazy.close();
    }
  });
});

describe('longcat_flash: two attention sublayers per layer, zero-computation experts', () => {
  const ROOTL = path.join(ROOT, 'longcat_flash');
  it('the expanded MLA path (per-head keys and values) gives the latent path\'s logits, prefill and decode; each sublayer keeps its own cache', () => {
    const m = MoeModel.load(ROOTL), x = MoeModel.load(ROOTL);
    x.mlaCache = 'expanded';
    const V = m.desc.vocab, T = 9;
    const ids = Int32Array.from({ length: 2 * T }, (_, i) => (i * 19 + 4) % V);
    expect(maxAbsDiff(x.forward(ids, 2, T), m.forward(ids, 2, T))).toBeLessThan(1e-5);
    const cl = m.newCache(2, 2), ce = x.newCache(2, 2);
    for (const q of [...cl.seqs, ...ce.seqs]) for (const l of q.layers) expect(l.second).toBeDefined();
    const P = 4, pre = new Int32Array(2 * P);
    for (let b = 0; b < 2; b++) pre.set(ids.subarray(b * T, b * T + P), b * P);
    m.forward(pre, 2, P, { cache: cl }); x.forward(pre, 2, P, { cache: ce });
    for (let t = P; t < T; t++) {
      const step = Int32Array.from([ids[t], ids[T + t]]);
      expect(maxAbsDiff(x.forward(step, 2, 1, { cache: ce }), m.forward(step, 2, 1, { cache: cl })), `t=${t}`).toBeLessThan(1e-5);
    }
    // the two sublayers' caches hold different keys (latent: one row of kvLora + rope per position)
    const W = m.desc.attention.mla!.kvLoraRank + m.desc.attention.mla!.qkRopeDim;
    const l0 = cl.seqs[0].layers[0];
    expect(maxAbsDiff(l0.k.subarray(0, T * W), l0.second!.k.subarray(0, T * W))).toBeGreaterThan(1e-2);
    expect(cl.seqs[0].bytes()).toBe(2 * m.desc.nLayers * 4 * l0.k.length);
  });

  it('a sub-model mask over the E + Z choices: a masked zero expert leaves the softmax; extraction (zero_expert_num lowered) computes the same', async () => {
    const { extractSubModel } = await import('../src/models/extract.js');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-longcat-x-'));
    try {
      const m = MoeModel.load(ROOTL);
      const E = m.desc.moe.experts; // 8 routed + 2 zero
      expect([E, m.desc.moe.zeroExperts]).toEqual([10, 2]);
      // layer 1 alone; routed experts 1, 2, 5, 7 and zero expert 9 (8 masked); top-2
      const keep = [1, 2, 5, 7, 9];
      extractSubModel(ROOTL, out, { layers: [1], experts: { 1: keep }, topK: 2 });
      const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      expect([cfg.num_layers, cfg.num_hidden_layers, cfg.n_routed_experts, cfg.zero_expert_num, cfg.moe_topk]).toEqual([1, 2, 4, 1, 2]);
      const xm = MoeModel.load(out);
      expect([xm.desc.moe.experts, xm.desc.moe.zeroExperts]).toEqual([5, 1]);
      const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 7 + 3) % m.desc.vocab);
      const mask = Uint8Array.from({ length: E }, (_, e) => (keep.includes(e) ? 1 : 0));
      const seen: number[] = [];
      const masked = m.forward(ids, 1, 12, { sub: { layers: [1], experts: [null, mask] }, trace: { moe: (ev) => { for (const e of ev.experts) seen.push(e); } } });
      expect(maxAbsDiff(xm.forward(ids, 1, 12), masked)).toBeLessThan(1e-5);
      expect(seen.every((e) => keep.includes(e))).toBe(true);
      expect(seen.some((e) => e === 9)).toBe(true); // the kept zero expert is chosen
      // masking zero expert 9 as well changes the routing of the tokens that chose it
      const noZero = m.forward(ids, 1, 12, { sub: { layers: [1], experts: [null, mask.map((v, e) => (e === 9 ? 0 : v))] } });
      expect(maxAbsDiff(noZero, masked)).toBeGreaterThan(1e-4);
      expect(() => extractSubModel(ROOTL, path.join(out, 'z'), { experts: { 0: [8, 9], 1: [8, 9] }, topK: 1 })).toThrow(/keep at least one routed expert/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('granitemoehybrid extraction and config errors', () => {
  it('a sub-model checkpoint (the attention layer dropped, experts kept, top-k) loads as the masked pass over the source', async () => {
    const { extractSubModel } = await import('../src/models/extract.js');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-gmh-x-'));
    try {
      const src = path.join(ROOT, 'granitemoehybrid');
      const m = MoeModel.load(src);
      extractSubModel(src, out, { layers: [0, 2], experts: { 0: [1, 2, 4, 7], 2: [0, 3, 5, 6] }, topK: 1 });
      const x = MoeModel.load(out);
      expect(x.desc.layers.map((l) => l.mixer ?? 'attention')).toEqual(['mamba2', 'mamba2']);
      const keep = (ids: number[]) => Uint8Array.from({ length: 8 }, (_, e) => (ids.includes(e) ? 1 : 0));
      const ids = Int32Array.from({ length: 9 }, (_, i) => (i * 5 + 1) % m.desc.vocab);
      const sub = { layers: [0, 2], experts: [keep([1, 2, 4, 7]), null, keep([0, 3, 5, 6])], topK: 1 };
      expect(maxAbsDiff(x.forward(ids, 1, 9), m.forward(ids, 1, 9, { sub }))).toBeLessThan(1e-5);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it.each([
    [{ layer_types: ['mamba', 'attention'] }, /key 'layer_types' must list 3 of 'full_attention' \/ 'linear_attention'/],
    [{ mamba_n_heads: 5 }, /mamba_n_heads \(5\) must divide mamba_expand × hidden_size \(64\)/],
    [{ mamba_d_head: 8 }, /mamba_d_head × mamba_n_heads \(8 × 4\) must equal mamba_expand × hidden_size \(64\)/],
    [{ mamba_n_groups: 3 }, /mamba_n_groups \(3\) must divide mamba_n_heads \(4\)/],
    [{ time_step_limit: [0, 'lots'] }, /key 'time_step_limit' must list two numbers/],
  ])('a bad Mamba-2 config (%j) is one error naming the key', async (over, re) => {
    const { ConfigReader } = await import('../src/io/config.js');
    const { describeModel } = await import('../src/models/registry.js');
    const cfg = { ...JSON.parse(fs.readFileSync(path.join(ROOT, 'granitemoehybrid', 'config.json'), 'utf8')), ...over };
    expect(() => describeModel(new ConfigReader(cfg, 'config.json'))).toThrow(re);
  });

  it('the legacy layer names (mamba / attention) and position_embedding_type rope are read as transformers reads them', async () => {
    const { ConfigReader } = await import('../src/io/config.js');
    const { describeModel } = await import('../src/models/registry.js');
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'granitemoehybrid', 'config.json'), 'utf8'));
    const legacy = describeModel(new ConfigReader({ ...cfg, layer_types: ['mamba', 'attention', 'mamba'] }, 'config.json')).desc;
    expect(legacy.layers).toEqual(describeModel(new ConfigReader(cfg, 'config.json')).desc.layers);
    expect(legacy.layers[1].noRope).toBe(true);
    expect(describeModel(new ConfigReader({ ...cfg, position_embedding_type: 'rope' }, 'config.json')).desc.layers[1].noRope).toBeUndefined();
  });
});

describe('qwen3_next extraction', () => {
  it('a sub-model checkpoint (a layer dropped, experts kept, top-k) loads as the masked pass over the source', async () => {
    const { extractSubModel } = await import('../src/models/extract.js');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-q3n-x-'));
    try {
      const src = path.join(ROOT, 'qwen3_next');
      const m = MoeModel.load(src);
      // keep the full-attention layer 1 (MoE layer 1) with experts 0, 2, 3 and top-1; drop the DeltaNet layer 0
      extractSubModel(src, out, { layers: [1], experts: { 1: [0, 2, 3] }, topK: 1 });
      const x = MoeModel.load(out);
      expect(x.desc.nLayers).toBe(1);
      expect(x.desc.layers[0].mixer).toBeUndefined();
      const ids = Int32Array.from({ length: 9 }, (_, i) => (i * 5 + 1) % m.desc.vocab);
      const sub = { layers: [1], experts: [Uint8Array.from([1, 1, 1, 1]), Uint8Array.from([1, 0, 1, 1])], topK: [2, 1] };
      expect(maxAbsDiff(x.forward(ids, 1, 9), m.forward(ids, 1, 9, { sub }))).toBeLessThan(1e-5);
      // both layers, three experts each: the DeltaNet layer stays one (layer_types rewritten)
      const out2 = path.join(out, 'both');
      extractSubModel(src, out2, { layers: [0, 1], experts: { 0: [1, 2, 3], 1: [0, 1, 3] }, topK: 1 });
      const y = MoeModel.load(out2);
      expect(y.desc.layers.map((l) => l.mixer ?? 'attention')).toEqual(['deltanet', 'attention']);
      const sub2 = { experts: [Uint8Array.from([0, 1, 1, 1]), Uint8Array.from([1, 1, 0, 1])], topK: 1 };
      expect(maxAbsDiff(y.forward(ids, 1, 9), m.forward(ids, 1, 9, { sub: sub2 }))).toBeLessThan(1e-5);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

// sub-model checkpoints of the families without transformers sub-model references (fixtures/hf-tiny-moe-submodels):
// held to the masked pass over the source (which fixtures.test.ts holds to transformers), per-expert and fused layouts
describe.each(['flex_olmo', 'aria_text'])('%s extraction', (arch) => {
  it('a sub-model checkpoint (a layer dropped, experts kept, top-k) loads as the masked pass over the source', async () => {
    const { extractSubModel } = await import('../src/models/extract.js');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), `moekit-${arch}-x-`));
    try {
      const src = path.join(ROOT, arch);
      const m = MoeModel.load(src);
      const E = m.desc.moe.experts;
      const keep = { 0: [1, 2, 4, 7], 2: [0, 3, 5, 6] };
      extractSubModel(src, out, { layers: [0, 2], experts: keep, topK: 1 });
      const x = MoeModel.load(out);
      expect(x.desc.nLayers).toBe(2);
      expect(x.desc.moe.experts).toBe(4);
      expect(x.desc.moe.topK).toBe(1);
      const mask = (ids: number[]) => Uint8Array.from({ length: E }, (_, e) => (ids.includes(e) ? 1 : 0));
      const sub = { layers: [0, 2], experts: [mask(keep[0]), null, mask(keep[2])], topK: 1 };
      const ids = Int32Array.from({ length: 14 }, (_, i) => (i * 11 + 3) % m.desc.vocab);
      const want = m.forward(ids, 1, 14, { sub });
      expect(maxAbsDiff(x.forward(ids, 1, 14), want)).toBeLessThan(1e-5);
      expect(maxAbsDiff(want, m.forward(ids, 1, 14))).toBeGreaterThan(1e-3);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
