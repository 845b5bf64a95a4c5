/**
 * The built-in corpus: every task's generator against an independent solver, its checker, prompts that
 * name their task, determinism by seed, a held-out split that training never reaches, the corpus's answer
 * spans and modalities, the tokenizer (through @huggingface/tokenizers, one token per pixel, the chat
 * template), and `moekit eval` on a random model and on an oracle.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { writeRandomCheckpoint } from '../src/models/synth.js';
import { MoeModel } from '../src/models/model.js';
import { answer, evaluateWith, scoreTask, summarize } from '../src/runtime/eval.js';
import { generate } from '../src/runtime/generate.js';
import { IMAGE, TEXT, corpus, exampleAt, tokenizeExample } from '../src/tasks/corpus.js';
import { DIGITS, ICONS, IMAGE_TOKENS, PIXEL_OFF, PIXEL_ON, SHAPES, SHAPE_SIZES, SIZE, parseImage, shapePattern,
         type Grid, type Pattern } from '../src/tasks/glyphs.js';
import { TASKS, selectTasks, taskByName, taskOfPrompt } from '../src/tasks/registry.js';
import { BUCKETS, heldOut, isHeldOut } from '../src/tasks/split.js';
import * as vocab from '../src/tasks/tokenizer.js';
import type { Pair, Task } from '../src/tasks/types.js';
import { MoekitError } from '../src/util/errors.js';
import { rng } from '../src/util/rng.js';
import { runCli, scratchDir } from './helpers.js';

const scratch = scratchDir('moekit-tasks-');

function samples(task: Task, n: number, seed = 1): Pair[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => task.generate(r));
}

// ---------------------------------------------------------------- independent solvers

/** the image in a prompt */
function imageIn(prompt: string): Grid {
  const g = parseImage(prompt.slice(prompt.indexOf('<img>'), prompt.indexOf('</img>') + 6));
  expect(g, prompt).not.toBeNull();
  return g!;
}

/** 8-connected components of on pixels, each as its cropped pattern with its box */
function components(g: Grid): { pattern: string[]; x0: number; y0: number; x1: number; y1: number; size: number }[] {
  const seen = new Uint8Array(g.length);
  const out = [];
  for (let s = 0; s < g.length; s++) {
    if (!g[s] || seen[s]) continue;
    const cells: number[] = [], stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      cells.push(i);
      const r = Math.floor(i / SIZE), c = i % SIZE;
      for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) {
        const rr = r + dr, cc = c + dc, j = rr * SIZE + cc;
        if (rr >= 0 && rr < SIZE && cc >= 0 && cc < SIZE && g[j] && !seen[j]) { seen[j] = 1; stack.push(j); }
      }
    }
    const rs = cells.map((i) => Math.floor(i / SIZE)), cs = cells.map((i) => i % SIZE);
    const x0 = Math.min(...cs), x1 = Math.max(...cs), y0 = Math.min(...rs), y1 = Math.max(...rs);
    out.push({ pattern: crop(g, x0, y0, x1 - x0 + 1, y1 - y0 + 1), x0, y0, x1, y1, size: cells.length });
  }
  return out;
}

function crop(g: Grid, x: number, y: number, w: number, h: number): string[] {
  return Array.from({ length: h }, (_, r) => Array.from({ length: w }, (_, c) => (g[(y + r) * SIZE + x + c] ? '#' : '.')).join(''));
}

const same = (a: Pattern, b: Pattern) => a.join('/') === b.join('/');

/** the one figure of a read-an-image prompt (the component of ≥ 2 pixels); the rest must be lone pixels clear of its box */
function figure(g: Grid): string[] {
  const comps = components(g);
  const figs = comps.filter((c) => c.size > 1);
  expect(figs.length).toBe(1);
  const f = figs[0];
  for (const n of comps.filter((c) => c.size === 1)) {
    expect(n.x0 < f.x0 - 1 || n.x0 > f.x1 + 1 || n.y0 < f.y0 - 1 || n.y0 > f.y1 + 1).toBe(true);
  }
  return f.pattern;
}

const SOLVERS: Record<string, (prompt: string) => string> = {
  add: (p) => { const [a, b] = p.slice(4, -1).split('+').map(Number); return String(a + b); },
  sort: (p) => p.slice(5, -1).split('').sort((a, b) => Number(a) - Number(b)).join(''),
  reverse: (p) => p.slice(8, -1).split('').reverse().join(''),
  count: (p) => { const [, c, s] = /^count (.) in (.*)=$/.exec(p)!; return String(s.split(c).length - 1); },
  balanced: (p) => {
    let s = p.slice(9, -1), prev = '';
    while (s !== prev) { prev = s; s = s.replace('()', '').replace('[]', ''); }
    return s === '' ? 'yes' : 'no';
  },
  lookup: (p) => { const [, kv, k] = /^lookup (.*) (.)=$/.exec(p)!; return Object.fromEntries(kv.split(' ').map((x) => x.split(':')))[k]; },
  hex2bin: (p) => { const h = p.slice(8, -1); return parseInt(h, 16).toString(2).padStart(4 * h.length, '0'); },
  caesar: (p) => {
    const [, k, s] = /^caesar (\d) ([a-z]+)=$/.exec(p)!;
    return String.fromCharCode(...[...s].map((c) => ((c.charCodeAt(0) - 97 + Number(k)) % 26) + 97));
  },
  digit: (p) => { const f = figure(imageIn(p)); return String(DIGITS.findIndex((d) => same(d, f))); },
  shape: (p) => {
    const f = figure(imageIn(p));
    const hits = SHAPES.filter((s) => SHAPE_SIZES[s].some((n) => same(shapePattern(s, n), f) || same(shapePattern(s, n, true), f)));
    expect(hits.length).toBe(1);
    return hits[0];
  },
  dots: (p) => { const cs = components(imageIn(p)); expect(cs.every((c) => c.size === 1)).toBe(true); return String(cs.length); },
};

/** whether answer draws what prompt asks (checked on the grid, not against the task's own renderer) */
const DRAW_CHECKS: Record<string, (prompt: string, answer: string) => void> = {
  draw: (p, a) => {
    const [d0, d1] = p.slice(5, 7).split('').map(Number);
    const g = parseImage(a)!;
    expect(crop(g, 0, 1, 3, 5)).toEqual(DIGITS[d0]);
    expect(crop(g, 5, 1, 3, 5)).toEqual(DIGITS[d1]);
    expect(g.reduce((s, x) => s + x, 0)).toBe([d0, d1].reduce((s, d) => s + DIGITS[d].join('').split('#').length - 1, 0));
  },
  icons: (p, a) => {
    const codes = p.slice(6, 10);
    const g = parseImage(a)!;
    let on = 0;
    [...codes].forEach((code, q) => {
      const want = code === '.' ? ['...', '...', '...'] : ICONS[code];
      expect(crop(g, (q % 2) * 4, Math.floor(q / 2) * 4, 3, 3)).toEqual(want);
      on += want.join('').split('#').length - 1;
    });
    expect(g.reduce((s, x) => s + x, 0)).toBe(on);
  },
};

// ---------------------------------------------------------------- tests

describe('the tasks', () => {
  it('at least 8 text tasks and image tasks that read and draw; names unique', () => {
    expect(TASKS.filter((t) => t.modality === 'text').length).toBeGreaterThanOrEqual(8);
    expect(TASKS.filter((t) => t.kind === 'understanding').length).toBeGreaterThanOrEqual(2);
    expect(TASKS.filter((t) => t.kind === 'generation').length).toBeGreaterThanOrEqual(2);
    expect(new Set(TASKS.map((t) => t.name)).size).toBe(TASKS.length);
    expect(Object.keys({ ...SOLVERS, ...DRAW_CHECKS }).sort()).toEqual(TASKS.map((t) => t.name).sort());
  });

  it('no prefix starts another, so every prompt names its task', () => {
    for (const a of TASKS) for (const b of TASKS) if (a !== b) expect(a.prefix.startsWith(b.prefix), `${a.name} / ${b.name}`).toBe(false);
  });

  describe.each(TASKS.map((t) => [t.name, t] as const))('%s', (_, task) => {
    const exs = samples(task, 400);
    it('prompts start with the prefix and end with =; answers are right (an independent solver) and fit the budget', () => {
      for (const ex of exs) {
        expect(taskOfPrompt(ex.prompt)).toBe(task);
        expect(ex.prompt.endsWith('=')).toBe(true);
        if (SOLVERS[task.name]) expect(ex.answer, ex.prompt).toBe(SOLVERS[task.name](ex.prompt));
        else DRAW_CHECKS[task.name](ex.prompt, ex.answer);
        expect(vocab.encode(ex.answer).length).toBeLessThanOrEqual(task.maxAnswerTokens);
      }
      expect(new Set(exs.map((e) => e.answer)).size).toBeGreaterThan(1);
    });

    it('the checker takes the answer and refuses a perturbed one', () => {
      for (const ex of exs.slice(0, 100)) {
        expect(task.check(ex.answer, ex.answer)).toBe(true);
        const chars = [...ex.answer];
        const last = chars.length - 1;
        chars[last] = chars[last] === PIXEL_ON ? PIXEL_OFF : chars[last] === PIXEL_OFF ? PIXEL_ON : chars[last] === '0' ? '1' : '0';
        if (ex.answer.endsWith('</img>')) chars.splice(-7, 1, chars[chars.length - 7] === PIXEL_ON ? PIXEL_OFF : PIXEL_ON);
        expect(task.check(ex.answer, chars.join(''))).toBe(false);
        expect(task.check(ex.answer, ex.answer + ex.answer.slice(-1))).toBe(false);
        expect(task.check(ex.answer, '')).toBe(false);
      }
    });

    it('the same seed gives the same examples; a prompt always has the same answer', () => {
      expect(samples(task, 50, 7)).toEqual(samples(task, 50, 7));
      expect(samples(task, 50, 7)).not.toEqual(samples(task, 50, 8));
      const answers = new Map<string, string>();
      for (const ex of samples(task, 3000, 3)) {
        expect(answers.get(ex.prompt) ?? ex.answer, ex.prompt).toBe(ex.answer);
        answers.set(ex.prompt, ex.answer);
      }
    });
  });

  it('the pictures are told apart: digits and icons distinct, every digit fills its 3×5 box, no two shapes share a picture', () => {
    expect(new Set(DIGITS.map((d) => d.join('/'))).size).toBe(10);
    for (const d of DIGITS) {
      expect(d.length).toBe(5);
      expect(d[0].includes('#') && d[4].includes('#') && d.some((r) => r[0] === '#') && d.some((r) => r[2] === '#')).toBe(true);
    }
    expect(new Set(Object.values(ICONS).map((p) => p.join('/'))).size).toBe(Object.keys(ICONS).length);
    const owner = new Map<string, string>();
    for (const s of SHAPES) for (const n of SHAPE_SIZES[s]) for (const v of [false, true]) {
      const key = shapePattern(s, n, v).join('/');
      expect(owner.get(key) ?? s, key).toBe(s);
      owner.set(key, s);
    }
  });

  it('--tasks lists: names, text, image, all; unknown names are errors', () => {
    expect(selectTasks('text').map((t) => t.modality)).toEqual(Array(8).fill('text'));
    expect(selectTasks('image').every((t) => t.modality === 'image')).toBe(true);
    expect(selectTasks('all')).toEqual(TASKS);
    expect(selectTasks('sort,add,add').map((t) => t.name)).toEqual(['add', 'sort']);
    expect(selectTasks('image,add').length).toBe(1 + selectTasks('image').length);
    expect(() => selectTasks('add,nope')).toThrow(/unknown task 'nope'/);
    expect(() => selectTasks('')).toThrow(MoekitError);
    expect(() => taskByName('x')).toThrow(MoekitError);
  });
});

describe('the held-out split', () => {
  it('held-out sets: distinct held-out prompts, fixed, each a prefix of a larger one', () => {
    for (const t of TASKS) {
      const h = heldOut(t, 60);
      if (t.name !== 'draw') expect(h.length, t.name).toBe(60);
      expect(new Set(h.map((e) => e.prompt)).size).toBe(h.length);
      expect(h.every((e) => isHeldOut(e.prompt))).toBe(true);
      expect(heldOut(t, 60)).toEqual(h);
      expect(heldOut(t, 20)).toEqual(h.slice(0, 20));
    }
    // the draw task has 100 prompts in all: about 1 in 16 are held out
    const draw = heldOut(taskByName('draw'), 100);
    expect(draw.length).toBeGreaterThanOrEqual(2);
    expect(draw.length).toBeLessThanOrEqual(16);
  });

  it('about 1 in 16 generated prompts is held out', () => {
    for (const t of TASKS.filter((x) => x.name !== 'draw')) {
      const f = samples(t, 4000, 5).filter((e) => isHeldOut(e.prompt)).length / 4000;
      expect(f, t.name).toBeGreaterThan(0.5 / BUCKETS);
      expect(f, t.name).toBeLessThan(1.6 / BUCKETS);
    }
  });

  it('20k training examples (two seeds) never hold a held-out prompt', () => {
    const held = new Set(TASKS.flatMap((t) => heldOut(t, 200).map((e) => e.prompt)));
    let n = 0;
    for (const seed of [0, 12345]) {
      const it = corpus(seed);
      for (let i = 0; i < 10_000; i++) {
        const ex = it.next().value;
        expect(held.has(ex.prompt)).toBe(false);
        expect(isHeldOut(ex.prompt)).toBe(false);
        n++;
      }
    }
    expect(n).toBe(20_000);
  });
});

describe('the corpus stream', () => {
  it('is fixed by its seed, indexable, resumable; different seeds differ', () => {
    const take = (seed: number, k: number, start?: number) => { const it = corpus(seed, { start }); return Array.from({ length: k }, () => it.next().value); };
    const a = take(3, 300);
    expect(take(3, 300)).toEqual(a);
    expect(take(3, 100, 200)).toEqual(a.slice(200));
    expect(exampleAt(3, 123)).toEqual(a[123]);
    expect(take(4, 300).map((e) => e.prompt)).not.toEqual(a.map((e) => e.prompt));
    expect(new Set(a.map((e) => e.task)).size).toBe(TASKS.length);
  });

  it('<bos> prompt answer <eos>, the answer span marked, image tokens (and only those) marked image', () => {
    const it = corpus(9);
    for (let i = 0; i < 2000; i++) {
      const ex = it.next().value;
      const ids = Array.from(ex.ids);
      expect(ids[0]).toBe(vocab.BOS_ID);
      expect(ids[ids.length - 1]).toBe(vocab.EOS_ID);
      expect(vocab.decode(ids.slice(1, ex.answerStart))).toBe(ex.prompt);
      expect(vocab.decode(ids.slice(ex.answerStart, -1))).toBe(ex.answer);
      expect(ex.modality.length).toBe(ids.length);
      const task = taskByName(ex.task);
      const imageTokens = ex.modality.filter((m) => m === IMAGE).length;
      expect(imageTokens).toBe(task.modality === 'image' ? IMAGE_TOKENS : 0);
      if (task.modality === 'image') {
        const s = ids.indexOf(vocab.IMG_START_ID), e = ids.indexOf(vocab.IMG_END_ID);
        ex.modality.forEach((m, t) => expect(m).toBe(t >= s && t <= e ? IMAGE : TEXT));
        // one token per pixel
        expect(ids.filter((x) => x === vocab.encode(PIXEL_ON)[0] || x === vocab.encode(PIXEL_OFF)[0]).length).toBe(SIZE * SIZE);
        expect(task.kind === 'generation' ? s >= ex.answerStart : e < ex.answerStart).toBe(true);
      }
    }
  });

  it('tasks and mix choose what it draws', () => {
    const it = corpus(1, { tasks: 'add,sort', mix: { add: 3, sort: 1 } });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 4000; i++) { const t = it.next().value.task; counts[t] = (counts[t] ?? 0) + 1; }
    expect(Object.keys(counts).sort()).toEqual(['add', 'sort']);
    expect(counts.add / 4000).toBeGreaterThan(0.72);
    expect(counts.add / 4000).toBeLessThan(0.78);
    const only = corpus(1, { tasks: 'image', mix: { digit: 0 } });
    for (let i = 0; i < 500; i++) expect(['shape', 'dots', 'draw', 'icons']).toContain(only.next().value.task);
    expect(() => corpus(1, { mix: { nope: 1 } }).next()).toThrow(/unknown task/);
    expect(() => corpus(1, { tasks: 'text', mix: { digit: 1 } }).next()).toThrow(/not among/);
    expect(() => corpus(1, { mix: { add: -1 } }).next()).toThrow(/≥ 0/);
    expect(() => corpus(1, { start: -1 }).next()).toThrow(MoekitError);
  });
});

describe('the tokenizer', () => {
  it('tokenizer.json through @huggingface/tokenizers: the corpus ids for every task, decoded back exactly', () => {
    const dir = path.join(scratch(), 'tok');
    vocab.writeTokenizer(dir);
    const tok = loadTokenizer(dir)!;
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    expect(Object.keys(json.model.vocab).length).toBe(vocab.VOCAB_SIZE);
    expect(vocab.VOCAB_SIZE).toBe(104);
    for (const t of TASKS) {
      for (const ex of samples(t, 150, 11)) {
        const c = tokenizeExample(t.name, ex);
        expect(tok.encode(ex.prompt)).toEqual([vocab.BOS_ID, ...vocab.encode(ex.prompt)]);
        expect(tok.encode(ex.prompt + ex.answer)).toEqual(Array.from(c.ids.slice(0, -1)));
        expect(tok.decode(Array.from(c.ids), false)).toBe(`<bos>${ex.prompt}${ex.answer}<eos>`);
        expect(tok.decode(Array.from(c.ids), true)).toBe(ex.prompt + ex.answer);
        expect(vocab.decode(vocab.encode(ex.prompt))).toBe(ex.prompt);
      }
    }
    // one token per pixel; characters outside the vocabulary are <unk>
    const img = samples(taskByName('draw'), 1)[0].answer;
    const ids = tok.encode(img, false);
    expect(ids.length).toBe(IMAGE_TOKENS);
    expect(ids.filter((i) => i === vocab.encode(PIXEL_ON)[0] || i === vocab.encode(PIXEL_OFF)[0]).length).toBe(SIZE * SIZE);
    expect(tok.encode('é€', false)).toEqual([vocab.UNK_ID, vocab.UNK_ID]);
    expect(vocab.encode('é€')).toEqual([vocab.UNK_ID, vocab.UNK_ID]);
    expect(tok.encode('a<eos>b', false)).toEqual(vocab.encode('a<eos>b'));
    const stm = JSON.parse(fs.readFileSync(path.join(dir, 'special_tokens_map.json'), 'utf8'));
    expect(stm).toEqual({ bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>', unk_token: '<unk>' });
  });

  it('the chat template renders a conversation as the corpus packs it', () => {
    const dir = path.join(scratch(), 'tok-chat');
    vocab.writeTokenizer(dir);
    const tok = loadTokenizer(dir)!;
    const it = corpus(2);
    const a = it.next().value, b = it.next().value;
    expect(tok.applyChatTemplate([{ role: 'user', content: a.prompt }])).toEqual(Array.from(a.ids.slice(0, a.answerStart)));
    expect(tok.applyChatTemplate([
      { role: 'system', content: 'ignored' }, { role: 'user', content: a.prompt }, { role: 'assistant', content: a.answer },
      { role: 'user', content: b.prompt }, { role: 'assistant', content: b.answer },
    ], false)).toEqual([...a.ids, ...b.ids]);
    const text = new Template(vocab.CHAT_TEMPLATE).render({
      messages: [{ role: 'user', content: 'add 1+2=' }, { role: 'assistant', content: '3' }], bos_token: '<bos>', eos_token: '<eos>', add_generation_prompt: false,
    });
    expect(text).toBe('<bos>add 1+2=3<eos>');
  });
});

describe('moekit eval', () => {
  const model = () => {
    const dir = path.join(scratch(), 'random');
    if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return dir;
    writeRandomCheckpoint(dir, {
      architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', vocab_size: vocab.VOCAB_SIZE, hidden_size: 32,
      intermediate_size: 64, moe_intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
      head_dim: 8, num_experts: 4, num_experts_per_tok: 2, max_position_embeddings: 256, rms_norm_eps: 1e-6,
      bos_token_id: vocab.BOS_ID, eos_token_id: vocab.EOS_ID, pad_token_id: vocab.PAD_ID, tie_word_embeddings: false,
      rope_parameters: { rope_theta: 10000, rope_type: 'default' }, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [],
    }, 5);
    vocab.writeTokenizer(dir);
    return dir;
  };

  it('runs on a random-weight model and reports about 0 exact match, per task and as means', async () => {
    const r = await runCli(['eval', model(), '--tasks', 'add,count,dots,draw', '--n', '4', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(Object.keys(j)).toEqual(['tasks', 'text', 'image', 'mean']);
    expect(Object.keys(j.tasks)).toEqual(['add', 'count', 'dots', 'draw']);
    for (const name of ['add', 'count', 'dots']) expect(j.tasks[name].n).toBe(4);
    for (const s of Object.values(j.tasks) as { exact_match: number }[]) expect(s.exact_match).toBeLessThanOrEqual(0.25);
    expect(j.mean).toBeLessThanOrEqual(0.25);
    const t = await runCli(['eval', model(), '--tasks', 'text', '--n', '2', '--greedy']);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^task +kind +n +exact match\nadd +text +2 +\d+\.\d%/);
    expect(t.out).toMatch(/\ntext +mean of 8 +\d+\.\d%\nall +mean of 8 +\d+\.\d%\n$/);
  });

  it('answer() is the decoded greedy continuation up to <eos>', () => {
    const dir = model();
    const m = MoeModel.load(dir), tok = loadTokenizer(dir)!;
    for (const task of [taskByName('add'), taskByName('icons')]) {
      const ex = heldOut(task, 1)[0];
      const g = generate(m, tok.encode(ex.prompt), { maxNewTokens: task.maxAnswerTokens + 1, greedy: true });
      const out = g.ids.slice(g.promptTokens).filter((i) => i !== vocab.EOS_ID);
      expect(answer(m, tok, task, ex.prompt)).toBe(out.length ? vocab.decode(out) : '');
    }
  });

  it('the scoring on an oracle: true answers score 100%, wrong ones 0%, the means are over tasks', () => {
    const tasks = selectTasks('all');
    const truth = new Map(tasks.flatMap((t) => heldOut(t, 30).map((e) => [e.prompt, e.answer] as const)));
    const right = evaluateWith((_, p) => truth.get(p)!, { tasks, n: 30 });
    expect(Object.values(right.tasks).every((s) => s.exact_match === 1)).toBe(true);
    expect([right.text, right.image, right.mean]).toEqual([1, 1, 1]);
    expect(evaluateWith((_, p) => truth.get(p)! + ' ', { tasks, n: 30 }).mean).toBe(0);
    // text right, images wrong: text 1, image 0, mean 8/13
    const half = evaluateWith((t, p) => (t.modality === 'text' ? truth.get(p)! : ''), { tasks, n: 30 });
    expect([half.text, half.image]).toEqual([1, 0]);
    expect(half.mean).toBeCloseTo(8 / 13, 12);
    const add = taskByName('add');
    expect(scoreTask(add, [{ prompt: 'add 1+1=', answer: '2' }, { prompt: 'add 2+2=', answer: '4' }], ['2', '5'])).toEqual({ n: 2, exact_match: 0.5 });
    expect(summarize([add], [{ n: 3, exact_match: 1 / 3 }])).toEqual({ tasks: { add: { n: 3, exact_match: 1 / 3 } }, text: 1 / 3, image: null, mean: 1 / 3 });
  });

  it('one-line errors: unknown tasks, bad --n, no tokenizer, no directory', async () => {
    const dir = model();
    const bare = path.join(scratch(), 'bare');
    fs.mkdirSync(bare, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(dir, f), path.join(bare, f));
    for (const [args, re] of [
      [['--tasks', 'add,mul'], /^moekit: unknown task 'mul' \(tasks: add, .*\)\n$/],
      [['--n', '0'], /^moekit: --n must be an integer ≥ 1, got '0'\n$/],
      [['--n', 'x'], /^moekit: --n must be an integer/],
    ] as const) {
      const r = await runCli(['eval', dir, ...args]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(re);
    }
    const nt = await runCli(['eval', bare]);
    expect(nt.code).toBe(1);
    expect(nt.err).toBe(`moekit: ${path.join(bare, 'tokenizer.json')}: eval needs the tokenizer the model was trained with (tokenizer.json); none here\n`);
    const nd = await runCli(['eval', path.join(scratch(), 'nothing')]);
    expect(nd.err).toMatch(/no such directory\n$/);
  });
});
