/**
 * Training data: example sources (text files, JSONL with `{"text"}` or `{"prompt", "answer"}`, or a generator such
 * as the built-in task corpus), tokenized with a loss mask (`prompt`/`answer` examples put the loss on the answer
 * and the end-of-sequence token only), and packed into batches ids [B, T] with next-token targets. Everything is
 * a deterministic function of the seed and a cursor, so a run resumes exactly from a saved PackerState.
 */
import { DATA_MAX_BYTES, readTextCapped } from '../io/read.js';
import type { TextTokenizer } from '../io/tokenizer.js';
import { MoekitError } from '../util/errors.js';
import { rng } from '../util/rng.js';

export interface Example {
  text?: string;
  prompt?: string;
  answer?: string;
  /** already tokenized (the built-in corpus): used as they are */
  tokens?: Tokens;
}

/** an endless, seekable stream of examples: example i is always the same for the same source */
export interface ExampleSource {
  /** example number i (i = 0, 1, …; sources cycle through their data, reshuffling per epoch) */
  at(i: number): Example;
}

/** a deterministic permutation of [0, n) for epoch e */
function permutation(n: number, seed: number, epoch: number): Uint32Array {
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  const r = rng((seed * 1000003 + epoch * 7919) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

/** a fixed list of examples, shuffled anew each epoch */
export function listSource(examples: Example[], seed: number, what = 'data'): ExampleSource {
  if (examples.length === 0) throw new MoekitError(`${what}: no examples`);
  const perms = new Map<number, Uint32Array>();
  return {
    at(i) {
      const n = examples.length, e = Math.floor(i / n);
      let p = perms.get(e);
      if (!p) { p = permutation(n, seed, e); perms.clear(); perms.set(e, p); }
      return examples[p[i % n]];
    },
  };
}

/** text files: each paragraph (separated by a blank line) one example */
export function textFileSource(files: string[], seed: number): ExampleSource {
  const ex: Example[] = [];
  for (const f of files) {
    const text = readTextCapped(f, DATA_MAX_BYTES, 'data file');
    for (const para of text.split(/\n\s*\n/)) if (para.trim()) ex.push({ text: para.trim() });
  }
  return listSource(ex, seed, files.join(', '));
}

/** JSONL files: one `{"text": …}` or `{"prompt": …, "answer": …}` per line */
export function jsonlSource(files: string[], seed: number): ExampleSource {
  const ex: Example[] = [];
  for (const f of files) {
    const text = readTextCapped(f, DATA_MAX_BYTES, 'data file');
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let o: unknown;
      try { o = JSON.parse(line); } catch (e) { throw new MoekitError(`line ${i + 1}: malformed JSON: ${(e as Error).message}`, f); }
      const r = o as Record<string, unknown>;
      const str = (k: string) => typeof r?.[k] === 'string';
      if (o && typeof o === 'object' && str('text')) ex.push({ text: r.text as string });
      else if (o && typeof o === 'object' && str('prompt') && str('answer')) ex.push({ prompt: r.prompt as string, answer: r.answer as string });
      else throw new MoekitError(`line ${i + 1}: expected {"text": string} or {"prompt": string, "answer": string}`, f);
    });
  }
  return listSource(ex, seed, files.join(', '));
}

export interface Tokens {
  ids: number[];
  /** 1 where the token is a target the loss counts */
  mask: number[];
}

export interface SpecialIds { bos: number | null; eos: number; pad: number }

/** one example's ids and loss mask: [bos] text [eos] (all counted), or [bos] prompt (not counted) answer [eos] */
export function tokenizeExample(tok: TextTokenizer, ex: Example, sp: SpecialIds): Tokens {
  if (ex.tokens) return ex.tokens;
  const ids: number[] = [], mask: number[] = [];
  const add = (xs: number[], m: number) => { for (const x of xs) { ids.push(x); mask.push(m); } };
  if (sp.bos !== null) add([sp.bos], 0);
  if (ex.text !== undefined) add(tok.encode(ex.text, false), 1);
  else { add(tok.encode(ex.prompt ?? '', false), 0); add(tok.encode(ex.answer ?? '', false), 1); }
  add([sp.eos], 1);
  return { ids, mask };
}

export interface Batch {
  ids: Int32Array; // [B, T]
  /** next-token targets [B, T]: ids[b, t + 1] where that token counts, −1 elsewhere */
  targets: Int32Array;
  B: number;
  T: number;
  /** targets counted */
  count: number;
  /**
   * [B, T] the position in its row where each token's example starts (the padding after the last example counts as
   * one more): the bound of intra-document attention masking (data.doc_mask)
   */
  docStart?: Int32Array;
}

/** where a packer stands: the next example and the unfinished tail of a split one */
export interface PackerState {
  cursor: number;
  carry: Tokens | null;
}

/**
 * Packs whole examples into rows of T tokens (the next example starts a new row when it does not fit; the rest
 * of the row is padding, not counted); an example longer than a row is split across rows.
 */
export class Packer {
  state: PackerState = { cursor: 0, carry: null };
  /** docMask: batches carry each token's document start (Batch.docStart) for intra-document masking (data.doc_mask) */
  constructor(private readonly src: ExampleSource, private readonly tok: TextTokenizer, readonly T: number, private readonly sp: SpecialIds,
              readonly docMask = false) {
    if (!Number.isInteger(T) || T < 2) throw new MoekitError(`seq_len must be an integer ≥ 2, got ${T}`);
  }

  private nextTokens(): Tokens {
    if (this.state.carry) { const c = this.state.carry; this.state.carry = null; return c; }
    return tokenizeExample(this.tok, this.src.at(this.state.cursor++), this.sp);
  }

  /** the next row: ids [T], mask [T] and the start of each token's example [T] */
  private row(): Tokens & { starts: number[] } {
    const ids: number[] = [], mask: number[] = [], starts: number[] = [];
    const put = (xs: number[], ms: number[]) => { const s0 = ids.length; ids.push(...xs); mask.push(...ms); for (const _ of xs) starts.push(s0); };
    while (ids.length < this.T) {
      const t = this.nextTokens();
      const room = this.T - ids.length;
      if (t.ids.length <= room) { put(t.ids, t.mask); continue; }
      if (ids.length > 0 && t.ids.length <= this.T) { this.state.carry = t; break; } // starts the next row
      put(t.ids.slice(0, room), t.mask.slice(0, room));
      this.state.carry = { ids: t.ids.slice(room), mask: t.mask.slice(room) };
    }
    const p0 = ids.length;
    while (ids.length < this.T) { ids.push(this.sp.pad); mask.push(0); starts.push(p0); }
    return { ids, mask, starts };
  }

  batch(B: number): Batch {
    const T = this.T;
    const ids = new Int32Array(B * T), targets = new Int32Array(B * T).fill(-1), docStart = new Int32Array(B * T);
    let count = 0;
    for (let b = 0; b < B; b++) {
      const r = this.row();
      ids.set(r.ids, b * T);
      docStart.set(r.starts, b * T);
      for (let t = 0; t + 1 < T; t++) if (r.mask[t + 1]) { targets[b * T + t] = r.ids[t + 1]; count++; }
    }
    return this.docMask ? { ids, targets, B, T, count, docStart } : { ids, targets, B, T, count };
  }
}
