/**
 * Text ↔ ids through the checkpoint's own tokenizer.json (and tokenizer_config.json), with
 * @huggingface/tokenizers, the tokenizer library of transformers.js.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { MoekitError } from '../util/errors.js';
import { readConfig, SIZE_LIMITS } from './config.js';
import { GgufFile, isGgufPath } from './gguf.js';
import { renderBudgeted } from './template.js';
import { CONFIG_MAX_BYTES, oneLineMessage, readJsonCapped, TOKENIZER_MAX_BYTES } from './read.js';

export interface ChatMessage { role: string; content: string }

export interface TextTokenizer {
  encode(text: string, addSpecialTokens?: boolean): number[];
  decode(ids: number[], skipSpecialTokens?: boolean): string;
  /** the checkpoint's chat_template (tokenizer_config.json), or null */
  readonly chatTemplate: string | null;
  /** render messages with the chat template (Jinja, as transformers does) and tokenize the text */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt?: boolean): number[];
}

/** a special-token entry of tokenizer_config.json: a string or {content: string} */
function tokenText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return '';
}

function readJson(file: string, maxBytes: number, what: string): Record<string, unknown> {
  const v = readJsonCapped(file, maxBytes, what);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MoekitError('must be a JSON object', file);
  return v as Record<string, unknown>;
}

/** the largest token id a tokenizer.json may hold (config.ts SIZE_LIMITS.vocab_size) */
const MAX_TOKEN_ID = SIZE_LIMITS.vocab_size - 1;

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_TOKEN_ID;

/**
 * Check the ids of a tokenizer.json (model.vocab and added_tokens): exact integers in [0, 2^24), so a string, null,
 * fractional or 2^40 id is refused at load rather than run. Returns the largest id.
 */
export function checkTokenizerIds(json: Record<string, unknown>, file: string): number {
  const bad = (where: string, v: unknown): never => {
    throw new MoekitError(`${where} must be an integer token id in [0, ${MAX_TOKEN_ID}], got ${JSON.stringify(v)?.slice(0, 40)}`, file);
  };
  let max = -1;
  const model = json['model'];
  if (model !== null && typeof model === 'object' && !Array.isArray(model)) {
    const vocab = (model as Record<string, unknown>)['vocab'];
    if (vocab !== null && typeof vocab === 'object' && !Array.isArray(vocab)) {
      for (const [piece, id] of Object.entries(vocab)) {
        if (!isId(id)) bad(`model.vocab[${JSON.stringify(piece).slice(0, 40)}]`, id);
        if (id > max) max = id;
      }
    } else if (Array.isArray(vocab)) {
      // Unigram: [piece, score] pairs, the id is the index
      if (vocab.length > MAX_TOKEN_ID + 1) throw new MoekitError(`model.vocab has ${vocab.length} pieces, over ${MAX_TOKEN_ID + 1}`, file);
      vocab.forEach((e, i) => {
        if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number' || !Number.isFinite(e[1])) {
          throw new MoekitError(`model.vocab[${i}] must be a [piece, finite score] pair`, file);
        }
      });
      max = Math.max(max, vocab.length - 1);
    }
  }
  const added = json['added_tokens'];
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new MoekitError(`added_tokens must be a list, got ${JSON.stringify(added).slice(0, 40)}`, file);
    added.forEach((t, i) => {
      const id = (t as { id?: unknown } | null)?.id;
      if (!isId(id)) return bad(`added_tokens[${i}].id`, id);
      if (typeof (t as { content?: unknown }).content !== 'string') throw new MoekitError(`added_tokens[${i}].content must be a string`, file);
      if (id > max) max = id;
    });
  }
  return max;
}

/** config.json's vocab_size next to a tokenizer, or null (no config, no key) */
function configVocab(dir: string): { v: number; file: string } | null {
  const f = path.join(dir, 'config.json');
  if (!fs.existsSync(f)) return null;
  const c = readConfig(f);
  return c.has('vocab_size') ? { v: c.int('vocab_size'), file: f } : null;
}

/**
 * the tokenizer of a model directory, or null when it has no tokenizer.json. Its ids are checked (checkTokenizerIds);
 * when config.json's vocab_size is smaller than the tokenizer's largest id, encoding text to such an id is an error
 * naming both files (the model has no embedding row for it).
 */
export function loadTokenizer(dir: string): TextTokenizer | null {
  if (isGgufPath(dir)) return ggufTokenizer(dir);
  const tj = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tj)) return null;
  const tc = path.join(dir, 'tokenizer_config.json');
  const config = (fs.existsSync(tc) ? readJson(tc, CONFIG_MAX_BYTES, 'tokenizer config') : {});
  const json = readJson(tj, TOKENIZER_MAX_BYTES, 'tokenizer');
  return tokenizerOf(json, config, tj, tc, configVocab(dir));
}

/**
 * The tokenizer a GGUF file carries, or null: moekit's export embeds the source tokenizer.json
 * (`moekit.tokenizer_json`); otherwise llama.cpp's `gpt2` metadata (tokens, merges, control tokens) becomes a
 * byte-level BPE tokenizer.json. Its pre-tokenizer is GPT-2's split whatever `tokenizer.ggml.pre` names (the
 * per-model regexes of llama.cpp are not carried over), so text may split differently from the original on digits
 * and some punctuation; ids in, text out are exact. Other tokenizer models (llama/SPM, …) give null.
 */
function ggufTokenizer(file: string): TextTokenizer | null {
  const g = GgufFile.open(file);
  try {
    const vocab = g.get('vocab_size') ?? g.get(`${String(g.get('general.architecture'))}.vocab_size`);
    const cv = vocab !== undefined ? { v: Number(vocab), file } : null;
    const template = g.get('tokenizer.chat_template');
    const config: Record<string, unknown> = typeof template === 'string' ? { chat_template: template } : {};
    const embedded = g.get('moekit.tokenizer_json');
    if (typeof embedded === 'string') {
      const tc = g.get('moekit.tokenizer_config_json');
      return tokenizerOf(JSON.parse(embedded) as Record<string, unknown>, typeof tc === 'string' ? { ...JSON.parse(tc), ...config } : config, file, file, cv);
    }
    if (g.get('tokenizer.ggml.model') !== 'gpt2') return null;
    const tokens = g.get('tokenizer.ggml.tokens'), merges = g.get('tokenizer.ggml.merges') ?? [], types = g.get('tokenizer.ggml.token_type') ?? [];
    if (!Array.isArray(tokens) || !Array.isArray(merges) || !Array.isArray(types)) throw new MoekitError('GGUF tokenizer.ggml.tokens / merges / token_type must be arrays', file);
    const v: Record<string, number> = {};
    tokens.forEach((t, i) => { if (!(String(t) in v)) v[String(t)] = i; });
    const added = tokens.flatMap((t, i) => (Number(types[i]) === 3 ? [{ id: i, content: String(t), special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }] : []));
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    const json = {
      version: '1.0', added_tokens: added, normalizer: null, pre_tokenizer: byteLevel, post_processor: null, decoder: byteLevel,
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: v, merges: merges.map(String) },
    };
    return tokenizerOf(json, config, file, file, cv);
  } finally {
    g.close();
  }
}

function tokenizerOf(json: Record<string, unknown>, config: Record<string, unknown>, tj: string, tc: string,
                     cv: { v: number; file: string } | null): TextTokenizer {
  const maxId = checkTokenizerIds(json, tj);
  const checked = (ids: number[]): number[] => {
    if (cv && maxId >= cv.v) {
      for (const id of ids) {
        if (!(id < cv.v)) throw new MoekitError(`the text encodes to token id ${id}, outside the model's vocabulary [0, ${cv.v}) (vocab_size of ${cv.file}): the tokenizer and the config disagree`, tj);
      }
    }
    return ids;
  };
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    if (e instanceof MoekitError) throw e;
    throw new MoekitError(`cannot build the tokenizer: ${(e as Error).message}`, tj);
  }
  // chat_template: a string, or a list of {name, template} (the "default" one is used)
  let chatTemplate: string | null = null;
  const ct = config['chat_template'];
  if (typeof ct === 'string') chatTemplate = ct;
  else if (Array.isArray(ct)) {
    const d = ct.find((t) => t && t.name === 'default') ?? ct[0];
    if (d && typeof d.template === 'string') chatTemplate = d.template;
  }
  let compiled: Template | null = null;
  return {
    chatTemplate,
    encode: (text, add = true) => checked(tok.encode(text, { add_special_tokens: add }).ids),
    decode: (ids, skip = true) => tok.decode(ids, { skip_special_tokens: skip }),
    applyChatTemplate(messages, addGenerationPrompt = true) {
      if (!chatTemplate) throw new MoekitError('the tokenizer has no chat_template', tc);
      try {
        compiled ??= new Template(chatTemplate);
        const text = renderBudgeted(compiled, {
          messages, add_generation_prompt: addGenerationPrompt,
          bos_token: tokenText(config['bos_token']), eos_token: tokenText(config['eos_token']),
        });
        return checked(tok.encode(text, { add_special_tokens: false }).ids);
      } catch (e) {
        if (e instanceof MoekitError) throw e;
        throw new MoekitError(`chat_template failed: ${oneLineMessage(e)}`, tc);
      }
    },
  };
}
