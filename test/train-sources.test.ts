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
import { loadTokenizer } from '../src/io/tokenizer.js';
import { jsonlSource, listSource, Packer, textFileSource, tokenizeExample, type Example, type ExampleSource } from '../src/train/data.js';
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

  it('files without a paragraph are refused, naming them; a missing one as a data file', () => {
    const e = write('empty.txt', '\n \n\n'), e2 = write('empty2.txt', '   ');
    expect(refusal(() => textFileSource([e, e2], 0))).toEqual({ message: `${e}, ${e2}: no examples`, file: undefined });
    expect(textFileSource([write('tail.txt', 'a\n\n   ')], 0).at(1)).toEqual({ text: 'a' }); // a blank last paragraph is no example
    const missing = path.join(tmp(), 'missing.txt');
    expect(refusal(() => textFileSource([missing], 0)).message).toMatch(/data file/);
    expect(refusal(() => jsonlSource([missing], 0)).message).toMatch(/data file/);
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
    const only = write('blank.jsonl', '\n\n'), only2 = write('blank2.jsonl', ' ');
    expect(refusal(() => jsonlSource([only, only2], 0)).message).toBe(`${only}, ${only2}: no examples`);
    expect(refusal(() => listSource([], 0)).message).toBe('data: no examples');
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

describe('examples to tokens, tokens to rows', () => {
  const tok = loadTokenizer(path.resolve(__dirname, '../examples/demo-moe'))!;
  const sp = { bos: 1, eos: 2, pad: 3 };
  it('the text is encoded without the tokenizer\'s own special tokens: [bos] and [eos] come once, from the ids given', () => {
    const plain = tok.encode('abc', false), withSpecial = tok.encode('abc', true);
    expect(withSpecial).not.toEqual(plain); // this tokenizer adds its own
    expect(tokenizeExample(tok, { text: 'abc' }, sp)).toEqual({ ids: [1, ...plain, 2], mask: [0, ...plain.map(() => 1), 1] });
    const p = tok.encode('2+2=', false), a = tok.encode('4', false);
    expect(tokenizeExample(tok, { prompt: '2+2=', answer: '4' }, sp)).toEqual({ ids: [1, ...p, ...a, 2], mask: [0, ...p.map(() => 0), ...a.map(() => 1), 1] });
    // a missing prompt or answer is empty
    expect(tokenizeExample(tok, { answer: '4' }, sp)).toEqual({ ids: [1, ...a, 2], mask: [0, ...a.map(() => 1), 1] });
    expect(tokenizeExample(tok, { prompt: '2+2=' }, sp)).toEqual({ ids: [1, ...p, 2], mask: [0, ...p.map(() => 0), 1] });
  });

  it('rows are padded with the pad id; rows of 2 are allowed; an example that fits exactly leaves nothing to carry', () => {
    const src = { at: (i: number) => [{ tokens: { ids: [7, 8, 9], mask: [0, 1, 1] } }, { tokens: { ids: [5, 6], mask: [1, 1] } }][i % 2] };
    const p = new Packer(src, tok, 5, sp);
    const b = p.batch(1);
    expect(Array.from(b.ids)).toEqual([7, 8, 9, 5, 6]); // 3 + 2 fit exactly
    expect(p.state.carry).toBeNull();
    const q = new Packer(src, tok, 4, sp);
    expect(Array.from(q.batch(1).ids)).toEqual([7, 8, 9, 3]); // [5, 6] does not fit the 1 left: padding
    expect(Array.from(new Packer(src, tok, 2, sp).batch(2).ids)).toEqual([7, 8, 9, 3]);
  });

  it('each epoch\'s order is a uniform shuffle: all 6 orders of 3 examples equally often over 3,000 seeds (5 sigma)', () => {
    const ex = [{ text: 'a' }, { text: 'b' }, { text: 'c' }];
    const n = 3000, seen = new Map<string, number>();
    for (let seed = 0; seed < n; seed++) {
      const s = listSource(ex, seed);
      const k = [0, 1, 2].map((i) => s.at(i).text).join('');
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    expect(seen.size).toBe(6);
    const sd = Math.sqrt(n * (1 / 6) * (5 / 6));
    for (const [k, c] of seen) expect(Math.abs(c - n / 6), k).toBeLessThan(5 * sd);
  });
});
