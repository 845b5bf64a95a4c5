/**
 * The built-in corpus's tokenizer: one token per character. A fixed vocabulary of 104 tokens: four
 * special tokens, the image markers, '\n' (the image row separator), printable ASCII and the two pixel
 * characters. `writeTokenizer` saves it as a standard Hugging Face tokenizer (a BPE model with no merges,
 * so every character is its own token; a Fuse decoder; <bos> added by a TemplateProcessing
 * post-processor), which @huggingface/tokenizers and transformers' PreTrainedTokenizerFast both load.
 * `encode` / `decode` here are the same mapping without the library, for the corpus stream; the tests hold
 * the two to each other.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMG_END, IMG_START, PIXEL_OFF, PIXEL_ON, ROW_SEP } from './glyphs.js';
import { withTemp } from '../util/temp.js';

export const PAD = '<pad>', BOS = '<bos>', EOS = '<eos>', UNK = '<unk>';
const SPECIAL = [PAD, BOS, EOS, UNK];
/** tokens written with several characters: matched before anything else, longest first */
const ADDED = [...SPECIAL, IMG_START, IMG_END];
const ASCII = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));

/** id → token text */
export const VOCAB: readonly string[] = [...ADDED, ROW_SEP, ...ASCII, PIXEL_OFF, PIXEL_ON];
export const VOCAB_SIZE = VOCAB.length;
const ID = new Map(VOCAB.map((t, i) => [t, i]));
const id = (t: string): number => ID.get(t)!;
export const PAD_ID = id(PAD), BOS_ID = id(BOS), EOS_ID = id(EOS), UNK_ID = id(UNK);
export const IMG_START_ID = id(IMG_START), IMG_END_ID = id(IMG_END);
const ADDED_LONGEST_FIRST = ADDED.slice().sort((a, b) => b.length - a.length);

/** text → ids, without <bos>/<eos>: the added tokens where they occur, else one id per character (<unk> if
 *  it is not in the vocabulary) */
export function encode(text: string): number[] {
  const ids: number[] = [];
  let i = 0;
  while (i < text.length) {
    const t = text[i] === '<' ? ADDED_LONGEST_FIRST.find((a) => text.startsWith(a, i)) : undefined;
    if (t !== undefined) { ids.push(id(t)); i += t.length; continue; }
    const ch = String.fromCodePoint(text.codePointAt(i)!);
    ids.push(ID.get(ch) ?? UNK_ID);
    i += ch.length;
  }
  return ids;
}

export function decode(ids: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) s += VOCAB[ids[i]] ?? UNK;
  return s;
}

/**
 * The chat template: a user turn is <bos> and the prompt, an assistant turn the answer and <eos>, so a
 * conversation renders exactly as the corpus packs examples; system turns are dropped (the model never saw one).
 */
export const CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token }}{{ message['content'] }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

/** tokenizer.json (the Hugging Face tokenizers format) */
export function tokenizerJson(): object {
  const special = (t: string) => ({ SpecialToken: { id: t, type_id: 0 } });
  const seq = (s: 'A' | 'B') => ({ Sequence: { id: s, type_id: 0 } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ADDED.map((t) => ({
      id: id(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: SPECIAL.includes(t),
    })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(BOS), seq('A')],
      pair: [special(BOS), seq('A'), special(BOS), seq('B')],
      special_tokens: { [BOS]: { id: BOS, ids: [BOS_ID], tokens: [BOS] } },
    },
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE', dropout: null, unk_token: UNK, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(VOCAB.map((t, i) => [t, i])),
      merges: [],
    },
  };
}

/** write tokenizer.json, tokenizer_config.json (with the chat template) and special_tokens_map.json into dir */
export function writeTokenizer(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const specials = { bos_token: BOS, eos_token: EOS, pad_token: PAD, unk_token: UNK };
  const files: Record<string, object> = {
    'tokenizer.json': tokenizerJson(),
    'tokenizer_config.json': {
      tokenizer_class: 'PreTrainedTokenizerFast', ...specials,
      clean_up_tokenization_spaces: false, chat_template: CHAT_TEMPLATE,
    },
    'special_tokens_map.json': specials,
  };
  for (const [name, body] of Object.entries(files)) {
    const file = path.join(dir, name), tmp = `${file}.tmp-${process.pid}`;
    withTemp(tmp, () => {
      fs.writeFileSync(tmp, JSON.stringify(body, null, 1) + '\n');
      fs.renameSync(tmp, file);
    });
  }
}
