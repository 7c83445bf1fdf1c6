/**
 * The commands that read a prompt CSV: `run`, `estimate` and `enqueue`. Each command's module is
 * loaded when it runs (see program.ts).
 */
import { Option, type Command } from 'commander';
import { attemptsFlag, CALL_ENV, commonFlags, costFlags, csvFlags, notifyFlag, pricesFlag, REFUSED } from './flags.js';
import { EXIT, QUEUE_ENV, withHelp } from './help.js';
import { createLogger } from '../core/log.js';

/** `run`: every row of a CSV, in-process or through the queue, and the report. */
export function registerRunCommand(program: Command): void {
  withHelp(
    commonFlags(
      notifyFlag(csvFlags(program.command('run [csv]')))
        .description('run every row of a CSV (or of a job\'s feed and shots: --job) and print the report (in-process; through the queue when REDIS_URL is set)')
        .option('--batch <name>', 'batch name (default: the file name)')
        .option('--strict', 'refuse the whole file when any row is bad or names a model this version does not know, before any request')
        .option('--retry-failed', 'also run rows that failed for good in an earlier run (billed again)')
        .option('--redo-changed', 'make again the finished rows whose prompt or parameters changed in the file since (in-process)')
        .option('--dry-run', 'estimate what the rows left to do will cost, and send nothing')
        .option('--rpm <n>', 'the provider\'s quota in requests per minute, when known (else the pace is learned from 429s)')
        .option('--plain', 'plain progress lines instead of a bar')
        .option('--budget-usd <amount>', 'cap on the batch\'s spend (all runs together); no new call starts once reached')
        .option('--prefix <prefix>', 'queue key prefix, with REDIS_URL (env TOKENHOT_QUEUE_PREFIX; `{tokenhot}` for Redis Cluster)'),
    ),
    {
      csv: true,
      environment: [...CALL_ENV, ['REDIS_URL', 'set: through the queue (enqueue, then work here until drained); unset: in-process'], 'TOKENHOT_QUEUE_PREFIX', 'TOKENHOT_DURABLE', 'TOKENHOT_WEBHOOK_SECRET', 'LOG_LEVEL'],
      exits: [
        [0, 'every row done'],
        [1, 'some rows failed, were rejected or did not run (each listed with its reason)'],
        [2, `${REFUSED}, or a fatal error (bad key, no credits, endpoint unreachable)`],
        EXIT.interrupted,
      ],
    },
  ).action(async (csv: string | undefined, flags) => {
    process.exitCode = await (await import('./commands/run.js')).runCommand(csv, flags, createLogger('warn', process.env.TOKENHOT_API_KEY));
  });
}

/** `estimate`: a CSV's cost, without sending anything. */
export function registerEstimateCommand(program: Command): void {
  withHelp(
    costFlags(
      csvFlags(program.command('estimate [csv]'))
        .description('what a CSV (or a job\'s feed × shots: --job) will cost per model and size, estimated without sending anything')
        .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table')),
    ),
    {
      csv: true,
      environment: ['TOKENHOT_MODEL', 'TOKENHOT_PRICES'],
      exits: [
        [0, 'estimated'],
        [1, 'bad rows (listed, not counted) or a model this version does not know (its tokens are not known)'],
        [2, 'bad usage, or a file that cannot be read as a CSV'],
      ],
    },
  ).action(async (csv: string | undefined, flags) => {
    process.exitCode = await (await import('./commands/estimate.js')).estimateCommand(csv, flags);
  });
}

/** `enqueue`: a CSV's rows added to the queue. */
export function registerEnqueueCommand(program: Command): void {
  // Only what enqueueing uses: the workers call the endpoint, with their own settings.
  withHelp(
    attemptsFlag(
      pricesFlag(
        notifyFlag(csvFlags(program.command('enqueue [csv]')))
          .description('validate a CSV (or a job\'s feed × shots: --job) and add its rows to the queue (REDIS_URL); enqueueing again adds nothing twice')
          .option('--batch <name>', 'batch name (default: the file name)')
          .option('--out <dir>', 'where the workers write this batch: a folder (the same path on every worker) or s3://bucket/prefix (default: the job\'s out:, else each worker\'s TOKENHOT_OUT_DIR)')
          .option('--strict', 'refuse the whole file when any row is bad or names a model this version does not know, before adding any job')
          .option('--budget-usd <amount>', 'cap on the batch\'s spend across all workers (enqueueing again changes it; needs prices for its models)')
          .option('--retry-failed', 'queue again the rows of this batch that failed on a billed answer (billed again)')
          .option('--plain', 'plain progress lines instead of a bar')
          .option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX; `{tokenhot}` for Redis Cluster)'),
      ),
    ),
    {
      csv: true,
      environment: [...QUEUE_ENV, 'TOKENHOT_MODEL', ['TOKENHOT_PRICES', 'price file, for --budget-usd (--prices)'], 'TOKENHOT_WEBHOOK_SECRET'],
      exits: [
        [0, 'every row added or already queued'],
        [1, 'some rows rejected (each listed with its reason)'],
        [2, `${REFUSED}, or Redis not reachable`],
      ],
    },
  ).action(async (csv: string | undefined, flags) => {
    process.exitCode = await (await import('./commands/enqueue.js')).enqueueCommand(csv, flags);
  });
}
