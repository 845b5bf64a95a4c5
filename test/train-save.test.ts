/**
 * A trained model's parameters under transformers 5's names (fused gpt-oss experts back to the checkpoint's tensors)
 * and saving it: f32 bit for bit through the engine and the trainer; bf16 every trained tensor rounded to nearest
 * even, bit for bit (an arithmetic reference, test/helpers.ts bf16Round).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { MoeModel } from '../src/models/model.js';
import { AdamW } from '../src/train/adamw.js';
import { TrainableModel } from '../src/train/model.js';
import { loadTransformers5, toCheckpoint, toTransformers5 } from '../src/train/names.js';
import { bf16Round, bf16Value, maxAbsDiff } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');

describe('transformers 5 names', () => {
  it('loadTransformers5 inverts toTransformers5 (fused experts sliced back apart; gpt-oss de-interleaved)', () => {
    for (const arch of ['mixtral', 'qwen3_moe', 'granitemoe', 'gpt_oss']) {
      const tm = TrainableModel.load(path.join(FIX, arch));
      const before = new Map([...tm.params].map(([k, v]) => [k, Float32Array.from(v)]));
      const fused = toTransformers5(before);
      for (const p of tm.params.values()) p.fill(0);
      loadTransformers5(tm.params, (n) => fused.get(n));
      for (const [k, v] of before) expect(tm.params.get(k), k).toEqual(v);
      expect(() => loadTransformers5(tm.params, () => undefined)).toThrow(/missing/);
    }
    // gpt-oss: the fused tensors are the checkpoint's own, bit for bit
    const tm = TrainableModel.load(path.join(FIX, 'gpt_oss'));
    const ck = Checkpoint.open(path.join(FIX, 'gpt_oss'));
    const fused = toTransformers5(tm.params);
    for (const n of ['model.layers.0.mlp.experts.gate_up_proj', 'model.layers.0.mlp.experts.gate_up_proj_bias', 'model.layers.1.mlp.experts.down_proj', 'model.layers.1.mlp.experts.down_proj_bias']) {
      expect(fused.get(n), n).toEqual(ck.readF32(n));
    }
    ck.close();
  });

  it('Aria: the per-expert copies go back into fc1 [E, H, 2I] and fc2 [E, I, H], the checkpoint\'s own bit for bit', () => {
    const dir = path.join(FIX, 'aria_text');
    const tm = TrainableModel.load(dir);
    const ck = Checkpoint.open(dir);
    expect(tm.params.has('model.layers.0.mlp.experts.fc1.weight')).toBe(false); // the copies are the parameters
    expect(tm.params.has('model.layers.0.mlp.experts.3.gate_proj.weight')).toBe(true);
    const back = toCheckpoint(tm.params, (n) => ck.has(n));
    for (let l = 0; l < 3; l++) {
      for (const n of [`model.layers.${l}.mlp.experts.fc1.weight`, `model.layers.${l}.mlp.experts.fc2.weight`]) expect(back.get(n), n).toEqual(ck.readF32(n));
    }
    expect([...back.keys()].filter((n) => /experts\.\d+\./.test(n))).toEqual([]);
    ck.close();
  });
});

describe('saving a trained model', () => {
  it.each(['mixtral', 'qwen2_moe', 'deepseek_v3', 'granitemoe', 'gpt_oss', 'aria_text'])('%s: two AdamW steps, save, reload: the same logits', (arch) => {
    const dir = path.join(FIX, arch);
    const ref = SafetensorsFile.open(path.join(FIX, arch, 'reference.safetensors'));
    const ids = ref.readI32('input_ids');
    const [B, T] = ref.info('input_ids').shape;
    const tm = TrainableModel.load(dir);
    const opt = new AdamW(tm.params, { lr: 1e-2, weightDecay: 0 });
    for (let s = 0; s < 2; s++) opt.step(tm.forwardBackward(ids, B, T).grads);
    const trained = tm.model.forward(ids, B, T);
    const out = mkdtempSync(path.join(tmpdir(), `moekit-saved-${arch}-`));
    const files = tm.save(out);
    expect(files.some((f) => f.endsWith('config.json'))).toBe(true);
    // f32: bit for bit, through the engine and through the trainer
    expect(maxAbsDiff(MoeModel.load(out).forward(ids, B, T), trained)).toBe(0);
    expect(Math.abs(TrainableModel.load(out).loss(ids, B, T) - tm.loss(ids, B, T))).toBe(0);
    // the saved checkpoint has the source's tensors, names and shapes; buffers unchanged
    const a = Checkpoint.open(dir), b = Checkpoint.open(out);
    expect(b.names().sort()).toEqual(a.names().sort());
    for (const n of a.names()) expect(b.info(n).shape, n).toEqual(a.info(n).shape);
    for (const n of a.names().filter((x) => x.endsWith('e_score_correction_bias'))) expect(b.readF32(n)).toEqual(a.readF32(n));
    a.close(); b.close();
    // bf16: within bf16 rounding of the weights
    const out16 = mkdtempSync(path.join(tmpdir(), `moekit-saved16-${arch}-`));
    tm.save(out16, { dtype: 'BF16' });
    expect(maxAbsDiff(MoeModel.load(out16).forward(ids, B, T), trained)).toBeLessThan(5e-2);
    // every trained tensor is the f32 save's values rounded to nearest even, bit for bit
    const f32 = SafetensorsFile.open(path.join(out, 'model.safetensors')), b16 = Checkpoint.open(out16);
    let compared = 0;
    for (const n of b16.names().filter((x) => b16.info(x).dtype === 'BF16')) {
      const want = f32.readF32(n), got = new Uint16Array(new Uint8Array(b16.readRaw(n)).buffer);
      expect(got.length, n).toBe(want.length);
      for (let i = 0; i < want.length; i++) if (bf16Value(got[i]) !== bf16Round(want[i])) expect(bf16Value(got[i]), `${n}[${i}] from ${want[i]}`).toBe(bf16Round(want[i]));
      compared++;
    }
    // every tensor of these f32 fixtures is trained except the selection-bias buffers
    expect(compared).toBe(b16.names().filter((x) => !x.endsWith('e_score_correction_bias')).length);
    f32.close(); b16.close();
  });
});
