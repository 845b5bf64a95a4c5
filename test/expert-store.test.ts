/**
 * The expert store: every architecture reads one routed expert by itself (its own tensors, or its rows of
 * fused ones, dequantised alone); the eager store is built from those reads, and the lazy store, reading
 * experts on first use under a byte budget, gives the same logits and greedy ids on every fixture.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Checkpoint } from '../src/io/checkpoint.js';
import { readConfig } from '../src/io/config.js';
import { dequantMxfp4 } from '../src/io/quant.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import type { ModelDesc } from '../src/models/desc.js';
import { EagerExperts, ffnBytes } from '../src/models/expert-store.js';
import { deinterleaveExpert } from '../src/models/gpt_oss.js';
import { MoeModel } from '../src/models/model.js';
import { archFor } from '../src/models/registry.js';
import { checkpointSource, fp8BlockSize } from '../src/models/source.js';
import type { Ffn, Rows, TensorSource } from '../src/models/weights.js';
import { weightF32 } from '../src/tensor/weight.js';
import { getKernels } from '../src/tensor/index.js';
import { writeSafetensors } from '../src/io/safetensors-write.js';
import { terminalProgress } from '../src/cli/bar.js';
import { generate } from '../src/runtime/generate.js';
import { MoekitError } from '../src/util/errors.js';
import type { ProgressEvent } from '../src/util/progress.js';
import { expertFlags, sizeFlag } from '../src/cli/args.js';
import { expectError, maxAbsDiff, runCli, scratchDir } from './helpers.js';
import { writeBf16, writeDeepseekFp8, writeGptOssMxfp4 } from './quant-checkpoints.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v3', 'deepseek_v2', 'ernie4_5_moe', 'gpt_oss', 'granitemoe'];
const FUSED = new Set(['gpt_oss', 'granitemoe']);
const tmp = scratchDir('moekit-experts-');
/** the quantised checkpoints, written once when first needed */
let mx: ReturnType<typeof writeGptOssMxfp4> | undefined, f8: ReturnType<typeof writeDeepseekFp8> | undefined;
const mxfp4Dirs = () => (mx ??= writeGptOssMxfp4(path.join(ROOT, 'gpt_oss'), path.join(tmp(), 'mxfp4')));
const fp8Dirs = () => (f8 ??= writeDeepseekFp8(path.join(ROOT, 'deepseek_v3'), path.join(tmp(), 'fp8'), 16, 16));

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
    const dirs = mxfp4Dirs();
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
    const dirs = fp8Dirs();
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

/** the bytes of one routed expert of a model (all experts of a model have the same size) */
function expertBytes(model: MoeModel): number {
  const l = moeLayers(model.desc)[0];
  return ffnBytes(model.weights.layers[l].moe!.experts.get(0));
}

/** reference input ids [B, T] of a fixture */
function inputIds(arch: string): { ids: Int32Array; B: number; T: number } {
  const ref = SafetensorsFile.open(path.join(ROOT, arch, 'reference.safetensors'));
  const ids = ref.readI32('input_ids'), [B, T] = ref.info('input_ids').shape;
  ref.close();
  return { ids, B, T };
}

type ExpertEvent = Extract<ProgressEvent, { status: 'expert' }>;

/**
 * eager vs lazy under a budget of 1.5 experts: logits of a batch and greedy ids, exactly equal (the lazy store
 * reads each expert with the same code and the same dequantisation order as the eager load)
 */
function compareLazy(dir: string, ids: Int32Array, B: number, T: number, dtype: 'auto' | 'f32' = 'auto') {
  const eager = MoeModel.load(dir, { dtype });
  const budget = Math.floor(1.5 * expertBytes(eager));
  const events: ExpertEvent[] = [];
  const lazy = MoeModel.load(dir, { dtype, experts: 'lazy', expertBudgetBytes: budget, onProgress: (ev) => { if (ev.status === 'expert') events.push(ev); } });
  const store = lazy.expertStore!;
  expect(store.residentBytes()).toBe(0); // nothing read at load
  const all = moeLayers(eager.desc).reduce((s, l) => s + eager.weights.layers[l].moe!.experts.residentBytes(), 0);
  expect(budget).toBeLessThan(all);
  const la = lazy.forward(ids, B, T), le = eager.forward(ids, B, T);
  expect(maxAbsDiff(la, le)).toBe(0);
  const prompt = Array.from(ids.subarray(0, T));
  const ga = generate(lazy, prompt, { maxNewTokens: 8, greedy: true, stopAtEos: false });
  const ge = generate(eager, prompt, { maxNewTokens: 8, greedy: true, stopAtEos: false });
  expect(ga.ids).toEqual(ge.ids);
  expect(store.counters.loads).toBeGreaterThan(0);
  expect(store.counters.evictions).toBeGreaterThan(0);
  expect(Math.max(...events.map((e) => e.resident))).toBeLessThanOrEqual(budget);
  expect(store.residentBytes()).toBeLessThanOrEqual(budget);
  lazy.close();
  lazy.close(); // twice is fine
  return { lazy, store, events, budget };
}

describe.each(ARCHS)('%s: the lazy store under a budget of 1.5 experts', (arch) => {
  it('gives the eager store\'s logits and greedy ids exactly, holding at most the budget', () => {
    const { ids, B, T } = inputIds(arch);
    compareLazy(path.join(ROOT, arch), ids, B, T);
  });
});

describe('the lazy store on quantised and bf16 checkpoints', () => {
  const { ids, B, T } = inputIds('gpt_oss');
  it('MXFP4 experts (gpt-oss), dequantised per expert', () => {
    compareLazy(mxfp4Dirs().mxfp4, ids, B, T);
  });
  it('FP8 block-scaled experts (DeepSeek-V3)', () => {
    const r = inputIds('deepseek_v3');
    compareLazy(fp8Dirs().fp8, r.ids, r.B, r.T);
  });
  it.each(['granitemoe', 'qwen2_moe'])('%s in BF16: experts stay bf16 (and f32 with dtype f32)', (arch) => {
    const dir = writeBf16(path.join(ROOT, arch), path.join(tmp(), `lazy-bf16-${arch}`));
    const { lazy } = compareLazy(dir, ids, B, T);
    expect(lazy.expertStore!.residentBytes()).toBe(0); // closed
    const open = MoeModel.load(dir, { experts: 'lazy' });
    expect(open.weights.layers[0].moe!.experts.get(1).gate.w.dtype).toBe('bf16');
    open.close();
    compareLazy(dir, ids, B, T, 'f32');
  });
});

describe('eviction and re-reading', () => {
  const dir = path.join(ROOT, 'qwen3_moe');
  const bytes = expertBytes(MoeModel.load(dir));

  it('evicts the least recently used expert over the budget and reads it again when asked', () => {
    const events: ExpertEvent[] = [];
    const model = MoeModel.load(dir, { experts: 'lazy', expertBudgetBytes: 2 * bytes, onProgress: (ev) => { if (ev.status === 'expert') events.push(ev); } });
    const store = model.expertStore!, L0 = model.weights.layers[0].moe!.experts, L1 = model.weights.layers[1].moe!.experts;
    L0.get(1);
    const first0 = f32(L0.get(0).down.w);
    L0.get(1); // a hit: expert 1 is now the most recently used, 0 the least
    expect(store.counters).toEqual({ loads: 2, evictions: 0, hits: 1 });
    expect(store.residentBytes()).toBe(2 * bytes);
    L1.get(4); // no room: evicts layer 0's expert 0 (least recently used, not first read), across layers
    expect(store.counters).toEqual({ loads: 3, evictions: 1, hits: 1 });
    expect(L0.residentBytes()).toBe(bytes);
    expect(L1.residentBytes()).toBe(bytes);
    const again = L0.get(0); // read again, evicting expert 1
    expect(store.counters).toEqual({ loads: 4, evictions: 2, hits: 1 });
    expect(f32(again.down.w)).toEqual(first0);
    expect(events.map((e) => `${e.action} ${e.layer}.${e.expert}`)).toEqual(['load 0.1', 'load 0.0', 'evict 0.0', 'load 1.4', 'evict 0.1', 'load 0.0']);
    for (const e of events) {
      expect(e.bytes).toBe(bytes);
      expect(e.budget).toBe(2 * bytes);
      expect(e.resident).toBeLessThanOrEqual(2 * bytes); // evicted before reading: never over the budget
    }
    model.close();
  });

  it('a budget smaller than one expert holds just the expert in use', () => {
    const model = MoeModel.load(dir, { experts: 'lazy', expertBudgetBytes: bytes / 3 });
    const store = model.expertStore!, L0 = model.weights.layers[0].moe!.experts;
    const a = L0.get(2);
    expect(store.residentBytes()).toBe(bytes);
    const b = L0.get(3);
    expect(store.residentBytes()).toBe(bytes);
    expect(store.counters).toEqual({ loads: 2, evictions: 1, hits: 0 });
    expect(a.gate.w.data.length).toBe(b.gate.w.data.length); // the evicted one's arrays stay valid for who holds them
    const { ids, B, T } = inputIds('qwen3_moe');
    expect(maxAbsDiff(model.forward(ids, B, T), MoeModel.load(dir).forward(ids, B, T))).toBe(0);
    expect(store.residentBytes()).toBe(bytes);
    model.close();
  });

  it('without a budget keeps every expert it read; close() releases them', () => {
    const model = MoeModel.load(dir, { experts: 'lazy' });
    const { ids, B, T } = inputIds('qwen3_moe');
    model.forward(ids, B, T);
    const store = model.expertStore!;
    expect(store.counters.evictions).toBe(0);
    expect(store.residentBytes()).toBe(store.counters.loads * bytes);
    model.close();
    expect(store.residentBytes()).toBe(0);
    expectError(() => model.weights.layers[0].moe!.experts.get(0), /expert 0 of layer 0: the model is closed/, dir);
  });
});

describe('pruned and broken checkpoints', () => {
  /** a copy of a fixture without the tensors `drop` matches (same dtypes) */
  function copyWithout(arch: string, name: string, drop: RegExp): string {
    const src = path.join(ROOT, arch), dir = path.join(tmp(), name);
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(src, 'config.json'), path.join(dir, 'config.json'));
    const ck = Checkpoint.open(src);
    writeSafetensors(path.join(dir, 'model.safetensors'), ck.names().filter((n) => !drop.test(n)).map((n) => ({
      name: n, dtype: ck.info(n).dtype, shape: ck.info(n).shape, data: ck.readRaw(n),
    })));
    ck.close();
    return dir;
  }

  it('an expert pruned from the checkpoint: has() false from the names alone, get() a MoekitError naming layer and expert', () => {
    const dir = copyWithout('mixtral', 'pruned', /^model\.layers\.1\.block_sparse_moe\.experts\.3\./);
    for (const experts of ['eager', 'lazy'] as const) {
      const model = MoeModel.load(dir, { experts });
      const L1 = model.weights.layers[1].moe!.experts, L0 = model.weights.layers[0].moe!.experts;
      expect(L1.has(3)).toBe(false);
      expect(L1.has(2)).toBe(true);
      expect(L0.has(3)).toBe(true);
      expect(L0.has(8)).toBe(false); // outside [0, E)
      if (experts === 'lazy') expect(model.expertStore!.counters.loads).toBe(0); // has() read nothing
      expect(() => L1.get(3)).toThrow(MoekitError);
      expect(() => L1.get(3)).toThrow(/expert 3 of layer 1 was routed to but is not in the checkpoint/);
      // the pruned model runs when its router is kept off the expert, as the full model with the same mask
      const mask = Uint8Array.from({ length: 8 }, (_, e) => (e === 3 ? 0 : 1));
      const { ids, B, T } = inputIds('mixtral');
      const sub = { experts: [null, mask, null] };
      expect(maxAbsDiff(model.forward(ids, B, T, { sub }), MoeModel.load(path.join(ROOT, 'mixtral')).forward(ids, B, T, { sub }))).toBe(0);
      model.close();
    }
  });

  it('an expert partly in the checkpoint: reading it names the missing tensor', () => {
    const dir = copyWithout('qwen3_moe', 'partial', /^model\.layers\.2\.mlp\.experts\.5\.down_proj\.weight$/);
    const model = MoeModel.load(dir, { experts: 'lazy' });
    const L2 = model.weights.layers[2].moe!.experts;
    expect(L2.has(5)).toBe(false);
    expectError(() => L2.get(5), /missing tensor 'model\.layers\.2\.mlp\.experts\.5\.down_proj\.weight'/, dir);
    model.close();
    expectError(() => MoeModel.load(dir), /missing tensor 'model\.layers\.2\.mlp\.experts\.5\.down_proj\.weight'/, dir);
  });

  it('a checkpoint truncated under a lazy model: a MoekitError naming the file, not a crash', () => {
    const dir = copyWithout('olmoe', 'truncated', /^$/);
    const file = path.join(dir, 'model.safetensors');
    const model = MoeModel.load(dir, { experts: 'lazy' });
    const L0 = model.weights.layers[0].moe!.experts, L2 = model.weights.layers[2].moe!.experts;
    L0.get(0);
    const ck = Checkpoint.open(dir);
    const cut = ck.info('model.layers.2.mlp.experts.7.down_proj.weight').byteOffset + 10;
    ck.close();
    fs.truncateSync(file, cut); // the file shrinks under the open model
    expectError(() => L2.get(7), /file truncated reading tensor 'model\.layers\.2\.mlp\.experts\.7\.\w+\.weight': unexpected end of file/, file);
    expect(L0.get(0)).toBeDefined(); // what was read stays usable
    expect(model.expertStore!.counters.loads).toBe(1);
    model.close();
    expectError(() => MoeModel.load(dir, { experts: 'lazy' }), /file truncated/, file);
  });
});

describe('options and events', () => {
  const dir = path.join(ROOT, 'olmoe');
  it('bad options are MoekitErrors', () => {
    expect(() => MoeModel.load(dir, { experts: 'sometimes' as 'lazy' })).toThrow(/experts must be 'eager' or 'lazy', got 'sometimes'/);
    expect(() => MoeModel.load(dir, { experts: 'lazy', expertBudgetBytes: -1 })).toThrow(/expertBudgetBytes must be a number of bytes ≥ 0, got -1/);
    expect(() => MoeModel.load(dir, { experts: 'lazy', expertBudgetBytes: NaN })).toThrow(MoekitError);
    expect(() => MoeModel.load(dir, { expertBudgetBytes: 1000 })).toThrow(/expertBudgetBytes needs experts: 'lazy'/);
  });

  it('the terminal bar ignores expert events', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const bar = terminalProgress(true)!;
    bar({ status: 'expert', action: 'load', layer: 0, expert: 1, bytes: 10, resident: 10, budget: 15 });
    bar({ status: 'initiate', task: 't', total: 2 });
    bar({ status: 'expert', action: 'evict', layer: 0, expert: 1, bytes: 10, resident: 0, budget: 15 });
    bar({ status: 'done', task: 't', total: 2 });
    write.mockRestore();
  });
});

describe('moekit forward --experts lazy --expert-budget SIZE', () => {
  it('sizes: bytes, or K, M, G, T (KiB, MiB, GiB, TiB) as powers of 1024', () => {
    const cases: [string, number][] = [['0', 0], ['1048576', 1048576], ['512K', 524288], ['512KiB', 524288], ['1.5M', 1572864],
      ['2g', 2 * 2 ** 30], ['1GiB', 2 ** 30], ['1T', 2 ** 40], ['100B', 100], ['0.5k', 512]];
    for (const [v, n] of cases) expect(sizeFlag(v, 'expert-budget'), v).toBe(n);
    for (const v of ['-1', 'lots', '', '1KB', '1.2.3', '5 M B', '1e6']) {
      expect(() => sizeFlag(v, 'expert-budget'), v).toThrow(/^--expert-budget must be a size in bytes ≥ 0/);
    }
    expect(expertFlags({})).toEqual({ experts: 'eager' });
    expect(expertFlags({ 'expert-budget': '64K' })).toEqual({ experts: 'lazy', expertBudgetBytes: 65536 });
    expect(() => expertFlags({ experts: 'sometimes' })).toThrow(/^--experts must be 'eager' or 'lazy', got 'sometimes'$/);
    expect(() => expertFlags({ experts: 'eager', 'expert-budget': '1M' })).toThrow(/^--expert-budget needs --experts lazy$/);
  });

  it('writes the eager logits and reports what the store did', async () => {
    const dir = path.join(ROOT, 'granitemoe'), input = path.join(dir, 'reference.safetensors');
    const a = path.join(tmp(), 'cli-eager.safetensors'), b = path.join(tmp(), 'cli-lazy.safetensors');
    expect((await runCli(['forward', dir, '--input', input, '--out', a])).code).toBe(0);
    const r = await runCli(['forward', dir, '--input', input, '--out', b, '--experts', 'lazy', '--expert-budget', '108K', '--json']);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.experts).toMatchObject({ mode: 'lazy', budget_bytes: 108 * 1024 });
    expect(s.experts.loads).toBeGreaterThan(s.experts.evictions);
    expect(s.experts.evictions).toBeGreaterThan(0);
    expect(s.experts.resident_bytes).toBeLessThanOrEqual(108 * 1024);
    const fa = SafetensorsFile.open(a), fb = SafetensorsFile.open(b);
    for (const n of fa.names()) expect(maxAbsDiff(fa.readF32(n), fb.readF32(n)), n).toBe(0);
    fa.close(); fb.close();
    const t = await runCli(['forward', dir, '--input', input, '--out', b, '--experts', 'lazy']);
    expect(t.out).toMatch(/lazy experts: \d+ loads, 0 evictions, \d+ hits; \d+ bytes held\n$/);
  });

  it('bad flags: one line naming the flag, exit 1', async () => {
    const dir = path.join(ROOT, 'olmoe'), input = path.join(dir, 'reference.safetensors'), out = path.join(tmp(), 'never.safetensors');
    for (const [flags, msg] of [
      [['--expert-budget=-5M'], /^moekit: --expert-budget must be a size in bytes ≥ 0.*got '-5M'\n$/],
      [['--expert-budget', '-5M'], /^moekit: Option '--expert-budget' argument is ambiguous/], // node's parseArgs, before ours
      [['--expert-budget', 'plenty'], /^moekit: --expert-budget must be a size in bytes ≥ 0.*got 'plenty'\n$/],
      [['--experts', 'maybe'], /^moekit: --experts must be 'eager' or 'lazy', got 'maybe'\n$/],
      [['--experts', 'eager', '--expert-budget', '1G'], /^moekit: --expert-budget needs --experts lazy\n$/],
    ] as const) {
      const r = await runCli(['forward', dir, '--input', input, '--out', out, ...flags]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(msg);
    }
    expect(fs.existsSync(out)).toBe(false);
  });
});
