/**
 * The expert store: every architecture reads one routed expert by itself (its own tensors, or its rows of
 * fused ones, dequantised alone), and the eager store is built from those reads.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { readConfig } from '../src/io/config.js';
import { dequantMxfp4 } from '../src/io/quant.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import type { ModelDesc } from '../src/models/desc.js';
import { EagerExperts } from '../src/models/expert-store.js';
import { deinterleaveExpert } from '../src/models/gpt_oss.js';
import { MoeModel } from '../src/models/model.js';
import { archFor } from '../src/models/registry.js';
import { checkpointSource, fp8BlockSize } from '../src/models/source.js';
import type { Ffn, Rows, TensorSource } from '../src/models/weights.js';
import { weightF32 } from '../src/tensor/weight.js';
import { getKernels } from '../src/tensor/index.js';
import { scratchDir } from './helpers.js';
import { writeDeepseekFp8, writeGptOssMxfp4 } from './quant-checkpoints.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v3', 'deepseek_v2', 'ernie4_5_moe', 'gpt_oss', 'granitemoe'];
const FUSED = new Set(['gpt_oss', 'granitemoe']);
const tmp = scratchDir('moekit-experts-');

/** a checkpoint's description, arch and (checked, bf16-keeping) source; close() when done */
function open(dir: string) {
  const cfg = readConfig(dir);
  const arch = archFor(cfg);
  const d = arch.describe(cfg);
  const ck = Checkpoint.open(dir);
  return { arch, d, ck, src: checkpointSource(ck, fp8BlockSize(cfg), true), close: () => ck.close() };
}

/** a source that records every read (name and rows) and passes it on */
function recording(inner: TensorSource) {
  const reads: { name: string; rows?: Rows }[] = [];
  const src: TensorSource = {
    has: (n) => inner.has(n),
    get: (n, s, rows) => { reads.push({ name: n, rows }); return inner.get(n, s, rows); },
    getMatrix: (n, s, rows) => { reads.push({ name: n, rows }); return inner.getMatrix(n, s, rows); },
    getU8: (n, s, rows) => { reads.push({ name: n, rows }); return inner.getU8(n, s, rows); },
  };
  return { src, reads };
}

const moeLayers = (d: ModelDesc) => d.layers.flatMap((x, l) => (x.mlp === 'moe' ? [l] : []));
const f32 = (w: Ffn['gate']['w']) => Array.from(weightF32(getKernels(), w));

describe('row reads', () => {
  it('a tensor\'s rows [r0, r1) along dim 0 are its bytes there, read by themselves', () => {
    const f = SafetensorsFile.open(path.join(ROOT, 'granitemoe', 'model.safetensors'));
    const name = 'model.layers.1.block_sparse_moe.input_linear.weight'; // [8, 192, 64]
    const whole = f.readF32(name), row = 192 * 64;
    for (const [r0, r1] of [[0, 1], [3, 5], [7, 8], [2, 2]]) {
      expect(Array.from(f.readF32Rows(name, r0, r1))).toEqual(Array.from(whole.subarray(r0 * row, r1 * row)));
      expect(f.readRawRows(name, r0, r1).byteLength).toBe((r1 - r0) * row * 4);
    }
    expect(() => f.readF32Rows(name, 7, 9)).toThrow(RangeError);
    expect(() => f.readF32Rows(name, 3, 2)).toThrow(RangeError);
    f.close();
  });
});

describe.each(ARCHS)('%s: one expert by itself', (arch) => {
  it('reads only expert e\'s tensors (fused: its rows [e, e + 1)) and gives the eager store\'s expert', () => {
    const m = open(path.join(ROOT, arch));
    const eager = MoeModel.load(path.join(ROOT, arch));
    for (const l of moeLayers(m.d)) {
      for (const e of [0, 5]) {
        const { src, reads } = recording(m.src);
        const f = m.arch.expert(src, m.d, l, e);
        if (FUSED.has(arch)) {
          expect(m.arch.expertTensors(m.d, l, e)).toEqual([]);
          for (const r of reads) expect(r.rows, r.name).toEqual([e, e + 1]);
        } else {
          expect(reads.map((r) => r.name).sort()).toEqual(m.arch.expertTensors(m.d, l, e).sort());
          for (const r of reads) expect(r.name).toContain(`.experts.${e}.`);
        }
        const g = eager.weights.layers[l].moe!.experts.get(e);
        for (const p of ['gate', 'up', 'down'] as const) {
          expect(f32(f[p].w), p).toEqual(f32(g[p].w));
          expect(f[p].b && Array.from(f[p].b!)).toEqual(g[p].b && Array.from(g[p].b!));
        }
      }
    }
    m.close();
  });
});

describe('fused experts sliced by themselves equal the slices of the whole tensors', () => {
  it('granitemoe: input_linear [E, 2I, H] gate rows then up rows, output_linear [E, H, I]', () => {
    const m = open(path.join(ROOT, 'granitemoe'));
    const { experts: E, expertFfn: I } = m.d.moe, H = m.d.hidden;
    const x = 'model.layers.2.block_sparse_moe';
    const inp = m.ck.readF32(`${x}.input_linear.weight`), out = m.ck.readF32(`${x}.output_linear.weight`);
    for (let e = 0; e < E; e++) {
      const f = m.arch.expert(m.src, m.d, 2, e);
      expect(f32(f.gate.w)).toEqual(Array.from(inp.subarray(e * 2 * I * H, e * 2 * I * H + I * H)));
      expect(f32(f.up.w)).toEqual(Array.from(inp.subarray(e * 2 * I * H + I * H, (e + 1) * 2 * I * H)));
      expect(f32(f.down.w)).toEqual(Array.from(out.subarray(e * H * I, (e + 1) * H * I)));
    }
    m.close();
  });

  it('gpt_oss: gate_up_proj [E, H, 2I] de-interleaved, with its biases', () => {
    const m = open(path.join(ROOT, 'gpt_oss'));
    const { experts: E, expertFfn: I } = m.d.moe, H = m.d.hidden;
    const x = 'model.layers.1.mlp.experts';
    const [gu, gub, dn, dnb] = ['gate_up_proj', 'gate_up_proj_bias', 'down_proj', 'down_proj_bias'].map((n) => m.ck.readF32(`${x}.${n}`));
    for (let e = 0; e < E; e++) {
      const f = m.arch.expert(m.src, m.d, 1, e), t = deinterleaveExpert(gu, gub, dn, dnb, e, H, I);
      expect(f32(f.gate.w)).toEqual(Array.from(t.gate));
      expect(f32(f.up.w)).toEqual(Array.from(t.up));
      expect(f32(f.down.w)).toEqual(Array.from(t.down));
      expect(Array.from(f.gate.b!)).toEqual(Array.from(t.gateBias));
      expect(Array.from(f.down.b!)).toEqual(Array.from(t.downBias));
    }
    m.close();
  });
});

describe('quantised experts dequantised one at a time equal the whole-tensor dequantisation', () => {
  it('MXFP4 (gpt-oss): expert e\'s blocks and scales rows, dequantised alone', () => {
    const dirs = writeGptOssMxfp4(path.join(ROOT, 'gpt_oss'), path.join(tmp(), 'mxfp4'));
    const q = open(dirs.mxfp4), f = open(dirs.f32);
    const { experts: E, expertFfn: I } = q.d.moe, H = q.d.hidden;
    for (const l of moeLayers(q.d)) {
      const x = `model.layers.${l}.mlp.experts`;
      // the whole tensor dequantised at once: W [E, 2I, H] with gate and up rows interleaved, [E, H, I]
      const gu = dequantMxfp4(q.src.getU8(`${x}.gate_up_proj_blocks`, [E, 2 * I, H / 32, 16]), q.src.getU8(`${x}.gate_up_proj_scales`, [E, 2 * I, H / 32]), E * 2 * I, H / 32);
      const dn = dequantMxfp4(q.src.getU8(`${x}.down_proj_blocks`, [E, H, I / 32, 16]), q.src.getU8(`${x}.down_proj_scales`, [E, H, I / 32]), E * H, I / 32);
      for (let e = 0; e < E; e++) {
        const { src, reads } = recording(q.src);
        const a = q.arch.expert(src, q.d, l, e);
        for (const r of reads) expect(r.rows, r.name).toEqual([e, e + 1]);
        const gate = f32(a.gate.w), up = f32(a.up.w);
        for (let i = 0; i < I; i++) {
          expect(gate.slice(i * H, (i + 1) * H)).toEqual(Array.from(gu.subarray((e * 2 * I + 2 * i) * H, (e * 2 * I + 2 * i + 1) * H)));
          expect(up.slice(i * H, (i + 1) * H)).toEqual(Array.from(gu.subarray((e * 2 * I + 2 * i + 1) * H, (e * 2 * I + 2 * i + 2) * H)));
        }
        expect(f32(a.down.w)).toEqual(Array.from(dn.subarray(e * H * I, (e + 1) * H * I)));
        // and the f32 checkpoint of the same values, read the fused way, gives the same expert
        const b = f.arch.expert(f.src, f.d, l, e);
        for (const p of ['gate', 'up', 'down'] as const) expect(f32(a[p].w), p).toEqual(f32(b[p].w));
      }
    }
    q.close(); f.close();
  });

  it('FP8 block-scaled: rows of a weight (any range, block-aligned or not) equal those of the whole dequantised', () => {
    const dirs = writeDeepseekFp8(path.join(ROOT, 'deepseek_v3'), path.join(tmp(), 'fp8'), 16, 16);
    const q = open(dirs.fp8), f = open(dirs.f32);
    const name = 'model.layers.1.mlp.experts.3.down_proj.weight', shape = [64, 48]; // [H, I]
    expect(q.ck.info(name).dtype).toBe('F8_E4M3');
    const whole = q.src.get(name, shape);
    expect(Array.from(whole)).toEqual(Array.from(f.src.get(name, shape)));
    for (const [r0, r1] of [[0, 16], [16, 48], [3, 21], [17, 18], [40, 64]] as const) {
      expect(Array.from(q.src.get(name, shape, [r0, r1])), `rows ${r0}..${r1}`).toEqual(Array.from(whole.subarray(r0 * 48, r1 * 48)));
    }
    for (const l of moeLayers(q.d)) {
      for (let e = 0; e < q.d.moe.experts; e++) {
        const a = q.arch.expert(q.src, q.d, l, e), b = f.arch.expert(f.src, f.d, l, e);
        for (const p of ['gate', 'up', 'down'] as const) expect(f32(a[p].w), p).toEqual(f32(b[p].w));
      }
    }
    q.close(); f.close();
  });
});

describe('the eager store', () => {
  it('holds every expert of every MoE layer, with its bytes', () => {
    const model = MoeModel.load(path.join(ROOT, 'qwen3_moe'));
    const x = model.weights.layers[0].moe!.experts;
    expect(x).toBeInstanceOf(EagerExperts);
    expect(x.count).toBe(8);
    expect(x.has(7)).toBe(true);
    const { expertFfn: I } = model.desc.moe, H = model.desc.hidden;
    expect(x.residentBytes()).toBe(8 * 3 * I * H * 4);
  });
});
