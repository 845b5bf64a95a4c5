/**
 * The terminal face of progress events: a bar on stderr when it is a TTY, silence otherwise; with
 * MOEKIT_PROGRESS=jsonl, each event as one JSON line on stderr instead (what `moekit serve`'s jobs read).
 */
import cliProgress from 'cli-progress';
import type { ProgressCallback } from '../util/progress.js';

export function terminalProgress(enabled = process.stderr.isTTY === true): ProgressCallback | undefined {
  if (process.env.MOEKIT_PROGRESS === 'jsonl') return (ev) => { process.stderr.write(JSON.stringify(ev) + '\n'); };
  if (!enabled) return undefined;
  let bar: cliProgress.SingleBar | null = null;
  return (ev) => {
    if (ev.status === 'initiate') {
      bar = new cliProgress.SingleBar({ stream: process.stderr, format: `${ev.task} [{bar}] {value}/{total} {item}`, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
      bar.start(ev.total, 0, { item: '' });
    } else if (ev.status === 'progress') bar?.update(ev.loaded, { item: ev.item ?? '' });
    else if (ev.status === 'done') { bar?.stop(); bar = null; }
    // 'ready', and a lazy expert store's 'expert' events while the model runs, leave the terminal alone
  };
}
