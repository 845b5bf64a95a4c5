/**
 * Malformed inputs through the CLI: each gives one line `moekit: <file>: <problem>`, exit code 1,
 * and no stack trace (unless --debug).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe/mixtral');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-errors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** a copy of the mixtral fixture, optionally edited */
function modelDir(name: string, edit?: (dir: string) => void): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(FIX, f), path.join(dir, f));
  fs.chmodSync(path.join(dir, 'model.safetensors'), 0o644);
  edit?.(dir);
  return dir;
}

function editConfig(dir: string, f: (c: Record<string, unknown>) => void): void {
  const p = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(p, 'utf8'));
  f(c);
  fs.writeFileSync(p, JSON.stringify(c));
}

/** safetensors bytes from a header object and a data section */
function stBytes(header: unknown, data: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

const run = runCli;

async function expectError(argv: string[], file: string, problem: RegExp): Promise<void> {
  const r = await run(argv);
  expect(r.code).toBe(1);
  const lines = r.err.trimEnd().split('\n');
  expect(lines.length, r.err).toBe(1);
  expect(lines[0].startsWith(`moekit: ${file}`), r.err).toBe(true);
  expect(lines[0]).toMatch(problem);
  expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
}

describe('malformed checkpoints', () => {
  it('truncated file', async () => {
    const dir = modelDir('truncated', (d) => {
      const p = path.join(d, 'model.safetensors');
      fs.truncateSync(p, fs.statSync(p).size - 1000);
    });
    await expectError(['inspect', dir], path.join(dir, 'model.safetensors'), /truncated/);
  });

  it('header length past the end of the file', async () => {
    const dir = modelDir('hdrlen', (d) => {
      const b = Buffer.alloc(64);
      b.writeBigUInt64LE(10_000n);
      fs.writeFileSync(path.join(d, 'model.safetensors'), b);
    });
    await expectError(['inspect', dir], path.join(dir, 'model.safetensors'), /header length .*past the end|beyond the end|runs past/i);
  });

  it('overlapping offsets', async () => {
    const dir = modelDir('overlap', (d) => fs.writeFileSync(path.join(d, 'model.safetensors'), stBytes({
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
    }, Buffer.alloc(24))));
    await expectError(['inspect', dir], path.join(dir, 'model.safetensors'), /overlap/i);
  });

  it('out-of-bounds offsets', async () => {
    const dir = modelDir('oob', (d) => fs.writeFileSync(path.join(d, 'model.safetensors'), stBytes({
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [100], data_offsets: [16, 416] },
      c: { dtype: 'F32', shape: [4], data_offsets: [900, 916] },
    }, Buffer.alloc(416))));
    await expectError(['inspect', dir], path.join(dir, 'model.safetensors'), /out of bounds|truncated|past the end/i);
  });

  it('dtype × shape disagreeing with the byte length', async () => {
    const dir = modelDir('dtype', (d) => fs.writeFileSync(path.join(d, 'model.safetensors'), stBytes({
      a: { dtype: 'F32', shape: [10], data_offsets: [0, 20] },
    }, Buffer.alloc(20))));
    await expectError(['inspect', dir], path.join(dir, 'model.safetensors'), /'a'.*(byte|bytes)/i);
  });

  it('missing shard', async () => {
    const dir = modelDir('shard', (d) => {
      fs.renameSync(path.join(d, 'model.safetensors'), path.join(d, 'model-00001-of-00002.safetensors'));
      const weight_map: Record<string, string> = { 'model.norm.weight': 'model-00002-of-00002.safetensors' };
      fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map }));
    });
    await expectError(['inspect', dir], path.join(dir, 'model.safetensors.index.json'), /model-00002-of-00002\.safetensors/);
  });

  it('a tensor whose shape disagrees with config.json', async () => {
    const dir = modelDir('shape', (d) => editConfig(d, (c) => { c.intermediate_size = 100; }));
    await expectError(['generate', dir, '--ids', '1,2', '--max-new-tokens', '1'], path.join(dir, 'model.safetensors'),
      /tensor 'model\.layers\.0\.block_sparse_moe\.experts\.0\.w1\.weight' has shape \[96, 64\], expected \[100, 64\]/);
  });
});

describe('malformed configs', () => {
  it('missing key', async () => {
    const dir = modelDir('nokey', (d) => editConfig(d, (c) => { delete c.num_local_experts; }));
    await expectError(['inspect', dir], path.join(dir, 'config.json'), /missing key 'num_local_experts'/);
  });

  it('unsupported architecture', async () => {
    const dir = modelDir('llama', (d) => editConfig(d, (c) => { c.model_type = 'llama'; c.architectures = ['LlamaForCausalLM']; }));
    await expectError(['inspect', dir], path.join(dir, 'config.json'), /unsupported architecture 'llama'/);
  });

  it('malformed JSON', async () => {
    const dir = modelDir('badjson', (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": "mixtral",'));
    await expectError(['inspect', dir], path.join(dir, 'config.json'), /malformed JSON/);
  });

  it('heads not divisible by kv heads', async () => {
    const dir = modelDir('gqa', (d) => editConfig(d, (c) => { c.num_key_value_heads = 3; }));
    await expectError(['inspect', dir], path.join(dir, 'config.json'), /multiple of num_key_value_heads/);
  });

  it('missing model directory', async () => {
    const dir = path.join(tmp, 'nowhere');
    await expectError(['inspect', dir], dir, /no such model directory/);
    fs.mkdirSync(path.join(tmp, 'empty'));
    await expectError(['inspect', path.join(tmp, 'empty')], path.join(tmp, 'empty', 'config.json'), /no config\.json/);
  });
});

describe('bad arguments', () => {
  it('forward input without input_ids', async () => {
    const dir = modelDir('fwd');
    const inp = path.join(tmp, 'noids.safetensors');
    fs.writeFileSync(inp, stBytes({ x: { dtype: 'I32', shape: [1, 2], data_offsets: [0, 8] } }, Buffer.alloc(8)));
    await expectError(['forward', dir, '--input', inp, '--out', path.join(tmp, 'o.safetensors')], inp, /no tensor 'input_ids'/);
    expect(fs.existsSync(path.join(tmp, 'o.safetensors'))).toBe(false);
  });

  it('token id outside the vocabulary', async () => {
    const dir = modelDir('vocab');
    const r = await run(['generate', dir, '--ids', '1,99999', '--max-new-tokens', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^moekit: --ids: token id 99999 is outside the model's vocabulary \[0, 512\)\n$/);
  });

  it('--prompt without a tokenizer, and a bad flag value', async () => {
    const dir = modelDir('notok');
    await expectError(['generate', dir, '--prompt', 'hi'], path.join(dir, 'tokenizer.json'), /needs a tokenizer\.json/);
    const r = await run(['generate', dir, '--ids', '1', '--top-p', '2']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--top-p must be a number/);
  });

  it('--debug shows the stack trace', async () => {
    const dir = modelDir('dbg', (d) => editConfig(d, (c) => { delete c.vocab_size; }));
    const r = await run(['inspect', dir, '--debug']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\n\s+at /);
  });
});
