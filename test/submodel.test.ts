/**
 * SubModel on every architecture: a pass over the full fixture with a layer dropped, experts masked
 * and top-k changed gives the logits (and greedy ids) that the reference implementation computes for
 * the same sub-model written as a standalone checkpoint (fixtures/hf-tiny-moe-submodels, made by
 * scripts/make_submodel_refs.py on the device machine); the gradients of the masked training pass equal
 * central finite differences; skipped layers and masked experts get no gradient; bad sub-models are
 * refused with clear errors.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { MoeModel } from '../src/models/model.js';
import type { SubModel } from '../src/models/pass.js';
import { generate } from '../src/runtime/generate.js';
import { TrainableModel } from '../src/train/model.js';
import { maxAbsDiff } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const SUB = path.resolve(__dirname, '../fixtures/hf-tiny-moe-submodels');
const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v3', 'deepseek_v2', 'ernie4_5_moe', 'gpt_oss', 'granitemoe',
  'glm4_moe', 'dots1', 'hunyuan_v1_moe', 'granitemoeshared', 'phimoe', 'llama4_text'];

/** the sub-model a reference file describes */
function subOf(ref: SafetensorsFile): SubModel {
  const allowed = ref.readI32('allowed'); // [nMoE, E]
  const [nMoe, E] = ref.info('allowed').shape;
  const topK = Array.from(ref.readI32('top_k'));
  return {
    layers: Array.from(ref.readI32('layers')),
    experts: Array.from({ length: nMoe }, (_, m) => Uint8Array.from(allowed.subarray(m * E, (m + 1) * E))),
    topK,
  };
}

describe.each(ARCHS.flatMap((a) => [[a, 'native'], [a, 'reference']] as const))('%s sub-model = the standalone checkpoint (%s kernels)', (arch, kernels) => {
  const prev = process.env.MOEKIT_KERNELS;
  beforeAll(() => { process.env.MOEKIT_KERNELS = kernels; });
  afterAll(() => { if (prev === undefined) delete process.env.MOEKIT_KERNELS; else process.env.MOEKIT_KERNELS = prev; });
  const ref = SafetensorsFile.open(path.join(SUB, `${arch}.safetensors`));
  const sub = subOf(ref);
  const model = MoeModel.load(path.join(FIX, arch));

  it('logits within 1e-4 of the reference sub-model', () => {
    const ids = ref.readI32('input_ids');
    const [B, T] = ref.info('input_ids').shape;
    const got = model.forward(ids, B, T, { sub });
    const d = maxAbsDiff(got, ref.readF32('logits'));
    expect(d).toBeLessThanOrEqual(1e-4);
    // and it is a different model from the full one
    expect(maxAbsDiff(model.forward(ids, B, T), ref.readF32('logits'))).toBeGreaterThan(1e-2);
  });

  it('greedy generation with the KV cache gives the reference ids', () => {
    const want = Array.from(ref.readI32('generated_ids'));
    const prompt = want.slice(0, 8);
    const out = generate(model, prompt, { maxNewTokens: want.length - 8, greedy: true, stopAtEos: false, sub });
    expect(out.ids).toEqual(want);
  });

  it('the routing respects the mask and the top-k in every kept MoE layer; skipped layers leave the residual unchanged', () => {
    const ids = ref.readI32('input_ids');
    const [B, T] = ref.info('input_ids').shape;
    const seen: number[] = [];
    const hidden = new Map<number, Float32Array>();
    model.forward(ids, B, T, {
      sub,
      trace: {
        moe: (ev) => {
          seen.push(ev.layer);
          const a = sub.experts![ev.moeLayer]!;
          expect(ev.K).toBe((sub.topK as number[])[ev.moeLayer]);
          for (const e of ev.experts) expect(a[e]).toBe(1);
          for (let e = 0; e < ev.E; e++) if (!a[e]) expect(ev.counts[e]).toBe(0);
        },
        hidden: (i, x) => hidden.set(i, x.slice()),
      },
    });
    expect(seen).toEqual(sub.layers!.filter((l) => model.desc.layers[l].mlp === 'moe'));
    for (let l = 0; l < model.desc.nLayers - 1; l++) if (!sub.layers!.includes(l)) expect(hidden.get(l + 1)).toEqual(hidden.get(l));
  });
});

describe.each(['mixtral', 'deepseek_v3', 'gpt_oss', 'qwen2_moe', 'granitemoe'])('%s: gradients of the masked training pass', (arch) => {
  const ref = SafetensorsFile.open(path.join(SUB, `${arch}.safetensors`));
  const sub = subOf(ref);
  const ids = ref.readI32('input_ids');
  const [B, T] = ref.info('input_ids').shape;

  it('the training loss of the sub-model is the cross-entropy of the reference sub-model logits', () => {
    const tm = TrainableModel.load(path.join(FIX, arch));
    const logits = ref.readF32('logits'), V = tm.model.desc.vocab;
    let sum = 0;
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) {
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      const mx = Math.max(...row);
      let z = 0;
      for (const v of row) z += Math.exp(v - mx);
      sum += Math.log(z) + mx - row[ids[b * T + t + 1]];
    }
    expect(Math.abs(tm.loss(ids, B, T, sub) - sum / (B * (T - 1)))).toBeLessThanOrEqual(1e-5);
  });

  it('equal central finite differences on parameters of kept layers and allowed experts; zero on skipped ones', () => {
    const tm = TrainableModel.load(path.join(FIX, arch));
    const { grads } = tm.forwardBackward(ids, B, T, sub);
    const routing = () => {
      const fw = tm.forward(ids, B, T, sub);
      return { loss: fw.loss, sig: fw.tape.layers.map((l) => (l?.moe ? l.moe.r.experts.join() : '')).join('|') };
    };
    const base = routing();
    const names = [...tm.params.keys()];
    const kept = sub.layers!;
    const moeLayers = tm.model.desc.layers.map((l, i) => (l.mlp === 'moe' ? i : -1)).filter((i) => i >= 0);
    const keptMoe = kept.find((l) => tm.model.desc.layers[l].mlp === 'moe')!;
    const m = moeLayers.indexOf(keptMoe);
    const allowedE = sub.experts![m]!.findIndex((v) => v === 1);
    const maskedE = sub.experts![m]!.findIndex((v) => v === 0);
    const pick = (re: RegExp) => names.find((n) => re.test(n));
    const probes = [
      pick(new RegExp(`^model\\.layers\\.${keptMoe}\\.self_attn\\.(q_proj|q_b_proj|q_a_proj)\\.weight$`)),
      pick(new RegExp(`^model\\.layers\\.${keptMoe}\\.(mlp\\.gate|mlp\\.router|block_sparse_moe\\.gate|block_sparse_moe\\.router\\.layer)\\.weight$`)),
      pick(new RegExp(`^model\\.layers\\.${keptMoe}\\..*experts\\.${allowedE}\\.(w1|gate_proj)\\.weight$`)) ?? pick(new RegExp(`^model\\.layers\\.${keptMoe}\\..*(input_linear|experts\\.${allowedE}\\.gate_proj)\\.weight$`)),
      pick(/^model\.norm\.weight$/),
    ].filter((n): n is string => n !== undefined);
    expect(probes.length).toBeGreaterThanOrEqual(3);
    let checked = 0;
    for (const name of probes) {
      const p = tm.params.get(name)!, g = grads.get(name)!;
      // the entries with the largest gradients (a clear signal above f32 noise)
      const order = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
      for (const i of order) {
        const h = 1e-2 * Math.max(1, Math.abs(p[i]));
        const x0 = p[i];
        p[i] = x0 + h; const a = routing();
        p[i] = x0 - h; const b = routing();
        p[i] = x0;
        if (a.sig !== base.sig || b.sig !== base.sig) continue; // the selection moved: top-k has no gradient there
        const num = (a.loss - b.loss) / (2 * h);
        expect(Math.abs(num - g[i]), `${name}[${i}]: fd ${num}, backward ${g[i]}`).toBeLessThanOrEqual(2e-3 * Math.max(1, Math.abs(g[i])) + 5e-4);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(6);
    // skipped layers and masked experts: exactly zero gradient
    const dropped = [...Array(tm.model.desc.nLayers).keys()].filter((l) => !kept.includes(l));
    for (const n of names) {
      if (dropped.some((l) => n.startsWith(`model.layers.${l}.`))) expect(grads.get(n)!.every((v) => v === 0), n).toBe(true);
      if (maskedE >= 0 && new RegExp(`^model\\.layers\\.${keptMoe}\\..*experts\\.${maskedE}\\.`).test(n)) expect(grads.get(n)!.every((v) => v === 0), n).toBe(true);
    }
  });
});

describe('bad sub-models', () => {
  const model = MoeModel.load(path.join(FIX, 'mixtral'));
  const ids = Int32Array.from([1, 2, 3, 4]);
  it.each([
    [{ layers: [0, 5] }, /layer 5 is outside \[0, 3\)/],
    [{ topK: 9 }, /top-k 9 of MoE layer 0 must be an integer in \[1, 8\]/],
    [{ topK: 0 }, /top-k 0/],
    [{ experts: [Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0])], topK: 2 }, /top-k 2 of MoE layer 0 must be an integer in \[1, 1\]/],
    [{ experts: [new Uint8Array(3)] }, /mask of MoE layer 0 has 3 entries, expected 8/],
    [{ experts: [null, null, null, null] }, /lists 4 MoE layers, the model has 3/],
  ] as [SubModel, RegExp][])('%j → %s', (sub, re) => {
    expect(() => model.forward(ids, 1, 4, { sub })).toThrow(re);
  });
});
