/**
 * The pattern store, retrieval and pattern generation on the demo model (and fixtures): `experts profile`
 * writes a store that `experts retrieve` reads (the match and its distance, the threshold's fallback);
 * `generate --experts TASK` equals the pruned checkpoint's generation, reading only the pattern's experts;
 * with a memory budget far below the model (lazy experts, evicting) generation is exactly the eager one;
 * a corrupt, truncated, foreign or incomplete store gives one line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { heldOut } from '../src/tasks/split.js';
import { taskByName } from '../src/tasks/registry.js';
import { readStore, modelIdentity } from '../src/experts/store.js';
import { runCli, scratchDir } from './helpers.js';

const DEMO = path.resolve(__dirname, '../examples/demo-moe');
const FIX = path.resolve(__dirname, '../fixtures/hf-tiny-moe');
const tmp = scratchDir('moekit-premoe-store-');
const TASKS = ['sort', 'balanced', 'draw'];

let store = '';
beforeAll(async () => {
  store = path.join(tmp(), 'demo.store.json');
  const r = await runCli(['experts', 'profile', DEMO, '--store', store, '--tasks', TASKS.join(','), '--n', '16', '--json']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
});

const one = (r: { code: number; err: string }, re: RegExp) => {
  expect(r.code).toBe(1);
  expect(r.err).toMatch(re);
  expect(r.err.trim().split('\n')).toHaveLength(1);
};

describe('experts profile and retrieve', () => {
  it('the store: every task complete, scores per MoE layer, kept sets per budget, bytes per pattern', async () => {
    const s = readStore(store, DEMO);
    expect(Object.keys(s.tasks)).toEqual(TASKS);
    for (const t of TASKS) {
      expect(s.tasks[t]).toMatchObject({ complete: true, examples: 16, target: 16, source: 'builtin' });
      expect(Object.keys(s.tasks[t].scores.tcess)).toEqual(['0', '1', '2', '3']);
      expect(s.tasks[t].keep.tcess['8']['0']).toHaveLength(8);
    }
    expect(s.general?.examples).toBe(48);
    const { bytes } = modelIdentity(DEMO);
    expect(s.bytes.budgets.map((b) => b.keep)).toEqual([16, 12, 8, 4]);
    expect(s.bytes.budgets[2].bytes).toBe(Math.round(bytes.nonExpert + 8 * bytes.perExpertAllLayers));
    const full = fs.statSync(path.join(DEMO, 'model.safetensors')).size;
    expect(s.bytes.budgets[0].bytes).toBeLessThanOrEqual(full); // tensor bytes, the header aside
    const r = await runCli(['inspect', DEMO, '--store', store]);
    expect(r.out).toMatch(/keep +8\/16 experts per layer \(top-2\): 3\.44 MiB/);
  });
  it('retrieve prints the match and its distance; held-out prompts find their task; the threshold falls back', async () => {
    for (const t of TASKS) {
      for (const ex of heldOut(taskByName(t), 4)) {
        const r = await runCli(['experts', 'retrieve', store, DEMO, '--prompt', ex.prompt, '--json']);
        expect(r.err).toBe('');
        const j = JSON.parse(r.out);
        expect(j.match).toBe(t);
        expect(j.pattern).toBe(t);
        expect(j.distance).toBeLessThanOrEqual(j.threshold);
      }
    }
    const r = await runCli(['experts', 'retrieve', store, DEMO, '--prompt', 'sort 123=']);
    expect(r.out).toMatch(/^match sort, distance \d\.\d+ \(threshold \d\.\d+\); next: /);
    expect(JSON.parse((await runCli(['experts', 'retrieve', store, DEMO, '--prompt', 'sort 123=', '--threshold', '0', '--json'])).out).pattern).toBe('general');
    expect(JSON.parse((await runCli(['experts', 'retrieve', store, DEMO, '--prompt', 'sort 123=', '--threshold', '0', '--fallback', 'full', '--json'])).out).pattern).toBe('full');
  });
  it('profiling again resumes nothing when complete, and adds a task to the same store', async () => {
    const r = await runCli(['experts', 'profile', DEMO, '--store', store, '--tasks', 'sort', '--n', '16', '--json']);
    expect(JSON.parse(r.out)).toMatchObject({ examples: 0, interrupted: false });
    one(await runCli(['experts', 'profile', DEMO, '--store', store, '--tasks', 'sort', '--n', '20']), /complete with 16 examples; --n 20 asks for 20/);
  });
});

describe('generation with a pattern', () => {
  const gen = async (args: string[]) => {
    const r = await runCli(['generate', ...args, '--max-new-tokens', '80', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.out);
  };
  it('--experts TASK = its pruned checkpoint, reading only the pattern\'s experts; a small memory budget and retrieval change nothing', async () => {
    const out = path.join(tmp(), 'draw-4');
    const p = await runCli(['experts', 'prune', DEMO, '--task', 'draw', '--keep-experts', '4', '--score', 'tcess', '--store', store, '--out', out]);
    expect(p.code).toBe(0);
    let differs = 0;
    for (const prompt of ['draw 42=', 'draw 7=', 'hex2bin f3=']) {
      const pruned = await gen([out, '--prompt', prompt]);
      if ((await gen([DEMO, '--prompt', prompt])).ids.join() !== pruned.ids.join()) differs++;
      const pat = await gen([DEMO, '--prompt', prompt, '--experts', 'draw', '--store', store, '--keep-experts', '4']);
      expect(pat.ids).toEqual(pruned.ids);
      expect(pat.pattern).toMatchObject({ task: 'draw', keep: 4, top_k: 2 });
      const perExpert = modelIdentity(DEMO).bytes.perExpertAllLayers / 4; // one expert of one layer (bf16)
      expect(pat.experts.resident_bytes).toBeLessThanOrEqual(4 * 4 * perExpert);
      expect(pat.experts.evictions).toBe(0);
      // a memory budget of the non-expert weights + 3 experts: evicting all the time, the same tokens
      const small = await gen([DEMO, '--prompt', prompt, '--experts', 'draw', '--store', store, '--keep-experts', '4', '--memory-budget', String(modelIdentity(DEMO).bytes.nonExpert + 3 * perExpert)]);
      expect(small.ids).toEqual(pruned.ids);
      expect(small.experts.evictions).toBeGreaterThan(0);
      expect(small.experts.resident_bytes).toBeLessThanOrEqual(3 * perExpert);
    }
    expect(differs).toBeGreaterThan(0); // the pattern is not the full model (the draw experts alone still sort: hex2bin is where they part)
    const auto = await gen([DEMO, '--prompt', 'draw 42=', '--experts', 'auto', '--store', store, '--keep-experts', '4']);
    expect(auto.pattern).toMatchObject({ task: 'draw', nearest: 'draw' });
    expect(auto.ids).toEqual((await gen([out, '--prompt', 'draw 42='])).ids);
  });
  it.each(['qwen3_moe', 'deepseek_v3', 'gpt_oss'])('%s: the full model under a memory budget below its size = eager, exactly', async (arch) => {
    const dir = path.join(FIX, arch);
    const { bytes } = modelIdentity(dir);
    const budget = bytes.nonExpert + 2 * (bytes.perExpertAllLayers / 3); // about 2 experts of one layer (3 MoE layers or fewer)
    const ids = '1,5,9,12,7,3,30,2';
    const eager = await gen([dir, '--ids', ids, '--no-stop']);
    const lazy = await gen([dir, '--ids', ids, '--no-stop', '--memory-budget', String(Math.floor(budget))]);
    expect(lazy.ids).toEqual(eager.ids);
    expect(lazy.experts.evictions).toBeGreaterThan(0);
    expect(lazy.experts.budget_bytes).toBe(Math.floor(budget) - bytes.nonExpert);
  });
});

describe('bad stores and flags give one line', () => {
  it('corrupt, truncated, empty, missing layers, another model, incomplete pattern', async () => {
    const text = fs.readFileSync(store, 'utf8');
    const bad = path.join(tmp(), 'bad.json');
    const retrieve = (f: string, dir = DEMO) => runCli(['experts', 'retrieve', f, dir, '--prompt', 'sort 1=']);
    fs.writeFileSync(bad, text.slice(0, text.length >> 1));
    one(await retrieve(bad), /malformed JSON \(truncated or corrupt\)/);
    fs.writeFileSync(bad, '');
    one(await retrieve(bad), /malformed JSON \(empty\)/);
    fs.writeFileSync(bad, '{"format": "something else"}');
    one(await retrieve(bad), /not a moekit pattern store/);
    const s = JSON.parse(text);
    delete s.tasks.sort.sums['2'];
    fs.writeFileSync(bad, JSON.stringify(s));
    one(await retrieve(bad), /pattern 'sort' has no scores for MoE layer 2/);
    const s2 = JSON.parse(text);
    s2.tasks.draw.sums['1'].tcess.pop();
    fs.writeFileSync(bad, JSON.stringify(s2));
    one(await retrieve(bad), /pattern 'draw', layer 1, tcess: expected 16 finite numbers/);
    one(await retrieve(store, path.join(FIX, 'qwen3_moe')), /profiled on another model \(qwen3_moe, 16 experts, id [0-9a-f]+\); .* is qwen3_moe, 8 experts/);
    one(await retrieve(path.join(tmp(), 'none.json')), /no such pattern store/);
    const s3 = JSON.parse(text);
    s3.tasks.draw.complete = false;
    s3.tasks.draw.examples = 5;
    fs.writeFileSync(bad, JSON.stringify(s3));
    one(await runCli(['generate', DEMO, '--prompt', 'draw 1=', '--experts', 'draw', '--store', bad]), /pattern of task 'draw' is incomplete \(5 of 16 examples/);
  });
  it('generate flags', async () => {
    one(await runCli(['generate', DEMO, '--prompt', 'x', '--experts', 'draw']), /--experts draw needs --store STORE/);
    one(await runCli(['generate', DEMO, '--prompt', 'x', '--store', store]), /--store needs --experts auto\|TASK/);
    one(await runCli(['generate', DEMO, '--prompt', 'x', '--memory-budget', '1K']), /--memory-budget 1024 is below the \d+ bytes of the model's non-expert weights/);
    one(await runCli(['generate', DEMO, '--prompt', 'x', '--experts', 'nope', '--store', store]), /no pattern for task 'nope'/);
    one(await runCli(['generate', DEMO, '--prompt', 'x', '--experts', 'draw', '--store', store, '--keep-experts', '17']), /--keep-experts must be an integer in \[1, 16\]/);
  });
});

describe('experts eval and file calibration', () => {
  it('the grid: the full row is moekit eval\'s exact match; pattern rows read fewer bytes; retrieval and end to end', async () => {
    const { evaluatePatterns } = await import('../src/experts/evaluate.js');
    const { loadTokenizer } = await import('../src/io/tokenizer.js');
    const { MoeModel } = await import('../src/models/model.js');
    const { evaluate } = await import('../src/runtime/eval.js');
    const { selectTasks } = await import('../src/tasks/registry.js');
    const tok = loadTokenizer(DEMO)!;
    const model = MoeModel.load(DEMO);
    const s = readStore(store, DEMO);
    const r = evaluatePatterns(DEMO, s, model.desc, tok, model, { n: 4, scores: ['tcess', 'reap'], ratios: [1, 0.5, 0.25] });
    expect(r.tasks).toEqual(TASKS);
    expect(r.grid.map((g) => `${g.score} ${g.keep}`)).toEqual(['full 16', 'tcess 8', 'tcess 4', 'reap 8', 'reap 4']);
    const plain = evaluate(model, tok, { tasks: selectTasks(TASKS), n: 4 });
    for (const t of TASKS) expect(r.grid[0].tasks[t]).toBe(plain.tasks[t].exact_match);
    const perExpert = s.bytes.perExpertAllLayers;
    for (const g of r.grid.slice(1)) expect(g.bytesLoaded).toBeLessThanOrEqual(s.bytes.nonExpert + g.keep * perExpert + 1);
    expect(r.retrieval.accuracy).toBeGreaterThan(0.9);
    expect(r.endToEnd.map((e) => e.keep)).toEqual([8, 4]);
  });
  it('--data NAME=FILE: JSONL prompts with answers (their tokens count) and plain lines', async () => {
    const f = path.join(tmp(), 'cal.jsonl');
    fs.writeFileSync(f, '{"prompt": "sort 31=", "answer": "13"}\nsort 42=\n{"text": "sort 9="}\n');
    const st = path.join(tmp(), 'file.store.json');
    const r = await runCli(['experts', 'profile', DEMO, '--store', st, '--data', `mine=${f}`, '--n', '10', '--json']);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    // <bos> + prompt (+ answer): 1 + 8 + 2, 1 + 8, 1 + 7
    expect(j.tasks.mine).toEqual({ examples: 3, target: 3, complete: true, tokens: 11 + 9 + 8 });
    one(await runCli(['experts', 'profile', DEMO, '--store', st, '--data', 'mine']), /--data must be NAME=FILE/);
    fs.writeFileSync(f, '{"prompt": 3}\n');
    one(await runCli(['experts', 'profile', DEMO, '--store', path.join(tmp(), 'x.json'), '--data', `m=${f}`]), /line 1: a JSONL line needs "text" or "prompt"/);
  });
});

describe('an interrupted profile (SIGINT to the CLI)', () => {
  it('exits 130, leaves the store readable, and the same command resumes it', async () => {
    const { spawn } = await import('node:child_process');
    const bin = path.resolve(__dirname, '../bin/moekit.js');
    const st = path.join(tmp(), 'sigint.store.json');
    const child = spawn(process.execPath, [bin, 'experts', 'profile', DEMO, '--store', st, '--tasks', 'draw', '--n', '100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => { err += String(b); });
    const code = await new Promise<number | null>((resolve) => {
      const poll = setInterval(() => { if (fs.existsSync(st)) { clearInterval(poll); child.kill('SIGINT'); } }, 50);
      child.on('exit', (c) => { clearInterval(poll); resolve(c); });
    });
    expect(code).toBe(130);
    expect(err).toMatch(/interrupted; the store keeps what was profiled/);
    const s = readStore(st, DEMO);
    const done = s.tasks.draw.examples;
    expect(s.tasks.draw).toMatchObject({ complete: false, target: 100000 });
    expect(done).toBeGreaterThan(0);
    const r = await runCli(['experts', 'profile', DEMO, '--store', st, '--tasks', 'draw', '--n', String(done + 2), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ examples: 2, tasks: { draw: { examples: done + 2, complete: true } } });
  }, 60_000);
  it('--help answers every experts command with exit 0', async () => {
    for (const c of [[], ['profile'], ['prune'], ['retrieve'], ['eval']]) {
      const r = await runCli(['experts', ...c, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/usage/);
    }
  });
});
