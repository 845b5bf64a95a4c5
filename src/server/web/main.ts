/**
 * The dashboard: one page over the server's own API (src/server/app.ts). Chat streams from
 * /v1/chat/completions with moekit.trace on, so every answer brings its routing; the routing view draws
 * it (positions × MoE layers, coloured by the top expert); the expert-load view reads /moekit/stats; the
 * elastic view lists /moekit/submodels and picks the sub-model chat runs (moekit.submodel); the PreMoe
 * view reads /moekit/premoe; the planner posts specs to /moekit/plan; the jobs view starts PreMoe profiling and training
 * (/moekit/jobs) and follows their events. Load, profile and train progress come from the same typed events the
 * terminal bar draws (/moekit/progress, /moekit/jobs/:id/events).
 */
import { Chart, registerables } from 'chart.js';

Chart.register(...registerables);

type Json = Record<string, any>;
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const keyInput = $<HTMLInputElement>('key');
keyInput.value = localStorage.getItem('moekit-key') ?? '';
keyInput.addEventListener('change', () => { localStorage.setItem('moekit-key', keyInput.value); void boot(); });

function headers(): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (keyInput.value) h.authorization = `Bearer ${keyInput.value}`;
  return h;
}
async function api(path: string, body?: unknown): Promise<Json> {
  const res = await fetch(path, body === undefined ? { headers: headers() } : { method: 'POST', headers: headers(), body: JSON.stringify(body) });
  const j = await res.json().catch(() => ({ error: { message: `${res.status} ${res.statusText}` } }));
  if (res.status === 401) keyInput.focus();
  if (!res.ok) throw new Error(j.error?.message ?? `${res.status}`);
  return j;
}

// ---- tabs ------------------------------------------------------------------------------------
const onTab: Record<string, () => void> = {};
for (const b of document.querySelectorAll<HTMLButtonElement>('nav button')) {
  b.addEventListener('click', () => {
    document.querySelectorAll('nav button').forEach((x) => x.classList.toggle('on', x === b));
    document.querySelectorAll('.tab').forEach((t) => t.classList.toggle('on', t.id === `tab-${b.dataset.tab}`));
    onTab[b.dataset.tab!]?.();
  });
}

// ---- health and load progress ----------------------------------------------------------------
async function watchLoad(): Promise<void> {
  const bar = $<HTMLProgressElement>('load'), item = $('load-item'), pill = $('health');
  const res = await fetch('/moekit/progress', { headers: headers() });
  if (!res.ok || !res.body) return;
  for await (const data of sseData(res.body)) {
    const ev = JSON.parse(data);
    if (ev.type === 'progress' && ev.event.status === 'progress') { bar.max = ev.event.total; bar.value = ev.event.loaded; item.textContent = ev.event.item ?? ''; }
    if (ev.type === 'progress' && ev.event.status === 'done') { bar.value = bar.max; item.textContent = ''; }
    if (ev.type === 'ready') { pill.textContent = `ready (${ev.loadSeconds.toFixed(1)} s)`; pill.className = 'pill ok'; bar.value = bar.max; }
    if (ev.type === 'error') { pill.textContent = 'failed'; pill.className = 'pill bad'; item.textContent = ev.message; }
  }
}

/** the data of each server-sent event of a streamed response body */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let k: number;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const data = buf.slice(6, k);
      buf = buf.slice(k + 2);
      yield data;
    }
  }
}

// ---- chat ------------------------------------------------------------------------------------
let current: { depth: number; experts: number; top_k: number } | null = null; // the sub-model chat runs (null: full)
let lastTrace: { routes: { experts: (number[] | null)[]; weights: (number[] | null)[] }[]; tokens: string[] } | null = null;
let E = 16;

$('clear').addEventListener('click', () => { $('log').textContent = ''; });
$('chat-form').addEventListener('submit', (e) => { e.preventDefault(); void send(); });

async function send(): Promise<void> {
  const input = $<HTMLInputElement>('prompt');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  const log = $('log');
  const u = document.createElement('div'); u.className = 'msg user'; u.textContent = text; log.append(u);
  const a = document.createElement('div'); a.className = 'msg assistant'; log.append(a);
  const body = {
    messages: [{ role: 'user', content: text }], stream: true,
    max_tokens: Number($<HTMLInputElement>('max-tokens').value), temperature: Number($<HTMLInputElement>('temperature').value),
    moekit: {
      trace: true, ...(current ? { submodel: { depth: current.depth, experts: current.experts, top_k: current.top_k } } : {}),
      ...($<HTMLInputElement>('auto-pattern').checked ? { experts: 'auto' } : {}),
    },
  };
  const res = await fetch('/v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(body) });
  if (!res.ok || !res.body) {
    a.className = 'msg error';
    a.textContent = (await res.json().catch(() => null))?.error?.message ?? `${res.status}`;
    return;
  }
  const routes: NonNullable<typeof lastTrace>['routes'] = [];
  for await (const data of sseData(res.body)) {
    if (data === '[DONE]') continue;
    const c = JSON.parse(data);
    if (c.error) { a.className = 'msg error'; a.textContent += c.error.message; continue; }
    const ch = c.choices?.[0];
    if (ch?.delta?.content) a.textContent += ch.delta.content;
    if (c.moekit?.routes) routes.push(...c.moekit.routes);
    if (ch?.finish_reason) {
      const t = c.timings;
      $('timings').textContent = `${t.predicted_n} tokens (${ch.finish_reason}); prompt ${t.prompt_n} tokens in ${t.prompt_ms.toFixed(1)} ms; ` +
        `decode ${t.predicted_per_second.toFixed(0)} tok/s; ran ${c.moekit.submodel ? `layers ${c.moekit.submodel.layers.join(',')}, top-k ${c.moekit.submodel.top_k[0]}` : 'the full model'}` +
        (c.moekit.pattern ? `; PreMoe pattern: ${c.moekit.pattern}` : '');
      lastTrace = { routes, tokens: c.moekit.tokens ?? [] };
      a.dataset.done = '1';
    }
  }
  if (document.querySelector('#tab-routing.on')) drawRouting();
}

// ---- routing ---------------------------------------------------------------------------------
const hue = (e: number) => `hsl(${Math.round((360 * e) / E)} 65% 55%)`;
function drawRouting(): void {
  const el = $('routing');
  if (!lastTrace || !lastTrace.routes.length) { el.textContent = 'send a chat message first'; return; }
  const L = lastTrace.routes[0].experts.length;
  const t = document.createElement('table');
  t.innerHTML = `<tr><th>position</th>${Array.from({ length: L }, (_, m) => `<th>L${m}</th>`).join('')}</tr>`;
  lastTrace.routes.forEach((r, i) => {
    const tr = document.createElement('tr');
    const tok = document.createElement('td'); tok.className = 'tok'; tok.textContent = JSON.stringify(lastTrace!.tokens[i] ?? '?'); tr.append(tok);
    for (let m = 0; m < L; m++) {
      const td = document.createElement('td');
      const ex = r.experts[m], w = r.weights[m];
      if (ex) {
        td.style.background = hue(ex[0]);
        td.title = ex.map((e, j) => `expert ${e}: ${w![j].toFixed(3)}`).join('\n');
        td.dataset.expert = String(ex[0]);
      } else { td.style.background = '#eee'; td.title = 'layer skipped'; }
      tr.append(td);
    }
    t.append(tr);
  });
  el.replaceChildren(t);
}
onTab.routing = drawRouting;

// ---- expert load -----------------------------------------------------------------------------
let loadChart: Chart | null = null;
async function drawLoad(): Promise<void> {
  const s = await api('/moekit/stats');
  const load: number[][] = s.expertLoad;
  const max = Math.max(1, ...load.flat());
  const t = document.createElement('table');
  t.innerHTML = `<tr><th></th>${load[0].map((_, e) => `<th>${e}</th>`).join('')}</tr>` + load.map((row, m) =>
    `<tr><th>L${m}</th>${row.map((v, e) => `<td title="layer ${m}, expert ${e}: ${v}" style="background: rgba(53, 89, 168, ${(v / max).toFixed(3)})"></td>`).join('')}</tr>`).join('');
  $('heatmap').replaceChildren(t);
  loadChart?.destroy();
  loadChart = new Chart($<HTMLCanvasElement>('load-chart'), {
    type: 'bar',
    data: { labels: load[0].map((_, e) => `E${e}`), datasets: load.map((row, m) => ({ label: `MoE layer ${m}`, data: row })) },
    options: { animation: false, plugins: { title: { display: true, text: 'assignments per expert' } } },
  });
}
$('refresh-load').addEventListener('click', () => void drawLoad());
onTab.experts = () => void drawLoad();

// ---- elastic ---------------------------------------------------------------------------------
let elasticChart: Chart | null = null;
async function drawElastic(): Promise<void> {
  const s = await api('/moekit/submodels');
  const grid: Json[] = s.grid;
  const t = $('grid');
  t.innerHTML = '<tr><th>depth</th><th>experts</th><th>top-k</th><th>active params</th><th>total params</th><th>accuracy (mean)</th><th>decode tok/s</th><th></th></tr>';
  const rowOf = (g: Json | null) => {
    const tr = document.createElement('tr');
    tr.className = 'pick';
    const isCur = g ? current?.depth === g.depth && current?.experts === g.experts && current?.top_k === g.top_k : current === null;
    if (isCur) tr.classList.add('current');
    tr.innerHTML = g
      ? `<td>${g.depth}</td><td>${g.experts}</td><td>${g.top_k}</td><td>${(g.active_params / 1e6).toFixed(2)}M</td><td>${(g.total_params / 1e6).toFixed(2)}M</td><td>${g.accuracy?.mean ?? '–'}</td><td>${g.decode_tok_s ?? '–'}</td><td>chat with it</td>`
      : `<td colspan="7" style="text-align:left">the full model</td><td>chat with it</td>`;
    tr.dataset.sub = g ? `${g.depth}-${g.experts}-${g.top_k}` : 'full';
    tr.addEventListener('click', () => {
      current = g ? { depth: g.depth, experts: g.experts, top_k: g.top_k } : null;
      $('running').textContent = g ? `depth ${g.depth}, ${g.experts} experts, top-${g.top_k}` : 'the full model';
      void drawElastic();
    });
    t.append(tr);
  };
  rowOf(null);
  grid.forEach(rowOf);
  const pts = grid.filter((g) => g.accuracy);
  elasticChart?.destroy();
  const fastest = Math.max(1, ...pts.map((g) => g.decode_tok_s ?? 0));
  elasticChart = new Chart($<HTMLCanvasElement>('elastic-chart'), {
    type: 'bubble',
    data: {
      datasets: [{
        label: 'sub-models: mean held-out exact match (%) vs active parameters (M); bubble size: decode tok/s',
        data: pts.map((g) => ({ x: g.active_params / 1e6, y: g.accuracy.mean, r: 3 + 9 * ((g.decode_tok_s ?? 0) / fastest) })),
      }],
    },
    options: {
      animation: false,
      scales: { x: { title: { display: true, text: 'active params (M)' } }, y: { title: { display: true, text: 'accuracy %' } } },
      plugins: { tooltip: { callbacks: { label: (c) => { const g = pts[c.dataIndex]; return `depth ${g.depth}, ${g.experts} experts, top-${g.top_k}: ${g.accuracy.mean} %, ${g.decode_tok_s ?? '?'} tok/s`; } } } },
    },
  });
  $('tab-elastic').dataset.loaded = String(grid.length);
}
onTab.elastic = () => void drawElastic();

// ---- PreMoe ----------------------------------------------------------------------------------
let premoeChart: Chart | null = null;
async function drawPremoe(): Promise<void> {
  const s = await api('/moekit/premoe');
  $('premoe-store').textContent = s.message ?? `pattern store: ${s.store}; a pattern keeps ${s.pattern.keep_experts} experts per layer ` +
    `(top-${s.pattern.top_k}, by ${s.pattern.score}): ${s.pattern.mib.toFixed(2)} of ${s.pattern.full_mib.toFixed(2)} MiB of checkpoint`;
  $('premoe-tasks').textContent = s.tasks.length ? `stored task patterns: ${s.tasks.join(', ')} (tick "PreMoe pattern" in the chat to run the one retrieved for a prompt)` : '';
  $('premoe-table').innerHTML = '<tr><th>keep ratio</th><th>experts kept per layer</th><th>params</th><th>MiB (f32)</th></tr>' +
    s.memory.map((m: Json) => `<tr><td>${m.keep_ratio.toFixed(3)}</td><td>${m.experts_kept}</td><td>${(m.params / 1e6).toFixed(2)}M</td><td>${m.mib.toFixed(2)}</td></tr>`).join('');
  premoeChart?.destroy();
  premoeChart = new Chart($<HTMLCanvasElement>('premoe-chart'), {
    type: 'line',
    data: { labels: s.memory.map((m: Json) => m.keep_ratio.toFixed(3)), datasets: [{ label: 'memory (MiB) per keep ratio', data: s.memory.map((m: Json) => m.mib) }] },
    options: { animation: false },
  });
  drawPremoeAccuracy(s.evaluation);
}

/** the evaluation's curves: mean held-out accuracy per keep ratio, one line per scoring method */
let premoeAccChart: Chart | null = null;
function drawPremoeAccuracy(e: Json): void {
  premoeAccChart?.destroy();
  premoeAccChart = null;
  const note = $('premoe-eval');
  if (!e) { note.textContent = 'no evaluation: write one with moekit experts eval MODEL --store STORE --json > MODEL/premoe-eval.json'; return; }
  if (e.error) { note.textContent = `evaluation ${e.source}: ${e.error}`; return; }
  const pct = (x: number) => (100 * x).toFixed(1);
  note.textContent = `evaluation (${e.source}, ${e.n} held-out prompts per task, ${e.tasks.length} tasks): full model ${e.full ? pct(e.full.mean) : '?'} %` +
    (e.retrieval ? `; retrieval picked the prompt's own task for ${pct(e.retrieval.accuracy)} %` : '') +
    (e.end_to_end.length ? `; with the retrieved pattern: ${e.end_to_end.map((r: Json) => `${r.keep} experts ${pct(r.mean)} %`).join(', ')}` : '');
  premoeAccChart = new Chart($<HTMLCanvasElement>('premoe-acc-chart'), {
    type: 'line',
    data: {
      datasets: e.curves.map((c: Json) => ({ label: `${c.score}: mean accuracy %`, data: c.points.map((p: Json) => ({ x: p.ratio, y: 100 * p.mean })) })),
    },
    options: {
      animation: false,
      scales: { x: { type: 'linear', title: { display: true, text: 'routed experts kept (ratio)' } }, y: { title: { display: true, text: 'held-out accuracy %' } } },
    },
  });
  $('tab-premoe').dataset.curves = String(e.curves.length);
}
onTab.premoe = () => void drawPremoe();

// ---- planner ---------------------------------------------------------------------------------
let stepChart: Chart | null = null, memChart: Chart | null = null;
const num = (id: string) => Number($<HTMLInputElement>(id).value);
async function presets(): Promise<void> {
  const p = await api('/moekit/plan/presets');
  $('plan-model').innerHTML = p.models.map((m: Json) => `<option>${m.name}</option>`).join('');
  $('plan-hw').innerHTML = p.hardware.map((h: string) => `<option>${h}</option>`).join('');
  const pick = (id: string, want: string) => { const s = $<HTMLSelectElement>(id); if ([...s.options].some((o) => o.value === want)) s.value = want; };
  pick('plan-model', 'mixtral-8x7b'); pick('plan-hw', 'h100');
}
function spec(search: boolean): Json {
  return {
    model: { preset: $<HTMLSelectElement>('plan-model').value },
    hardware: { preset: $<HTMLSelectElement>('plan-hw').value, devices: num('plan-devices') },
    parallel: search ? {} : { tp: num('plan-tp'), pp: num('plan-pp'), ep: num('plan-ep') },
    training: { seq_len: num('plan-seq'), global_batch: num('plan-gb') },
  };
}
function drawSim(r: Json): void {
  $('plan-summary').innerHTML = `<p>step <b>${r.step_time_s.toFixed(3)} s</b>, ${Math.round(r.tokens_per_s).toLocaleString()} tokens/s, MFU ${(100 * r.mfu).toFixed(1)} %, ` +
    `memory ${r.memory_gib_per_device.toFixed(1)} GiB per device: <b>${r.fits ? 'fits' : 'does not fit'}</b></p>`;
  stepChart?.destroy();
  stepChart = new Chart($<HTMLCanvasElement>('step-chart'), {
    type: 'bar', data: { labels: Object.keys(r.breakdown), datasets: [{ label: 'step time (s) by phase', data: Object.values(r.breakdown) as number[] }] }, options: { animation: false, indexAxis: 'y' },
  });
  const mem = Object.entries(r.memory_breakdown_gib).filter(([k]) => k !== 'total');
  memChart?.destroy();
  memChart = new Chart($<HTMLCanvasElement>('mem-chart'), {
    type: 'bar', data: { labels: mem.map(([k]) => k), datasets: [{ label: 'memory per device (GiB)', data: mem.map(([, v]) => v as number) }] }, options: { animation: false },
  });
}
for (const b of document.querySelectorAll<HTMLButtonElement>('[data-plan]')) {
  b.addEventListener('click', async () => {
    const action = b.dataset.plan!;
    $('plan-error').textContent = '';
    try {
      const r = (await api('/moekit/plan', { action, spec: spec(action === 'search'), top: 10 })).result;
      if (action === 'simulate') drawSim(r);
      if (action === 'export') $('plan-command').textContent = r.command + (r.notes.length ? '\n\n' + r.notes.join('\n') : '');
      if (action === 'search') {
        $('plan-layouts').innerHTML = '<tr><th>#</th><th>layout</th><th>step s</th><th>tokens/s</th><th>MFU</th><th>GiB/device</th></tr>' +
          r.top.map((x: Json, i: number) => `<tr><td>${i + 1}</td><td style="text-align:left">${x.layout}</td><td>${x.step_time_s.toFixed(3)}</td><td>${Math.round(x.tokens_per_s).toLocaleString()}</td><td>${(100 * x.mfu).toFixed(1)} %</td><td>${x.memory_gib_per_device.toFixed(1)}</td></tr>`).join('');
        if (r.top[0]) drawSim(r.top[0]);
        else $('plan-error').textContent = r.no_valid_layout ?? 'no layout fits';
      }
    } catch (e) {
      $('plan-error').textContent = (e as Error).message;
    }
  });
}
onTab.planner = () => { if (!$<HTMLSelectElement>('plan-model').options.length) void presets(); };

// ---- start -----------------------------------------------------------------------------------
// ---- jobs: PreMoe profiling and training, followed through their typed events -------------------------
let jobChart: Chart | null = null, following: string | null = null;
async function listJobs(): Promise<void> {
  const { jobs } = await api('/moekit/jobs');
  $('job-list').innerHTML = '<tr><th>job</th><th>kind</th><th>status</th><th>progress</th><th>output</th></tr>' +
    jobs.map((j: Json) => `<tr><td>${j.id}</td><td>${j.kind}</td><td>${j.status}${j.error ? `: ${j.error}` : ''}</td>` +
      `<td>${j.progress ? `${j.progress.loaded}/${j.progress.total}` : ''}</td><td>${j.out}</td></tr>`).join('');
}
async function startJob(body: Json): Promise<void> {
  // the previous job's end goes at once, not when the new job's events start: whoever waits for data-end (the page's
  // tests) must not read the last job's
  delete $('tab-jobs').dataset.end;
  try {
    const j = await api('/moekit/jobs', body);
    void follow(j.id, j.kind);
  } catch (e) {
    $('job-status').textContent = (e as Error).message;
  }
}
async function follow(id: string, kind: string): Promise<void> {
  following = id;
  const bar = $<HTMLProgressElement>('job-bar'), item = $('job-item'), status = $('job-status'), tab = $('tab-jobs');
  delete tab.dataset.end;
  bar.value = 0; item.textContent = ''; status.textContent = `${id} (${kind}): starting`;
  $<HTMLButtonElement>('job-cancel').disabled = false;
  jobChart?.destroy();
  const losses: { x: number; y: number }[] = [];
  jobChart = kind === 'train' ? new Chart($<HTMLCanvasElement>('job-chart'), {
    type: 'line', data: { datasets: [{ label: 'training loss', data: losses, pointRadius: 0 }] },
    options: { animation: false, scales: { x: { type: 'linear', title: { display: true, text: 'step' } }, y: { title: { display: true, text: 'loss' } } } },
  }) : null;
  void listJobs();
  const res = await fetch(`/moekit/jobs/${id}/events`, { headers: headers() });
  if (!res.ok || !res.body) { status.textContent = `${id}: ${res.status}`; return; }
  for await (const data of sseData(res.body)) {
    const ev = JSON.parse(data);
    if (ev.type === 'progress') {
      const p = ev.event;
      if (p.status === 'initiate') { bar.max = p.total; bar.value = 0; status.textContent = `${id}: ${p.task}`; }
      if (p.status === 'progress') { bar.max = p.total; bar.value = p.loaded; item.textContent = `${p.loaded}/${p.total} ${p.item ?? ''}`; }
    } else if (ev.type === 'train') {
      const t = ev.event;
      if (t.type === 'start') { bar.max = t.steps; bar.value = t.step; status.textContent = `${id}: training ${(t.parameters / 1e6).toFixed(2)}M parameters`; }
      if (t.type === 'step') {
        bar.max = t.steps; bar.value = t.step;
        item.textContent = `step ${t.step}/${t.steps}, loss ${t.loss.toFixed(3)}, ${t.tokens_per_s.toFixed(0)} tok/s`;
        losses.push({ x: t.step, y: t.loss });
        jobChart?.update();
      }
    } else if (ev.type === 'end') {
      status.textContent = `${id}: ${ev.status}${ev.error ? ` (${ev.error})` : ''}; output ${ev.out}`;
      if (ev.status === 'done') bar.value = bar.max;
      tab.dataset.end = ev.status;
      $<HTMLButtonElement>('job-cancel').disabled = true;
      if (kind === 'profile' && ev.status === 'done') void drawPremoe();
    }
  }
  void listJobs();
}
$('profile-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void startJob({ kind: 'profile', tasks: $<HTMLSelectElement>('profile-tasks').value, n: Number($<HTMLInputElement>('profile-n').value) });
});
$('train-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void startJob({ kind: 'train', steps: Number($<HTMLInputElement>('train-steps').value) });
});
$('job-cancel').addEventListener('click', () => {
  if (following) void fetch(`/moekit/jobs/${following}`, { method: 'DELETE', headers: keyInput.value ? { authorization: `Bearer ${keyInput.value}` } : {} });
});
onTab.jobs = () => void listJobs();

async function boot(): Promise<void> {
  void watchLoad();
  for (;;) {
    const h = await fetch('/health');
    if (h.ok) break;
    await new Promise((w) => setTimeout(w, 300));
  }
  try {
    const info = await api('/moekit/info');
    E = info.info.desc.moe.experts;
    $('model').textContent = `${info.model} (${info.info.arch}, ${info.info.desc.nLayers} layers, ${E} experts, top-${info.info.desc.moe.topK}, ${(info.params.total / 1e6).toFixed(2)}M params)`;
    $('health').textContent = 'ready'; $('health').className = 'pill ok';
    document.body.dataset.ready = '1';
  } catch (e) {
    $('model').textContent = (e as Error).message;
  }
}
void boot();
