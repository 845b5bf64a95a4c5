/**
 * The same golden checks through the command line: `moekit forward` writes logits and router
 * logits matching reference.safetensors; `moekit generate --greedy --json` gives the
 * reference's greedy ids.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfig } from '../src/io/config.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { describeModel } from '../src/models/registry.js';
import { maxAbsDiff, runCli } from './helpers.js';
import { FIXTURE_ARCHS, routerName, routersPerLayer } from './archs.js';

const ROOT = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const ARCHS = FIXTURE_ARCHS;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = runCli;


describe.each(ARCHS)('%s through the CLI', (arch) => {
  const dir = path.join(ROOT, arch);
  const refPath = path.join(dir, 'reference.safetensors');

  it('moekit forward matches logits and router logits', async () => {
    const out = path.join(tmp, `${arch}.safetensors`);
    const r = await run(['forward', dir, '--input', refPath, '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).out).toBe(out);
    const ref = SafetensorsFile.open(refPath);
    const got = SafetensorsFile.open(out);
    expect(got.info('logits').shape).toEqual(ref.info('logits').shape);
    expect(maxAbsDiff(got.readF32('logits'), ref.readF32('logits'))).toBeLessThanOrEqual(1e-4);
    const refRouters = ref.names().filter((n) => n.startsWith('router_logits.'));
    const { desc } = describeModel(readConfig(dir)); // the MoE layers (and their experts) the config declares
    const moeLayers = desc.layers.filter((l) => l.mlp === 'moe').length;
    // where the reference holds more than one router per layer (JetMoE: test/archs.ts ROUTER_LAYOUT), each by its slot
    if (refRouters.length > 0) expect(refRouters.length).toBe(moeLayers * routersPerLayer(arch, 'reference'));
    for (let L = 0; L < moeLayers && refRouters.length > 0; L++) {
      const n = routerName(arch, 'reference', L);
      expect(maxAbsDiff(got.readF32(`router_logits.${L}`), ref.readF32(n)), n).toBeLessThanOrEqual(1e-4);
      if (desc.attention.moa) {
        const a = routerName(arch, 'reference', L, 'attention');
        expect(maxAbsDiff(got.readF32(`attention_router_logits.${L}`), ref.readF32(a)), a).toBeLessThanOrEqual(1e-4);
      }
    }
    expect(got.names().filter((n) => n.startsWith('attention_router_logits.')).length).toBe(desc.attention.moa ? desc.nLayers : 0);
    expect(moeLayers).toBeGreaterThan(0);
    expect(got.names().filter((n) => n.startsWith('router_logits.')).length).toBe(moeLayers);
    for (const n of got.names().filter((x) => x.startsWith('router_logits.'))) expect(got.info(n).shape).toEqual([48, desc.moe.experts]);
    ref.close(); got.close();
  });

  it('moekit generate --greedy gives the reference ids', async () => {
    const ref = SafetensorsFile.open(refPath);
    const want = Array.from(ref.readI32('generated_ids'));
    const prompt = Array.from(ref.readI32('input_ids').subarray(0, 8));
    ref.close();
    const r = await run(['generate', dir, '--ids', prompt.join(','), '--max-new-tokens', String(want.length - 8), '--greedy', '--no-stop', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).ids).toEqual(want);
  });
});

describe('sampling through the CLI', () => {
  it('is repeatable with a seed and differs across seeds', async () => {
    const dir = path.join(ROOT, 'qwen3_moe');
    const args = (seed: number) => ['generate', dir, '--ids', '1,2,3', '--max-new-tokens', '12', '--temperature', '1.5', '--top-k', '50', '--top-p', '0.95', '--seed', String(seed), '--json'];
    const a = JSON.parse((await run(args(1))).out).ids;
    const b = JSON.parse((await run(args(1))).out).ids;
    const c = JSON.parse((await run(args(2))).out).ids;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});
