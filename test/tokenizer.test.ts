/**
 * The tokenizer loader (src/io/tokenizer.ts) and the budgeted chat-template render (src/io/template.ts): the ids a
 * tokenizer.json may hold (the largest returned; each kind of bad id refused, naming where), the bundled tokenizer's
 * round trip and chat template (a string, or the "default" of a list), a tokenizer whose ids pass config.json's
 * vocab_size, and the render budget (steps, range() length, string and list size).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { afterAll, describe, expect, it } from 'vitest';
import { renderBudgeted, TEMPLATE_BUDGET, TemplateBudgetError } from '../src/io/template.js';
import { checkTokenizerIds, loadTokenizer } from '../src/io/tokenizer.js';
import { MoekitError } from '../src/util/errors.js';

const TINY = path.resolve(__dirname, '../examples/tiny-moe');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-tok-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const err = (fn: () => unknown, re: RegExp) => {
  let e: unknown;
  try { fn(); } catch (x) { e = x; }
  expect(e).toBeInstanceOf(MoekitError);
  expect((e as Error).message).toMatch(re);
};

/** a copy of the tiny model's tokenizer files with tokenizer_config.json / config.json edited */
function variant(name: string, cfg: (c: Record<string, unknown>) => Record<string, unknown>, config?: Record<string, unknown>): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  fs.copyFileSync(path.join(TINY, 'tokenizer.json'), path.join(d, 'tokenizer.json'));
  const c = JSON.parse(fs.readFileSync(path.join(TINY, 'tokenizer_config.json'), 'utf8'));
  fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(cfg(c)));
  if (config) fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(config));
  return d;
}

describe('checkTokenizerIds', () => {
  it('returns the largest id of the vocab and the added tokens', () => {
    expect(checkTokenizerIds({ model: { vocab: { a: 0, b: 7, c: 3 } } }, 'f')).toBe(7);
    expect(checkTokenizerIds({ model: { vocab: { a: 0 } }, added_tokens: [{ id: 12, content: '<x>' }, { id: 2, content: '<y>' }] }, 'f')).toBe(12);
    expect(checkTokenizerIds({ model: { vocab: [['a', 0], ['b', -1.5], ['c', 0]] } }, 'f')).toBe(2); // Unigram: the index
    expect(checkTokenizerIds({}, 'f')).toBe(-1);
    expect(checkTokenizerIds({ model: null, added_tokens: null }, 'f')).toBe(-1);
  });
  it('refuses ids that are not integers in [0, 2^24), naming where', () => {
    err(() => checkTokenizerIds({ model: { vocab: { a: 1.5 } } }, 'f'), /^model\.vocab\["a"\] must be an integer token id in \[0, 16777215\], got 1\.5$/);
    err(() => checkTokenizerIds({ model: { vocab: { a: -1 } } }, 'f'), /got -1$/);
    err(() => checkTokenizerIds({ model: { vocab: { a: 2 ** 24 } } }, 'f'), /got 16777216$/);
    err(() => checkTokenizerIds({ model: { vocab: { a: '3' } } }, 'f'), /got "3"$/);
    err(() => checkTokenizerIds({ model: { vocab: [['a', 0], ['b']] } }, 'f'), /^model\.vocab\[1\] must be a \[piece, finite score\] pair$/);
    err(() => checkTokenizerIds({ model: { vocab: [['a', Infinity]] } }, 'f'), /^model\.vocab\[0\] must be a \[piece, finite score\] pair$/);
    err(() => checkTokenizerIds({ model: { vocab: [[1, 0]] } }, 'f'), /model\.vocab\[0\]/);
    err(() => checkTokenizerIds({ added_tokens: { id: 1 } }, 'f'), /^added_tokens must be a list, got \{"id":1\}$/);
    err(() => checkTokenizerIds({ added_tokens: [{ id: null, content: 'x' }] }, 'f'), /^added_tokens\[0\]\.id must be an integer token id in \[0, 16777215\], got null$/);
    err(() => checkTokenizerIds({ added_tokens: [{ id: 1, content: 5 }] }, 'f'), /^added_tokens\[0\]\.content must be a string$/);
    err(() => checkTokenizerIds({ added_tokens: [null] }, 'f'), /added_tokens\[0\]\.id/);
  });
});

describe('loadTokenizer', () => {
  it('no tokenizer.json: null', () => {
    expect(loadTokenizer(tmp)).toBeNull();
  });
  it('the bundled tokenizer: round trip, special tokens added and skipped, the chat template', () => {
    const tok = loadTokenizer(TINY)!;
    const ids = tok.encode('hello experts');
    expect(tok.decode(ids)).toBe('hello experts');
    expect(tok.encode('hello experts', false).length).toBeLessThanOrEqual(ids.length);
    expect(typeof tok.chatTemplate).toBe('string');
    const chat = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }]);
    expect(tok.decode(chat)).toBe('user: Hi\nassistant:');
    expect(tok.decode(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], false))).toBe('user: Hi\n');
  });
  it('a list of templates: the "default" one, else the first; none: applyChatTemplate is refused', () => {
    const list = variant('list', (c) => ({ ...c, chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D{{ messages[0].content }}' }] }));
    expect(loadTokenizer(list)!.chatTemplate).toBe('D{{ messages[0].content }}');
    const first = variant('first', (c) => ({ ...c, chat_template: [{ name: 'a', template: 'A' }] }));
    expect(loadTokenizer(first)!.chatTemplate).toBe('A');
    const none = variant('none', (c) => { const { chat_template: _, ...rest } = c; return rest; });
    const t = loadTokenizer(none)!;
    expect(t.chatTemplate).toBeNull();
    err(() => t.applyChatTemplate([{ role: 'user', content: 'x' }]), /^the tokenizer has no chat_template$/);
    const bos = variant('bos', (c) => ({ ...c, bos_token: { content: '<s>' }, eos_token: '</s>', chat_template: '{{ bos_token }}|{{ eos_token }}' }));
    expect(loadTokenizer(bos)!.decode(loadTokenizer(bos)!.applyChatTemplate([]), false)).toBe('<s>|</s>');
    const broken = variant('broken', (c) => ({ ...c, chat_template: '{{ messages[0].content.nope() }}' }));
    err(() => loadTokenizer(broken)!.applyChatTemplate([{ role: 'user', content: 'x' }]), /^chat_template failed: /);
  });
  it('ids past config.json\'s vocab_size: encoding to one is an error naming both files', () => {
    const small = variant('small', (c) => c, { vocab_size: 20 });
    const tok = loadTokenizer(small)!;
    err(() => tok.encode('hello experts, routed'), /^the text encodes to token id \d+, outside the model's vocabulary \[0, 20\) \(vocab_size of .*config\.json\): the tokenizer and the config disagree$/);
    const big = variant('big', (c) => c, { vocab_size: 512 });
    expect(loadTokenizer(big)!.decode(loadTokenizer(big)!.encode('hello'))).toBe('hello');
  });
  it('a tokenizer_config.json that is not an object is refused', () => {
    const d = variant('arr', (c) => c);
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), '[1, 2]');
    err(() => loadTokenizer(d), /^must be a JSON object$/);
  });
});

describe('renderBudgeted', () => {
  const render = (src: string, items: Record<string, unknown> = {}) => renderBudgeted(new Template(src), items);
  it('renders within the budget, as the plain render', () => {
    expect(render('{% for i in range(3) %}{{ i }}{% endfor %}')).toBe('012');
    expect(render('{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}')).toBe('135');
    expect(render('{{ x }}', { x: 'y' })).toBe('y');
    // a render outside the budget is not counted
    expect(new Template('{% for i in range(200000) %}{% endfor %}').render({})).toBe('');
  });
  it('refuses a range() past the item cap before building it, and non-finite bounds', () => {
    expect(() => render(`{% for i in range(${TEMPLATE_BUDGET.items + 1}) %}{% endfor %}`)).toThrow(new TemplateBudgetError(`range() of ${TEMPLATE_BUDGET.items + 1} items, over the ${TEMPLATE_BUDGET.items} limit`));
    expect(() => render("{{ range(0, 5, 0) }}")).toThrow(/range\(\) of Infinity items/);
    expect(() => render(`{% for i in range(${TEMPLATE_BUDGET.items}) %}{% endfor %}`)).not.toThrow();
    expect(() => render('{{ range(x) }}', { x: Infinity })).toThrow('range() needs finite numbers');
  });
  it('refuses a string past the character cap and a loop past the step budget', () => {
    expect(() => render('{% set s = "ab" %}{% for i in range(30) %}{% set s = s + s %}{% endfor %}{{ s }}')).toThrow(TemplateBudgetError);
    expect(() => render('{% set s = "ab" %}{% for i in range(30) %}{% set s = s + s %}{% endfor %}{{ s }}')).toThrow(/more than 16777216 characters/);
    expect(() => render('{% for i in range(90000) %}{% for j in range(90000) %}{% endfor %}{% endfor %}')).toThrow(`the template took more than ${TEMPLATE_BUDGET.steps} steps`);
  });
});
