/**
 * The `tokenhot-batch` command: commands, flags and exit codes.
 *
 * Exit status: 0 all rows done; 1 some rows failed, were rejected or did not run (each listed
 * with its reason; `estimate`: bad rows or an unknown model); 2 bad usage, bad configuration, a
 * file refused (`--strict`), or a fatal error (bad key, no credits, endpoint unreachable); 130
 * after Ctrl-C. Each command's `--help` says which of these it uses (help.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { EXIT, helpText, QUEUE_ENV, withHelp } from './help.js';
import { redact, UsageError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { CsvFileError } from '../rows/csv.js';
// Text only (no server code): the mock's help lists its directives.
import { DIRECTIVE_HELP } from '../mock/directives.js';
import { registerOperatorCommands } from './commands/operator-commands.js';
import { packageVersion } from '../core/package-root.js';

// Each command's module is loaded when the command runs: a worker need not load the report
// renderers, nor `report` BullMQ and sharp (startup time and memory).

/** How a file is read (`run`, `enqueue`, `estimate`): its delimiter and the defaults of its rows' empty cells. */
const csvFlags = (command: Command): Command =>
  command
    .option('--model <id>', 'model for rows that name none (env TOKENHOT_MODEL)')
    .option('--aspect-ratio <ratio>', 'aspect ratio for rows that name none, e.g. 16:9')
    .option('--image-size <size>', 'image size for rows that name none: 512, 1K, 2K, 4K (1k works too)')
    .option('--delimiter <char>', 'field delimiter: , or ; or tab (default: detected from the header line)');

const pricesFlag = (command: Command): Command => command.option('--prices <file>', 'price file (JSON or YAML) over the built-in prices (env TOKENHOT_PRICES)');

/** What a cost depends on: the prices, and whether text is asked for beside the image. */
const costFlags = (command: Command): Command => pricesFlag(command).option('--image-only', 'ask for IMAGE only instead of TEXT and IMAGE');

const attemptsFlag = (command: Command): Command => command.option('--attempts <n>', 'attempts per row for transient errors (default 5; 429s do not count)');

/** Flags of the commands that call the endpoint. */
const commonFlags = (command: Command): Command =>
  costFlags(
    attemptsFlag(
      command
        .option('--out <dir>', 'output folder (env TOKENHOT_OUT_DIR; default ./output)', undefined)
        .option('--concurrency <n>', 'calls in flight at once (default 8)', undefined)
        .option('--base-url <url>', 'endpoint base URL (env TOKENHOT_BASE_URL)')
        .option('--timeout <seconds>', 'longest wait for one answer (default 600)'),
    ),
  );

/** What the commands that call the endpoint read, and what a file refused means. */
const CALL_ENV = ['TOKENHOT_API_KEY', 'TOKENHOT_BASE_URL', 'TOKENHOT_OUT_DIR', 'TOKENHOT_MODEL', 'TOKENHOT_PRICES'] as const;
const REFUSED = 'bad usage or configuration, or a file refused (--strict)';

export function buildProgram(): Command {
  const program = new Command('tokenhot-batch')
    .description('Batch image generation from CSV files on a Gemini-compatible endpoint, with a usage ledger and cost reports.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText('after', '\nEach command\'s --help names the environment it reads and its exit status.');

  withHelp(
    commonFlags(
      csvFlags(program.command('run <csv>'))
        .description('run every row of a CSV and print the report (in-process; through the queue when REDIS_URL is set)')
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
      environment: [...CALL_ENV, ['REDIS_URL', 'set: through the queue (enqueue, then work here until drained); unset: in-process'], 'TOKENHOT_QUEUE_PREFIX', 'TOKENHOT_DURABLE', 'LOG_LEVEL'],
      exits: [
        [0, 'every row done'],
        [1, 'some rows failed, were rejected or did not run (each listed with its reason)'],
        [2, `${REFUSED}, or a fatal error (bad key, no credits, endpoint unreachable)`],
        EXIT.interrupted,
      ],
    },
  ).action(async (csv: string, flags) => {
    process.exitCode = await (await import('./commands/run.js')).runCommand(csv, flags, createLogger('warn', process.env.TOKENHOT_API_KEY));
  });

  withHelp(
    costFlags(
      csvFlags(program.command('estimate <csv>'))
        .description('what a CSV will cost per model and size, estimated without sending anything')
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
  ).action(async (csv: string, flags) => {
    process.exitCode = await (await import('./commands/estimate.js')).estimateCommand(csv, flags);
  });

  // Only what enqueueing uses: the workers call the endpoint, with their own settings.
  withHelp(
    attemptsFlag(
      pricesFlag(
        csvFlags(program.command('enqueue <csv>'))
          .description('validate a CSV and add its rows to the queue (REDIS_URL); enqueueing again adds nothing twice')
          .option('--batch <name>', 'batch name (default: the file name)')
          .option('--strict', 'refuse the whole file when any row is bad or names a model this version does not know, before adding any job')
          .option('--budget-usd <amount>', 'cap on the batch\'s spend across all workers (enqueueing again changes it; needs prices for its models)')
          .option('--retry-failed', 'queue again the rows of this batch that failed on a billed answer (billed again)')
          .option('--plain', 'plain progress lines instead of a bar')
          .option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX; `{tokenhot}` for Redis Cluster)'),
      ),
    ),
    {
      csv: true,
      environment: [...QUEUE_ENV, 'TOKENHOT_MODEL', ['TOKENHOT_PRICES', 'price file, for --budget-usd (--prices)']],
      exits: [
        [0, 'every row added or already queued'],
        [1, 'some rows rejected (each listed with its reason)'],
        [2, `${REFUSED}, or Redis not reachable`],
      ],
    },
  ).action(async (csv: string, flags) => {
    process.exitCode = await (await import('./commands/enqueue.js')).enqueueCommand(csv, flags);
  });

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
      environment: [...CALL_ENV, ...QUEUE_ENV, 'TOKENHOT_DURABLE', 'LOG_LEVEL', 'LOG_FORMAT'],
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

  program
    .command('report')
    .description('cost report from the ledger')
    .option('--out <dir>', 'output folder whose ledger to read (env TOKENHOT_OUT_DIR)')
    .option('--batch <name>', 'only this batch (and its sub-batches)')
    .option('--by <keys>', 'group by any of provider,model,day,batch,tag (comma-separated)')
    .addOption(new Option('--format <format>', 'output format (html: one self-contained page with a chart)').choices(['table', 'json', 'csv', 'html']).default('table'))
    .option('--output <file>', 'write the report to this file instead of stdout')
    .option('--since <date>', 'from this day (YYYY-MM-DD, UTC)')
    .option('--until <date>', 'to this day, inclusive (YYYY-MM-DD, UTC)')
    .option('--prices <file>', 'price file (JSON or YAML) over the built-in prices')
    .option('--prefix <prefix>', 'queue key prefix, to note batches over budget when REDIS_URL is set')
    .addHelpText(
      'after',
      helpText({
        environment: ['TOKENHOT_OUT_DIR', 'TOKENHOT_PRICES', ['REDIS_URL', 'when set, the report notes batches over budget'], 'TOKENHOT_QUEUE_PREFIX'],
        exits: [EXIT.ok, [2, 'bad usage (a flag), or a price file or --output that cannot be used']],
      }),
    )
    .action(async (flags) => {
      process.exitCode = await (await import('./commands/report.js')).reportCommand(flags);
    });

  program
    .command('mock-server')
    .description('a local endpoint of both API families (Gemini generateContent, OpenAI-style images) for dry runs and tests')
    .option('--port <port>', 'port (default 8787; 0 for any free port)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--api-key <key>', 'key the mock requires (default: TOKENHOT_API_KEY when set, else any)')
    .option('--latency-ms <ms>', 'delay before each answer')
    .option('--latency-jitter-ms <ms>', 'extra random delay, up to this much')
    .option('--payload <kind>', 'small (default) or real: image data as large as the real endpoint sends')
    .option('--rps <n>', "quota in requests per second; over it the mock answers 429 (Gemini's with RetryInfo, the images gateway's in Chinese)")
    .option('--burst <n>', 'requests allowed at once under the quota (default: rps)')
    .option('--fail-rate <p>', 'share of requests answered 503 at random, 0 to 1')
    .option('--request-log <file>', 'append one JSON line per request (what was billed, image hashes)')
    .option('--no-thought-images', 'leave out the interim thought images of Gemini 3 models')
    .option('--extra-model <id...>', 'also serve these model ids, as models newer than this version (no price in its table)')
    .option('--retire-model <id...>', 'answer these model ids 404 (model_not_found), as retired models are (e.g. dall-e-3)')
    .option('--link-ttl-ms <ms>', 'lifetime of image links of url answers (default: Seedream 24 h, GPT Image and DALL-E 1 h)')
    .addHelpText('after', `\nDirectives in a prompt ask for a behaviour:\n  ${DIRECTIVE_HELP.join('\n  ')}\n`)
    .addHelpText('after', helpText({ environment: [['TOKENHOT_API_KEY', 'the key the mock requires, unless --api-key (unset: any)']], exits: [[0, 'stopped by Ctrl-C or SIGTERM'], [2, 'bad usage, or the port is taken']] }))
    .action(async (flags) => {
      process.exitCode = await (await import('./commands/mock-server.js')).mockServerCommand(flags);
    });

  program
    .command('demo')
    .description('the example catalog against a built-in mock: images, ledger and report in ./output/demo')
    .option('--out <dir>', 'where the demo writes (default ./output/demo; emptied first)')
    .option('--plain', 'plain progress lines instead of a bar')
    .addHelpText(
      'after',
      helpText({
        environment: [],
        exits: [
          [0, 'every row done'],
          [1, 'some rows failed'],
          [2, '--out holds files the demo did not make'],
        ],
      }),
    )
    .action(async (flags) => {
      process.exitCode = await (await import('./commands/demo.js')).demoCommand(flags, createLogger('warn'));
    });

  registerOperatorCommands(program);

  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; any other commander error is bad usage.
      return error.exitCode === 0 ? 0 : 2;
    }
    const message = redact(error instanceof Error ? error.message : String(error), process.env.TOKENHOT_API_KEY);
    if (error instanceof UsageError || error instanceof CsvFileError) {
      process.stderr.write(`error: ${message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${message}\n`);
    if (process.env.DEBUG && error instanceof Error && error.stack) process.stderr.write(`${redact(error.stack, process.env.TOKENHOT_API_KEY)}\n`);
    return 2;
  }
}
