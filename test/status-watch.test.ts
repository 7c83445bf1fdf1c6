/**
 * `status --watch` shows how fast each batch goes and when it will be done.
 */
import { describe, expect, it } from 'vitest';
import { BatchRates, renderStatus, type BatchStatus, type QueueStatus } from '../src/commands/status.js';

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
