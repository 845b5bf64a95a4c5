/**
 * Parameter counts from the description: equal to the checkpoint headers of the fixtures, and to
 * the published sizes of real models (from their config.json alone).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigReader, readConfig } from '../src/io/config.js';
import { inspectModel } from '../src/models/inspect.js';
import { activeExperts, paramCounts } from '../src/models/params.js';
import { archFor } from '../src/models/registry.js';
import { FIXTURE_ARCHS } from './archs.js';

const FIX = path.resolve(__dirname, '../fixtures');
const ARCHS = FIXTURE_ARCHS;

describe('parameter counts equal the checkpoint headers', () => {
  it.each(ARCHS)('%s', (arch) => {
    const dir = path.join(FIX, 'hf-tiny-moe', arch);
    const c = readConfig(dir);
    const p = paramCounts(archFor(c).describe(c));
    const r = inspectModel(dir);
    expect(p.total).toBe(r.parameters.total);
    expect(p.routedExperts).toBe(r.parameters.routedExperts);
    expect(p.attentionExperts).toBe(r.parameters.attentionExperts); // JetMoE's routed attention projections (0 elsewhere)
    expect(Math.round(p.activePerToken)).toBe(r.parameters.activePerToken);
  });
});

// published totals / active-per-token (model cards and papers); tolerance 1 % unless stated
const PUBLISHED: [string, number, number, string][] = [
  ['mixtral-8x7b', 46.7e9, 12.9e9, 'Mixtral of Experts (arXiv 2401.04088): 47B total, 13B active; HF: 46.7B'],
  ['deepseek-v3', 671e9, 37e9, 'DeepSeek-V3 report: 671B total, 37B activated (MTP module excluded)'],
  ['qwen3-30b-a3b', 30.5e9, 3.3e9, 'Qwen3-30B-A3B model card: 30.5B total, 3.3B activated'],
  ['qwen1.5-moe-a2.7b', 14.3e9, 2.7e9, 'Qwen1.5-MoE-A2.7B model card: 14.3B total, 2.7B activated'],
  ['olmoe-1b-7b-0924', 6.9e9, 1.3e9, 'OLMoE paper: 6.9B total, 1.3B active'],
  ['gpt-oss-20b', 20.91e9, 3.61e9, 'gpt-oss model card: 20.91B total, 3.61B active (input embedding not counted as active)'],
  ['deepseek-v2-lite', 15.7e9, 2.4e9, 'DeepSeek-V2-Lite model card: 15.7B total, 2.4B activated (input embedding not counted)'],
  // the MTP layer (model.layers.92) is not counted (moekit does not run it): 352.8B; active without the input
  // embedding and the LM head: 32.08B
  ['glm-4.5', 355e9, 32e9, 'GLM-4.5 model card / transformers docs (glm4_moe.md): 355B total, 32B active'],
  ['dots.llm1', 142e9, 14e9, 'dots.llm1 technical report (arXiv 2506.05767): 142B total, 14B activated'],
  // the published 109B counts Llama 4's vision encoder and projector too, which a llama4_text checkpoint does not
  // hold: 107.77B here (−1.1 %), checked at 1.5 %
  ['llama-4-scout-17b-16e', 109e9, 17e9, 'Llama 4 model card (meta-llama/Llama-4-Scout-17B-16E): 109B total, 17B active'],
  ['llama-4-maverick-17b-128e', 400e9, 17e9, 'Llama 4 model card (meta-llama/Llama-4-Maverick-17B-128E): 400B total, 17B active'],
  // "80B total, 3B activated": 79.67B here; active 3.25B without the embedding and LM head (3.88B with them) — the
  // card's 3B is a rounded name (A3B), held at 10 %
  ['qwen3-next-80b-a3b', 80e9, 3e9, 'Qwen3-Next-80B-A3B model card: 80B total, 3B activated'],
  ['phi-3.5-moe', 41.9e9, 6.6e9, 'Phi-3.5-MoE-instruct model card: 41.9B total, 6.6B active (longrope factors left out of the config: they set no parameters)'],
  ['hunyuan-a13b', 80e9, 13e9, 'Hunyuan-A13B model card (tencent/Hunyuan-A13B-Instruct): 80B total, 13B active (80.39B / 12.75B here)'],
  // 456.09B here; active 45.94B without the input embedding and the LM head (48.40B with them)
  ['minimax-text-01', 456e9, 45.9e9, 'MiniMax-Text-01 model card (MiniMaxAI/MiniMax-Text-01; MiniMax-M1 has the same shape): 456B total, 45.9B activated per token'],
  // the active count varies per token (zero-computation experts): "~27B on average" is loose; here 27.15B without the
  // input embedding, at 8 of the 12 choices on routed experts (their share, 512 of 768); its range is checked below
  ['longcat-flash-chat', 560e9, 27e9, 'LongCat-Flash technical report / model card (meituan-longcat/LongCat-Flash-Chat): 560B total, 18.6B–31.3B active, ~27B on average'],
  // the card gives no active count: its config routes every token to all 7 experts (num_experts_per_tok =
  // num_experts = 7), so active = total, 33.27B here (the paper's 8-expert top-4 model is 37B / 20B)
  ['flexolmo-7x7b-1t', 33e9, 33e9, 'FlexOlmo-7x7B-1T model card (allenai/FlexOlmo-7x7B-1T): 33B total; top-7 of 7 experts'],
  // the text decoder only (the 25.3B / 3.9B per visual token count the vision encoder and projector, not read here):
  // 24.87B; active 3.60B without the embedding and the LM head (3.86B with the head): the card's 3.5B is 2.9 % under
  // it (stated loosely; the card does not say what it counts), held at 3 % as the other rounded rows
  ['aria', 24.9e9, 3.5e9, 'Aria model card (rhymes-ai/Aria): 24.9B total in the MoE decoder, 3.5B activated per text token'],
  // "9B active" is rounded: 8.80B here (the tied embedding counted), held at 3 %
  ['granite-4.0-h-small', 32e9, 9e9, 'Granite-4.0-H-Small model card (ibm-granite/granite-4.0-h-small): 32B total, 9B active (32.21B / 8.80B here)'],
  ['dbrx-instruct', 132e9, 36e9, 'DBRX model card (databricks/dbrx-instruct): 132B total, 36B active (131.6B / 36.5B here)'],
  // "8B parameters, 2.2B active" (the attention experts' unchosen q / o projections idle too): 8.52B / 2.33B here (2.27B
  // without the tied embedding's lookup) — both stated loosely, held at 10 %
  ['jetmoe-8b', 8e9, 2.2e9, 'JetMoE-8B model card (jetmoe/jetmoe-8b) and paper (arXiv 2404.07413): 8B parameters, 2.2B active'],
];
const ACTIVE_WITHOUT_EMBEDDING = new Set(['gpt-oss-20b', 'deepseek-v2-lite', 'longcat-flash-chat']);
const ACTIVE_WITHOUT_EMBEDDING_AND_HEAD = new Set(['glm-4.5', 'qwen3-next-80b-a3b', 'minimax-text-01', 'aria']);

describe('parameter counts from real configs match the published sizes', () => {
  it.each(PUBLISHED)('%s', (name, total, active, _source) => {
    const file = path.join(FIX, 'configs', `${name}.json`);
    const c = new ConfigReader(JSON.parse(fs.readFileSync(file, 'utf8')), file);
    const p = paramCounts(archFor(c).describe(c));
    const act = ACTIVE_WITHOUT_EMBEDDING.has(name) ? p.activePerToken - p.embedding
      : ACTIVE_WITHOUT_EMBEDDING_AND_HEAD.has(name) ? p.activePerToken - p.embedding - p.lmHead : p.activePerToken;
    // published active counts are rounded: 37B (DeepSeek-V3, 37.5B here), 2.4B (V2-Lite, 2.45B here)
    const tolT = name === 'llama-4-scout-17b-16e' ? 0.015 : name === 'jetmoe-8b' ? 0.1 : 0.01;
    const tolA = name.startsWith('deepseek') || name === 'aria' || name === 'granite-4.0-h-small' ? 0.03 : name === 'qwen3-next-80b-a3b' || name === 'jetmoe-8b' ? 0.1 : 0.02;
    expect(Math.abs(p.total - total) / total).toBeLessThan(tolT);
    expect(Math.abs(act - active) / active).toBeLessThan(tolA);
  });

  it('ERNIE 4.5 21B-A3B, Granite 3.0 1B-A400M and Granite-4.0-H-Tiny land on their names', () => {
    const load = (n: string) => {
      const file = path.join(FIX, 'configs', `${n}.json`);
      const c = new ConfigReader(JSON.parse(fs.readFileSync(file, 'utf8')), file);
      return paramCounts(archFor(c).describe(c));
    };
    const e = load('ernie-4.5-21b-a3b'); // "21B total, 3B activated"
    expect(e.total / 1e9).toBeGreaterThan(21); expect(e.total / 1e9).toBeLessThan(22.5);
    expect(e.activePerToken / 1e9).toBeGreaterThan(3); expect(e.activePerToken / 1e9).toBeLessThan(3.5);
    const g = load('granite-3.0-1b-a400m'); // "1.3B total, 400M active"
    expect(g.total / 1e9).toBeCloseTo(1.33, 1);
    expect(g.activePerToken / 1e6).toBeGreaterThan(400); expect(g.activePerToken / 1e6).toBeLessThan(450);
    // Granite-4.0-H-Tiny's card: "7B total, 1B active", names: 6.94B total; 1.47B active (1.32B without the embedding)
    const t = load('granite-4.0-h-tiny');
    expect(Math.abs(t.total - 7e9) / 7e9).toBeLessThan(0.01);
    expect(Math.round(t.activePerToken / 1e9)).toBe(1);
  });
});

describe('LongCat-Flash: the active count of zero-computation experts', () => {
  it('spans the published 18.6B–31.3B (input embedding not counted): no routed expert to all 12; inspect says its basis', async () => {
    const file = path.join(FIX, 'configs', 'longcat-flash-chat.json');
    const c = new ConfigReader(JSON.parse(fs.readFileSync(file, 'utf8')), file);
    const d = archFor(c).describe(c), p = paramCounts(d);
    expect(activeExperts(d.moe)).toEqual({ min: 0, mean: 8, max: 12 }); // 12 of 768 choices, 512 routed
    expect(Math.abs(p.activeMin - p.embedding - 18.6e9) / 18.6e9).toBeLessThan(0.02);
    expect(Math.abs(p.activeMax - p.embedding - 31.3e9) / 31.3e9).toBeLessThan(0.02);
    // without zero experts the three coincide
    const q = paramCounts(archFor(new ConfigReader(JSON.parse(fs.readFileSync(path.join(FIX, 'configs', 'deepseek-v3.json'), 'utf8')), 'x')).describe(
      new ConfigReader(JSON.parse(fs.readFileSync(path.join(FIX, 'configs', 'deepseek-v3.json'), 'utf8')), 'x')));
    expect([q.activeMin, q.activeMax]).toEqual([q.activePerToken, q.activePerToken]);
    const os = await import('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-longcat-cfg-'));
    try {
      fs.copyFileSync(file, path.join(dir, 'config.json'));
      const r = inspectModel(dir);
      expect(r.parameters.total).toBe(p.total);
      expect(r.parameters.activePerToken).toBe(Math.round(p.activePerToken));
      expect([r.parameters.activeMin, r.parameters.activeMax]).toEqual([Math.round(p.activeMin), Math.round(p.activeMax)]);
      expect(r.parameters.activeBasis).toMatch(/^8\.00 of top-12 on the 512 routed experts .*256 zero-computation; 0–12 per token/);
      expect(r.experts.zero).toBe(256);
      expect(r.memory.kvCacheBytesPerToken).toBe(2 * 28 * 4 * (512 + 64)); // two attention sublayers per layer
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Llama 4 as published (model_type llama4: the text model under text_config)', () => {
  it('counts its language model: the llama4_text config\'s counts', () => {
    const load = (n: string) => {
      const file = path.join(FIX, 'configs', `${n}.json`);
      return paramCounts(archFor(new ConfigReader(JSON.parse(fs.readFileSync(file, 'utf8')), file)).describe(new ConfigReader(JSON.parse(fs.readFileSync(file, 'utf8')), file)));
    };
    const mm = load('llama-4-scout-17b-16e-multimodal'), text = load('llama-4-scout-17b-16e');
    expect(mm.total).toBe(text.total);
    expect(mm.activePerToken).toBe(text.activePerToken);
    expect(mm.total / 1e9).toBeGreaterThan(107); // and the vision tower is not counted: 107.77B of the published 109B
  });
});

describe('inspect on a config.json without weights', () => {
  it('reports the counts from the description', async () => {
    const os = await import('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-cfgonly-'));
    try {
      fs.copyFileSync(path.join(FIX, 'configs', 'deepseek-v3.json'), path.join(dir, 'config.json'));
      const r = inspectModel(dir);
      expect(r.weights).toBe(false);
      expect(r.parameters.total / 1e9).toBeCloseTo(671.03, 1);
      expect(r.moeLayers).toBe(58);
      expect(r.denseLayers).toBe(3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
