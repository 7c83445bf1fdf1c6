import type { Job } from 'bullmq';
import type { Logger } from '../core/log.js';
import { tokenCountsOf } from '../cost/billing.js';
import { picoToUsd } from '../cost/pricing.js';
import type { RowOutcome } from '../run/generate.js';
import type { WorkerMetrics } from './metrics.js';
import type { ImageJobData } from './queue.js';

/** Metrics and the log line of a settled call: batch, job, attempt, latency, status, tokens. */
export function recordCall(metrics: WorkerMetrics, log: Logger, job: Job<ImageJobData>, outcome: RowOutcome, attempt: number, latencyMs: number): void {
  const { row } = job.data;
  const httpStatus = outcome.status === 'failed' && outcome.httpStatus ? outcome.httpStatus : 200;
  metrics.answered(httpStatus);
  metrics.settled(outcome.status);
  const counts = outcome.billing ? tokenCountsOf(outcome.billing) : undefined;
  const costUsd = outcome.costPico === undefined ? undefined : picoToUsd(outcome.costPico);
  if (counts) metrics.billed(counts, outcome.status === 'done' ? outcome.images.length : 0, costUsd);
  const fields = {
    batch: row.batch,
    row: row.id,
    jobId: job.id,
    attempt,
    latencyMs,
    status: outcome.status,
    httpStatus,
    ...(counts ? { promptTokens: counts.promptTokens, imageTokens: counts.imageOutputTokens, textTokens: counts.textOutputTokens, thoughtsTokens: counts.thoughtsTokens } : {}),
    ...(costUsd !== undefined ? { costUsd } : {}),
  };
  if (outcome.status === 'done') log.info(fields, 'row done');
  else log.warn(fields, `row failed: ${outcome.reason}`);
}
