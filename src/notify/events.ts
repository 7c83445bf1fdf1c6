/**
 * The events a team's webhook receives, and their JSON bodies.
 *
 * - event: one thing that happened (a batch finished), with an id of its own; the same body,
 *   id included, goes to every notify URL and on every attempt, so a receiver drops repeats by id.
 * - delivery attempt: one POST of an event to one URL; 2xx counts as delivered.
 * - outbox: where events are handed for delivery: a BullMQ queue in queue mode (webhook-queue.ts),
 *   this process in-process (local-notifier.ts).
 *
 * Bodies hold counts, names and reasons, never the API key (see `withoutKey`).
 */
import { randomBytes } from 'node:crypto';
import { redact } from '../core/errors.js';
import type { Deliver } from '../core/types.js';

/** Every row of a batch settled: done, failed for good, or parked over its budget. */
export interface BatchFinished {
  batch: string;
  /** Rows queued in the batch. */
  rows: number;
  done: number;
  failed: number;
  /** Rows parked over the batch's budget (they run when the cap is raised). */
  overBudget: number;
  /** The rows' costs as the manifest lists them, in USD. */
  costUsd: number;
  /** Where the batch's manifest is: `<out>/<batch>/manifest.csv`; null when its output could not be opened (none written). */
  manifest: string | null;
  /** `approved`: the job hands out only images approved in review; the manifest (and its cost) lists only those. */
  deliver?: Deliver;
}

/** The batch's first row parked over its budget. */
export interface BatchOverBudget {
  batch: string;
  spendUsd: number;
  budgetUsd: number;
}

/** A run or worker stopped on a fatal error (bad key, no credits, endpoint unreachable); the batch's rows left wait. */
export interface RunStopped {
  batch: string;
  reason: string;
}

/** A catalog job's firing queued its rows (or was skipped, or failed). */
export interface FiringFinished {
  catalog: string;
  batch: string;
  status: 'ok' | 'skipped' | 'failed';
  enqueued: number;
  unchanged: number;
  stillQueued: number;
  takenOver: number;
  rejected: number;
  reason?: string;
}

export interface EventData {
  'batch.finished': BatchFinished;
  'batch.over_budget': BatchOverBudget;
  'run.stopped': RunStopped;
  'catalog.firing_finished': FiringFinished;
}

export type WebhookEventType = keyof EventData;

export interface WebhookEvent<T extends WebhookEventType = WebhookEventType> {
  /** `evt_` and 24 hex digits: unique per event, the same on every attempt. */
  id: string;
  type: T;
  /** ISO 8601, when the event happened (not when it was sent). */
  createdAt: string;
  data: EventData[T];
}

export function newEvent<T extends WebhookEventType>(type: T, data: EventData[T], now = new Date()): WebhookEvent<T> {
  return { id: `evt_${randomBytes(12).toString('hex')}`, type, createdAt: now.toISOString(), data };
}

/**
 * The event with anything like the API key taken out. Reasons come from error messages, which
 * should never hold the key; this is the last line of defence, as in the logs.
 */
export function withoutKey<T extends WebhookEventType>(event: WebhookEvent<T>, apiKey: string | undefined): WebhookEvent<T> {
  const text = JSON.stringify(event);
  const clean = redact(text, apiKey);
  return clean === text ? event : (JSON.parse(clean) as WebhookEvent<T>);
}

/** Where events go to be delivered to their URLs: it returns once they are handed over, not delivered. */
export interface WebhookOutbox {
  send(urls: readonly string[], event: WebhookEvent): Promise<void>;
}
