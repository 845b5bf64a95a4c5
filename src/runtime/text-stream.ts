/**
 * Text as tokens stream in, as transformers' TextStreamer prints it: decode everything generated so far
 * and hand out what is new, holding back an incomplete UTF-8 sequence (a trailing U+FFFD).
 */
import type { TextTokenizer } from '../io/tokenizer.js';

export class TextStream {
  private ids: number[] = [];
  private printed = 0;
  constructor(private readonly tok: Pick<TextTokenizer, 'decode'>) {}

  /** the printable text token `id` adds ('' while it is held back) */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decode(this.ids);
    if (text.endsWith('\uFFFD') || text.length <= this.printed) return '';
    const delta = text.slice(this.printed);
    this.printed = text.length;
    return delta;
  }
}
