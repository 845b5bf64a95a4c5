/**
 * The library entry point (src/index.ts, `import … from 'moekit'`): the README's example run as it is, through the
 * package's own exports map (a script inside the package imports 'moekit' by name), and the API's pieces: progress
 * events, tokens as an async iterator (early exit cancels), the completion, forward with tracing, inspect, plan.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoModelDir, inspect, loadModel, MoekitError, searchPlans, simulatePlan, type ProgressEvent } from '../src/index.js';
import { MoeModel } from '../src/models/model.js';
import { loadFailureHint, nativeAddonCandidates } from '../src/tensor/native.js';
import { checkExampleOutput, readmeExample, ROOT } from './package-example.js';

const tmp = fs.mkdtempSync(path.join(ROOT, '.moekit-tmp-api-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the README library example', () => {
  it("runs as it is, importing 'moekit' through the exports map", () => {
    const file = path.join(tmp, 'example.mjs');
    fs.writeFileSync(file, readmeExample());
    const r = spawnSync(process.execPath, [file], { cwd: tmp, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(checkExampleOutput(r.stdout)).toEqual([]);
  });
});

describe('the library API', () => {
  it('loadModel reports transformers.js progress events and resolves demo', async () => {
    const events: ProgressEvent[] = [];
    const model = await loadModel('demo', { progress_callback: (ev) => events.push(ev) });
    try {
      expect(model.dir).toBe(demoModelDir);
      const statuses = events.map((e) => e.status);
      expect(statuses[0]).toBe('initiate');
      expect(statuses.at(-1)).toBe('ready');
      expect(statuses).toContain('done');
    } finally {
      model.close();
    }
  });

  it('generate yields the tokens of complete(); leaving early cancels; ids, text and chat prompts', async () => {
    const model = await loadModel('demo');
    try {
      const ids: number[] = [];
      let text = '';
      for await (const t of model.generate('sort 3 1 2=', { maxNewTokens: 12 })) { ids.push(t.id); text += t.text ?? ''; }
      const c = await model.complete('sort 3 1 2=', { maxNewTokens: 12 });
      expect(c.newIds).toEqual(ids);
      expect(c.text).toBe(text);
      expect(c.ids).toEqual([...model.encode('sort 3 1 2='), ...ids]);
      expect(c.usage.completion_tokens).toBe(ids.length);
      expect((await model.complete(model.encode('sort 3 1 2='), { maxNewTokens: 12 })).newIds).toEqual(ids);
      expect((await model.complete([{ role: 'user', content: 'sort 3 1 2=' }], { maxNewTokens: 4 })).newIds.length).toBeGreaterThan(0);
      let n = 0;
      for await (const _ of model.generate('draw 42=', { maxNewTokens: 50 })) if (++n === 3) break;
      expect(n).toBe(3);
      const sampled = await model.complete('count a a b=', { maxNewTokens: 8, temperature: 0.8, seed: 1 });
      expect(await model.complete('count a a b=', { maxNewTokens: 8, temperature: 0.8, seed: 1 })).toMatchObject({ newIds: sampled.newIds });
    } finally {
      model.close();
    }
  });

  it('forward: the engine logits, router logits per MoE layer and the tracer', async () => {
    const model = await loadModel('demo');
    try {
      const ids = model.encode('sort 3 1 2=');
      const hidden: number[] = [];
      const r = model.forward([ids, ids], { trace: { hidden: (i) => hidden.push(i) } });
      const T = ids.length, V = model.desc.vocab;
      expect(r.shape).toEqual([2, T, V]);
      const engine = MoeModel.load(demoModelDir);
      expect(Array.from(r.logits)).toEqual(Array.from(engine.forward(Int32Array.from([...ids, ...ids]), 2, T)));
      expect(r.routerLogits.map((x) => x.moeLayer)).toEqual([0, 1, 2, 3]);
      expect(r.routerLogits[0]).toMatchObject({ N: 2 * T, E: 16 });
      expect(hidden).toEqual([0, 1, 2, 3, 4]);
      expect(() => model.forward([V])).toThrow(MoekitError);
      expect(() => model.forward([[1, 2], [1]])).toThrow(/same length/);
    } finally {
      model.close();
    }
  });

  it('inspect and plan', () => {
    expect(inspect('demo')).toMatchObject({ architecture: 'Qwen3MoeForCausalLM', moeLayers: 4 });
    const spec = { model: 'deepseek-v3', hardware: { preset: 'h800', devices: 2048 }, parallel: { pp: 16, ep: 64 }, training: { seq_len: 4096, global_batch: 15360 } };
    const sim = simulatePlan(spec);
    expect(sim.step_time_s).toBeGreaterThan(0);
    expect(spec.parallel).toEqual({ pp: 16, ep: 64 }); // the caller's object is not changed
    expect(searchPlans({ ...spec, parallel: {} }, { top: 3, fixed: { pp: 16, ep: 64, tp: 1 } }).simulations).toBeGreaterThan(0);
    expect(() => inspect('examples/demo-moe-not-here')).toThrow();
  });
});

describe('the native core', () => {
  it('is looked for in the prebuilds first, then the build from source', () => {
    expect(nativeAddonCandidates.map((f) => path.relative(ROOT, f))).toEqual([
      `prebuilds/${process.platform}-${process.arch}/moekit.node`, 'build/Release/moekit_native.node']);
  });
  it('names what to install when it will not load', () => {
    expect(loadFailureHint('libopenblas.so.0: cannot open shared object file: No such file or directory')).toMatch(/apt install libopenblas0/);
    expect(loadFailureHint("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found")).toMatch(/npx moekit native --build/);
    expect(loadFailureHint('invalid ELF header')).toMatch(/npx moekit native --build/);
  });
});
