/**
 * src/io/tokenizer.ts with tokenizers built here: a six-token byte-level BPE tokenizer.json written by hand (its ids
 * worked out from its merges), in a directory and in GGUF files (moekit's embedded tokenizer.json, llama.cpp's gpt2
 * metadata), and every refusal compared whole with the file it names.
 */
import fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGML, GgufValueType, gv, writeGguf, type GgufEntry } from '../src/io/gguf.js';
import { checkTokenizerIds, loadTokenizer } from '../src/io/tokenizer.js';
import { MoekitError } from '../src/util/errors.js';
import { scratchDir } from './helpers.js';

const tmp = scratchDir('moekit-tok-files-');
let seq = 0;

const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
/** vocab a b ab Ġ <e> Ġab; merges "a b", "Ġ ab": "ab ab" is [ab, Ġab] = [2, 5]; <e> (4) special */
const VOCAB = { a: 0, b: 1, ab: 2, 'Ġ': 3, '<e>': 4, 'Ġab': 5 };
const special = (id: number, content: string) => ({ id, content, special: true, single_word: false, lstrip: false, rstrip: false, normalized: false });
function tokJson(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: '1.0', added_tokens: [special(4, '<e>')], normalizer: null, pre_tokenizer: byteLevel, decoder: byteLevel,
    // adds <e> before the text when special tokens are asked for
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<e>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }], special_tokens: { '<e>': { id: '<e>', ids: [4], tokens: ['<e>'] } } },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: VOCAB, merges: ['a b', 'Ġ ab'] },
    ...extra,
  };
}
/** a model directory: tokenizer.json (object or raw text), optional tokenizer_config.json and config.json */
function dir(tj: unknown, tc?: unknown, config?: unknown): string {
  const d = path.join(tmp(), `d${seq++}`);
  fs.mkdirSync(d);
  const w = (f: string, v: unknown) => fs.writeFileSync(path.join(d, f), typeof v === 'string' ? v : JSON.stringify(v));
  w('tokenizer.json', tj);
  if (tc !== undefined) w('tokenizer_config.json', tc);
  if (config !== undefined) w('config.json', config);
  return d;
}
function refusal(fn: () => unknown): string {
  try { fn(); } catch (e) {
    expect(e).toBeInstanceOf(MoekitError);
    return (e as MoekitError).oneLine();
  }
  throw new Error('did not throw');
}

describe('a tokenizer directory', () => {
  it('encodes by the merges, adds and skips special tokens by default, decodes; no tokenizer_config.json: no template', () => {
    const t = loadTokenizer(dir(tokJson()))!;
    expect(t.encode('ab ab')).toEqual([4, 2, 5]);
    expect(t.encode('ab ab', false)).toEqual([2, 5]);
    expect(t.encode('a b<e>', false)).toEqual([0, 3, 1, 4]);
    expect(t.decode([4, 2, 5])).toBe('ab ab');
    expect(t.decode([4, 2, 5], false)).toBe('<e>ab ab');
    expect(t.chatTemplate).toBeNull();
    const d = dir(tokJson());
    expect(refusal(() => loadTokenizer(d)!.applyChatTemplate([]))).toBe(`${path.join(d, 'tokenizer_config.json')}: the tokenizer has no chat_template`);
  });

  it('the chat template: messages, the generation prompt (on by default), bos and eos as strings or {content}', () => {
    const tpl = '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %} ab{% endif %}{{ eos_token }}';
    const t = loadTokenizer(dir(tokJson(), { chat_template: tpl, bos_token: { content: '<e>' }, eos_token: 'b' }))!;
    expect(t.chatTemplate).toBe(tpl);
    expect(t.applyChatTemplate([{ role: 'user', content: 'ab' }])).toEqual([4, 2, 5, 1]);
    expect(t.applyChatTemplate([{ role: 'user', content: 'ab' }], false)).toEqual([4, 2, 1]);
    const u = loadTokenizer(dir(tokJson(), { chat_template: tpl, bos_token: 7, eos_token: { content: 3 } }))!;
    expect(u.applyChatTemplate([{ role: 'user', content: 'a' }], false)).toEqual([0]);
    const l = loadTokenizer(dir(tokJson(), { chat_template: [{ name: 'x', template: 'a' }, { name: 'default', template: 'b' }] }))!;
    expect(l.chatTemplate).toBe('b');
    expect(loadTokenizer(dir(tokJson(), { chat_template: [null, { name: 'x', template: 'a' }] }))!.chatTemplate).toBeNull();
    expect(loadTokenizer(dir(tokJson(), { chat_template: [{ name: 'default', template: 5 }] }))!.chatTemplate).toBeNull();
    expect(loadTokenizer(dir(tokJson(), { chat_template: [] }))!.chatTemplate).toBeNull();
    expect(loadTokenizer(dir(tokJson(), { chat_template: 5 }))!.chatTemplate).toBeNull();
    const bad = dir(tokJson(), { chat_template: '{% for %}' });
    expect(refusal(() => loadTokenizer(bad)!.applyChatTemplate([]))).toMatch(new RegExp(`^${path.join(bad, 'tokenizer_config.json').replace(/[.]/g, '\\.')}: chat_template failed: .+$`));
  });

  it("config.json's vocab_size: checked only when the tokenizer holds an id at or past it", () => {
    const at = dir(tokJson(), undefined, { vocab_size: 5 });
    const t = loadTokenizer(at)!;
    expect(t.encode('ab', false)).toEqual([2]);
    expect(t.encode('ab')).toEqual([4, 2]);
    expect(refusal(() => t.encode(' ab', false))).toBe(`${path.join(at, 'tokenizer.json')}: the text encodes to token id 5, outside the model's vocabulary [0, 5) (vocab_size of ${path.join(at, 'config.json')}): the tokenizer and the config disagree`);
    const tpl = dir(tokJson(), { chat_template: ' ab' }, { vocab_size: 5 });
    expect(refusal(() => loadTokenizer(tpl)!.applyChatTemplate([]))).toMatch(/: the text encodes to token id 5, outside the model's vocabulary \[0, 5\)/);
    expect(loadTokenizer(dir(tokJson(), undefined, { vocab_size: 6 }))!.encode(' ab', false)).toEqual([5]);
    expect(loadTokenizer(dir(tokJson(), undefined, { hidden_size: 8 }))!.encode(' ab', false)).toEqual([5]);
  });

  it('refusals: files that are not JSON objects, a tokenizer the library cannot build', () => {
    for (const v of ['[1]', 'null', '3']) {
      const d = dir(v);
      expect(refusal(() => loadTokenizer(d))).toBe(`${path.join(d, 'tokenizer.json')}: must be a JSON object`);
      const c = dir(tokJson(), v);
      expect(refusal(() => loadTokenizer(c))).toBe(`${path.join(c, 'tokenizer_config.json')}: must be a JSON object`);
    }
    const bad = dir('{"model": ');
    expect(refusal(() => loadTokenizer(bad))).toMatch(new RegExp(`^${path.join(bad, 'tokenizer.json').replace(/[.]/g, '\\.')}: malformed JSON: `));
    const nodec = dir(tokJson({ decoder: undefined }));
    expect(refusal(() => loadTokenizer(nodec))).toBe(`${path.join(nodec, 'tokenizer.json')}: cannot build the tokenizer: Tokenizer must contain a "decoder" property`);
    const ids = dir(tokJson({ added_tokens: [special(-1, '<e>')] }));
    expect(refusal(() => loadTokenizer(ids))).toBe(`${path.join(ids, 'tokenizer.json')}: added_tokens[0].id must be an integer token id in [0, 16777215], got -1`);
    expect(loadTokenizer(path.join(tmp(), 'no-such-dir'))).toBeNull();
  });
});

describe('checkTokenizerIds: the edges', () => {
  const msg = (j: Record<string, unknown>) => refusal(() => checkTokenizerIds(j, 'T'));
  it('the largest id of all kinds; the id bounds themselves', () => {
    expect(checkTokenizerIds({ model: { vocab: { a: 2 ** 24 - 1 } } }, 'T')).toBe(2 ** 24 - 1);
    expect(checkTokenizerIds({ model: { vocab: { a: 0 } } }, 'T')).toBe(0);
    expect(checkTokenizerIds({ model: { vocab: { a: 5, b: 2 } }, added_tokens: [{ id: 3, content: 'x' }] }, 'T')).toBe(5);
    expect(checkTokenizerIds({ model: { vocab: [['a', 0]] }, added_tokens: [{ id: 0, content: 'x' }] }, 'T')).toBe(0);
    expect(checkTokenizerIds({ model: { vocab: [['a', 0], ['b', 1]] }, added_tokens: [{ id: 9, content: 'x' }] }, 'T')).toBe(9);
    expect(checkTokenizerIds({ model: { vocab: [] } }, 'T')).toBe(-1);
    expect(checkTokenizerIds({ model: [], added_tokens: [] }, 'T')).toBe(-1);
    expect(checkTokenizerIds({ model: { vocab: null } }, 'T')).toBe(-1);
    expect(checkTokenizerIds({ model: 'BPE' }, 'T')).toBe(-1);
  });
  it('each refusal, whole', () => {
    expect(msg({ model: { vocab: { ['x'.repeat(50)]: -2 } } })).toBe(`T: model.vocab["${'x'.repeat(39)}] must be an integer token id in [0, 16777215], got -2`);
    expect(msg({ model: { vocab: { a: 2 ** 24 } } })).toBe('T: model.vocab["a"] must be an integer token id in [0, 16777215], got 16777216');
    expect(msg({ model: { vocab: { a: 'y'.repeat(60) } } })).toBe(`T: model.vocab["a"] must be an integer token id in [0, 16777215], got "${'y'.repeat(39)}`);
    expect(msg({ added_tokens: [{ content: 'x' }] })).toBe('T: added_tokens[0].id must be an integer token id in [0, 16777215], got undefined');
    expect(msg({ added_tokens: [{ id: 1, content: 'x' }, { id: 1.5, content: 'y' }] })).toBe('T: added_tokens[1].id must be an integer token id in [0, 16777215], got 1.5');
    expect(msg({ added_tokens: [{ id: 2 }] })).toBe('T: added_tokens[0].content must be a string');
    expect(msg({ added_tokens: 'z'.repeat(60) })).toBe(`T: added_tokens must be a list, got "${'z'.repeat(39)}`);
    expect(msg({ model: { vocab: [['a', 0], 'b'] } })).toBe('T: model.vocab[1] must be a [piece, finite score] pair');
    expect(msg({ model: { vocab: [['a', '0']] } })).toBe('T: model.vocab[0] must be a [piece, finite score] pair');
    expect(msg({ model: { vocab: [['a', NaN]] } })).toBe('T: model.vocab[0] must be a [piece, finite score] pair');
    // a Unigram vocabulary longer than the id range is refused by its length, before its pieces are looked at
    expect(msg({ model: { vocab: new Array(2 ** 24 + 1) } })).toBe('T: model.vocab has 16777217 pieces, over 16777216');
  });
});

describe('tokenizers in GGUF files', () => {
  const gguf = (meta: [string, GgufEntry][]) => {
    const f = path.join(tmp(), `t${seq++}.gguf`);
    writeGguf(f, meta, [{ name: 'w', shape: [1], type: GGML.F32, data: () => new Uint8Array(4) }]);
    return f;
  };
  const gpt2 = (tokens: string[], types: number[], extra: [string, GgufEntry][] = []): [string, GgufEntry][] => [
    ['general.architecture', gv.str('qwen3moe')], ['tokenizer.ggml.model', gv.str('gpt2')],
    ['tokenizer.ggml.tokens', gv.strs(tokens)], ['tokenizer.ggml.merges', gv.strs(['a b', 'Ġ ab'])],
    ['tokenizer.ggml.token_type', gv.i32s(types)], ...extra,
  ];
  const TOKENS = ['a', 'b', 'ab', 'Ġ', '<e>', 'Ġab'];

  it("llama.cpp's gpt2 metadata: the vocabulary in order, control tokens (type 3) special, the chat template", () => {
    const f = gguf(gpt2(TOKENS, [1, 1, 1, 1, 3, 1], [['tokenizer.chat_template', gv.str('{{ messages[0].content }} ab')]]));
    const t = loadTokenizer(f)!;
    expect(t.encode('ab ab<e>')).toEqual([2, 5, 4]);
    expect(t.decode([2, 5, 4])).toBe('ab ab');
    expect(t.decode([2, 5, 4], false)).toBe('ab ab<e>');
    expect(t.chatTemplate).toBe('{{ messages[0].content }} ab');
    expect(t.applyChatTemplate([{ role: 'user', content: 'b' }])).toEqual([1, 5]);
    // not special: <e> (type 1) is split into bytes the vocabulary lacks, then skipped or not the same either way
    const plain = loadTokenizer(gguf(gpt2(TOKENS, [1, 1, 1, 1, 1, 1])))!;
    expect(plain.decode([2, 4])).toBe('ab<e>');
    expect(loadTokenizer(gguf(gpt2(TOKENS, [])))!.decode([2, 4])).toBe('ab<e>');
    // a repeated token keeps its first id
    const dup = loadTokenizer(gguf(gpt2(['a', 'b', 'ab', 'Ġ', '<e>', 'Ġab', 'ab'], [1, 1, 1, 1, 3, 1, 1])))!;
    expect(dup.encode('ab')).toEqual([2]);
    expect(dup.decode([6])).toBe(''); // the repeat's id is in no vocabulary entry
  });

  it('no merges: characters alone; the vocab_size keys (top level, then the architecture\'s) bound the ids', () => {
    const noMerges: [string, GgufEntry][] = [['general.architecture', gv.str('qwen3moe')], ['tokenizer.ggml.model', gv.str('gpt2')], ['tokenizer.ggml.tokens', gv.strs(TOKENS)]];
    expect(loadTokenizer(gguf(noMerges))!.encode('ab')).toEqual([0, 1]);
    const small = gguf(gpt2(TOKENS, [], [['qwen3moe.vocab_size', gv.u32(5)]]));
    expect(loadTokenizer(small)!.encode('ab')).toEqual([2]);
    expect(refusal(() => loadTokenizer(small)!.encode(' ab'))).toBe(`${small}: the text encodes to token id 5, outside the model's vocabulary [0, 5) (vocab_size of ${small}): the tokenizer and the config disagree`);
    const top = gguf(gpt2(TOKENS, [], [['vocab_size', gv.u32(3)], ['qwen3moe.vocab_size', gv.u32(600)]]));
    expect(refusal(() => loadTokenizer(top)!.encode(' ab'))).toMatch(/token id 5, outside the model's vocabulary \[0, 3\)/);
    expect(loadTokenizer(gguf(gpt2(TOKENS, [], [['qwen3moe.vocab_size', gv.u32(6)]])))!.encode(' ab')).toEqual([5]);
  });

  it("moekit's embedded tokenizer.json and tokenizer_config.json (the file's chat template wins)", () => {
    const f = gguf([
      ['general.architecture', gv.str('qwen3moe')], ['moekit.tokenizer_json', gv.str(JSON.stringify(tokJson()))],
      ['moekit.tokenizer_config_json', gv.str(JSON.stringify({ chat_template: 'old', bos_token: '<e>' }))],
      ['tokenizer.chat_template', gv.str('{{ bos_token }}a')], ['tokenizer.ggml.model', gv.str('llama')],
    ]);
    const t = loadTokenizer(f)!;
    expect(t.encode('ab ab')).toEqual([4, 2, 5]);
    expect(t.chatTemplate).toBe('{{ bos_token }}a');
    expect(t.applyChatTemplate([])).toEqual([4, 0]);
    const alone = loadTokenizer(gguf([['moekit.tokenizer_json', gv.str(JSON.stringify(tokJson()))]]))!;
    expect(alone.chatTemplate).toBeNull();
    expect(alone.encode('ab', false)).toEqual([2]);
    const cfgOnly = loadTokenizer(gguf([['moekit.tokenizer_json', gv.str(JSON.stringify(tokJson()))], ['moekit.tokenizer_config_json', gv.str('{"chat_template": "b"}')]]))!;
    expect(cfgOnly.chatTemplate).toBe('b');
  });

  it('other tokenizer models, or none: null; gpt2 metadata of the wrong kinds: refused', () => {
    expect(loadTokenizer(gguf([['tokenizer.ggml.model', gv.str('llama')], ['tokenizer.ggml.tokens', gv.strs(TOKENS)]]))).toBeNull();
    expect(loadTokenizer(gguf([]))).toBeNull();
    for (const bad of [
      [['tokenizer.ggml.model', gv.str('gpt2')]],
      [['tokenizer.ggml.model', gv.str('gpt2')], ['tokenizer.ggml.tokens', gv.strs(TOKENS)], ['tokenizer.ggml.merges', gv.str('a b')]],
      [['tokenizer.ggml.model', gv.str('gpt2')], ['tokenizer.ggml.tokens', gv.strs(TOKENS)], ['tokenizer.ggml.token_type', { type: GgufValueType.I32, value: 1 }]],
    ] as [string, GgufEntry][][]) {
      const f = gguf(bad);
      expect(refusal(() => loadTokenizer(f))).toBe(`${f}: GGUF tokenizer.ggml.tokens / merges / token_type must be arrays`);
    }
  });
});
