/**
 * The PreMoe view's accuracy curves come from `moekit experts eval --json` (src/server/dashboard.ts,
 * evaluationCurves): one curve per scoring method, sorted by keep ratio and ending at the full model;
 * a file that is not JSON or has no grid is reported, never thrown.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluationCurves } from '../src/server/dashboard.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moekit-evalcurves-'));
const write = (name: string, body: string) => { const f = path.join(tmp, name); fs.writeFileSync(f, body); return f; };
const row = (score: string, ratio: number, keep: number, mean: number) => ({ score, ratio, keep, topK: 2, mean, relative: mean / 0.8, tasks: {} });

describe('evaluationCurves', () => {
  it('groups the grid by scoring method, each curve sorted by ratio and ending at the full model', () => {
    const f = write('ok.json', JSON.stringify({
      n: 10, tasks: ['a', 'b'],
      grid: [row('full', 1, 16, 0.8), row('tcess', 0.25, 4, 0.7), row('tcess', 0.5, 8, 0.78), row('frequency', 0.5, 8, 0.6), row('frequency', 0.25, 4, 0.4)],
      retrieval: { accuracy: 0.97, layers: [0, 1] }, endToEnd: [row('tcess', 0.5, 8, 0.77)],
    }));
    const e = evaluationCurves(f);
    if (!e || 'error' in e) throw new Error(`expected curves, got ${JSON.stringify(e)}`);
    expect(e.curves.map((c) => c.score)).toEqual(['tcess', 'frequency']);
    expect(e.curves[0].points.map((p) => [p.ratio, p.mean])).toEqual([[0.25, 0.7], [0.5, 0.78], [1, 0.8]]);
    expect(e.curves[1].points.map((p) => [p.ratio, p.mean])).toEqual([[0.25, 0.4], [0.5, 0.6], [1, 0.8]]);
    expect(e.full?.mean).toBe(0.8);
    expect(e.retrieval).toEqual({ accuracy: 0.97, layers: [0, 1] });
    expect(e.end_to_end.map((r) => r.keep)).toEqual([8]);
    expect(e.n).toBe(10);
  });
  it('the demo model ships its evaluation, and it reads', () => {
    const e = evaluationCurves(path.resolve(__dirname, '../examples/demo-moe/premoe-eval.json'));
    if (!e || 'error' in e) throw new Error(`expected curves, got ${JSON.stringify(e)}`);
    expect(e.curves.length).toBeGreaterThanOrEqual(2);
    for (const c of e.curves) expect(c.points.at(-1)!.ratio).toBe(1);
  });
  it('reports a missing file as null and a bad one by its problem', () => {
    expect(evaluationCurves(path.join(tmp, 'absent.json'))).toBeNull();
    expect(evaluationCurves(write('bad.json', '{"grid": [1'))).toMatchObject({ error: expect.stringMatching(/not JSON/) });
    expect(evaluationCurves(write('nogrid.json', '{"n": 3}'))).toMatchObject({ error: expect.stringMatching(/no "grid"/) });
    expect(evaluationCurves(write('badrow.json', JSON.stringify({ grid: [{ score: 'x', ratio: 'half', keep: 1, mean: 0.5 }] })))).toMatchObject({ error: expect.stringMatching(/no "grid"/) });
  });
});
