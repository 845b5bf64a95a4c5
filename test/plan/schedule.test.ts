// src/plan/schedule.ts by hand: each schedule's bubble and activations in flight from the table in its header, the DP
// overlap on small cases worked by hand, and the stage split against a brute force over every split of the layers.
import { describe, expect, it } from 'vitest';
import { bubbleTime, dpExposed, inFlight, pairedChunkExposed, paramCopies, stageSplit } from '../../src/plan/schedule.js';
import type { Schedule } from '../../src/plan/spec.js';

const ALL: Schedule[] = ['1f1b', 'interleaved', 'zero-bubble', 'dualpipe', 'dualpipev'];

describe('bubbleTime', () => {
  it('no pipeline, no bubble (p = 1, and a degenerate p = 0)', () => {
    for (const s of ALL) {
      expect(bubbleTime(s, 1, 2, 1, 2)).toBe(0);
      expect(bubbleTime(s, 0, 2, 1, 2)).toBe(0);
    }
  });
  it('each schedule\'s formula at p = 4 (t_f = 1, t_b = 2, v = 2)', () => {
    expect(bubbleTime('1f1b', 4, 2, 1, 2)).toBe(9); // 3 x 3
    expect(bubbleTime('interleaved', 4, 2, 1, 2)).toBe(4.5); // 3 x 3 / 2
    expect(bubbleTime('zero-bubble', 4, 2, 1, 2)).toBe(3); // 3 x t_f
    expect(bubbleTime('dualpipe', 4, 2, 1, 2)).toBe(0.5); // (4/2 - 1) x t_f / 2
    expect(bubbleTime('dualpipev', 4, 2, 1, 2)).toBe(0.5);
    expect(bubbleTime('dualpipe', 8, 2, 1, 2)).toBe(1.5);
    expect(bubbleTime('dualpipev', 2, 2, 1, 2)).toBe(0); // p/2 - 1 = 0
  });
});

describe('inFlight', () => {
  it('1F1B and zero-bubble hold min(p, m)', () => {
    for (const s of ['1f1b', 'zero-bubble'] as Schedule[]) {
      expect(inFlight(s, 4, 1, 2)).toBe(2);
      expect(inFlight(s, 4, 1, 8)).toBe(4);
    }
  });
  it('interleaved: p(1 + (p-1)/(p v)), plain 1F1B at v = 1', () => {
    expect(inFlight('interleaved', 4, 2, 100)).toBe(5.5); // 4 (1 + 3/8)
    expect(inFlight('interleaved', 4, 2, 5)).toBe(5);
    expect(inFlight('interleaved', 4, 1, 100)).toBe(4);
    expect(inFlight('interleaved', 4, 1, 3)).toBe(3);
  });
  it('DualPipe(V): (p+1) chunks of half the layers', () => {
    for (const s of ['dualpipe', 'dualpipev'] as Schedule[]) {
      expect(inFlight(s, 4, 1, 10)).toBe(2.5);
      expect(inFlight(s, 4, 1, 2)).toBe(2);
      expect(inFlight(s, 7, 1, 10)).toBe(4);
    }
  });
  it('only DualPipe keeps two copies of the parameters', () => {
    expect(ALL.map(paramCopies)).toEqual([1, 1, 1, 2, 1]);
  });
});

describe('dpExposed', () => {
  it('one chunk: max(0, G - t_b) + max(0, A - t_f)', () => {
    expect(dpExposed('1f1b', 4, 1, 10, 0, 1, 4)).toBe(6);
    expect(dpExposed('1f1b', 4, 1, 10, 8, 4, 8)).toBe(6); // 2 + 4
    expect(dpExposed('1f1b', 4, 1, 1, 1, 4, 8)).toBe(0);
  });
  it('a schedule other than interleaved is one chunk whatever v says', () => {
    // as two chunks it would be 3: chunk 1 ready (4 + 1) chunk-backwards of 2 before the end, chunk 0 one
    expect(dpExposed('1f1b', 4, 2, 10, 0, 1, 4)).toBe(6);
    expect(dpExposed('zero-bubble', 4, 2, 10, 0, 1, 4)).toBe(6);
  });
  it('interleaved, two chunks, p = 4 (worked by hand)', () => {
    // g = 5, cb = 2: chunk 1 starts 5 cb = 10 before the end and ends at -5; chunk 0 starts at max(-5, -2) = -2, ends at 3
    expect(dpExposed('interleaved', 4, 2, 10, 0, 1, 4)).toBe(3);
    // a = 4, cf = 2: chunk 0 needed after 1 chunk-forward (4 - 2 = 2), chunk 1 after 5 (8 - 10 < 0)
    expect(dpExposed('interleaved', 4, 2, 0, 8, 4, 1)).toBe(2);
  });
});

/** the fewest busiest-stage work over every split of `layers` whole layers into p stages (a naive loop) */
function bruteBest(p: number, layers: number, unit: number, first: number, last: number): number {
  let best = Infinity;
  const rec = (s: number, left: number, worst: number) => {
    if (s === p - 1) { best = Math.min(best, Math.max(worst, left * unit + (p === 1 ? first : 0) + last)); return; }
    for (let n = 0; n <= left; n++) rec(s + 1, left - n, Math.max(worst, n * unit + (s === 0 ? first : 0)));
  };
  rec(0, layers, 0);
  return best;
}

describe('stageSplit', () => {
  it('no pipeline or no layer work: everything on one stage', () => {
    expect(stageSplit(1, 7, 1, 3, 2)).toEqual({ layers: [7], busiest_over_mean: 1 });
    expect(stageSplit(0, 7, 1, 3, 2)).toEqual({ layers: [7], busiest_over_mean: 1 });
    expect(stageSplit(3, 7, 0, 3, 2)).toEqual({ layers: [7], busiest_over_mean: 1 });
  });
  it('an even split when nothing is extra', () => {
    expect(stageSplit(2, 4, 1, 0, 0)).toEqual({ layers: [2, 2], busiest_over_mean: 1 });
    expect(stageSplit(4, 8, 0.5, 0, 0)).toEqual({ layers: [2, 2, 2, 2], busiest_over_mean: 1 });
  });
  it('the surplus comes off the busiest stage, the first of equals (worked by hand)', () => {
    // first = 1: T = 3 lets stage 0 hold 2 and stage 1 hold 3; one too many, both at work 3: stage 0 gives one up
    const a = stageSplit(2, 4, 1, 1, 0);
    expect(a.layers).toEqual([1, 3]);
    expect(a.busiest_over_mean).toBeCloseTo(3 / 2.5, 12);
    // embedding 2 and head 2 on 4 stages of 6 layers: T = 3, caps [1, 3, 3, 1], two taken off stages 0 and 1
    const b = stageSplit(4, 6, 1, 2, 2);
    expect(b.layers).toEqual([0, 2, 3, 1]);
    expect(b.busiest_over_mean).toBeCloseTo(3 / 2.5, 12);
    // a head heavier than every layer together: the last stage holds it alone
    const c = stageSplit(2, 1, 1, 0, 5);
    expect(c.layers).toEqual([1, 0]);
    expect(c.busiest_over_mean).toBeCloseTo(5 / 3, 12);
  });
  it('matches a brute force over every split (p 2..4, 0..7 layers, uneven extras)', () => {
    let n = 0;
    for (const p of [2, 3, 4]) for (let layers = 0; layers <= 7; layers++) for (const unit of [1, 0.5, 1.3])
      for (const first of [0, 0.7, 1, 2.5]) for (const last of [0, 0.4, 1.3, 3]) {
        if (layers * unit + first + last === 0) continue; // nothing to split (the spec needs a layer)
        const r = stageSplit(p, layers, unit, first, last);
        const what = JSON.stringify({ p, layers, unit, first, last, r });
        expect(r.layers.length, what).toBe(p);
        expect(r.layers.reduce((x, y) => x + y, 0), what).toBe(layers);
        for (const k of r.layers) expect(Number.isInteger(k) && k >= 0, what).toBe(true);
        const work = r.layers.map((k, s) => k * unit + (s === 0 ? first : 0) + (s === p - 1 ? last : 0));
        const best = bruteBest(p, layers, unit, first, last);
        expect(Math.max(...work), what).toBeCloseTo(best, 9);
        expect(r.busiest_over_mean, what).toBeCloseTo(best / ((layers * unit + first + last) / p), 9);
        n++;
      }
    expect(n).toBe(3 * 8 * 3 * 4 * 4 - 3 * 3);
  });
});

describe('pairedChunkExposed', () => {
  it('each all-to-all hides behind its one paired stage only', () => {
    const c = { aF: 1, aB: 2, mF: 3, mB: 4 };
    expect(pairedChunkExposed({ dF: 0, cF: 0, dB: 0, cB: 0 }, c)).toBe(0);
    // cB 1.5 behind aF 1, dF 5 behind mB 4, dB 2 behind mF 3, cF 2.5 behind aB 2
    expect(pairedChunkExposed({ dF: 5, cF: 2.5, dB: 2, cB: 1.5 }, c)).toBe(0.5 + 1 + 0 + 0.5);
  });
});
