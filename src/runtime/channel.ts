/**
 * An async queue with one consumer: the producer pushes and closes, the consumer iterates with
 * `for await`. A consumer that stops early (break, throw, return) calls `onReturn`: that is how a
 * session learns its client went away.
 */
export class Channel<T> implements AsyncIterable<T> {
  private buf: T[] = [];
  private waiting: ((r: IteratorResult<T, undefined>) => void) | null = null;
  private closed = false;
  /** called once when the consumer stops before the end */
  onReturn: (() => void) | null = null;

  push(v: T): void {
    if (this.closed) return;
    const w = this.waiting;
    if (w) { this.waiting = null; w({ value: v, done: false }); } else this.buf.push(v);
  }

  close(): void {
    this.closed = true;
    this.onReturn = null;
    const w = this.waiting;
    if (w) { this.waiting = null; w({ value: undefined, done: true }); }
  }

  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      next: () => {
        if (this.buf.length > 0) return Promise.resolve({ value: this.buf.shift()!, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => { this.waiting = resolve; });
      },
      return: () => {
        const f = this.onReturn;
        this.buf = [];
        this.close();
        f?.();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
