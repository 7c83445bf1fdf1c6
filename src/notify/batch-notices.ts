/**
 * Queue mode's notices of a batch: sent to the URLs its meta lists (`enqueue --notify`, a job's
 * `notify:`), each once per batch however many workers see the moment, by a claim in Redis
 * (SET NX). What the notices need of the batch state (queue/batch-state.ts) is named here by its
 * shape, so notify/ does not depend on queue/.
 */
import { newEvent, type WebhookEvent, type WebhookOutbox } from './events.js';

/**
 * `finished`: claimed until rows are added to the batch again; `over-budget`: until its budget
 * changes; `stopped`: for a while (see `STOPPED_CLAIM_SECONDS`).
 */
export type Notice = 'finished' | 'over-budget' | 'stopped';

export interface NoticeBoard {
  /** Where events go; without one (a producer, `status`), nothing is sent. */
  readonly outbox?: WebhookOutbox;
  notifyUrls(batch: string): Promise<string[]>;
  /** True for the one caller that gets the claim. */
  claimNotice(batch: string, notice: Notice, ttlSeconds?: number): Promise<boolean>;
  releaseNotice(batch: string, notice: Notice): Promise<void>;
  /** Batches with notify URLs and rows not yet settled. */
  unsettledWithNotify(): Promise<string[]>;
}

/**
 * Every worker that meets a bad key or no credits stops, each with the same reason: one
 * `run.stopped` per batch for this long, not one per worker.
 */
const STOPPED_CLAIM_SECONDS = 600;

/** Sends the event `make` builds to the batch's URLs, if it has any and this caller gets the claim. */
export async function announceOnce(board: NoticeBoard, batch: string, notice: Notice, make: () => Promise<WebhookEvent> | WebhookEvent, ttlSeconds?: number): Promise<boolean> {
  if (!board.outbox) return false;
  const urls = await board.notifyUrls(batch);
  if (urls.length === 0 || !(await board.claimNotice(batch, notice, ttlSeconds))) return false;
  try {
    await board.outbox.send(urls, await make());
    return true;
  } catch (error) {
    // Not sent: the next worker to see the moment may claim it.
    await board.releaseNotice(batch, notice).catch(() => undefined);
    throw error;
  }
}

/** `run.stopped` to every batch left unsettled by a fatal stop (its rows wait in the queue). */
export async function announceStopped(board: NoticeBoard, reason: string): Promise<number> {
  if (!board.outbox) return 0;
  let sent = 0;
  for (const batch of await board.unsettledWithNotify()) {
    if (await announceOnce(board, batch, 'stopped', () => newEvent('run.stopped', { batch, reason }), STOPPED_CLAIM_SECONDS)) sent += 1;
  }
  return sent;
}
