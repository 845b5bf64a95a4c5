#!/usr/bin/env node
// Load on `moekit serve`: the real CLI serves the bundled demo model in a child process; C concurrent
// streaming chat clients (node:http + SSE), each asking for D new
// tokens (ignore_eos, so every stream is the same length), against one stream alone. Reports per stream the
// time to first token, the mean inter-token gap and the whole request, as p50 / p99, and the aggregate decode
// throughput (completion tokens of all streams / wall time from the first request to the last [DONE]).
// Every stream must finish with 200, D tokens and [DONE]; an error fails the run.
// The single stream is one client asking --sequential requests back to back (its rates over all of them).
// --repeat=R alternates the two runs R times and reports each pair's ratio and their median (a shared machine's load
// drifts; pairs close in time meet it alike). --threads=N passes `moekit serve --threads N` (default: the server's).
// MOEKIT_SERVE_PROF=DIR writes the server's CPU profiles (node --cpu-prof) there.
// Run after `npm run build`:  node bench/serve-load.mjs [--clients=64] [--tokens=128] [--slots=64] [--sequential=16] [--repeat=1] [--threads=N]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';

const arg = (name, dflt) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const C = Number(arg('clients', '64')), D = Number(arg('tokens', '128')), SLOTS = arg('slots', '64'), SEQ = Number(arg('sequential', '16'));
const REPEAT = Number(arg('repeat', '1')), THREADS = arg('threads', null);
const PROMPTS = ['add 62+0=', 'sort 05992=', 'reverse anzzhp=', 'count f in adffbdec=', 'balanced ([)]=', 'hex2bin 08=', 'caesar 6 hello=', 'lookup a:6 n:7 n='];

const child = spawn(process.execPath, [...(process.env.MOEKIT_SERVE_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.MOEKIT_SERVE_PROF}`] : []), 'bin/moekit.js', 'serve', '--port', '0', '--slots', SLOTS, ...(THREADS ? ['--threads', THREADS] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((resolve, reject) => {
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
    const m = /moekit serve: (http:\/\/\S+) \(/.exec(err);
    if (m) resolve(m[1]);
  });
  child.on('exit', (code) => reject(new Error(`moekit serve exited (${code}): ${err}`)));
});
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
for (;;) { // until the model is loaded
  if ((await fetch(url + '/health')).status === 200) break;
  await new Promise((w) => setTimeout(w, 50));
}

/**
 * one streaming chat request: its clock readings. node:http with 'data' events (the load generator shares the
 * machine, and fetch's web streams cost it several times more CPU per chunk); content chunks are counted, only
 * the usage / finish / error chunks parsed
 */
function stream(i) {
  const body = JSON.stringify({ model: 'demo-moe', messages: [{ role: 'user', content: PROMPTS[i % PROMPTS.length] }], max_tokens: D, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url + '/v1/chat/completions', { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`stream ${i}: status ${res.statusCode}`)); res.resume(); return; }
      res.setEncoding('utf8');
      let buf = '', first = 0, last = 0, done = false, usage = null, deltas = 0, failed = null;
      res.on('data', (part) => {
        buf += part;
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, k); buf = buf.slice(k + 2);
          if (ev === 'data: [DONE]') { done = true; continue; }
          if (ev.includes('"error"') || ev.includes('"usage"') || ev.includes('"finish_reason":"')) {
            const j = JSON.parse(ev.slice(6));
            if (j.error) failed = j.error.message;
            if (j.usage) usage = j.usage;
            continue;
          }
          if (ev.includes('"delta":{"content"')) {
            const now = performance.now();
            if (!first) first = now;
            last = now;
            deltas++;
          }
        }
      });
      res.on('end', () => {
        const end = performance.now();
        if (failed) return reject(new Error(`stream ${i}: ${failed}`));
        if (!done || !usage || usage.completion_tokens !== D) return reject(new Error(`stream ${i}: ended without [DONE] or with ${usage?.completion_tokens} tokens`));
        resolve({ ttft: first - t0, itl: deltas > 1 ? (last - first) / (deltas - 1) : 0, total: end - t0, tokens: usage.completion_tokens, t0, end, first, last });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU seconds the server process (its HTTP thread and the model's thread) has used: /proc's utime + stime */
const serverCpu = () => { const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };
async function run(n) {
  const c0 = serverCpu(), u0 = process.cpuUsage(), t0 = performance.now();
  const r = await Promise.all(Array.from({ length: n }, (_, i) => stream(i)));
  const wall = (Math.max(...r.map((x) => x.end)) - t0) / 1000;
  const tokens = r.reduce((a, x) => a + x.tokens, 0);
  const cpu = serverCpu() - c0;
  const u = process.cpuUsage(u0), clientCpu = (u.user + u.system) / 1e6;
  // decode only: the tokens after each stream's first, over the span from the first first token to the last token
  const decodeSpan = (Math.max(...r.map((x) => x.last)) - Math.min(...r.map((x) => x.first))) / 1000;
  const dps = r.reduce((a, x) => a + x.tokens - 1, 0) / decodeSpan;
  return { n, wall, tokens, tps: tokens / wall, dps, cpu, tpc: tokens / cpu, clientCpu, r };
}

/** one stream, sustained: one client asking SEQ requests back to back (as long a run as the concurrent one) */
async function single() {
  const ones = [];
  for (let i = 0; i < SEQ; i++) ones.push(await run(1));
  const sum = (f) => ones.reduce((a, x) => a + f(x), 0);
  const one = {
    n: 1, tokens: sum((x) => x.tokens), wall: sum((x) => x.wall), cpu: sum((x) => x.cpu), r: ones.flatMap((x) => x.r),
  };
  one.tps = one.tokens / one.wall;
  one.tpc = one.tokens / one.cpu;
  one.dps = sum((x) => x.tokens - 1) / one.r.reduce((a, x) => a + (x.last - x.first) / 1000, 0);
  return one;
}

try {
  await run(4); // warm-up
  const pairs = [];
  for (let i = 0; i < REPEAT; i++) pairs.push({ one: await single(), many: await run(C) });
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const stats = await (await fetch(url + '/moekit/stats')).json();
  const ms = (x) => x.toFixed(1);
  const row = (label, x) => `| ${label} | ${x.n} | ${x.tokens} | ${x.wall.toFixed(2)} | ${x.tps.toFixed(0)} | ${x.dps.toFixed(0)} | ${x.tpc.toFixed(0)} | ${ms(pct(x.r.map((y) => y.ttft), 50))} / ${ms(pct(x.r.map((y) => y.ttft), 99))} | ${ms(pct(x.r.map((y) => y.itl), 50))} / ${ms(pct(x.r.map((y) => y.itl), 99))} | ${ms(pct(x.r.map((y) => y.total), 50))} / ${ms(pct(x.r.map((y) => y.total), 99))} |`;
  console.log(`moekit serve${THREADS ? ` --threads ${THREADS}` : ''}, demo model, ${D} new tokens per stream (ignore_eos), ${SLOTS} slots; all ${C} streams finished with [DONE], no errors`);
  console.log('');
  console.log('| pair | run | streams | tokens | wall s | aggregate tok/s | decode tok/s | tok per server CPU-s | TTFT ms p50 / p99 | inter-token ms p50 / p99 | request ms p50 / p99 |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  pairs.forEach(({ one, many }, i) => {
    console.log(`| ${i + 1} ` + row(`one stream (${SEQ} requests back to back)`, one));
    console.log(`| ${i + 1} ` + row(`${C} concurrent streams`, many));
  });
  console.log('');
  const agg = pairs.map((p) => p.many.tps / p.one.tps), dec = pairs.map((p) => p.many.dps / p.one.dps), cpu = pairs.map((p) => p.many.tpc / p.one.tpc);
  const list = (xs) => xs.map((x) => `×${x.toFixed(2)}`).join(', ');
  console.log(`aggregate, ${C} streams / one: ${list(agg)} (median ×${median(agg).toFixed(2)}); decode only ${list(dec)}; per server CPU-second ${list(cpu)}`);
  console.log(`largest decode batch ${stats.maxBatch}, ${stats.steps} decode steps for ${stats.tokens} tokens; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${(await import('node:os')).availableParallelism()} cores`);
  if (median(agg) < 4) console.log(`\nbelow the target: median aggregate ratio ×${median(agg).toFixed(2)} < ×4`);
} finally {
  child.kill('SIGTERM');
}
