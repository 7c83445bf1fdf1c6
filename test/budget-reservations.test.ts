/**
 * The reservation rule of budgets: a call starts only if spend + the calls in flight's estimates
 * + its own fit under the cap; a bill replaces its reservation, an unbilled end frees it. In
 * memory (in-process runs) and atomically in Redis (workers), where a reservation its worker
 * stops renewing (killed) lapses, and a job taken again replaces its earlier call's reservation.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BatchState } from '../src/queue/batch-state.js';
import { LocalBudget, type Reservation } from '../src/run/budget.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';

const redisUrl = inject('redisUrl');
/** 14 cents: about a pro image's estimate. */
const CALL = 140_000_000_000n;
const CAP = 3n * CALL + CALL / 2n;

describe('in-process reservations', () => {
  it('holds estimates of calls in flight: a call that does not fit waits for room, and is refused once it never can', async () => {
    const budget = new LocalBudget(CAP, 0n);
    const held = [await budget.reserve(CALL), await budget.reserve(CALL), await budget.reserve(CALL)] as Reservation[];
    expect(held.every(Boolean)).toBe(true);

    // A fourth fits only if one of the three ends unbilled (or much cheaper than held).
    let fourth: Reservation | undefined;
    const waiting = budget.reserve(CALL).then((reservation) => (fourth = reservation));
    await held[0]!.settle(CALL - 1_000_000_000n);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fourth).toBeUndefined();
    await held[1]!.release();
    await waiting;
    expect(fourth).toBeDefined();
    expect(budget.spentPico).toBe(CALL - 1_000_000_000n);

    // Bills past the estimates: spend alone leaves no room, so no wait, a refusal.
    await held[2]!.settle(CALL + CALL / 2n);
    await fourth!.settle(CALL);
    expect(budget.spentPico).toBe(3n * CALL + CALL / 2n - 1_000_000_000n);
    expect(await budget.reserve(CALL)).toBeUndefined();
    // A settled reservation released afterwards changes nothing.
    await held[0]!.release();
    expect(budget.spentPico).toBe(3n * CALL + CALL / 2n - 1_000_000_000n);
  });

  it('a wait for room ends when the run is stopped', async () => {
    const budget = new LocalBudget(CALL, 0n);
    await budget.reserve(CALL);
    const stop = new AbortController();
    const waiting = budget.reserve(CALL, stop.signal);
    stop.abort(new Error('interrupted'));
    await expect(waiting).rejects.toThrow('interrupted');
  });
});

describe('reservations in Redis', () => {
  let client: Redis;
  let prefix: string;
  let batches: BatchState;

  beforeAll(async () => {
    client = new Redis(redisUrl);
    prefix = uniquePrefix('reservations');
    batches = new BatchState(client, prefix);
  });
  afterAll(async () => {
    await removePrefix(redisUrl, prefix);
    client.disconnect();
  });

  it('holds, settles to the exact cost, frees unbilled calls, parks the job that does not fit and hands it back once there is room', async () => {
    await batches.setBudget('b', CAP);
    for (const job of ['j1', 'j2', 'j3']) expect(await batches.reserve('b', job, `${job}-call`, CALL, 60_000)).toEqual({ reserved: true });
    expect(await batches.reserve('b', 'j4', 'j4-call', CALL, 60_000)).toEqual({ refused: { spendPico: 0n, reservedPico: 3n * CALL, budgetPico: CAP } });
    expect(await batches.isOverBudget('b', 'j4')).toBe(true);

    // Billed a little under its estimate: no room for a call yet, nothing handed back.
    expect(await batches.settleReservation('b', 'j1', 'j1-call', CALL - 7n, CALL)).toEqual([]);
    expect(await batches.spend('b')).toBe(CALL - 7n);
    // Ended unbilled: a call's room, so the parked job is handed back, off the parked list.
    expect(await batches.settleReservation('b', 'j2', 'j2-call', undefined, CALL)).toEqual(['j4']);
    expect(await batches.isOverBudget('b', 'j4')).toBe(false);
    expect(await batches.spend('b')).toBe(CALL - 7n);
    expect(await batches.reserve('b', 'j4', 'j4-call', CALL, 60_000)).toEqual({ reserved: true });
  });

  it('a reservation its worker stops renewing lapses after its time; a renewed one stays', async () => {
    await batches.setBudget('lapse', 2n * CALL);
    await batches.reserve('lapse', 'killed', 'killed-call', CALL, 300);
    await batches.reserve('lapse', 'alive', 'alive-call', CALL, 300);
    const renewing = setInterval(() => void batches.renewReservations('lapse', ['alive'], 300), 100);
    try {
      expect(await batches.reserve('lapse', 'next', 'next-call', CALL, 60_000)).toMatchObject({ refused: { reservedPico: 2n * CALL } });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await batches.reserve('lapse', 'next', 'next-call', CALL, 60_000)).toEqual({ reserved: true });
      expect(await batches.reserve('lapse', 'more', 'more-call', 1n, 60_000)).toMatchObject({ refused: { reservedPico: 2n * CALL } });
    } finally {
      clearInterval(renewing);
    }
  });

  it('a job taken again replaces its earlier call\'s reservation; that call, if it was alive after all, still adds its bill', async () => {
    await batches.setBudget('again', 2n * CALL);
    await batches.reserve('again', 'job', 'first-call', CALL, 60_000);
    await batches.reserve('again', 'other', 'other-call', CALL, 60_000);
    // The first worker died: BullMQ gives the job to another call, which fits in its place.
    expect(await batches.reserve('again', 'job', 'second-call', CALL, 60_000)).toEqual({ reserved: true });
    await batches.settleReservation('again', 'job', 'first-call', CALL, CALL);
    expect(await batches.spend('again')).toBe(CALL);
    // The second call's reservation is still held: nothing else fits.
    expect(await batches.reserve('again', 'third', 'third-call', 1n, 60_000)).toMatchObject({ refused: { spendPico: CALL, reservedPico: 2n * CALL } });
  });
});
