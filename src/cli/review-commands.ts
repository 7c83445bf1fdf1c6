/**
 * The review loop's commands, registered on the CLI's program by one call in program.ts:
 * `review` (the review page on loopback, no Redis), `review list` (decisions, for scripts) and
 * `regenerate` (the rejected rows made again) and `deliver` (manifest and latest/ again, approved only). Their modules load only when one of them runs.
 */
import { Option, type Command } from 'commander';
import { EXIT, helpText } from './help.js';
import type { ReviewListFlags, ReviewPageFlags } from './commands/review.js';
import type { RegenerateFlags } from './commands/regenerate.js';
import type { DeliverFlags } from './commands/deliver.js';

export function registerReviewCommands(program: Command): void {
  const review = program
    .command('review')
    .description('review a batch in the browser: approve, or reject with a note (a local page on 127.0.0.1, no Redis)')
    .argument('[out]', 'output folder (default --out, env TOKENHOT_OUT_DIR, ./output)')
    .option('--out <dir>', 'output folder (env TOKENHOT_OUT_DIR)')
    .option('--batch <name>', 'open this batch (default: the list of batches)')
    .option('--port <port>', 'port on 127.0.0.1 (default 3200; 0 for any free port)')
    .addHelpText(
      'after',
      helpText({
        environment: ['TOKENHOT_OUT_DIR', ['TOKENHOT_DASHBOARD_USER', 'with TOKENHOT_DASHBOARD_PASSWORD: basic auth; the user is who decided'], 'TOKENHOT_DASHBOARD_PASSWORD'],
        exits: [[0, 'stopped by Ctrl-C or SIGTERM'], [2, 'bad usage, or the port is taken']],
      }),
    )
    .action(async (out: string | undefined, flags: ReviewPageFlags) => {
      process.exitCode = await (await import('./commands/review.js')).reviewPageCommand(out, flags);
    });

  review
    .command('list')
    .description("rows with their current decision, note, who and when (--out DIR, --batch NAME: review's options, before or after list)")
    .addOption(new Option('--rejected', 'only rejected rows').conflicts(['approved', 'unreviewed']))
    .addOption(new Option('--approved', 'only approved rows').conflicts(['unreviewed']))
    .option('--unreviewed', 'only finished rows without a decision')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .addHelpText('after', helpText({ environment: ['TOKENHOT_OUT_DIR'], exits: [EXIT.ok, [2, 'bad usage']] }))
    .action(async (_flags, command: Command) => {
      process.exitCode = await (await import('./commands/review.js')).reviewListCommand(command.optsWithGlobals<ReviewListFlags>());
    });

  program
    .command('deliver')
    .description("write a batch's manifest (and a job's latest/ view) again, after a review: --approved hands out only the approved images")
    .option('--batch <name>', 'the batch (required)')
    .option('--job <name>', "also update latest/<name>/, the job's newest image of each product and shot")
    .option('--approved', 'only images whose current decision is approved')
    .option('--out <dir>', 'output folder (env TOKENHOT_OUT_DIR)')
    .addHelpText('after', helpText({ environment: ['TOKENHOT_OUT_DIR'], exits: [EXIT.ok, EXIT.usage] }))
    .action(async (flags: DeliverFlags) => {
      process.exitCode = await (await import('./commands/deliver.js')).deliverCommand(flags);
    });

  program
    .command('regenerate')
    .description('make the rejected rows of a batch again, in-process; the old image and sidecar are kept as <id>.v1.*')
    .option('--batch <name>', 'the batch (required)')
    .option('--rejected', 'the rows whose current decision is rejected (required: the only selection so far)')
    .option('--guided', 'add "Avoid: <note>" to the prompt of each row rejected with a note')
    .option('--out <dir>', 'output folder (env TOKENHOT_OUT_DIR)')
    .option('--plain', 'plain progress lines instead of a bar')
    .addHelpText(
      'after',
      helpText({
        environment: ['TOKENHOT_API_KEY', 'TOKENHOT_BASE_URL', 'TOKENHOT_OUT_DIR', 'TOKENHOT_PRICES'],
        exits: [[0, 'every rejected row made again (or none to make)'], [1, 'some rows failed'], EXIT.usage],
      }),
    )
    .action(async (flags: RegenerateFlags) => {
      process.exitCode = await (await import('./commands/regenerate.js')).regenerateCommand(flags);
    });
}
