/**
 * One error type for everything a user can get wrong (bad files, bad configs, bad flags).
 * The CLI prints `moekit: <file>: <message>` on one line and exits non-zero; the stack trace
 * only with --debug or MOEKIT_DEBUG=1. Internal bugs stay plain Errors and keep their stack.
 */
export class MoekitError extends Error {
  /** the file (or flag, or spec path) the problem is in, when there is one */
  readonly file?: string;
  constructor(message: string, file?: string) {
    super(message);
    this.name = 'MoekitError';
    this.file = file;
  }
  /** the one-line form the CLI prints */
  oneLine(): string {
    return this.file ? `${this.file}: ${this.message}` : this.message;
  }
}

/** Throw a MoekitError naming `file` unless `cond` holds. */
export function check(cond: unknown, message: string, file?: string): asserts cond {
  if (!cond) throw new MoekitError(message, file);
}
