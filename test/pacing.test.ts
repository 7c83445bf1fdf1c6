/**
 * The pacing rule that learns a quota, and the in-process pacer that applies it.
 */
import { describe, expect, it } from 'vitest';
import { admittedRate, afterRateLimited, afterSuccesses, initialPace, PACING, windowFor, withNamedQuota } from '../src/run/pacing.js';
import { LocalPacer } from '../src/run/rate-gate.js';

describe('pacing rule', () => {
  it('starts without a limit, and the first 429 sets the pace a little under what got past the quota', () => {
    const state = initialPace(undefined);
    expect(state.rate).toBeUndefined();
    expect(afterRateLimited(state, 1000, 10).rate).toBeCloseTo(10 * PACING.decrease);
  });

  it('decreases from what the quota admitted when the pace ran above it (a burst allowance hid the overshoot)', () => {
    expect(afterRateLimited({ rate: 14 }, 5000, 10).rate).toBeCloseTo(10 * PACING.decrease);
    expect(afterRateLimited({ rate: 8 }, 5000, 10).rate).toBeCloseTo(8 * PACING.decrease);
  });

  it('counts 429s within a second of a decrease as the same event', () => {
    const lowered = afterRateLimited({ rate: 10 }, 1000, 10);
    expect(afterRateLimited(lowered, 1500, 10)).toBe(lowered);
    expect(afterRateLimited(lowered, 2100, 10).rate).toBeLessThan(lowered.rate!);
  });

  it('creeps back up by successes, about 60 of them for one decrease, at any quota', () => {
    for (const rate of [1, 10, 1000]) {
      const lowered = afterRateLimited({ rate }, 0, rate);
      let state = lowered;
      let successes = 0;
      while (state.rate! < rate) {
        state = afterSuccesses(state, 1);
        successes += 1;
      }
      expect(successes).toBeGreaterThan(50);
      expect(successes).toBeLessThan(70);
    }
  });

  it('never goes above a known --rpm quota', () => {
    const state = initialPace(600);
    expect(state).toMatchObject({ rate: 10, ceiling: 10 });
    expect(afterSuccesses(state, 1000).rate).toBe(10);
    expect(initialPace(300, { rate: 9 }).rate).toBe(5);
    expect(initialPace(600, { rate: 0.2 }).rate).toBe(10);
  });

  it('tells the admitted rate from starts and refusals, even in the first second', () => {
    const now = 10_000;
    const starts = Array.from({ length: 30 }, (_, i) => now - 2900 + i * 100);
    expect(admittedRate(starts, [now - 50, now - 20], now)).toBeCloseTo(28 / 2.9, 1);
    expect(admittedRate([now - 100, now - 90, now - 80], [], now)).toBe(12);
  });

  it('turns a pace into a one-second window for BullMQ', () => {
    expect(windowFor(10)).toEqual({ max: 10, duration: 1000 });
    expect(windowFor(8.5)).toEqual({ max: 9, duration: 1059 });
    expect(windowFor(0.5)).toEqual({ max: 1, duration: 2000 });
  });
});

describe('in-process pacer', () => {
  it('spaces call starts evenly at a known quota', async () => {
    const pacer = new LocalPacer(1200); // 20 per second
    const starts: number[] = [];
    const began = Date.now();
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        await pacer.acquire();
        starts.push(Date.now());
      }),
    );
    starts.sort((a, b) => a - b);
    // Slots 50 ms apart from the first: no call starts before its slot (a burst would). Only
    // that: a timer on a busy machine fires late, so one gap can be short after a long one.
    starts.forEach((start, i) => expect(start - began, `start ${i}`).toBeGreaterThanOrEqual(i * 50 - 2));
  });

  it('after a 429 holds every call for the delay, then paces at the lowered rate', async () => {
    const pacer = new LocalPacer();
    for (let i = 0; i < 10; i++) await pacer.acquire();
    pacer.rateLimited(150);
    expect(pacer.rate).toBeDefined();
    const started = Date.now();
    await pacer.acquire();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('a quota the provider names in its 429', () => {
  it('becomes the pace\'s ceiling, as --rpm does: lower at once, never crept above', () => {
    const named = withNamedQuota({ rate: 10 }, 1);
    expect(named).toMatchObject({ rate: 1, ceiling: 1 });
    expect(afterSuccesses(named, 1000).rate).toBe(1);
    // A pace already below it stays where it is.
    expect(withNamedQuota({ rate: 0.5 }, 1)).toMatchObject({ rate: 0.5, ceiling: 1 });
    expect(withNamedQuota({ rate: 3 }, undefined)).toEqual({ rate: 3 });
  });
});
