/**
 * The bodies of /v1/chat/completions and /v1/completions, checked field by field into what a session
 * runs. Fields OpenAI clients send that moekit does not use (frequency_penalty, logprobs, user, ...) are
 * ignored; a field moekit reads with the wrong type or out of range is a 400 naming it. The MoE
 * extensions (`moekit`) are checked in moe.ts.
 */
import type { ChatMessage } from '../io/tokenizer.js';
import { badField } from './errors.js';

type Json = Record<string, unknown>;

export interface Sampling {
  /** absent: the route's default (16 for completions, the rest of the context for chat) */
  maxTokens: number | undefined;
  temperature: number;
  topP: number | undefined;
  topK: number | undefined;
  seed: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** llama-server's ignore_eos: generate past the end-of-sequence ids, up to max_tokens */
  ignoreEos: boolean;
}

export const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}` : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`);

/** the body must be a JSON object */
export function bodyObject(body: unknown): Json {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badField('body', `the request body must be a JSON object, got ${describe(body)}`);
  return body as Json;
}

export function optNumber(b: Json, name: string, min: number, max: number, int = false): number | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v < min || v > max) {
    throw badField(name, `'${name}' must be ${int ? 'an integer' : 'a number'} in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

export function optBool(b: Json, name: string): boolean | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badField(name, `'${name}' must be a boolean, got ${describe(v)}`);
  return v;
}

export function optString(b: Json, name: string): string | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badField(name, `'${name}' must be a string, got ${describe(v)}`);
  return v;
}

/** the sampling fields both routes share */
export function sampling(b: Json, maxPositions: number): Sampling {
  const n = b['n'];
  if (n !== undefined && n !== null && n !== 1) throw badField('n', `'n': moekit returns one choice per request, so 'n' must be 1, got ${describe(n)}`);
  const maxTokens = optNumber(b, 'max_completion_tokens', 0, maxPositions, true) ?? optNumber(b, 'max_tokens', 0, maxPositions, true);
  const stopV = b['stop'];
  let stop: string[] = [];
  if (typeof stopV === 'string') stop = [stopV];
  else if (Array.isArray(stopV)) {
    if (stopV.length > 4 || !stopV.every((s) => typeof s === 'string')) throw badField('stop', `'stop' must be a string or an array of at most 4 strings, got ${describe(stopV)}`);
    stop = stopV as string[];
  } else if (stopV !== undefined && stopV !== null) throw badField('stop', `'stop' must be a string or an array of at most 4 strings, got ${describe(stopV)}`);
  if (stop.some((s) => s.length === 0)) throw badField('stop', `'stop' strings must not be empty`);
  const so = b['stream_options'];
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) throw badField('stream_options', `'stream_options' must be an object, got ${describe(so)}`);
  const includeUsage = so ? optBool(so as Json, 'include_usage') ?? false : false;
  return {
    maxTokens,
    temperature: optNumber(b, 'temperature', 0, 2) ?? 1,
    topP: optNumber(b, 'top_p', 0, 1),
    topK: optNumber(b, 'top_k', 0, 1e9, true),
    seed: optNumber(b, 'seed', -(2 ** 53), 2 ** 53, true),
    stop,
    stream: optBool(b, 'stream') ?? false,
    includeUsage,
    ignoreEos: optBool(b, 'ignore_eos') ?? false,
  };
}

/** `messages`: role + content (a string, or text parts), at least one */
export function messages(b: Json): ChatMessage[] {
  const v = b['messages'];
  if (!Array.isArray(v) || v.length === 0) throw badField('messages', `'messages' must be a non-empty array of {role, content}, got ${describe(v)}`);
  return v.map((m: unknown, i) => {
    const p = `messages[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw badField(p, `'${p}' must be an object {role, content}, got ${describe(m)}`);
    const { role, content } = m as Json;
    if (typeof role !== 'string' || !['system', 'developer', 'user', 'assistant', 'tool'].includes(role)) {
      throw badField(`${p}.role`, `'${p}.role' must be one of system, developer, user, assistant, tool, got ${describe(role)}`);
    }
    let text: string;
    if (typeof content === 'string') text = content;
    else if (Array.isArray(content)) {
      text = content.map((part: unknown, j) => {
        const pp = `${p}.content[${j}]`;
        if (part && typeof part === 'object' && (part as Json)['type'] === 'text' && typeof (part as Json)['text'] === 'string') return (part as Json)['text'] as string;
        throw badField(pp, `'${pp}' must be a text part {"type": "text", "text": "..."} (moekit's models read text only), got ${describe(part)}`);
      }).join('');
    } else if ((content === null || content === undefined) && role === 'assistant') text = '';
    else throw badField(`${p}.content`, `'${p}.content' must be a string or an array of text parts, got ${describe(content)}`);
    return { role, content: text };
  });
}

/** `prompt` of /v1/completions: a string, an array of one string, or an array of token ids */
export function completionPrompt(b: Json): string | number[] {
  const v = b['prompt'];
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 0)) return v as number[];
  if (Array.isArray(v) && v.length > 1 && v.every((x) => typeof x === 'string')) throw badField('prompt', `'prompt': moekit takes one prompt per request, got ${v.length}`);
  throw badField('prompt', `'prompt' must be a string or an array of token ids, got ${describe(v)}`);
}
