/**
 * The `tokenhot-batch` command: commands, flags and exit codes.
 *
 * Exit status: 0 all rows done; 1 some rows failed, were rejected or did not run (each listed
 * with its reason; `estimate`: bad rows or an unknown model); 2 bad usage, bad configuration, a
 * file refused (`--strict`), or a fatal error (bad key, no credits, endpoint unreachable); 130
 * after Ctrl-C. Each command's `--help` says which of these it uses (help.ts).
 */
import { Command, CommanderError } from 'commander';
import { redact, UsageError } from '../core/errors.js';
import { CsvFileError } from '../rows/csv.js';
import { registerEnqueueCommand, registerEstimateCommand, registerRunCommand } from './csv-commands.js';
import { registerDemoCommand, registerMockServerCommand, registerReportCommand } from './local-commands.js';
import { registerBudgetCommand, registerPauseAndResumeCommands, registerScheduleCommands, registerStatusCommand, registerWorkCommand } from './queue-commands.js';
import { registerOperatorCommands } from './commands/operator-commands.js';
import { registerReviewCommands } from './review-commands.js';
import { packageVersion } from '../core/package-root.js';

// Each command's module is loaded when the command runs: a worker need not load the report
// renderers, nor `report` BullMQ and sharp (startup time and memory).

export function buildProgram(): Command {
  const program = new Command('tokenhot-batch')
    .description('Batch image generation from CSV files on a Gemini-compatible endpoint, with a usage ledger and cost reports.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText('after', '\nEach command\'s --help names the environment it reads and its exit status.');

  // In the order `--help` lists them.
  registerRunCommand(program);
  registerEstimateCommand(program);
  registerEnqueueCommand(program);
  registerWorkCommand(program);
  registerStatusCommand(program);
  registerBudgetCommand(program);
  registerScheduleCommands(program);
  registerPauseAndResumeCommands(program);
  registerReportCommand(program);
  registerMockServerCommand(program);
  registerDemoCommand(program);
  registerOperatorCommands(program);
  registerReviewCommands(program);

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
