/**
 * Golden tests: every tiny fixture checkpoint against what the reference implementation
 * (transformers, float32, eager) computed: logits, router logits, chosen experts, hidden
 * states and greedy ids.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { MoeModel } from '../src/models/model.js';
import type { RouterEvent } from '../src/moe/layer.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v3', 'ernie4_5_moe', 'gpt_oss', 'granitemoe'];

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** indices of the k largest of row (desc) */
function topk(row: Float32Array, k: number): number[] {
  return Array.from(row.keys()).sort((i, j) => row[j] - row[i] || i - j).slice(0, k);
}

describe.each(ARCHS)('%s matches the reference implementation', (arch) => {
  const dir = path.join(ROOT, arch);
  const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
  const ids = ref.readI32('input_ids'); // [2, 24]
  const [B, T] = ref.info('input_ids').shape;
  const model = MoeModel.load(dir);
  const routers: RouterEvent[] = [];
  const hidden = new Map<number, Float32Array>();
  const logits = model.forward(ids, B, T, undefined, {
    trace: {
      router: (ev) => routers.push({ ...ev, logits: ev.logits.slice(), experts: ev.experts.slice() }),
      hidden: (i, x) => hidden.set(i, x.slice()),
    },
  });

  it('logits within 1e-4', () => {
    expect(maxAbsDiff(logits, ref.readF32('logits'))).toBeLessThanOrEqual(1e-4);
  });

  it('hidden states after every layer within 1e-4', () => {
    const names = ref.names().filter((n) => n.startsWith('hidden_states.'));
    expect(names.length).toBe(model.desc.nLayers + 1);
    for (const n of names) {
      const i = Number(n.split('.')[1]);
      expect(maxAbsDiff(hidden.get(i)!, ref.readF32(n)), n).toBeLessThanOrEqual(1e-4);
    }
  });

  it('router logits within 1e-4 and the same experts chosen for every token', () => {
    const names = ref.names().filter((n) => n.startsWith('router_logits.'));
    const moeLayers = model.desc.layers.filter((l) => l.mlp === 'moe').length;
    expect(routers.length).toBe(moeLayers);
    for (const n of names) {
      const L = Number(n.split('.')[1]);
      const r = ref.readF32(n); // [B·T, E]
      const ev = routers[L];
      expect(ev.moeLayer).toBe(L);
      expect(maxAbsDiff(ev.logits, r), n).toBeLessThanOrEqual(1e-4);
      if (model.desc.moe.router === 'softmax_topk' || model.desc.moe.router === 'topk_softmax') {
        // without a selection bias the chosen experts are the top-k of the reference logits
        for (let t = 0; t < ev.N; t++) {
          const want = topk(r.subarray(t * ev.E, (t + 1) * ev.E), ev.K).sort();
          const got = Array.from(ev.experts.subarray(t * ev.K, (t + 1) * ev.K)).sort();
          expect(got, `${n} token ${t}`).toEqual(want);
        }
      }
    }
  });

  it('greedy generation gives identical ids', async () => {
    const { generate } = await import('../src/runtime/generate.js');
    const want = Array.from(ref.readI32('generated_ids'));
    const prompt = Array.from(ids.subarray(0, 8));
    const out = generate(model, prompt, { maxNewTokens: want.length - prompt.length, greedy: true, stopAtEos: false });
    expect(out.ids).toEqual(want);
  });
});
