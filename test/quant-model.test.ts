/**
 * Quantised models on the nine fixtures: `dtype: 'q8_0'` keeps f32's greedy tokens for ≥ 90 % of steps
 * (teacher-forced along f32's own greedy continuation, so one early difference does not count for every
 * later step); q4_0 is measured and reported beside it; `moekit quantize` writes a checkpoint that loads
 * to the very weights and logits of quantising at load, in fewer bytes; a quantised weight refuses training.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MoeModel } from '../src/models/model.js';
import { quantizeCheckpoint } from '../src/models/quantize-checkpoint.js';
import { generate } from '../src/runtime/generate.js';
import { Grads } from '../src/tensor/grads.js';
import { quantWeight } from '../src/tensor/weight.js';
import { randomTools, scratchDir } from './helpers.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = fs.readdirSync(ROOT).filter((d) => fs.existsSync(path.join(ROOT, d, 'config.json'))).sort();
const STEPS = 24;
const tmp = scratchDir('moekit-quant-');

/** teacher-forced agreement: at each step of f32's greedy continuation, does `m` pick the same token? */
function agreement(f32: MoeModel, m: MoeModel, prompts: number[][]): { same: number; steps: number; prefix: number } {
  let same = 0, steps = 0, prefix = 0;
  for (const p of prompts) {
    const ref = generate(f32, p, { maxNewTokens: STEPS, greedy: true, stopAtEos: false }).ids;
    const V = f32.desc.vocab, T = ref.length - 1;
    const logits = m.forward(Int32Array.from(ref.slice(0, T)), 1, T);
    let run = true;
    for (let t = p.length - 1; t < T; t++) {
      let best = 0;
      for (let v = 1; v < V; v++) if (logits[t * V + v] > logits[t * V + best]) best = v;
      const ok = best === ref[t + 1];
      same += ok ? 1 : 0; steps++;
      run &&= ok; prefix += run ? 1 : 0;
    }
  }
  return { same, steps, prefix };
}

describe('quantised fixtures: greedy tokens against f32', () => {
  const { int } = randomTools(7);
  const totals = { q8_0: { same: 0, steps: 0, prefix: 0 }, q4_0: { same: 0, steps: 0, prefix: 0 } };
  it.each(ARCHS)('%s', (arch) => {
    const dir = path.join(ROOT, arch);
    const f32 = MoeModel.load(dir, { dtype: 'f32' });
    const prompts = [0, 1, 2, 3].map(() => Array.from({ length: int(3, 12) }, () => int(0, f32.desc.vocab - 1)));
    for (const type of ['q8_0', 'q4_0'] as const) {
      const m = MoeModel.load(dir, { dtype: type });
      expect(m.weights.lmHead.w.dtype).toBe(type === 'q4_0' ? 'q8_0' : type);
      const at = m.weights.layers.find((l) => l.attn)!.attn!;
      expect((at.o ?? at.moa!.q[0]).w.dtype).toBe(type); // (JetMoE: its attention experts' query projections)
      const a = agreement(f32, m, prompts);
      totals[type].same += a.same; totals[type].steps += a.steps; totals[type].prefix += a.prefix;
      process.stdout.write(`${arch} ${type}: ${a.same}/${a.steps} steps agree (free-running prefix ${a.prefix})\n`);
    }
  });
  it('q8_0 agrees on ≥ 90 % of steps over all fixtures (q4_0 reported)', () => {
    for (const [type, t] of Object.entries(totals)) {
      process.stdout.write(`ALL ${type}: ${t.same}/${t.steps} = ${(100 * t.same / t.steps).toFixed(1)} % of steps; ` +
        `free-running identical prefix ${(100 * t.prefix / t.steps).toFixed(1)} %\n`);
    }
    expect(totals.q8_0.steps).toBe(ARCHS.length * 4 * STEPS);
    expect(totals.q8_0.same / totals.q8_0.steps).toBeGreaterThanOrEqual(0.9);
  });
});

describe('moekit quantize', () => {
  it.each(['qwen3_moe', 'gpt_oss', 'deepseek_v3', 'granitemoe'])('%s: the written checkpoint loads to the logits of quantising at load, smaller', (arch) => {
    const dir = path.join(ROOT, arch);
    for (const type of ['q8_0', 'q4_0'] as const) {
      const out = path.join(tmp(), `${arch}-${type}`);
      const r = quantizeCheckpoint(dir, out, type);
      expect(r.quantized).toBeGreaterThan(0);
      const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      expect(cfg.quantization_config).toMatchObject({ quant_method: 'moekit', format: 'ggml-blocks', experts: type });
      const atLoad = MoeModel.load(dir, { dtype: type });
      const stored = MoeModel.load(out, { dtype: type }); // what the file stores is kept; the rest quantised as at load
      const ids = Int32Array.from([5, 77, 300, 2, 9, 140]);
      expect(Buffer.from(stored.forward(ids, 1, 6).buffer).equals(Buffer.from(atLoad.forward(ids, 1, 6).buffer))).toBe(true);
      const plain = MoeModel.load(out); // 'auto': stored blocks stay blocks
      expect(plain.weights.layers.find((l) => l.attn)!.attn!.o!.w.dtype).toBe(type);
      const size = (d: string) => fs.statSync(path.join(d, 'model.safetensors')).size;
      // gpt-oss's fused (in, out) experts are stored as they are (quantised at load only)
      expect(size(out)).toBeLessThan(size(dir) * (arch === 'gpt_oss' ? 0.9 : type === 'q8_0' ? 0.6 : 0.5));
    }
  });

  it('refuses --out equal to the model directory, and a U8 matrix of the wrong width names the tensor', () => {
    const dir = path.join(ROOT, 'olmoe');
    expect(() => quantizeCheckpoint(dir, dir, 'q8_0')).toThrow(/--out must differ/);
  });

  it('a quantised weight has no gradient buffer: training names the dtype', () => {
    expect(() => new Grads().of(quantWeight('q8_0', new Uint8Array(34)))).toThrow(/q8_0 weight has no gradient here/);
  });
});
