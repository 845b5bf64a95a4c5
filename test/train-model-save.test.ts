/**
 * TrainableModel.save (src/train/model.ts) on two fixtures in a few seconds: DeepSeek-V3's (selection-bias buffers)
 * and gpt-oss's (per-expert copies fused back into its interleaved tensors). The saved tensors against the trainer's
 * parameters by name (f32 bit for bit; bf16 rounded to nearest even, test/helpers.ts bf16Round), the buffers' current
 * values, untrained tensors as stored, the side files, shards, another source checkpoint, and the refusals.
 * train-save.test.ts runs five architectures through the engine as well.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { TrainableModel } from '../src/train/model.js';
import { toCheckpoint } from '../src/train/names.js';
import { bf16Round, scratchDir } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const tmp = scratchDir('moekit-model-save-');

/** the same f32 values, bit for bit (a byte comparison: toEqual is slow over a million elements) */
const same = (x: Float32Array, y: Float32Array) => x.length === y.length && Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
/** the floats bfloat16 bit patterns hold (their bits are the top half of a float32's) */
function bf16Values(raw: Uint8Array): Float32Array {
  const h = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2), w = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) w[i] = h[i] << 16;
  return new Float32Array(w.buffer);
}

/** a model whose every parameter and buffer moved away from the checkpoint (as training would) */
function moved(arch: string): TrainableModel {
  const tm = TrainableModel.load(path.join(FIX, arch));
  for (const p of [...tm.params.values(), ...tm.buffers.values()]) for (let i = 0; i < p.length; i++) p[i] = p[i] * 0.75 + 0.001 * ((i % 7) - 3);
  return tm;
}

describe('saving a trained model', () => {
  it.each(['deepseek_v3', 'gpt_oss'])('%s: the parameters (f32 bit for bit, bf16 rounded to nearest even) and buffers, under the checkpoint\'s names', (arch) => {
    const tm = moved(arch);
    const src = Checkpoint.open(path.join(FIX, arch));
    const want = toCheckpoint(tm.params);
    const out = path.join(tmp(), `${arch}-f32`), out16 = path.join(tmp(), `${arch}-bf16`);
    const files = tm.save(out);
    expect(files.map((f) => path.basename(f)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).toBe(fs.readFileSync(path.join(FIX, arch, 'config.json'), 'utf8'));
    tm.save(out16, { dtype: 'BF16' });
    const a = Checkpoint.open(out), b = Checkpoint.open(out16);
    expect(a.names().sort()).toEqual(src.names().sort());
    expect(b.names().sort()).toEqual(src.names().sort());
    let trained = 0, buffers = 0;
    for (const n of src.names()) {
      expect(a.info(n).shape, n).toEqual(src.info(n).shape);
      const buf = tm.buffers.get(n), t = want.get(n);
      if (buf) {
        buffers++;
        expect(a.info(n).dtype).toBe(src.info(n).dtype === 'BF16' ? 'BF16' : 'F32');
        expect(same(a.readF32(n), buf), n).toBe(true);
        expect(same(b.readF32(n), buf), n).toBe(true); // a buffer keeps its own dtype in a bf16 save
      } else if (t) {
        trained++;
        expect(a.info(n).dtype, n).toBe('F32');
        expect(same(a.readF32(n), t), n).toBe(true);
        expect(b.info(n).dtype, n).toBe('BF16');
        const got = bf16Values(new Uint8Array(b.readRaw(n)));
        let bad = 0;
        for (let i = 0; i < t.length; i++) if (got[i] !== bf16Round(t[i])) bad++;
        expect(bad, n).toBe(0);
      } else {
        expect(Buffer.from(a.readRaw(n)).equals(Buffer.from(src.readRaw(n))), `${n} as stored`).toBe(true);
        expect(a.info(n).dtype).toBe(src.info(n).dtype);
      }
    }
    expect(trained).toBe(want.size);
    expect(buffers).toBe(tm.buffers.size);
    if (arch === 'deepseek_v3') expect(buffers).toBeGreaterThan(0);
    // and the trainer loads what it saved
    const back = TrainableModel.load(out);
    for (const [n, p] of tm.params) expect(same(back.params.get(n)!, p), n).toBe(true);
    a.close(); b.close(); src.close();
  });

  it('in shards of at most maxShardBytes, from another source checkpoint with the same tensors', () => {
    const tm = moved('deepseek_v3');
    const copy = path.join(tmp(), 'source-copy');
    fs.cpSync(path.join(FIX, 'deepseek_v3'), copy, { recursive: true });
    fs.writeFileSync(path.join(copy, 'tokenizer.json'), '{"model": {}}');
    const out = path.join(tmp(), 'sharded');
    const files = tm.save(out, { maxShardBytes: 200_000, source: copy });
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(1);
    for (const f of shards) expect(fs.statSync(f).size).toBeLessThan(200_000 + 100_000);
    expect(files.map((f) => path.basename(f))).toContain('tokenizer.json');
    const ck = Checkpoint.open(out);
    for (const [n, t] of toCheckpoint(tm.params)) expect(same(ck.readF32(n), t), n).toBe(true);
    ck.close();
  });

  it('refuses a source whose tensor has another size, or that lacks a trained tensor, naming it', () => {
    const tm = TrainableModel.load(path.join(FIX, 'deepseek_v3'));
    const other = TrainableModel.load(path.join(FIX, 'qwen3_moe'));
    // a source with fewer tensors than the trainer holds
    const n = [...tm.params.keys()].find((k) => !other.params.has(k))!;
    expect(n).toBeDefined();
    const bigger = new TrainableModel(other.model, new Map([...other.params, [n, tm.params.get(n)!]]), other.buffers, other.copies);
    expect(() => bigger.save(path.join(tmp(), 'bad2'))).toThrow(new RegExp(`^${n.replace(/\./g, '\\.')}: a trained tensor the checkpoint does not have$`));
    // a tensor of another size
    const name = 'model.norm.weight';
    const odd = new TrainableModel(other.model, new Map([...other.params, [name, new Float32Array(other.params.get(name)!.length + 1)]]), other.buffers, other.copies);
    expect(() => odd.save(path.join(tmp(), 'bad3'))).toThrow(new RegExp(`^model\\.norm\\.weight: the trainer holds ${other.params.get(name)!.length + 1} values, the checkpoint ${other.params.get(name)!.length}$`));
  });
});
