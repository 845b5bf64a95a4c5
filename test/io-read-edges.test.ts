/**
 * src/io/read.ts at its edges, each message compared whole: system errors of open by their codes (a symlink loop,
 * a path through a file), a socket, /proc files (stat size 0, content behind it: refused as grown), read errors,
 * the MiB formatting either side of 1 MiB, and oneLineMessage's first line and 200-character cut.
 */
import fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { oneLineMessage, openRegular, readJsonCapped, readTextCapped } from '../src/io/read.js';
import { MoekitError } from '../src/util/errors.js';
import { scratchDir } from './helpers.js';

const tmp = scratchDir('moekit-read-edges-');
function refusal(fn: () => unknown): [string, string | undefined] {
  try { fn(); } catch (e) {
    expect(e).toBeInstanceOf(MoekitError);
    return [(e as MoekitError).message, (e as MoekitError).file];
  }
  throw new Error('did not throw');
}

describe('openRegular and readTextCapped', () => {
  it('open errors other than a missing file: their code', () => {
    const loop = path.join(tmp(), 'loop');
    fs.symlinkSync(loop, loop);
    expect(refusal(() => openRegular(loop, 'config'))).toEqual(['cannot read the config: ELOOP', loop]);
    const f = path.join(tmp(), 'plain.txt');
    fs.writeFileSync(f, 'x');
    const through = path.join(f, 'x.json');
    expect(refusal(() => readTextCapped(through, 10, 'spec file'))).toEqual(['cannot read the spec file: ENOTDIR', through]);
    const gone = path.join(tmp(), 'gone.json');
    expect(refusal(() => readTextCapped(gone, 10, 'spec file'))).toEqual(['no such spec file', gone]);
    expect(refusal(() => readTextCapped(gone, 10, 'tokenizer'))).toEqual(['no such tokenizer file', gone]);
    vi.spyOn(fs, 'openSync').mockImplementationOnce(() => { throw new Error('no code here'); });
    expect(refusal(() => openRegular(f, 'config'))).toEqual(['cannot read the config: no code here', f]);
  });

  it('a socket: Linux refuses to open it (ENXIO), and that is the message', async () => {
    const sock = path.join(tmp(), 's.sock');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      expect(refusal(() => openRegular(sock, 'data file'))).toEqual(['cannot read the data file: ENXIO', sock]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('a directory is refused and its descriptor closed', () => {
    const fds = fs.readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 5; i++) expect(refusal(() => openRegular(tmp(), 'spec'))).toEqual(['the spec is a directory, not a regular file', tmp()]);
    expect(fs.readdirSync('/proc/self/fd').length).toBe(fds);
  });

  it('a /proc file (stat size 0, bytes behind it) is refused as grown while being read', () => {
    expect(fs.statSync('/proc/self/status').size).toBe(0);
    expect(refusal(() => readTextCapped('/proc/self/status', 1 << 20, 'config'))).toEqual(['the config grew while being read (past 0.000 MiB)', '/proc/self/status']);
  });

  it('a file that grows past its stat size while it is read: refused once the buffer fills', () => {
    const f = path.join(tmp(), 'grow.txt');
    fs.writeFileSync(f, 'abc');
    const real = fs.readSync;
    let first = true;
    vi.spyOn(fs, 'readSync').mockImplementation(((fd: number, b: Buffer, off: number, len: number, pos: number) => {
      if (first) { first = false; fs.appendFileSync(f, 'defgh'); }
      return real(fd, b, off, len, pos);
    }) as typeof fs.readSync);
    expect(refusal(() => readTextCapped(f, 100, 'data file'))).toEqual(['the data file grew while being read (past 0.000 MiB)', f]);
    vi.restoreAllMocks();
    expect(readTextCapped(f, 8, 'data file')).toBe('abcdefgh');
  });

  it('reads in pieces until the end; a read error is one line with its code, and the file is closed', () => {
    const f = path.join(tmp(), 'pieces.txt');
    fs.writeFileSync(f, 'héllo wörld');
    const real = fs.readSync;
    const r = vi.spyOn(fs, 'readSync').mockImplementation(((fd: number, b: Buffer, off: number, len: number, pos: number) => real(fd, b, off, Math.min(len, 2), pos)) as typeof fs.readSync);
    expect(readTextCapped(f, 13, 'data file')).toBe('héllo wörld');
    expect(r.mock.calls.length).toBe(8);
    expect(r.mock.calls.map((c) => (c as unknown[])[4])).toEqual([0, 2, 4, 6, 8, 10, 12, 13]);
    vi.restoreAllMocks();
    const close = vi.spyOn(fs, 'closeSync');
    vi.spyOn(fs, 'readSync').mockImplementationOnce(() => { throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }); });
    expect(refusal(() => readTextCapped(f, 100, 'config'))).toEqual(['cannot read the config: EIO', f]);
    vi.spyOn(fs, 'readSync').mockImplementationOnce(() => { throw new Error('odd failure'); });
    expect(refusal(() => readTextCapped(f, 100, 'config'))).toEqual(['cannot read the config: odd failure', f]);
    expect(close).toHaveBeenCalledTimes(2);
  });

  it('sizes in MiB: three decimals under 1 MiB, whole MiB from 1 MiB', () => {
    const f = path.join(tmp(), 'mib.bin');
    fs.writeFileSync(f, Buffer.alloc(2 ** 20, 32));
    expect(refusal(() => readTextCapped(f, 2 ** 20 - 1, 'data file'))).toEqual(['the data file is 1 MiB, over the 1.000 MiB limit', f]);
    expect(refusal(() => readTextCapped(f, 1000, 'data file'))).toEqual(['the data file is 1 MiB, over the 0.001 MiB limit', f]);
    fs.writeFileSync(f, Buffer.alloc(2 ** 19, 32));
    expect(refusal(() => readTextCapped(f, 2 ** 18, 'data file'))).toEqual(['the data file is 0.500 MiB, over the 0.250 MiB limit', f]);
    expect(readTextCapped(f, 2 ** 19, 'data file').length).toBe(2 ** 19);
  });

  it('JSON: the parser\'s message cut to one line', () => {
    const f = path.join(tmp(), 'bad.json');
    fs.writeFileSync(f, '{"a": tru\n}');
    let want = '';
    try { JSON.parse('{"a": tru\n}'); } catch (e) { want = (e as Error).message.split('\n')[0]; }
    expect(refusal(() => readJsonCapped(f, 100, 'config'))).toEqual([`malformed JSON: ${want}`, f]);
    fs.writeFileSync(f, '[1, "x", null]');
    expect(readJsonCapped(f, 100, 'config')).toEqual([1, 'x', null]);
  });
});

describe('oneLineMessage', () => {
  it('the first line, at most 200 characters and an ellipsis', () => {
    expect(oneLineMessage(new Error('first\nsecond'))).toBe('first');
    expect(oneLineMessage(new Error('x'.repeat(200)))).toBe('x'.repeat(200));
    expect(oneLineMessage(new Error('x'.repeat(201)))).toBe(`${'x'.repeat(200)}…`);
    expect(oneLineMessage(new Error(`${'y'.repeat(300)}\nz`))).toBe(`${'y'.repeat(200)}…`);
    expect(oneLineMessage('plain\ntext')).toBe('plain');
    expect(oneLineMessage(null)).toBe('null');
    expect(oneLineMessage(undefined)).toBe('undefined');
    expect(oneLineMessage({ message: 42 })).toBe('42');
  });
});
