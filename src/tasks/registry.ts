/** All built-in tasks, and `--tasks` lists (names, 'text', 'image', 'all') resolved to them. */
import { MoekitError } from '../util/errors.js';
import { IMAGE_TASKS } from './image.js';
import { TEXT_TASKS } from './text.js';
import type { Task } from './types.js';

export const TASKS: readonly Task[] = [...TEXT_TASKS, ...IMAGE_TASKS];

const BY_NAME = new Map(TASKS.map((t) => [t.name, t]));

export function taskByName(name: string): Task {
  const t = BY_NAME.get(name);
  if (!t) throw new MoekitError(`unknown task '${name}' (tasks: ${TASKS.map((x) => x.name).join(', ')}; or text, image, all)`);
  return t;
}

/** the task whose prefix starts prompt, or null */
export function taskOfPrompt(prompt: string): Task | null {
  return TASKS.find((t) => prompt.startsWith(t.prefix)) ?? null;
}

/** 'add,sort', 'text', 'image,add', 'all' or a list of those → tasks in registry order, without repeats */
export function selectTasks(spec: string | readonly string[] = 'all'): Task[] {
  const items = (typeof spec === 'string' ? spec.split(',') : spec).map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new MoekitError('no tasks given (names, or text, image, all)');
  const chosen = new Set<Task>();
  for (const it of items) {
    if (it === 'all') TASKS.forEach((t) => chosen.add(t));
    else if (it === 'text' || it === 'image') TASKS.filter((t) => t.modality === it).forEach((t) => chosen.add(t));
    else chosen.add(taskByName(it));
  }
  return TASKS.filter((t) => chosen.has(t));
}
