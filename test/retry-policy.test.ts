/**
 * The retry policy both runners share.
 */
import { describe, expect, it } from 'vitest';
import { CallError } from '../src/core/errors.js';
import { RateGate } from '../src/run/rate-gate.js';
import { backoffDelay, DEFAULT_RETRY_POLICY, ModelWatch, nextStep, rateLimitDelay } from '../src/run/retry-policy.js';

describe('retry policy', () => {
  it('backs off exponentially with full jitter, up to a ceiling', () => {
    expect(backoffDelay(1, DEFAULT_RETRY_POLICY, () => 1)).toBe(2000);
    expect(backoffDelay(3, DEFAULT_RETRY_POLICY, () => 1)).toBe(8000);
    expect(backoffDelay(30, DEFAULT_RETRY_POLICY, () => 1)).toBe(DEFAULT_RETRY_POLICY.maxDelayMs);
    expect(backoffDelay(3, DEFAULT_RETRY_POLICY, () => 0)).toBe(0);
    const samples = Array.from({ length: 200 }, () => backoffDelay(4));
    expect(new Set(samples).size).toBeGreaterThan(50);
  });

  it('retries transient errors until the attempts are used up', () => {
    const error = new CallError('transient', 'HTTP 503');
    expect(nextStep(error, 1).action).toBe('retry');
    expect(nextStep(error, 4).action).toBe('retry');
    const last = nextStep(error, 5);
    expect(last).toEqual({ action: 'fail', reason: 'HTTP 503 (gave up after 5 attempts)' });
    expect(nextStep(error, 1, { ...DEFAULT_RETRY_POLICY, attempts: 1 })).toEqual({ action: 'fail', reason: 'HTTP 503 (gave up after 1 attempt)' });
  });

  it('a 429 never uses up an attempt: it waits for the quota however many attempts were made', () => {
    const error = new CallError('rateLimited', '429', { retryAfterMs: 1500 });
    expect(nextStep(error, 5)).toEqual({ action: 'waitForQuota', delayMs: 1500, perDay: false });
    expect(nextStep(error, 50)).toEqual({ action: 'waitForQuota', delayMs: 1500, perDay: false });
  });

  it('a 429 naming its quota but no delay pauses one call\'s share of it (the pace is capped at the quota); a delay it names wins', () => {
    const named = new CallError('rateLimited', '429: at most 600 requests in 1 minute', { namedQuota: 10 });
    expect(nextStep(named, 1)).toEqual({ action: 'waitForQuota', delayMs: 100, perDay: false, namedQuota: 10 });
    expect(rateLimitDelay(new CallError('rateLimited', '429: at most 6 requests in 1 minute', { namedQuota: 0.1 }))).toBe(5000);
    expect(rateLimitDelay(new CallError('rateLimited', '429', { namedQuota: 10, retryAfterMs: 7000 }))).toBe(7000);
  });

  it('a 429 with no delay waits the default; a daily quota waits much longer', () => {
    expect(rateLimitDelay(new CallError('rateLimited', '429'))).toBe(DEFAULT_RETRY_POLICY.defaultRateLimitMs);
    expect(rateLimitDelay(new CallError('rateLimited', '429', { retryAfterMs: 10_000, perDay: true }))).toBe(DEFAULT_RETRY_POLICY.perDayPauseMs);
  });

  it('row failures fail at once and fatal errors stop the run', () => {
    expect(nextStep(new CallError('rowFailed', 'blocked'), 1)).toEqual({ action: 'fail', reason: 'blocked' });
    expect(nextStep(new CallError('fatal', 'bad key'), 1)).toEqual({ action: 'stop', reason: 'bad key' });
  });
});

describe('the shared gate', () => {
  it('holds every waiter until the delay has passed', async () => {
    const gate = new RateGate();
    gate.closeFor(120);
    const started = Date.now();
    await Promise.all([gate.wait(), gate.wait()]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(115);
    expect(gate.remainingMs()).toBe(0);
  });
  it('a shorter delay never reopens a gate closed for longer', () => {
    const gate = new RateGate();
    gate.closeFor(10_000);
    gate.closeFor(10);
    expect(gate.remainingMs()).toBeGreaterThan(9000);
  });
});

describe('the 429 cap, the same for both runners', () => {
  it('waits out 429s, up to the policy\'s cap, then fails the row saying so', () => {
    const limited = new CallError('rateLimited', 'rate limited (HTTP 429)', { retryAfterMs: 1500 });
    expect(nextStep(limited, 1, DEFAULT_RETRY_POLICY, 0)).toEqual({ action: 'waitForQuota', delayMs: 1500, perDay: false });
    expect(nextStep(limited, 1, DEFAULT_RETRY_POLICY, 199).action).toBe('waitForQuota');
    expect(nextStep(limited, 1, DEFAULT_RETRY_POLICY, 200)).toEqual({ action: 'fail', reason: 'still rate limited after 200 waits (rate limited (HTTP 429))' });
    const daily = new CallError('rateLimited', 'daily quota exhausted', { perDay: true });
    expect(nextStep(daily, 1)).toMatchObject({ action: 'waitForQuota', perDay: true, delayMs: DEFAULT_RETRY_POLICY.perDayPauseMs });
  });
});

describe('a model the endpoint does not know', () => {
  const notFound = { status: 'failed' as const, reason: 'the endpoint does not know this model (HTTP 404)', modelNotFound: true };

  it('stops sending its rows after 3 refusals as model not found in a row; any other answer of that model resets the count', () => {
    const models = new ModelWatch();
    models.settled('batch', 'a', notFound);
    models.settled('batch', 'a', notFound);
    models.settled('batch', 'a', { status: 'done' });
    models.settled('batch', 'a', notFound);
    models.settled('batch', 'a', notFound);
    models.settled('batch', 'b', notFound);
    // A 404 of some other path is not the model's fault.
    models.settled('batch', 'a', { status: 'failed', reason: 'Requested entity was not found. (HTTP 404)' });
    models.settled('batch', 'a', notFound);
    models.settled('batch', 'a', notFound);
    expect(models.stopped('batch', 'a')).toBeUndefined();
    expect(models.settled('batch', 'a', notFound)).toMatch(/^not sent: 3 rows of a in a row were refused as unknown to the endpoint/);
    expect(models.stopped('batch', 'a')).toMatch(/^not sent: 3 rows of a in a row were refused as unknown to the endpoint \(the endpoint does not know this model \(HTTP 404\)\)/);
    expect(models.stopped('batch', 'b')).toBeUndefined();
    // Another batch (a later firing on the same worker) gets to try.
    expect(models.stopped('other', 'a')).toBeUndefined();
  });

  it('lets one row try again after a while, and one more refusal stops the model again', () => {
    let now = 0;
    const models = new ModelWatch(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) models.settled('b', 'm', notFound);
    expect(models.stopped('b', 'm')).toBeDefined();
    now = 60_001;
    expect(models.stopped('b', 'm')).toBeUndefined();
    models.settled('b', 'm', notFound);
    expect(models.stopped('b', 'm')).toBeDefined();
  });
});
