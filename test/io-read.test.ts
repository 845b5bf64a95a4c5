/**
 * Capped reads (src/io/read.ts) and model directory names (src/io/model-dir.ts): a missing file, a directory, a FIFO
 * and a file past its cap each give a one-line error naming the file; a file at its cap reads whole; malformed JSON
 * is one line; 'demo' names the bundled demo model.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoModelDir, resolveModelDir } from '../src/io/model-dir.js';
import { CONFIG_MAX_BYTES, DATA_MAX_BYTES, openRegular, readJsonCapped, readTextCapped, SPEC_MAX_BYTES, TOKENIZER_MAX_BYTES } from '../src/io/read.js';
import { MoekitError } from '../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-read-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const err = (fn: () => unknown, re: RegExp, file: string) => {
  let e: unknown;
  try { fn(); } catch (x) { e = x; }
  expect(e).toBeInstanceOf(MoekitError);
  expect((e as Error).message).toMatch(re);
  expect((e as MoekitError).file).toBe(file);
};

describe('capped reads', () => {
  it('a missing file is named once: "no such data file", "no such spec file"', () => {
    const gone = path.join(os.tmpdir(), `moekit-missing-${process.pid}.txt`);
    const msg = (what: string) => { try { readTextCapped(gone, 10, what); } catch (e) { return (e as Error).message; } return ''; };
    expect(msg('data file')).toMatch(/no such data file/);
    expect(msg('data file')).not.toMatch(/file file/);
    expect(msg('spec')).toMatch(/no such spec file/);
  });
  it('the caps', () => {
    expect([CONFIG_MAX_BYTES, SPEC_MAX_BYTES, TOKENIZER_MAX_BYTES, DATA_MAX_BYTES]).toEqual([16 * 2 ** 20, 4 * 2 ** 20, 256 * 2 ** 20, 1024 * 2 ** 20]);
  });
  it('reads a file whole, at and under its cap; past it is refused with both sizes', () => {
    const f = path.join(tmp, 'a.txt');
    fs.writeFileSync(f, 'héllo');
    expect(readTextCapped(f, 6, 'thing')).toBe('héllo'); // 6 bytes: exactly the cap
    expect(readTextCapped(f, 100, 'thing')).toBe('héllo');
    err(() => readTextCapped(f, 5, 'thing'), /^the thing is 0\.000 MiB, over the 0\.000 MiB limit$/, f);
    const big = path.join(tmp, 'big.txt');
    fs.writeFileSync(big, Buffer.alloc(3 * 2 ** 20, 97));
    err(() => readTextCapped(big, 2 * 2 ** 20, 'data file'), /^the data file is 3 MiB, over the 2 MiB limit$/, big);
    expect(readTextCapped(big, 3 * 2 ** 20, 'data file').length).toBe(3 * 2 ** 20);
    const empty = path.join(tmp, 'empty.txt');
    fs.writeFileSync(empty, '');
    expect(readTextCapped(empty, 10, 'thing')).toBe('');
  });
  it('a missing file, a directory and a FIFO are named', () => {
    err(() => readTextCapped(path.join(tmp, 'nope'), 10, 'config'), /^no such config file$/, path.join(tmp, 'nope'));
    err(() => openRegular(tmp, 'config'), /^the config is a directory, not a regular file$/, tmp);
    const fifo = path.join(tmp, 'fifo');
    execFileSync('mkfifo', [fifo]);
    err(() => readTextCapped(fifo, 10, 'spec'), /^the spec is a FIFO, not a regular file$/, fifo);
    err(() => openRegular('/dev/null', 'tokenizer'), /^the tokenizer is a device, not a regular file$/, '/dev/null');
    const { fd, size } = openRegular(path.join(tmp, 'a.txt'), 'x');
    expect(size).toBe(6);
    fs.closeSync(fd);
  });
  it('JSON: parsed, or one line naming the file', () => {
    const f = path.join(tmp, 'a.json');
    fs.writeFileSync(f, '{"a": [1, 2]}');
    expect(readJsonCapped(f, 100, 'config')).toEqual({ a: [1, 2] });
    fs.writeFileSync(f, '{"a": \n[1, 2');
    err(() => readJsonCapped(f, 100, 'config'), /^malformed JSON: [^\n]+$/, f);
  });
});

describe('model directories', () => {
  // (the cases that depend on the working directory are not run here: worker threads, which the mutation runs use,
  // cannot change it)
  it("'demo' is the bundled demo model; other names pass through", () => {
    expect(resolveModelDir('demo')).toBe(demoModelDir);
    expect(fs.existsSync(path.join(demoModelDir, 'config.json'))).toBe(true);
    expect(resolveModelDir('some/model')).toBe('some/model');
    expect(resolveModelDir('examples/demo-moe')).toBe('examples/demo-moe'); // it exists from the repository root
  });
});
