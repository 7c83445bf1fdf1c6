/**
 * `status --watch` shows how fast each batch goes and when it will be done.
 */
import { describe, expect, it } from 'vitest';
import { BatchRates, renderStatus, type BatchStatus, type QueueStatus } from '../src/queue/status.js';
import { runInProcess } from './helpers/cli-in-process.js';

const batch = (done: number, waiting: number): BatchStatus => ({
  batch: 'spring',
  rows: 100,
  waiting,
  active: 0,
  delayed: 0,
  done,
  failed: 0,
  overBudget: 0,
  spendUsd: 0,
  spendPico: 0n,
  failedRows: [],
});
const status = (done: number, waiting: number): QueueStatus => ({ paused: false, rateLimitedForMs: 0, batches: [batch(done, waiting)], catalogs: [] });

describe('status --watch', () => {
  it('shows rows per minute and the time left once it has looked twice', () => {
    const rates = new BatchRates();
    const first = renderStatus(status(10, 90), rates.observe(status(10, 90), 0));
    expect(first).toMatch(/rate\/min\s+ETA/);
    expect(first).toContain('…');
    const later = renderStatus(status(40, 60), rates.observe(status(40, 60), 60_000));
    // 30 rows in a minute, 60 left: two minutes.
    expect(later).toMatch(/30\.0\s+2m00s/);
  });
});

describe('number flags', () => {
  it('refuses a number that is not one, by flag name and with exit 2, before anything runs', async () => {
    const watch = await runInProcess(['status', '--watch', '--interval', '2s']);
    expect(watch.code).toBe(2);
    expect(watch.stderr).toContain('--interval: "2s" is not a number of 0.2 or more');
    const failed = await runInProcess(['status', '--failed', 'all']);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('--failed: "all" is not a whole number from 0 to 10000');
  });
});
