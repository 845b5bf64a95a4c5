/**
 * Reading a user's input file whole (config.json, a spec or training YAML, tokenizer.json, JSONL data): opened
 * without blocking (a FIFO with no writer would block `open` forever), refused unless it is a regular file, and
 * refused over a size cap before anything is read, so /dev/zero or a 100 MB YAML cannot exhaust memory.
 */
import fs from 'node:fs';
import { MoekitError } from '../util/errors.js';

const MiB = 2 ** 20;

/**
 * How every YAML input is parsed: warnings (an unknown tag) not printed over several lines to stderr, and alias
 * expansion capped (a "billion laughs" document) at the yaml library's default, written out
 */
export const YAML_OPTIONS = { logLevel: 'error', maxAliasCount: 100 } as const;
/** config.json, tokenizer_config.json, a shard index, KEEP.json: real ones are kilobytes */
export const CONFIG_MAX_BYTES = 16 * MiB;
/** a planner spec or a training config (YAML or JSON) */
export const SPEC_MAX_BYTES = 4 * MiB;
/** tokenizer.json: the largest published ones are tens of megabytes */
export const TOKENIZER_MAX_BYTES = 256 * MiB;
/** a text or JSONL training data file, read whole */
export const DATA_MAX_BYTES = 1024 * MiB;

const mib = (n: number) => `${(n / MiB).toFixed(n < MiB ? 3 : 0)} MiB`;

/** open read-only without blocking; the fd of a regular file, or a one-line error naming `file` */
export function openRegular(file: string, what: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MoekitError(code === 'ENOENT' ? `no such ${what}${what.endsWith('file') ? '' : ' file'}` : `cannot read the ${what}: ${code ?? (e as Error).message}`, file);
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';
    throw new MoekitError(`the ${what} is ${kind}, not a regular file`, file);
  }
  return { fd, size: st.size };
}

/**
 * The bytes of `file` as UTF-8 text, at most `maxBytes`: larger files are refused before they are read (and a file
 * that grows past its stat size while being read is refused too, so the cap holds).
 */
export function readTextCapped(file: string, maxBytes: number, what: string): string {
  const { fd, size } = openRegular(file, what);
  try {
    if (size > maxBytes) throw new MoekitError(`the ${what} is ${mib(size)}, over the ${mib(maxBytes)} limit`, file);
    const buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, size + 1));
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = fs.readSync(fd, buf, n, buf.length - n, n);
      } catch (e) {
        throw new MoekitError(`cannot read the ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, file);
      }
      if (got === 0) break;
      n += got;
      if (n === buf.length) throw new MoekitError(`the ${what} grew while being read (past ${mib(n - 1)})`, file);
    }
    return buf.toString('utf8', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** JSON.parse of a capped read; a parse error is one line naming the file (no config text with newlines) */
export function readJsonCapped(file: string, maxBytes: number, what: string): unknown {
  const text = readTextCapped(file, maxBytes, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MoekitError(`malformed JSON: ${oneLineMessage(e)}`, file);
  }
}

/** an exception's message cut to its first line and 200 characters (parsers quote the input) */
export function oneLineMessage(e: unknown): string {
  const m = String((e as Error)?.message ?? e).split('\n')[0];
  return m.length > 200 ? m.slice(0, 200) + '…' : m;
}
