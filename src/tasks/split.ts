/**
 * The held-out split, by prompt text: a prompt is held out when its hash falls in bucket 0 of 16. The
 * training stream skips those prompts whatever its seed, so no held-out prompt is ever trained on; the
 * held-out set of a task is the first n distinct bucket-0 prompts of a fixed stream of its own.
 */
import { rng } from '../util/rng.js';
import type { Pair, Task } from './types.js';

export const BUCKETS = 16;

/** murmur3's finaliser: every input bit reaches every output bit */
export function fmix32(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over the UTF-16 code units, finalised */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

export function isHeldOut(prompt: string): boolean {
  return hashString(prompt) % BUCKETS === 0;
}

/**
 * The task's held-out examples: the first n distinct held-out prompts of its held-out stream (so the set for
 * n is a prefix of the set for any larger n). A task with few prompts in all yields fewer than n.
 */
export function heldOut(task: Task, n: number): Pair[] {
  const rand = rng(hashString(`held-out:${task.name}`));
  const seen = new Set<string>();
  const out: Pair[] = [];
  for (let tries = 4096 + n * 256; tries > 0 && out.length < n; tries--) {
    const ex = task.generate(rand);
    if (!isHeldOut(ex.prompt) || seen.has(ex.prompt)) continue;
    seen.add(ex.prompt);
    out.push(ex);
  }
  return out;
}
