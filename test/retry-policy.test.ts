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
  });

  it('a 429 never uses up an attempt: it waits for the quota however many attempts were made', () => {
    const error = new CallError('rateLimited', '429', { retryAfterMs: 1500 });
    expect(nextStep(error, 5)).toEqual({ action: 'waitForQuota', delayMs: 1500 });
    expect(nextStep(error, 50)).toEqual({ action: 'waitForQuota', delayMs: 1500 });
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

describe('a model the endpoint does not know', () => {
  it('stops sending its rows after 3 refusals (404) in a row; any other answer of that model resets the count', () => {
    const models = new ModelWatch();
    const notFound = { status: 'failed' as const, reason: 'the endpoint does not know this model (HTTP 404)', httpStatus: 404 };
    models.settled('a', notFound);
    models.settled('a', notFound);
    models.settled('a', { status: 'done' });
    models.settled('a', notFound);
    models.settled('a', notFound);
    models.settled('b', notFound);
    expect(models.stopped('a')).toBeUndefined();
    models.settled('a', notFound);
    expect(models.stopped('a')).toMatch(/^not sent: 3 rows of a in a row were refused as unknown to the endpoint \(the endpoint does not know this model \(HTTP 404\)\)/);
    expect(models.stopped('b')).toBeUndefined();
  });
});
