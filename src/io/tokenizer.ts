/**
 * Text ↔ ids through the checkpoint's own tokenizer.json (and tokenizer_config.json), with
 * @huggingface/tokenizers, the tokenizer library of transformers.js.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { MoekitError } from '../util/errors.js';
import { CONFIG_MAX_BYTES, readJsonCapped, TOKENIZER_MAX_BYTES } from './read.js';

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

/** the tokenizer of a model directory, or null when it has no tokenizer.json */
export function loadTokenizer(dir: string): TextTokenizer | null {
  const tj = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tj)) return null;
  const tc = path.join(dir, 'tokenizer_config.json');
  const config = (fs.existsSync(tc) ? readJson(tc, CONFIG_MAX_BYTES, 'tokenizer config') : {});
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(readJson(tj, TOKENIZER_MAX_BYTES, 'tokenizer'), config);
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
    encode: (text, add = true) => tok.encode(text, { add_special_tokens: add }).ids,
    decode: (ids, skip = true) => tok.decode(ids, { skip_special_tokens: skip }),
    applyChatTemplate(messages, addGenerationPrompt = true) {
      if (!chatTemplate) throw new MoekitError('the tokenizer has no chat_template', tc);
      try {
        compiled ??= new Template(chatTemplate);
        const text = compiled.render({
          messages, add_generation_prompt: addGenerationPrompt,
          bos_token: tokenText(config['bos_token']), eos_token: tokenText(config['eos_token']),
        });
        return tok.encode(text, { add_special_tokens: false }).ids;
      } catch (e) {
        throw new MoekitError(`chat_template failed: ${(e as Error).message}`, tc);
      }
    },
  };
}
