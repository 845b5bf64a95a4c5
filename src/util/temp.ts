/**
 * Temporary files and directories of atomic writes (written under a temp name, then renamed), removed when the
 * process gets SIGINT or SIGTERM: an interrupted save leaves no `*.tmp-<pid>` behind (it was up to 800 MB).
 *
 * The handlers are installed only while a temp path is live (a listener defers Ctrl-C to the next turn of the event
 * loop, so none is kept during plain computation). A signal that arrives during a synchronous write is handled when
 * the write returns: by then the temp is renamed or removed, and the process still ends by that signal.
 */
import * as fs from 'node:fs';

const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let installed = false;

function onSignal(sig: NodeJS.Signals): void {
  removeLive();
  const others = process.listenerCount(sig) > 1;
  uninstall();
  // no one else handles it: end by the signal, as without a handler (exit status 128 + signal number)
  if (!others) process.kill(process.pid, sig);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** remove every live temp path now (best effort) */
export function removeLive(): void {
  for (const p of live) {
    try { fs.rmSync(p, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  live.clear();
}

/** the temp paths now live (for tests) */
export function liveTemps(): string[] {
  return [...live];
}

/**
 * Register `tmp` (a file or directory about to be written) for removal on SIGINT / SIGTERM; the returned function
 * unregisters it (after its rename, or its removal on error).
 */
export function trackTemp(tmp: string): () => void {
  live.add(tmp);
  install();
  return () => {
    live.delete(tmp);
    // uninstalled on the next turn of the loop: a signal that came during synchronous work is handled first
    if (live.size === 0) setImmediate(() => { if (live.size === 0) uninstall(); }).unref();
  };
}

/** run `fn` with `tmp` registered (trackTemp) */
export function withTemp<T>(tmp: string, fn: () => T): T {
  const done = trackTemp(tmp);
  try {
    return fn();
  } finally {
    done();
  }
}
