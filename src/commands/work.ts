/**
 * `tokenhot-batch work`: a worker process on the images queue.
 */
import { loadConfig, type ConfigFlags } from '../config.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import { queueSettings } from '../queue.js';
import { startWorker } from '../queue-worker.js';

export interface WorkFlags extends ConfigFlags {
  untilDrained?: boolean;
  prefix?: string;
  rpm?: string;
  globalConcurrency?: string;
  lockDuration?: string;
  stalledInterval?: string;
  shutdownTimeout?: string;
  catalog?: boolean;
}

function optionalNumber(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < min) throw new UsageError(`${name}: "${value}" is not a number of ${min} or more`);
  return parsed;
}

export async function workCommand(flags: WorkFlags, log: Logger): Promise<number> {
  const config = loadConfig(flags);
  const settings = queueSettings(config.redisUrl, flags.prefix);
  const worker = await startWorker(config, {
    settings,
    concurrency: config.concurrency,
    untilDrained: flags.untilDrained,
    catalog: flags.catalog,
    rpm: optionalNumber('--rpm', flags.rpm, 1),
    globalConcurrency: optionalNumber('--global-concurrency', flags.globalConcurrency, 1),
    lockDurationMs: optionalNumber('--lock-duration', flags.lockDuration, 1000),
    stalledIntervalMs: optionalNumber('--stalled-interval', flags.stalledInterval, 100),
    shutdownTimeoutMs: (optionalNumber('--shutdown-timeout', flags.shutdownTimeout, 0) ?? 120) * 1000,
    log,
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals === 1) {
      log.warn(`${signal}: taking no new jobs, letting calls in flight finish (again to abandon them; their jobs come back as stalled)`);
      void worker.stop();
    } else {
      log.warn(`${signal} again: leaving calls in flight`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const exit = await worker.done;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (exit.code !== 0) process.stderr.write(`error: ${exit.reason}\n`);
  return exit.code;
}
