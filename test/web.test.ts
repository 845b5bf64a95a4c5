/**
 * The dashboard in a real browser: Playwright (playwright-core, no browser download) drives Debian's
 * Chromium (/usr/bin/chromium, installed by setup.sh) against `moekit serve` on the demo model. It sends a
 * chat message and sees the streamed answer (the engine's greedy text for that prompt), switches to a
 * sub-model and sees that sub-model's answer, opens the routing view (one row per routed position, one
 * column per MoE layer), the expert loads, the PreMoe view, and runs a plan (simulate, search, export).
 * Screenshots go to test-artifacts/. Without Chromium the test fails, saying how to install it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { MoeModel } from '../src/models/model.js';
import { generate } from '../src/runtime/generate.js';
import { createServer, type MoeServer } from '../src/server/app.js';
import { storeResolver } from '../src/server/patterns.js';
import { builtinSource, profileTasks } from '../src/experts/profile.js';
import { newStore } from '../src/experts/store.js';
import { taskByName } from '../src/tasks/index.js';

const DEMO = path.resolve(__dirname, '../examples/demo-moe');
const CHROMIUM = process.env.MOEKIT_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.resolve(__dirname, '../test-artifacts');
const WEB = path.resolve(__dirname, '../dist/web/index.html');

describe('the dashboard in Chromium', () => {
  let s: MoeServer, url: string, browser: Browser, page: Page, jobsDir = '';
  const model = MoeModel.load(DEMO), tok = loadTokenizer(DEMO)!;
  const greedy = (text: string, max: number, sub?: Parameters<typeof generate>[2]['sub']) => {
    const ids = tok.applyChatTemplate([{ role: 'user', content: text }], true);
    return tok.decode(generate(model, ids, { maxNewTokens: max, greedy: true, sub }).ids.slice(ids.length));
  };
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    expect(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run ./setup.sh (it apt-installs chromium), or set MOEKIT_CHROMIUM`).toBe(true);
    expect(fs.existsSync(WEB), 'dist/web is not built: npm run build:web (npm ci and npm test run it)').toBe(true);
    fs.mkdirSync(SHOTS, { recursive: true });
    jobsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-web-jobs-'));
    s = createServer({ dir: DEMO, jobsDir });
    url = await s.listen('127.0.0.1', 0);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('body[data-ready="1"]');
    expect(errors).toEqual([]);
  });
  afterAll(async () => { await browser?.close(); await s?.close(); if (jobsDir) fs.rmSync(jobsDir, { recursive: true, force: true }); });

  async function chat(text: string): Promise<string> {
    const n = await page.locator('.msg.assistant').count();
    await page.fill('#prompt', text);
    await page.click('#send');
    const a = page.locator('.msg.assistant').nth(n);
    await a.and(page.locator('[data-done="1"]')).waitFor();
    return (await a.textContent()) ?? '';
  }

  it('chat streams the model\'s answer into the page', async () => {
    await page.fill('#max-tokens', '40');
    const got = await chat('add 62+0=');
    expect(got).toBe(greedy('add 62+0=', 40));
    expect(await page.textContent('#timings')).toMatch(/tokens \((stop|length)\); prompt \d+ tokens .* ran the full model/);
    expect(await page.textContent('#model')).toMatch(/demo-moe \(qwen3_moe, 4 layers, 16 experts, top-2/);
    await shot('chat');
  });

  it('the routing view shows the last answer: positions × MoE layers, coloured by expert', async () => {
    await page.click('nav button[data-tab="routing"]');
    const rows = page.locator('#routing tr');
    const ids = tok.applyChatTemplate([{ role: 'user', content: 'add 62+0=' }], true);
    const answer = tok.encode(greedy('add 62+0=', 40), false).length;
    expect(await rows.count()).toBe(1 + ids.length + answer); // header + prompt + answer's tokens (eos included) − the last one fed, + 1 for eos
    const cell = page.locator('#routing td[data-expert]').first();
    expect(await cell.getAttribute('title')).toMatch(/^expert \d+: 0\.\d+\nexpert \d+: 0\.\d+$/);
    expect(await page.locator('#routing td[data-expert]').count()).toBe((ids.length + answer) * 4);
    await shot('routing');
  });

  it('the elastic view picks a sub-model; chat then runs it', async () => {
    await page.click('nav button[data-tab="elastic"]');
    await page.waitForSelector('#tab-elastic[data-loaded="18"]');
    await page.click('#grid tr[data-sub="2-8-1"]');
    expect(await page.textContent('#running')).toBe('depth 2, 8 experts, top-1');
    await shot('elastic');
    await page.click('nav button[data-tab="chat"]');
    const got = await chat('sort 05992=');
    const mask = Uint8Array.from({ length: 16 }, (_, e) => (e < 8 ? 1 : 0));
    expect(got).toBe(greedy('sort 05992=', 40, { layers: [0, 3], experts: [mask, mask, mask, mask], topK: 1 }));
    expect(await page.textContent('#timings')).toMatch(/ran layers 0,3, top-k 1/);
    await page.click('nav button[data-tab="elastic"]');
    await page.click('#grid tr[data-sub="full"]');
    expect(await page.textContent('#running')).toBe('the full model');
  });

  it('expert loads and the PreMoe view', async () => {
    await page.click('nav button[data-tab="experts"]');
    await page.waitForSelector('#heatmap td');
    expect(await page.locator('#heatmap td').count()).toBe(4 * 16);
    await shot('experts');
    await page.click('nav button[data-tab="premoe"]');
    await page.waitForSelector('#premoe-table td');
    expect(await page.textContent('#premoe-store')).toMatch(/no pattern store loaded/);
    // the demo's evaluation (examples/demo-moe/premoe-eval.json): one accuracy curve per scoring method, and
    // the note quotes the full model's mean held-out accuracy from that file
    const ev = JSON.parse(fs.readFileSync(path.join(DEMO, 'premoe-eval.json'), 'utf8'));
    const scores = new Set(ev.grid.map((r: { score: string }) => r.score).filter((x: string) => x !== 'full'));
    await page.waitForSelector(`#tab-premoe[data-curves="${scores.size}"]`);
    const full = ev.grid.find((r: { score: string }) => r.score === 'full').mean;
    expect(await page.textContent('#premoe-eval')).toContain(`full model ${(100 * full).toFixed(1)} %`);
    await shot('premoe');
  });

  it('the jobs view profiles the model (then the PreMoe view lists its tasks) and trains, following their events', async () => {
    await page.click('nav button[data-tab="jobs"]');
    await page.selectOption('#profile-tasks', 'image');
    await page.fill('#profile-n', '2');
    await page.click('#profile-start');
    await page.waitForSelector('#tab-jobs[data-end]', { timeout: 60_000 });
    expect(await page.getAttribute('#tab-jobs', 'data-end')).toBe('done');
    expect(await page.textContent('#job-item')).toMatch(/^(\d+)\/\1 /); // the bar's last event: all examples
    await page.click('nav button[data-tab="premoe"]');
    await page.waitForFunction(() => (document.getElementById('premoe-tasks')?.textContent ?? '').includes('stored task patterns'));
    expect(await page.textContent('#premoe-tasks')).toMatch(/digit, shape, dots, draw, icons/);
    await page.click('nav button[data-tab="jobs"]');
    await page.fill('#train-steps', '2');
    await page.click('#train-start');
    await page.waitForSelector('#tab-jobs[data-end]', { timeout: 120_000 });
    expect(await page.getAttribute('#tab-jobs', 'data-end')).toBe('done');
    expect(await page.textContent('#job-item')).toMatch(/step 2\/2, loss \d+\.\d+/);
    expect(await page.locator('#job-list tr').count()).toBe(3);
    await shot('jobs');
  }, 240_000);

  it('the planner simulates, searches and exports a spec', async () => {
    await page.click('nav button[data-tab="planner"]');
    await page.waitForSelector('#plan-model option', { state: 'attached' });
    await page.selectOption('#plan-model', 'mixtral-8x7b');
    await page.selectOption('#plan-hw', 'h100');
    await page.click('button[data-plan="simulate"]');
    await page.waitForSelector('#plan-summary b');
    expect(await page.textContent('#plan-summary')).toMatch(/step \d+\.\d+ s, [\d,]+ tokens\/s, MFU \d+\.\d %/);
    await page.click('button[data-plan="search"]');
    await page.waitForSelector('#plan-layouts tr:nth-child(2)');
    expect(await page.locator('#plan-layouts tr').count()).toBeGreaterThan(2);
    await page.click('button[data-plan="export"]');
    await page.waitForFunction(() => (document.getElementById('plan-command')?.textContent ?? '').length > 0);
    expect(await page.textContent('#plan-command')).toMatch(/torchrun .*pretrain_gpt\.py/);
    // a bad spec shows the planner's message
    await page.fill('#plan-tp', '5');
    await page.click('button[data-plan="simulate"]');
    await page.waitForFunction(() => (document.getElementById('plan-error')?.textContent ?? '').length > 0);
    expect(await page.textContent('#plan-error')).toMatch(/tp/);
    await shot('planner');
  });
});

describe('the dashboard with a PreMoe pattern store (moekit serve --store)', () => {
  let s: MoeServer, url: string, browser: Browser, page: Page;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-web-store-'));
  beforeAll(async () => {
    const file = path.join(tmp, 'store.json');
    const model = MoeModel.load(DEMO);
    await profileTasks(model, model.desc, file, newStore(DEMO), ['sort', 'draw'].map((t) => builtinSource(taskByName(t))), { n: 8 });
    const r = storeResolver(DEMO, file, { keepExperts: 4 });
    s = createServer({ dir: DEMO, patterns: r.resolve, patternInfo: r.info });
    url = await s.listen('127.0.0.1', 0);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(url);
    await page.waitForSelector('body[data-ready="1"]');
  }, 120_000);
  afterAll(async () => { await browser?.close(); await s?.close(); fs.rmSync(tmp, { recursive: true, force: true }); });

  it('the PreMoe view lists the stored tasks; chat runs the pattern retrieved for the prompt', async () => {
    await page.click('nav button[data-tab="premoe"]');
    await page.waitForFunction(() => (document.getElementById('premoe-tasks')?.textContent ?? '').length > 0);
    expect(await page.textContent('#premoe-tasks')).toMatch(/sort, draw/);
    expect(await page.textContent('#premoe-store')).toMatch(/keeps 4 experts per layer .* MiB of checkpoint/);
    await page.click('nav button[data-tab="chat"]');
    await page.check('#auto-pattern');
    await page.fill('#max-tokens', '20');
    await page.fill('#prompt', 'sort 3142=');
    await page.click('#send');
    await page.locator('.msg.assistant[data-done="1"]').waitFor();
    expect(await page.textContent('#timings')).toMatch(/PreMoe pattern: sort/);
    // the text is the server's own answer with that pattern
    const res = await fetch(url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'sort 3142=' }], max_tokens: 20, temperature: 0, moekit: { experts: 'sort' } }) });
    expect(await page.locator('.msg.assistant').last().textContent()).toBe((await res.json()).choices[0].message.content);
    await page.screenshot({ path: path.join(SHOTS, 'premoe-store.png'), fullPage: true });
  });
});
