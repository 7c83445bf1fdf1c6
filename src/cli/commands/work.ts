/**
 * `tokenhot-batch work`: a worker process on the images queue.
 */
import { loadConfig, type ConfigFlags } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import { queueSettings } from '../../queue/queue.js';
import { picoToUsd } from '../../cost/pricing.js';
import { countSettled, createProgress, spendText, formatDuration, rateAndEta, type Progress, type ProgressState } from '../../run/progress.js';
import { startWorker } from '../../queue/worker.js';
import { numberFlag } from './flag-values.js';

export interface WorkFlags extends ConfigFlags {
  untilDrained?: boolean;
  prefix?: string;
  rpm?: string;
  globalConcurrency?: string;
  lockDuration?: string;
  stalledInterval?: string;
  shutdownTimeout?: string;
  catalog?: boolean;
  metricsPort?: string;
  metricsHost?: string;
  plain?: boolean;
}

export async function workCommand(flags: WorkFlags, log: Logger): Promise<number> {
  const config = loadConfig(flags);
  const settings = queueSettings(config.redisUrl, flags.prefix);
  const progress = new WorkerProgress(log, flags.plain);
  const shutdownTimeoutMs = (numberFlag('--shutdown-timeout', flags.shutdownTimeout, 0) ?? 120) * 1000;
  const worker = await startWorker(config, {
    settings,
    concurrency: config.concurrency,
    untilDrained: flags.untilDrained,
    catalog: flags.catalog,
    rpm: numberFlag('--rpm', flags.rpm, 1),
    globalConcurrency: numberFlag('--global-concurrency', flags.globalConcurrency, 1),
    lockDurationMs: numberFlag('--lock-duration', flags.lockDuration, 1000),
    stalledIntervalMs: numberFlag('--stalled-interval', flags.stalledInterval, 100),
    shutdownTimeoutMs,
    metricsPort: numberFlag('--metrics-port', flags.metricsPort, 0),
    metricsHost: flags.metricsHost,
    log,
    onSettled: (_row, outcome) => progress.settled(outcome),
  });
  progress.start(() => worker.remaining());
  let signals = 0;
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals === 1) {
      stoppedBy = signal;
      log.warn(`${signal}: taking no new jobs, letting calls in flight finish (again to abandon them; their jobs come back as stalled)`);
      void worker.stop();
      // The last resort of "a process told to stop, stops": the stop itself is bounded, this
      // covers anything it did not foresee.
      setTimeout(() => {
        log.error(`still not stopped ${Math.round(shutdownTimeoutMs / 1000) + BACKSTOP_SECONDS} s after ${signal}: exiting; active jobs come back as stalled`);
        process.exit(1);
      }, shutdownTimeoutMs + BACKSTOP_SECONDS * 1000).unref();
    } else {
      log.warn(`${signal} again: leaving calls in flight`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const exit = await worker.done;
  progress.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (exit.code !== 0) process.stderr.write(`error: ${exit.reason}\n`);
  const totals = progress.totals();
  if (stoppedBy) {
    process.stdout.write(`work: stopped by ${stoppedBy}; ${didText(totals)}\n`);
    return exit.code;
  }
  if (!flags.untilDrained || exit.code !== 0) return exit.code;
  // Drained: like `run`, say what this worker did, and exit 1 if a row it took failed for good.
  process.stdout.write(`work: queue drained; ${didText(totals)}\n`);
  return totals.failed > 0 ? 1 : 0;
}

/** Seconds past the shutdown timeout after which a stopping worker exits whatever it waits for. */
const BACKSTOP_SECONDS = 15;

function didText(totals: ProgressState): string {
  const { done, failed } = totals;
  return `this worker did ${done + failed} row(s): ${done} done, ${failed} failed for good; spend ${spendText(totals)}${failed > 0 ? ' (tokenhot-batch status lists the failed rows)' : ''}`;
}

/**
 * A worker's progress: a bar on a terminal (when the log shows only warnings), else a log line
 * every 10 s: rows done and failed by this worker, rate, ETA for what is left in the queue, spend.
 */
class WorkerProgress {
  private readonly state: ProgressState = { done: 0, failed: 0, spendPico: 0n };
  private bar?: Progress;
  private timer?: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(
    private readonly log: Logger,
    private readonly plain = false,
  ) {}

  start(remaining: () => Promise<number>): void {
    const useBar = process.stderr.isTTY && !this.plain && !this.log.isLevelEnabled('info');
    if (useBar) this.bar = createProgress({ label: 'work', total: 1 });
    const tick = async (): Promise<void> => {
      const left = await remaining().catch(() => undefined);
      const settled = this.state.done + this.state.failed;
      if (this.bar) {
        if (left !== undefined) this.bar.setTotal(Math.max(1, settled + left));
        this.bar.update({ ...this.state });
        return;
      }
      const { perMinute, etaSeconds } = rateAndEta(settled, settled + (left ?? 0), this.startedAt);
      this.log.info(
        { done: this.state.done, failed: this.state.failed, perMinute: Number(perMinute.toFixed(1)), queued: left, eta: left === undefined ? undefined : formatDuration(etaSeconds), spendUsd: picoToUsd(this.state.spendPico), ...(this.state.unpriced ? { unpricedAnswers: this.state.unpriced } : {}) },
        'progress',
      );
    };
    this.timer = setInterval(() => void tick(), this.bar ? 1_000 : 10_000);
    this.timer.unref();
  }

  settled(outcome: Parameters<typeof countSettled>[1]): void {
    countSettled(this.state, outcome);
    this.bar?.update({ ...this.state });
  }

  totals(): ProgressState {
    return { ...this.state };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.bar?.stop();
  }
}
