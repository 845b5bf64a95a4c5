/**
 * The trainer's example sources (src/train/data.ts, src/train/corpus.ts): text files split into paragraphs, JSONL
 * lines of {text} or {prompt, answer} (bad lines refused with their line number), and the built-in task corpus with
 * the loss on the answer only: each held to what the files say and to the corpus's own exampleAt.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exampleAt } from '../src/tasks/corpus.js';
import { encode } from '../src/tasks/tokenizer.js';
import { builtinSource } from '../src/train/corpus.js';
import { jsonlSource, listSource, textFileSource, type Example, type ExampleSource } from '../src/train/data.js';
import { scratchDir } from './helpers.js';

const tmp = scratchDir('moekit-sources-');
const write = (name: string, text: string) => { const f = path.join(tmp(), name); fs.writeFileSync(f, text); return f; };
/** one epoch of a source of n examples, sorted (the order is listSource's shuffle, tested in train-units) */
const epoch = (s: ExampleSource, n: number, e = 0) => Array.from({ length: n }, (_, i) => JSON.stringify(s.at(e * n + i))).sort();
const sorted = (xs: Example[]) => xs.map((x) => JSON.stringify(x)).sort();
/** the MoekitError f throws: its message and the file it names */
function refusal(f: () => unknown): { message: string; file?: string } {
  try { f(); } catch (e) { return { message: (e as Error).message, file: (e as { file?: string }).file }; }
  throw new Error('nothing was refused');
}

describe('text files', () => {
  it('every paragraph (split at blank lines, even ones holding spaces) one example, trimmed; files in turn', () => {
    const a = write('a.txt', '  first para\nstill first  \n\nsecond\n \t \nthird\n\n\n\n');
    const b = write('b.txt', '\n\nfourth one\n');
    const s = textFileSource([a, b], 9);
    const want = [{ text: 'first para\nstill first' }, { text: 'second' }, { text: 'third' }, { text: 'fourth one' }];
    expect(epoch(s, 4)).toEqual(sorted(want));
    expect(epoch(s, 4, 1)).toEqual(sorted(want)); // the next epoch: the same examples
    // the order is listSource's with the same seed
    const ref = listSource(want, 9);
    expect(Array.from({ length: 8 }, (_, i) => s.at(i))).toEqual(Array.from({ length: 8 }, (_, i) => ref.at(i)));
  });

  it('files without a paragraph are refused, naming them', () => {
    const e = write('empty.txt', '\n \n\n');
    expect(refusal(() => textFileSource([e], 0))).toEqual({ message: `${e}: no examples`, file: undefined });
  });
});

describe('JSONL files', () => {
  it('{text} and {prompt, answer} lines, blank lines skipped, other keys ignored', () => {
    const f = write('d.jsonl', ['{"text": "hello"}', '', '   ', '{"prompt": "2+2=", "answer": "4", "id": 7}', '{"text": "t", "prompt": "p"}'].join('\n'));
    const g = write('e.jsonl', '{"prompt": "", "answer": "x"}\n');
    const s = jsonlSource([f, g], 3);
    const want = [{ text: 'hello' }, { prompt: '2+2=', answer: '4' }, { text: 't' }, { prompt: '', answer: 'x' }];
    expect(epoch(s, 4)).toEqual(sorted(want));
    const ref = listSource(want, 3);
    expect(Array.from({ length: 6 }, (_, i) => s.at(i))).toEqual(Array.from({ length: 6 }, (_, i) => ref.at(i)));
  });

  it.each([
    ['{"text": "ok"}\n{"text": 5}', 2],
    ['{"prompt": "p"}', 1],
    ['{"answer": "a"}', 1],
    ['{"prompt": "p", "answer": 3}', 1],
    ['\n\n["text"]', 3],
    ['null', 1],
    ['"text"', 1],
    ['{"text": null, "prompt": "p", "answer": null}', 1],
  ])('a line of another shape is refused with its number: %j', (text, line) => {
    const f = write('bad.jsonl', text);
    expect(refusal(() => jsonlSource([f], 0))).toEqual({ message: `line ${line}: expected {"text": string} or {"prompt": string, "answer": string}`, file: f });
  });

  it('malformed JSON is refused with its line number and the parser\'s reason', () => {
    const f = write('broken.jsonl', '{"text": "a"}\n\n{"text": "b"');
    const r = refusal(() => jsonlSource([f], 0));
    expect(r.file).toBe(f);
    let why = '';
    try { JSON.parse('{"text": "b"'); } catch (e) { why = (e as Error).message; }
    expect(r.message).toBe(`line 3: malformed JSON: ${why}`);
    const only = write('blank.jsonl', '\n\n');
    expect(refusal(() => jsonlSource([only], 0)).message).toBe(`${only}: no examples`);
  });
});

describe('the built-in corpus', () => {
  it('example i is the corpus\'s example i, already tokenized, the loss on the answer and <eos> only', () => {
    const o = { tasks: ['add', 'sort'], mix: { add: 3 } };
    const s = builtinSource(7, o.tasks, o.mix);
    for (let i = 0; i < 30; i++) {
      const ex = exampleAt(7, i, o);
      const got = s.at(i);
      expect(got.tokens!.ids).toEqual(Array.from(ex.ids));
      // the prompt ([bos] and its tokens) not counted, the answer's tokens and <eos> counted
      const P = 1 + encode(ex.prompt).length;
      expect(got.tokens!.mask).toEqual(Array.from(ex.ids, (_, t) => (t >= P ? 1 : 0)));
      expect(got.tokens!.mask.reduce((a, b) => a + b, 0)).toBe(encode(ex.answer).length + 1);
    }
    // the mix counts: add drawn about 3 times as often as sort
    const tasks = Array.from({ length: 400 }, (_, i) => exampleAt(7, i, o).task);
    const adds = tasks.filter((t) => t === 'add').length;
    expect(adds / 400).toBeGreaterThan(0.65);
    expect(adds / 400).toBeLessThan(0.85);
  });

  it('no tasks and no mix: the whole corpus at weight 1 each; a mix of 0 leaves a task out', () => {
    const all = builtinSource(3, []), ref = (i: number) => Array.from(exampleAt(3, i).ids);
    for (let i = 0; i < 30; i++) expect(all.at(i).tokens!.ids).toEqual(ref(i));
    const onlySort = builtinSource(3, ['add', 'sort'], { add: 0 });
    for (let i = 0; i < 20; i++) {
      expect(exampleAt(3, i, { tasks: ['add', 'sort'], mix: { add: 0 } }).task).toBe('sort');
      expect(onlySort.at(i).tokens!.ids).toEqual(Array.from(exampleAt(3, i, { tasks: ['sort'] }).ids));
    }
  });

  it('unknown task names and bad mix weights are refused when the source is made, as data errors', () => {
    expect(() => builtinSource(0, ['add', 'no-such-task'])).toThrow(/^data: .*no-such-task/);
    expect(() => builtinSource(0, ['add'], { add: -1 })).toThrow(/^data: mix weight of 'add' must be a number ≥ 0, got -1$/);
    expect(() => builtinSource(0, ['add'], { sort: 1 })).toThrow(/^data: mix names 'sort', which is not among the corpus's tasks$/);
  });
});
