/**
 * The named training recipes (src/train/recipes.ts) against what they made and what the docs say of them: the demo
 * recipe's model config is examples/demo-moe/config.json, key for key; its run is the README's (3600 steps, one
 * elastic sub-model of depth 2/3/4, width 4/8/16, top-1/2, distilled from the full model's logits, text tasks weighed
 * 3 to 1 against image tasks); it resolves as a config; an unknown name is refused, naming the known ones.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMAGE_TASKS } from '../src/tasks/image.js';
import { TEXT_TASKS } from '../src/tasks/text.js';
import { resolveConfig } from '../src/train/config.js';
import { DEMO_MODEL, recipe, RECIPES } from '../src/train/recipes.js';

const DEMO = path.resolve(__dirname, '../examples/demo-moe');

describe('training recipes', () => {
  it('demo: the model config is examples/demo-moe\'s, key for key', () => {
    expect(DEMO_MODEL).toEqual(JSON.parse(fs.readFileSync(path.join(DEMO, 'config.json'), 'utf8')));
    expect((recipe('demo').model as { config: unknown }).config).toEqual(DEMO_MODEL);
  });

  it('demo: the run the README describes, resolving as a config', () => {
    const cfg = resolveConfig(recipe('demo'), '/base');
    expect(cfg.train).toMatchObject({ steps: 5500, batch_size: 8, grad_accum: 2, workers: 2, schedule: 'wsd', clip: 1 });
    expect(cfg.elastic).toMatchObject({ samples: 1, distill: 1 });
    const raw = recipe('demo') as { elastic: Record<string, unknown>; data: { source: string; mix: Record<string, number> }; out: string };
    expect(raw.elastic).toMatchObject({ depth: [2, 3, 4], experts: [4, 8, 16], top_k: [1, 2] });
    expect(raw.data.source).toBe('builtin');
    // every text task weighed (the hard ones most), image tasks 1 (not named); attention inside each example
    expect(Object.keys(raw.data.mix).sort()).toEqual(TEXT_TASKS.map((t) => t.name).sort());
    expect(raw.data.mix).toMatchObject({ count: 6, lookup: 6, balanced: 6, add: 5 });
    expect(cfg.data.doc_mask).toBe(true);
    for (const t of IMAGE_TASKS) expect(raw.data.mix[t.name]).toBeUndefined();
    expect(TEXT_TASKS.length).toBe(8);
    expect(cfg.out).toBe(path.resolve('/base', raw.out));
  });

  it('each call gives a fresh config (a --set on one does not reach the next)', () => {
    const a = recipe('demo') as { train: { steps: number } };
    a.train.steps = 1;
    expect((recipe('demo') as { train: { steps: number } }).train.steps).toBe(5500);
    expect(recipe('demo')).not.toBe(recipe('demo'));
  });

  it('an unknown recipe is refused, naming the known ones', () => {
    expect(() => recipe('nope')).toThrow(`unknown recipe 'nope' (known: ${Object.keys(RECIPES).join(', ')})`);
    expect(Object.keys(RECIPES)).toEqual(['demo']);
  });
});
