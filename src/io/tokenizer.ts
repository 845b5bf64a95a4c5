/**
 * Text ↔ ids through the checkpoint's own tokenizer.json (and tokenizer_config.json), with
 * @huggingface/tokenizers, the tokenizer library of transformers.js.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { MoekitError } from '../util/errors.js';

export interface TextTokenizer {
  encode(text: string, addSpecialTokens?: boolean): number[];
  decode(ids: number[], skipSpecialTokens?: boolean): string;
}

function readJson(file: string): object {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as object;
  } catch (e) {
    throw new MoekitError(`malformed JSON: ${(e as Error).message}`, file);
  }
}

/** the tokenizer of a model directory, or null when it has no tokenizer.json */
export function loadTokenizer(dir: string): TextTokenizer | null {
  const tj = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tj)) return null;
  const tc = path.join(dir, 'tokenizer_config.json');
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(readJson(tj), fs.existsSync(tc) ? readJson(tc) : {});
  } catch (e) {
    if (e instanceof MoekitError) throw e;
    throw new MoekitError(`cannot build the tokenizer: ${(e as Error).message}`, tj);
  }
  return {
    encode: (text, add = true) => tok.encode(text, { add_special_tokens: add }).ids,
    decode: (ids, skip = true) => tok.decode(ids, { skip_special_tokens: skip }),
  };
}
