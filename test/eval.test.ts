/**
 * Exact match on the built-in tasks (src/runtime/eval.ts) against a naive loop over the same held-out prompts: the
 * demo model's greedy answers (generate() until eos, eos removed), each checked by its task; the per-task and mean
 * scores; progress and per-example callbacks; a stand-in answerer that is always right or always wrong.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoeModel } from '../src/models/model.js';
import { answer, evaluate, evaluateWith, scoreTask, summarize } from '../src/runtime/eval.js';
import { generate } from '../src/runtime/generate.js';
import { heldOut, taskByName } from '../src/tasks/index.js';
import type { ProgressEvent } from '../src/util/progress.js';

const dir = path.resolve(__dirname, '../examples/demo-moe');
const model = MoeModel.load(dir);
const tok = loadTokenizer(dir)!;
const tasks = [taskByName('reverse'), taskByName('sort'), taskByName('dots')];

describe('eval', () => {
  it('the greedy answer: the new tokens up to eos, eos removed, within the task\'s budget', () => {
    const t = taskByName('reverse');
    expect(answer(model, tok, t, 'reverse anzzhp=')).toBe('phzzna');
    const r = generate(model, tok.encode('sort 05992=', true), { maxNewTokens: taskByName('sort').maxAnswerTokens + 1, greedy: true });
    expect(r.finishReason).toBe('eos');
    expect(answer(model, tok, taskByName('sort'), 'sort 05992=')).toBe(tok.decode(r.ids.slice(r.promptTokens, -1), false));
  });

  it('scores on held-out prompts equal a naive loop; means over text, image and all tasks', () => {
    const n = 4;
    const progress: ProgressEvent[] = [];
    const seen: [string, string, boolean][] = [];
    const rep = evaluate(model, tok, { tasks, n, onProgress: (e) => progress.push(e), onExample: (t, ex, out, right) => seen.push([t.name, out, right]) });
    let k = 0;
    const per: number[] = [];
    for (const t of tasks) {
      const exs = heldOut(t, n);
      let right = 0;
      for (const ex of exs) {
        const out = answer(model, tok, t, ex.prompt);
        const ok = t.check(ex.answer, out);
        expect(seen[k++]).toEqual([t.name, out, ok]);
        if (ok) right++;
      }
      expect(rep.tasks[t.name]).toEqual({ n: exs.length, exact_match: right / exs.length });
      per.push(right / exs.length);
    }
    expect(k).toBe(seen.length);
    expect(rep.text).toBeCloseTo((per[0] + per[1]) / 2, 12);
    expect(rep.image).toBeCloseTo(per[2], 12);
    expect(rep.mean).toBeCloseTo((per[0] + per[1] + per[2]) / 3, 12);
    // progress: initiate, one per example, done
    expect(progress[0]).toMatchObject({ status: 'initiate', task: 'eval', total: k });
    expect(progress.at(-1)).toMatchObject({ status: 'done', task: 'eval', total: k });
    expect(progress.slice(1, -1).map((p) => (p as { loaded: number }).loaded)).toEqual(Array.from({ length: k }, (_, i) => i + 1));
  });

  it('a stand-in answerer: always right scores 1, always wrong 0; text / image null when none evaluated', () => {
    const right = evaluateWith((t, prompt) => heldOut(t, 3).find((e) => e.prompt === prompt)!.answer, { tasks: tasks.slice(0, 2), n: 3 });
    expect(right).toEqual({ tasks: { reverse: { n: 3, exact_match: 1 }, sort: { n: 3, exact_match: 1 } }, text: 1, image: null, mean: 1 });
    const wrong = evaluateWith(() => '#', { tasks: [tasks[2]], n: 2 });
    expect(wrong).toEqual({ tasks: { dots: { n: 2, exact_match: 0 } }, text: null, image: 0, mean: 0 });
    expect(summarize([], [])).toEqual({ tasks: {}, text: null, image: null, mean: 0 });
  });

  it('scoreTask needs one output per example; no examples score 0', () => {
    const t = taskByName('reverse');
    const exs = heldOut(t, 2);
    expect(scoreTask(t, exs, [exs[0].answer, 'x'])).toEqual({ n: 2, exact_match: 0.5 });
    expect(scoreTask(t, [], [])).toEqual({ n: 0, exact_match: 0 });
    expect(() => scoreTask(t, exs, ['x'])).toThrow('scoreTask: 2 examples, 1 outputs');
  });

  it('a model without an eos id is refused', () => {
    const m = MoeModel.load(dir);
    (m.desc as { eosTokenIds: number[] }).eosTokenIds = [];
    expect(() => evaluate(m, tok, { tasks, n: 1 })).toThrow(/the model has no eos_token_id in its config\.json/);
  });
});
