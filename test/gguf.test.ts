/**
 * GGUF in and out: moekit's export of every fixture of the five llama.cpp architectures reads back to the
 * very logits of the safetensors (f32), and quantised exports to those of quantising at load; node-llama-cpp
 * (llama.cpp itself, prebuilt CPU binary) loads the f32 exports and picks moekit's greedy ids, or — OLMoE with
 * grouped KV heads, whose k-norm llama.cpp sizes as the full hidden width — refuses the right file, which the
 * test names; malformed files are one-line errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type Token } from 'node-llama-cpp';
import { beforeAll, describe, expect, it } from 'vitest';
import { GGML, GgufFile, gv, writeGguf } from '../src/io/gguf.js';
import { exportGguf } from '../src/models/gguf-export.js';
import { MoeModel } from '../src/models/model.js';
import { generate } from '../src/runtime/generate.js';
import { MoekitError } from '../src/util/errors.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { demoModelDir } from '../src/io/model-dir.js';
import { configVariantDir, runCli, scratchDir } from './helpers.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const FIXTURES = ['qwen3_moe', 'qwen2_moe', 'olmoe', 'mixtral', 'deepseek_v2', 'deepseek_v3', 'gpt_oss'];
const tmp = scratchDir('moekit-gguf-');
const IDS = Int32Array.from([3, 100, 7, 400, 22, 9, 311]);
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('moekit export gguf → moekit', () => {
  it.each(FIXTURES)('%s: f32 export reads back to the safetensors logits, bit for bit', (arch) => {
    const file = path.join(tmp(), `${arch}-f32.gguf`);
    const r = exportGguf(path.join(ROOT, arch), file, 'f32');
    expect(Object.keys(r.types)).toEqual([String(GGML.F32)]);
    const g = GgufFile.open(file);
    try {
      expect(g.get('general.architecture')).toBe({ qwen3_moe: 'qwen3moe', qwen2_moe: 'qwen2moe', olmoe: 'olmoe', mixtral: 'llama', deepseek_v2: 'deepseek2', deepseek_v3: 'deepseek2', gpt_oss: 'gpt-oss' }[arch]);
      expect(g.tensors.has('blk.0.attn_norm.weight')).toBe(true);
    } finally { g.close(); }
    const st = MoeModel.load(path.join(ROOT, arch), { dtype: 'f32' }).forward(IDS, 1, IDS.length);
    expect(same(MoeModel.load(file).forward(IDS, 1, IDS.length), st)).toBe(true);
  });

  it.each(['qwen3_moe', 'mixtral', 'gpt_oss', 'olmoe'])('%s: q8_0 / q4_0 exports keep their blocks and give the logits of quantising at load', (arch) => {
    for (const type of ['q8_0', 'q4_0'] as const) {
      const file = path.join(tmp(), `${arch}-${type}.gguf`);
      const r = exportGguf(path.join(ROOT, arch), file, type);
      expect(r.types[type === 'q8_0' ? GGML.Q8_0 : GGML.Q4_0]).toBeGreaterThan(0);
      const m = MoeModel.load(file);
      expect(m.weights.layers[0].attn!.o!.w.dtype).toBe(type);
      const atLoad = MoeModel.load(path.join(ROOT, arch), { dtype: type }).forward(IDS, 1, IDS.length);
      expect(same(m.forward(IDS, 1, IDS.length), atLoad)).toBe(true);
    }
  });

  it('bf16 and f16 exports read back within their rounding', () => {
    const dir = path.join(ROOT, 'qwen3_moe');
    const st = MoeModel.load(dir, { dtype: 'f32' }).forward(IDS, 1, IDS.length);
    for (const type of ['bf16', 'f16'] as const) {
      const file = path.join(tmp(), `q3-${type}.gguf`);
      exportGguf(dir, file, type);
      const l = MoeModel.load(file).forward(IDS, 1, IDS.length);
      let d = 0, s = 0;
      for (let i = 0; i < l.length; i++) { d = Math.max(d, Math.abs(l[i] - st[i])); s = Math.max(s, Math.abs(st[i])); }
      expect(d / s).toBeLessThan(type === 'bf16' ? 0.05 : 0.005);
      expect(d).toBeGreaterThan(0);
    }
  });
});

describe('moekit export gguf → node-llama-cpp (llama.cpp) greedy ids', () => {
  let llama: Llama;
  beforeAll(async () => { llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.disabled, progressLogs: false }); }, 60_000);

  it.each(FIXTURES)('%s', async (arch) => {
    const file = path.join(tmp(), `${arch}-nlc.gguf`);
    exportGguf(path.join(ROOT, arch), file, 'f32');
    const prompt = [3, 100, 7, 400, 22];
    const ours = generate(MoeModel.load(file), prompt, { maxNewTokens: 16, greedy: true, stopAtEos: false }).ids.slice(prompt.length);
    if (arch === 'olmoe') {
      // llama.cpp's olmoe sizes attn_k_norm as n_embd (64); with 2 KV heads of 16 it is 32 wide, as transformers has it
      await expect(llama.loadModel({ modelPath: file })).rejects.toThrow(/Failed to load model/);
      return;
    }
    const model = await llama.loadModel({ modelPath: file });
    const ctx = await model.createContext({ contextSize: 64, threads: 2 });
    try {
      const theirs: number[] = [];
      for await (const t of ctx.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
        theirs.push(t);
        if (theirs.length === ours.length) break;
      }
      expect(theirs).toEqual(ours);
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
  }, 60_000);
});

describe('llama.cpp-written GGUF (its convert_hf_to_gguf.py, fixtures/llamacpp-gguf) → moekit', () => {
  const LC = path.resolve(__dirname, '../fixtures/llamacpp-gguf');
  const IDS2 = Int32Array.from([3, 10, 7, 40, 22, 9, 61]);
  const logits = (m: MoeModel) => m.forward(IDS2, 1, IDS2.length);

  it.each(['qwen3_moe', 'mixtral', 'deepseek_v3'])('%s: bf16 file → the logits of the bf16 safetensors, bit for bit', (arch) => {
    expect(same(logits(MoeModel.load(path.join(LC, arch, 'llamacpp-bf16.gguf'))), logits(MoeModel.load(path.join(LC, arch))))).toBe(true);
  });

  it('qwen3_moe q8_0: llama.cpp\'s blocks are moekit\'s, byte for byte, and so are the logits', () => {
    const lc = path.join(LC, 'qwen3_moe', 'llamacpp-q8_0.gguf');
    const m = MoeModel.load(lc);
    expect(m.weights.layers[0].attn!.q!.w.dtype).toBe('q8_0');
    expect(same(logits(m), logits(MoeModel.load(path.join(LC, 'qwen3_moe'), { dtype: 'q8_0' })))).toBe(true);
    const ours = path.join(tmp(), 'lc-q3-q8.gguf');
    exportGguf(path.join(LC, 'qwen3_moe'), ours, 'q8_0');
    const a = GgufFile.open(lc), b = GgufFile.open(ours);
    try {
      for (const name of ['blk.0.attn_q.weight', 'blk.1.ffn_down_exps.weight', 'output.weight']) {
        expect(a.info(name).typeName).toBe('Q8_0');
        expect(a.read(name).equals(b.read(name)), name).toBe(true);
      }
    } finally { a.close(); b.close(); }
  });

  it('gpt_oss: the logits of the safetensors (≤ 1e-6 relative: f32 routers and biases there, bf16 here)', () => {
    const a = logits(MoeModel.load(path.join(LC, 'gpt_oss', 'llamacpp-bf16.gguf'))), b = logits(MoeModel.load(path.join(LC, 'gpt_oss')));
    let d = 0, s = 0;
    for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
    expect(d / s).toBeLessThan(1e-6);
  });

  it('olmoe: llama.cpp\'s converter writes rms eps 1e-5 (hard-coded); moekit follows the file, moekit\'s export writes the config\'s', () => {
    const file = path.join(LC, 'olmoe', 'llamacpp-bf16.gguf');
    const g = GgufFile.open(file);
    expect(g.get('olmoe.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-5, 10);
    g.close();
    const asFile = logits(MoeModel.load(configVariantDir(path.join(LC, 'olmoe'), { rms_norm_eps: 1e-5 })));
    expect(same(logits(MoeModel.load(file)), asFile)).toBe(true);
    expect(same(logits(MoeModel.load(path.join(LC, 'olmoe'))), asFile)).toBe(false);
    const ours = path.join(tmp(), 'lc-olmoe.gguf');
    exportGguf(path.join(LC, 'olmoe'), ours, 'bf16');
    const o = GgufFile.open(ours);
    expect(o.get('olmoe.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-6, 12);
    o.close();
  });

  it('deepseek_v3 without scoring_func: llama.cpp\'s file has no gating key (llama.cpp then runs softmax); moekit reads it sigmoid-gated, as transformers runs it, and its export says so', () => {
    const g = GgufFile.open(path.join(LC, 'deepseek_v3', 'llamacpp-bf16.gguf'));
    expect(g.get('deepseek2.expert_gating_func')).toBeUndefined();
    g.close();
    expect(MoeModel.load(path.join(LC, 'deepseek_v3', 'llamacpp-bf16.gguf')).desc.moe.router).toBe(MoeModel.load(path.join(LC, 'deepseek_v3')).desc.moe.router);
    const ours = path.join(tmp(), 'lc-dsv3.gguf');
    exportGguf(path.join(LC, 'deepseek_v3'), ours, 'bf16');
    const o = GgufFile.open(ours);
    expect(o.get('deepseek2.expert_gating_func')).toBe(2);
    o.close();
  });
});

describe('the commands on GGUF files', () => {
  it('export gguf, inspect and generate a .gguf; quantize; bad flags and files are one line', async () => {
    const dir = path.join(ROOT, 'qwen3_moe'), file = path.join(tmp(), 'cli-q3.gguf');
    const ex = await runCli(['export', 'gguf', dir, file, '--type', 'q8_0', '--json']);
    expect(ex.code, ex.err).toBe(0);
    expect(JSON.parse(ex.out)).toMatchObject({ arch: 'qwen3moe', types: { Q8_0: expect.any(Number), F32: expect.any(Number) } });
    const ins = await runCli(['inspect', file, '--json']);
    expect(ins.code, ins.err).toBe(0);
    expect(JSON.parse(ins.out)).toMatchObject({ arch: 'qwen3_moe', layers: 3, vocab: 512, dtypes: { Q8_0: expect.any(Number) } });
    const gen = async (m: string, ...extra: string[]) => {
      const r = await runCli(['generate', m, '--ids', '3,100,7', '--max-new-tokens', '5', '--greedy', '--json', ...extra]);
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out).ids as number[];
    };
    expect(await gen(file)).toEqual(await gen(dir, '--dtype', 'q8_0'));
    const q = path.join(tmp(), 'cli-q3-q4');
    expect((await runCli(['quantize', dir, '--type', 'q4_0', '--out', q])).code).toBe(0);
    expect(await gen(q)).toEqual(await gen(dir, '--dtype', 'q4_0'));
    const bad = await runCli(['export', 'gguf', dir, file, '--type', 'q5_1']);
    expect(bad.err).toMatch(/^moekit: --type must be one of f32, f16, bf16, q8_0, q4_0, got 'q5_1'\n$/);
    expect((await runCli(['quantize', dir, '--type', 'q2', '--out', q])).err).toMatch(/--type must be q8_0 or q4_0, got 'q2'/);
    expect((await runCli(['export', 'onnx', dir, file])).err).toMatch(/unknown format 'onnx'/);
    const junk = path.join(tmp(), 'junk.gguf');
    fs.writeFileSync(junk, 'not a model at all');
    const j = await runCli(['generate', junk, '--ids', '1']);
    expect(j.code).toBe(1);
    expect(j.err).toMatch(/^moekit: .*junk.gguf: not a GGUF file \(bad magic "not "\)\n$/);
  });
});

describe('tokenizers in GGUF files', () => {
  it('moekit\'s export carries the model\'s own tokenizer: --prompt on the .gguf is --prompt on the directory', async () => {
    const file = path.join(tmp(), 'demo.gguf');
    exportGguf(demoModelDir, file, 'bf16');
    const a = loadTokenizer(file)!, b = loadTokenizer(demoModelDir)!;
    for (const text of ['draw 42=', 'sort 3 1 2=', 'count a b a=']) expect(a.encode(text)).toEqual(b.encode(text));
    const gen = async (m: string) => {
      const r = await runCli(['generate', m, '--prompt', 'sort 3 1 2=', '--max-new-tokens', '6', '--greedy', '--json']);
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out).ids as number[];
    };
    expect(await gen(file)).toEqual(await gen(demoModelDir));
  });

  it('llama.cpp\'s gpt2 metadata alone becomes a byte-level BPE tokenizer (the placeholder vocabulary: bytes)', () => {
    const file = path.join(tmp(), 'q3-tok.gguf');
    exportGguf(path.join(ROOT, 'qwen3_moe'), file, 'f32');
    const t = loadTokenizer(file)!;
    expect(t.encode('hi! é', false)).toEqual([104, 105, 33, 32, 0xc3, 0xa9]);
    expect(t.decode([104, 105, 33, 32, 0xc3, 0xa9])).toBe('hi! é');
  });
});

describe('malformed GGUF files: one-line errors', () => {
  /** a valid small file: one F32 tensor [2, 32] and a Q8_0 one [1, 64] */
  function good(): Buffer {
    const f = path.join(tmp(), 'good.gguf');
    writeGguf(f, [['general.architecture', gv.str('qwen3moe')], ['x.list', gv.i32s([1, 2, 3])]], [
      { name: 'a', shape: [2, 32], type: GGML.F32, data: () => new Uint8Array(256) },
      { name: 'b', shape: [1, 64], type: GGML.Q8_0, data: () => new Uint8Array(68) },
    ]);
    return fs.readFileSync(f);
  }
  const open = (b: Buffer, name: string) => {
    const f = path.join(tmp(), `${name}.gguf`);
    fs.writeFileSync(f, b);
    try { GgufFile.open(f).close(); } catch (e) {
      expect(e).toBeInstanceOf(MoekitError);
      const msg = (e as MoekitError).oneLine();
      expect(msg).not.toContain('\n');
      return msg;
    }
    return 'opened';
  };
  /** byte offset of the first occurrence of `s` in the header */
  const at = (b: Buffer, s: string) => b.indexOf(Buffer.from(s));

  it('the good file opens: metadata, shapes (ne reversed), types, offsets', () => {
    const b = good();
    const f = path.join(tmp(), 'g2.gguf');
    fs.writeFileSync(f, b);
    const g = GgufFile.open(f);
    expect(g.get('x.list')).toEqual([1, 2, 3]);
    expect(g.info('a')).toMatchObject({ ne: [32, 2], shape: [2, 32], typeName: 'F32', bytes: 256 });
    expect(g.info('b')).toMatchObject({ shape: [1, 64], typeName: 'Q8_0', bytes: 68 });
    expect(g.info('b').offset % 32).toBe(0);
    g.close();
  });
  it('bad magic, unsupported version', () => {
    const b = good();
    expect(open(Buffer.concat([Buffer.from('GGML'), b.subarray(4)]), 'magic')).toMatch(/not a GGUF file \(bad magic "GGML"\)/);
    expect(open(Buffer.from('GG'), 'short')).toMatch(/not a GGUF file/);
    const v = Buffer.from(b); v.writeUInt32LE(7, 4);
    expect(open(v, 'version')).toMatch(/unsupported GGUF version 7/);
  });
  it('truncated anywhere: in the header, in a tensor', () => {
    const b = good();
    for (const n of [10, 30, 60, at(b, 'x.list') + 3, at(b, 'b') + 8]) expect(open(b.subarray(0, n), `cut${n}`)).toMatch(/truncated GGUF|more than the file/);
    expect(open(b.subarray(0, b.length - 40), 'cutdata')).toMatch(/truncated GGUF: tensor 'b' .* runs past the end of the file/);
  });
  it('counts and lengths out of range', () => {
    const b = good();
    const t = Buffer.from(b); t.writeBigUInt64LE(1n << 40n, 8);
    expect(open(t, 'tcount')).toMatch(/tensor count \d+ is more than the file can hold/);
    const k = Buffer.from(b); k.writeBigUInt64LE(1n << 62n, 16);
    expect(open(k, 'kcount')).toMatch(/metadata count .* (is more than the file can hold|out of range)/);
    const s = Buffer.from(b); s.writeBigUInt64LE(1n << 50n, 24); // the first key's length
    expect(open(s, 'keylen')).toMatch(/length \d+ is larger than the file/);
    const arr = Buffer.from(b); arr.writeBigUInt64LE(1n << 40n, at(b, 'x.list') + 6 + 8);
    expect(open(arr, 'arrcount')).toMatch(/'x.list' claims \d+ elements, more than the file holds/);
  });
  it('offsets out of range or unaligned, overlapping tensors, dims, unknown types', () => {
    const b = good();
    const bi = at(b, 'b\x02'); // tensor info of 'b': name, n_dims = 2 …
    const offPos = bi + 1 + 4 + 16 + 4; // … 2 dims, type, offset
    const o = Buffer.from(b); o.writeBigUInt64LE(1n << 20n, offPos);
    expect(open(o, 'off')).toMatch(/tensor 'b' .* runs past the end of the file/);
    const u = Buffer.from(b); u.writeBigUInt64LE(257n, offPos);
    expect(open(u, 'unaligned')).toMatch(/offset 257 is not a multiple of the alignment 32/);
    const ov = Buffer.from(b); ov.writeBigUInt64LE(0n, offPos);
    expect(open(ov, 'overlap')).toMatch(/tensors 'a' and 'b' overlap/);
    const ty = Buffer.from(b); ty.writeUInt32LE(99, offPos - 4);
    expect(open(ty, 'type')).toMatch(/tensor 'b' has unknown ggml type 99/);
    const nd = Buffer.from(b); nd.writeUInt32LE(9, bi + 1);
    expect(open(nd, 'ndims')).toMatch(/tensor 'b' has 9 dims/);
    const blk = Buffer.from(b); blk.writeBigUInt64LE(40n, bi + 5);
    expect(open(blk, 'blocks')).toMatch(/tensor 'b' \[40, 1\] of type Q8_0: ne\[0\] is not whole 32-weight blocks/);
    const vt = Buffer.from(b); vt.writeUInt32LE(77, at(b, 'x.list') + 6);
    expect(open(vt, 'vtype')).toMatch(/metadata 'x.list' has unknown value type 77/);
  });
  it('a model whose metadata and tensors disagree names the tensor; an unknown architecture is named', () => {
    const f = path.join(tmp(), 'arch.gguf');
    writeGguf(f, [['general.architecture', gv.str('mamba')]], []);
    expect(() => MoeModel.load(f)).toThrow(/GGUF architecture 'mamba' is not one moekit reads/);
    const src = path.join(tmp(), 'qwen3_moe-f32.gguf');
    if (!fs.existsSync(src)) exportGguf(path.join(ROOT, 'qwen3_moe'), src, 'f32');
    const g = GgufFile.open(src);
    const keys: [string, ReturnType<typeof gv.u32>][] = [...g.meta.entries()].map(([k2, e]) => [k2, k2 === 'qwen3moe.expert_count' ? gv.u32(4) : e]);
    const tensors = [...g.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: () => new Uint8Array(g.read(t.name)) }));
    const bad = path.join(tmp(), 'bad-experts.gguf');
    writeGguf(bad, keys, tensors);
    g.close();
    expect(() => MoeModel.load(bad)).toThrow(/GGUF tensor 'blk.0.ffn_gate_exps.weight' has shape \[8, 48, 64\], expected \[4, 48, 64\] from the metadata/);
  });
});
