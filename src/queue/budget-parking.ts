/**
 * Jobs over their batch's budget: parked (delayed, far out) and listed as over budget, not
 * failed, until room is freed (calls in flight that cost less than they held, or ended unbilled)
 * or `tokenhot-batch budget` raises the cap; either sets parked jobs going. The first row parked
 * sends the batch's `batch.over_budget` webhook (once, until its budget changes).
 */
import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import type { Logger } from '../core/log.js';
import { picoToUsd, type PriceTable } from '../cost/pricing.js';
import { announceOnce } from '../notify/batch-notices.js';
import { newEvent } from '../notify/events.js';
import { describeBudget, reservationFor, type QueueBudget, type Reservation } from '../run/budget.js';
import type { BatchState } from './batch-state.js';
import type { ImageJobData } from './queue.js';

/** How far out an over-budget job is parked; raising the cap promotes it at once. */
const PARK_MS = 30 * 24 * 3600 * 1000;

export interface Parking {
  budget: QueueBudget;
  batches: BatchState;
  prices: PriceTable;
  log: Logger;
}

/** Holds the call's estimated cost against its batch's budget; a call that does not fit is parked (undefined). */
export async function reserveOrPark(job: Job<ImageJobData>, token: string | undefined, parking: Parking): Promise<Reservation | undefined> {
  const { row } = job.data;
  const jobId = job.id!;
  const held = await parking.budget.reserve(row.batch, jobId, token ?? randomUUID(), reservationFor(row, parking.prices));
  if ('reservation' in held) return held.reservation;
  const { spendPico, reservedPico, budgetPico } = held.refused;
  await job.moveToDelayed(Date.now() + PARK_MS, token);
  parking.log.info({ batch: row.batch, row: row.id }, `over budget: ${describeBudget(spendPico, budgetPico, reservedPico)}; row parked until there is room`);
  await announceOverBudget(parking, row.batch, spendPico, budgetPico);
  // Set going while it was being parked (so its promotion found it still active): go now.
  if (!(await parking.batches.isOverBudget(row.batch, jobId))) await job.promote().catch(() => undefined);
  return undefined;
}

/** `batch.over_budget` to the batch's URLs, once; a failure is logged, the row stays parked. */
async function announceOverBudget(parking: Parking, batch: string, spendPico: bigint, budgetPico: bigint): Promise<void> {
  try {
    const event = newEvent('batch.over_budget', { batch, spendUsd: picoToUsd(spendPico), budgetUsd: picoToUsd(budgetPico) });
    if (await announceOnce(parking.batches, batch, 'over-budget', () => event)) parking.log.info({ batch }, 'batch.over_budget webhook queued');
  } catch (error) {
    parking.log.warn({ batch, err: (error as Error).message }, 'batch.over_budget webhook not queued');
  }
}

/** Parked jobs that now fit (or may: they park again if another row took the room first). */
export async function wakeParked(queue: Queue<ImageJobData>, jobIds: string[]): Promise<void> {
  for (const jobId of jobIds) {
    const job = await queue.getJob(jobId);
    // One still being parked is set going by its parker (reserveOrPark).
    if (job && (await job.isDelayed())) await job.promote().catch(() => undefined);
  }
}
