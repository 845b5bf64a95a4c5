/**
 * The server's counters, rendered as Prometheus text (exposition format 0.0.4) at /metrics: requests by
 * route and status, prompt and generated tokens, request latency and time to first token (histograms),
 * the scheduler's slots, running and queued sequences, decode steps, and the expert loads (assignments
 * per expert of every MoE layer, prompts and decode steps) that the model's tracer counts.
 */
import type { SchedulerStats } from '../runtime/scheduler.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  sum = 0;
  n = 0;
  observe(v: number): void {
    this.n++;
    this.sum += v;
    for (let i = 0; i < BUCKETS.length; i++) if (v <= BUCKETS[i]) this.counts[i]++;
  }
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (l: Record<string, string | number>) => {
  const e = Object.entries(l);
  return e.length ? `{${e.map(([k, v]) => `${k}="${esc(String(v))}"`).join(',')}}` : '';
};

export class Metrics {
  private requests = new Map<string, number>(); // "route\0status" → count
  private latency = new Map<string, Histogram>();
  readonly ttft = new Histogram();
  promptTokens = 0;
  generatedTokens = 0;
  cancelled = 0;
  rejected = 0; // 429s

  request(route: string, status: number, seconds: number): void {
    const k = `${route}\0${status}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) this.latency.set(route, (h = new Histogram()));
    h.observe(seconds);
  }

  render(stats: SchedulerStats | null, inFlight: number): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head('moekit_requests_total', 'counter', 'HTTP requests by route and status');
    for (const [k, v] of this.requests) { const [route, status] = k.split('\0'); out.push(`moekit_requests_total${labels({ route, status })} ${v}`); }
    head('moekit_request_duration_seconds', 'histogram', 'request latency, first byte in to last byte out');
    for (const [route, h] of this.latency) hist(out, 'moekit_request_duration_seconds', h, { route });
    head('moekit_time_to_first_token_seconds', 'histogram', 'from a completion request to its first token');
    hist(out, 'moekit_time_to_first_token_seconds', this.ttft, {});
    head('moekit_prompt_tokens_total', 'counter', 'prompt tokens of completed requests');
    out.push(`moekit_prompt_tokens_total ${this.promptTokens}`);
    head('moekit_generated_tokens_total', 'counter', 'tokens generated for completed requests');
    out.push(`moekit_generated_tokens_total ${this.generatedTokens}`);
    head('moekit_requests_cancelled_total', 'counter', 'completions cancelled because the client went away');
    out.push(`moekit_requests_cancelled_total ${this.cancelled}`);
    head('moekit_requests_rejected_total', 'counter', 'completions refused with 429 (queue full)');
    out.push(`moekit_requests_rejected_total ${this.rejected}`);
    head('moekit_requests_in_flight', 'gauge', 'completion requests being served (running or queued)');
    out.push(`moekit_requests_in_flight ${inFlight}`);
    if (stats) {
      const g = (name: string, type: string, help: string, v: number) => { head(name, type, help); out.push(`${name} ${v}`); };
      g('moekit_scheduler_slots', 'gauge', 'sequences the scheduler decodes together at most', stats.slots);
      g('moekit_scheduler_running', 'gauge', 'sequences decoding now', stats.running);
      g('moekit_scheduler_queued', 'gauge', 'sequences waiting for a slot', stats.queued);
      g('moekit_prefills_total', 'counter', 'prefill forwards', stats.prefills);
      g('moekit_decode_steps_total', 'counter', 'batched decode forwards', stats.steps);
      g('moekit_decode_batch_max', 'gauge', 'the largest decode batch so far', stats.maxBatch);
      g('moekit_scheduler_tokens_total', 'counter', 'tokens the scheduler generated (cancelled sessions included)', stats.tokens);
      head('moekit_expert_load_total', 'counter', 'token assignments per routed expert (moe_layer: index among MoE layers)');
      stats.expertLoad.forEach((row, m) => row.forEach((v, e) => out.push(`moekit_expert_load_total${labels({ moe_layer: m, expert: e })} ${v}`)));
    }
    return out.join('\n') + '\n';
  }
}

function hist(out: string[], name: string, h: Histogram, l: Record<string, string>): void {
  BUCKETS.forEach((b, i) => out.push(`${name}_bucket${labels({ ...l, le: String(b) })} ${h.counts[i]}`));
  out.push(`${name}_bucket${labels({ ...l, le: '+Inf' })} ${h.n}`, `${name}_sum${labels(l)} ${h.sum}`, `${name}_count${labels(l)} ${h.n}`);
}
