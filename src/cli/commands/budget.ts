/**
 * `tokenhot-batch budget <batch> --usd X` (or `--none`): sets a queued batch's cap; rows parked
 * over budget start again at once when the new cap allows.
 */
import { describeBudget, parseBudget } from '../../run/budget.js';
import type { ConfigFlags } from '../../core/config.js';
import { setBudgetAndRelease } from '../../queue/enqueue.js';
import { UsageError } from '../../core/errors.js';
import { withQueue } from './queue-connection.js';

export interface BudgetFlags extends ConfigFlags {
  usd?: string;
  none?: boolean;
  prefix?: string;
}

export async function budgetCommand(batch: string, flags: BudgetFlags): Promise<number> {
  if ((flags.usd === undefined) === !flags.none) throw new UsageError('budget needs either --usd AMOUNT or --none');
  const budgetPico = flags.none ? undefined : parseBudget(flags.usd, '--usd');
  return withQueue(flags, async ({ images, batches }) => {
    if (!(await batches.batches()).includes(batch)) throw new UsageError(`no batch "${batch}" in the queue (tokenhot-batch status lists them)`);
    const released = await setBudgetAndRelease(images, batches, batch, budgetPico);
    const { spendPico } = await batches.spendAndBudget(batch);
    process.stdout.write(
      `batch ${batch}: ${budgetPico === undefined ? 'no budget' : describeBudget(spendPico, budgetPico)}; ${released} parked row(s) set going again\n`,
    );
    return 0;
  });
}
