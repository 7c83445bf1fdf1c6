/**
 * How an images worker ends: its exit status, the signals a stop aborts, the calls it waits for,
 * and the one stop sequence with its bounded waits (a Redis that does not answer must not hold
 * the process).
 */
import { setMaxListeners } from 'node:events';
import type { Server } from 'node:http';
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CatalogWorker } from '../catalog/worker.js';
import type { WorkerWebhooks } from '../notify/webhook-queue.js';
import type { Logger } from '../core/log.js';
import type { QueueBudget } from '../run/budget.js';
import type { Pipeline } from '../run/pipeline.js';
import type { WorkerMetrics } from './metrics.js';
import type { ImageJobData } from './queue.js';
import type { ScopedQuotas } from './quota-control.js';

export interface WorkerExit {
  code: number;
  reason?: string;
}

/** The exit status of a worker: the first reason given wins. */
export class ExitStatus {
  current: WorkerExit = { code: 0 };

  /** No reason to stop has been given yet. */
  get clean(): boolean {
    return this.current.code === 0;
  }

  give(code: number, reason: string): void {
    if (this.current.code === 0) this.current = { code, reason };
  }
}

/**
 * `forceAbort` aborts calls in flight only on a forced shutdown. BullMQ's own signal (a lost job
 * lock) is deliberately not used: a call under way is billed whatever happens, so it is better
 * finished and recorded, even if another worker has taken the job meanwhile.
 * `slotWaits` is aborted when the worker starts to stop: it ends the waits for start slots, not calls.
 */
export class StopSignals {
  readonly forceAbort = new AbortController();
  readonly slotWaits = new AbortController();

  constructor(concurrency: number) {
    setMaxListeners(concurrency + 10, this.slotWaits.signal);
    // Every call in flight listens to it: as many listeners as the concurrency, not a leak.
    setMaxListeners(concurrency + 10, this.forceAbort.signal);
  }
}

/** What a stop waits for: a call under way is billed, so it is worth finishing and recording. */
export class CallsInFlight {
  count = 0;

  constructor(private readonly metrics: WorkerMetrics) {}

  /** Counts a call as started; the function returned ends it (once, however often it is called). */
  started(): () => void {
    const endMetric = this.metrics.callStarted();
    this.count += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.count -= 1;
      endMetric();
    };
  }
}

/** What a stop closes: the BullMQ worker first, then the rest. */
export interface StopParts {
  worker: Worker<ImageJobData>;
  connection: Redis;
  log: Logger;
  /** How long a stop waits for calls in flight before giving up on them. */
  timeoutMs: number;
  signals: StopSignals;
  calls: CallsInFlight;
  exit: ExitStatus;
  catalogWorker: CatalogWorker | undefined;
  metricsServer: { server: Server } | undefined;
  queue: Queue<ImageJobData>;
  pipeline: Pipeline;
  quotas: ScopedQuotas;
  budget: QueueBudget;
  webhooks: WorkerWebhooks;
  /** What must be handed to the webhooks queue before it closes (a fatal stop's notices). */
  beforeWebhooksClose: () => Promise<unknown>;
}

/** The stop sequence of a worker, run once however often it is asked for. */
export class WorkerStop {
  private stopping: Promise<void> | undefined;
  private markStopped!: () => void;
  /** Resolves once a stop has finished. */
  readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));

  constructor(private readonly parts: StopParts) {}

  /** Stops taking jobs and waits for calls in flight (up to the shutdown timeout; `force` aborts them). */
  stop(force = false): Promise<void> {
    this.stopping ??= this.run(force);
    return this.stopping;
  }

  private async run(force: boolean): Promise<void> {
    const closed = await closeWorker(this.parts, force);
    await closeWebhooks(this.parts, closed);
    await closeTheRest(this.parts, closed);
    this.markStopped();
  }
}

/** With no call in flight, how long a stop waits for BullMQ to close before leaving without it. */
const IDLE_CLOSE_MS = 3_000;
/** Longest wait for the cleanup after the worker has closed, and after it was left. */
const CLEANUP_MS = 5_000;
const LEFT_CLEANUP_MS = 1_000;

type Closed = 'closed' | 'timeout' | 'stuck';

/** Closes the BullMQ worker, or leaves it when it does not close in time. */
async function closeWorker(parts: StopParts, force: boolean): Promise<Closed> {
  const { signals, worker } = parts;
  if (force) signals.forceAbort.abort(new Error('worker stopped'));
  signals.slotWaits.abort(new Error('worker stopping'));
  const closing = worker.close(force).catch(() => undefined);
  const closed = await closeWithin(closing, parts.timeoutMs, () => parts.calls.count);
  if (closed !== 'closed') leaveWorker(parts, closed);
  return closed;
}

/** Leaves a worker that did not close in time: any job still active comes back as stalled. */
function leaveWorker(parts: StopParts, closed: 'timeout' | 'stuck'): void {
  const { calls, connection, exit, log, timeoutMs, worker } = parts;
  log.warn(
    closed === 'timeout'
      ? `${calls.count} call(s) still in flight after ${Math.round(timeoutMs / 1000)} s: leaving them; their jobs come back as stalled`
      : `no call in flight, but the worker could not close in ${IDLE_CLOSE_MS / 1000} s${connection.status === 'ready' ? '' : ' (Redis cannot be reached)'}: leaving; any job still active comes back as stalled`,
  );
  // Calls left now may have been billed without reaching the ledger: not a clean exit.
  if (closed === 'timeout' && calls.count > 0) exit.give(1, `left ${calls.count} call(s) in flight at the shutdown timeout; their answers, if billed, are not in the ledger`);
  parts.signals.forceAbort.abort(new Error('shutdown timeout'));
  void worker.close(true).catch(() => undefined);
  void worker.disconnect().catch(() => undefined);
}

/** How long a stop lets the webhooks worker send the events waiting now (a batch just finished). */
const WEBHOOKS_GRACE_MS = 10_000;

/**
 * The webhooks worker gets a short grace to send what waits now, then closes; retries due later
 * stay in Redis for the next worker. Bounded, as the rest, when Redis does not answer.
 */
async function closeWebhooks(parts: StopParts, closed: Closed): Promise<void> {
  // No grace when Redis is away (nothing could be sent, and the stop must not wait for it) or
  // after the shutdown timeout. A BullMQ close that was only slow (a loaded machine) still lets
  // the events of this stop go out: a worker stopped by a bad key sends its run.stopped.
  const graceMs = closed !== 'timeout' && parts.connection.status === 'ready' ? WEBHOOKS_GRACE_MS : 0;
  await within(parts.beforeWebhooksClose(), closed === 'closed' ? CLEANUP_MS : LEFT_CLEANUP_MS);
  await within(parts.webhooks.worker?.close(graceMs), graceMs + (closed === 'closed' ? CLEANUP_MS : LEFT_CLEANUP_MS));
}

/**
 * Closes what the worker used. Bounded: a Redis that does not answer must not hold the process
 * (the ledger is already on disk, line by line, so nothing here is needed to keep a billed answer).
 */
async function closeTheRest(parts: StopParts, closed: Closed): Promise<void> {
  const { metricsServer } = parts;
  metricsServer?.server.closeAllConnections();
  await within(
    Promise.allSettled([
      parts.catalogWorker?.close(),
      new Promise((resolve) => (metricsServer ? metricsServer.server.close(resolve) : resolve(undefined))),
      parts.queue.close(),
      parts.pipeline.close(),
      parts.quotas.close(),
      parts.webhooks.outbox.close(),
    ]),
    closed === 'closed' ? CLEANUP_MS : LEFT_CLEANUP_MS,
  );
  parts.budget.close();
  parts.connection.disconnect();
}

/** Waits for `promise` for at most `ms`; never rejects. */
async function within(promise: Promise<unknown> | undefined, ms: number): Promise<'done' | 'timeout'> {
  if (!promise) return 'done';
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const result = await Promise.race([promise.then(() => 'done' as const, () => 'done' as const), timedOut]);
  clearTimeout(timer);
  return result;
}

/**
 * Waits for the worker to close: as long as `timeout` while calls are in flight, but only
 * `IDLE_CLOSE_MS` once none is (closing is then only BullMQ talking to Redis, which may be gone).
 */
async function closeWithin(closing: Promise<unknown>, timeout: number, inFlight: () => number): Promise<Closed> {
  const started = Date.now();
  let closed = false;
  void closing.then(() => (closed = true));
  let idleSince: number | undefined;
  while (!closed) {
    const now = Date.now();
    if (now - started >= timeout) return 'timeout';
    if (inFlight() > 0) idleSince = undefined;
    else if ((idleSince ??= now) <= now - IDLE_CLOSE_MS) return 'stuck';
    await within(closing, 100);
  }
  return 'closed';
}
