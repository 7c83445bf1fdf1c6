/**
 * The commands of the queue (REDIS_URL): `work`, `status`, `budget`, `schedule`, `pause` and
 * `resume`. Each command's module is loaded when it runs (see program.ts).
 */
import { Option, type Command } from 'commander';
import { CALL_ENV, commonFlags } from './flags.js';
import { EXIT, helpText, QUEUE_ENV, withHelp } from './help.js';
import { createLogger } from '../core/log.js';

/** `work`: a worker process on the queue. */
export function registerWorkCommand(program: Command): void {
  withHelp(
    commonFlags(
      program
        .command('work')
        .description('a worker process on the queue (REDIS_URL): run as many as you like, on as many machines')
        // Queued rows carry their model from `enqueue`; catalog firings read their CSV here.
        .option('--model <id>', 'model for catalog rows whose row and definition name none (env TOKENHOT_MODEL)')
        .option('--until-drained', 'exit once nothing is waiting, delayed or active')
        .option('--no-catalog', 'do not run catalog firings in this process')
        .option('--rpm <n>', 'proactive quota for all workers together, in requests per minute')
        .option('--global-concurrency <n>', 'cap on calls in flight across all workers')
        .option('--lock-duration <ms>', 'job lock without renewal; a killed worker\'s jobs return after it (default 30000)')
        .option('--stalled-interval <ms>', 'how often to look for jobs of dead workers (default 15000)')
        .option('--shutdown-timeout <seconds>', 'on SIGTERM, how long to wait for calls in flight (default 120)')
        .option('--metrics-port <port>', 'serve Prometheus metrics on this port at /metrics')
        .option('--metrics-host <host>', 'address for the metrics server (default 127.0.0.1)')
        .option('--plain', 'log lines instead of a progress bar on a terminal')
        .option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX; `{tokenhot}` for Redis Cluster)'),
    ),
    {
      environment: [...CALL_ENV, ...QUEUE_ENV, 'TOKENHOT_DURABLE', 'TOKENHOT_WEBHOOK_SECRET', 'LOG_LEVEL', 'LOG_FORMAT'],
      exits: [
        [0, 'stopped cleanly (with --until-drained: drained, and no row it took failed for good)'],
        [1, 'with --until-drained: a row it took failed for good (tokenhot-batch status lists it)'],
        [2, 'bad usage or configuration, or a fatal error (bad key, no credits, endpoint unreachable)'],
        [130, 'a second signal: calls in flight left (their jobs come back as stalled)'],
      ],
    },
  ).action(async (flags) => {
    // On a terminal a progress bar shows the work and the log keeps to warnings; elsewhere
    // (docker logs, CI) every row is a log line.
    process.exitCode = await (await import('./commands/work.js')).workCommand(flags, createLogger(process.stderr.isTTY && !flags.plain ? 'warn' : 'info', process.env.TOKENHOT_API_KEY));
  });
}

/** `status`: each batch's rows and spend. */
export function registerStatusCommand(program: Command): void {
  withHelp(
    program
      .command('status')
      .description('per batch: rows waiting, active, delayed, done, failed, and spend so far (REDIS_URL)')
      .option('--batch <name>', 'only this batch (and its sub-batches)')
      .option('--watch', 'refresh until interrupted')
      .option('--interval <seconds>', 'refresh interval with --watch (default 2)')
      .option('--failed <n>', 'failed rows to list per batch (default 10)')
      .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
      .option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX)'),
    { environment: QUEUE_ENV, exits: [EXIT.ok, EXIT.usage] },
  ).action(async (flags) => {
    process.exitCode = await (await import('./commands/status.js')).statusCommand(flags);
  });
}

/** `budget`: a queued batch's cap set or removed. */
export function registerBudgetCommand(program: Command): void {
  program
    .command('budget <batch>')
    .description('set or remove a queued batch\'s budget; rows parked over budget start again when it allows (REDIS_URL)')
    .option('--usd <amount>', 'the new cap in dollars')
    .option('--none', 'remove the cap')
    .option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX)')
    .addHelpText('after', helpText({ environment: QUEUE_ENV, exits: [EXIT.ok, [2, 'bad usage, a batch the queue does not know, or Redis not reachable']] }))
    .action(async (batch: string, flags) => {
      process.exitCode = await (await import('./commands/budget.js')).budgetCommand(batch, flags);
    });
}

/** `schedule` and its subcommands: catalog jobs on BullMQ job schedulers. */
export function registerScheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('catalog jobs from jobs/ on BullMQ job schedulers (REDIS_URL); `work` runs their firings');
  const prefixOption = (command: Command): Command =>
    command.option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX)').addHelpText('after', helpText({ environment: QUEUE_ENV, exits: [EXIT.ok, [1, 'schedule sync: a definition rejected (named by file and field; the others sync)'], EXIT.usage] }));
  prefixOption(schedule.command('sync <dir>').description('make the schedulers match the definitions in <dir> (adds, updates, removes)')).action(async (dir: string, flags) => {
    process.exitCode = await (await import('./commands/schedule.js')).scheduleCommand('sync', dir, flags);
  });
  prefixOption(schedule.command('list').description('each catalog job, its schedule, next firing and last run'))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (flags) => {
      process.exitCode = await (await import('./commands/schedule.js')).scheduleCommand('list', undefined, flags);
    });
  prefixOption(schedule.command('remove <name>').description('remove a catalog job\'s scheduler')).action(async (name: string, flags) => {
    process.exitCode = await (await import('./commands/schedule.js')).scheduleCommand('remove', name, flags);
  });
  prefixOption(schedule.command('run <name>').description('fire a catalog job now (its schedule is unchanged)')).action(async (name: string, flags) => {
    process.exitCode = await (await import('./commands/schedule.js')).scheduleCommand('run', name, flags);
  });
}

/** `pause` and `resume`: the images queue for every worker. */
export function registerPauseAndResumeCommands(program: Command): void {
  for (const action of ['pause', 'resume'] as const) {
    program
      .command(action)
      .description(action === 'pause' ? 'pause the images queue for every worker' : 'resume the images queue (after a fatal error was fixed, say)')
      .option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX)')
      .addHelpText('after', helpText({ environment: QUEUE_ENV, exits: [EXIT.ok, EXIT.usage] }))
      .action(async (flags) => {
        process.exitCode = await (await import('./commands/resume.js')).pauseOrResumeCommand(action, flags);
      });
  }
}
