/**
 * `tokenhot-batch budget <batch> --usd X` (or `--none`): sets a queued batch's cap; rows parked
 * over budget start again at once when the new cap allows.
 */
import { BatchState } from '../batch-state.js';
import { describeBudget, parseBudget } from '../budget.js';
import { loadConfig, type ConfigFlags } from '../config.js';
import { setBudgetAndRelease } from '../enqueue.js';
import { UsageError } from '../errors.js';
import { connectRedis, imagesQueue, queueSettings } from '../queue.js';

export interface BudgetFlags extends ConfigFlags {
  usd?: string;
  none?: boolean;
  prefix?: string;
}

export async function budgetCommand(batch: string, flags: BudgetFlags): Promise<number> {
  if ((flags.usd === undefined) === !flags.none) throw new UsageError('budget needs either --usd AMOUNT or --none');
  const budgetPico = flags.none ? undefined : parseBudget(flags.usd);
  const config = loadConfig(flags);
  const settings = queueSettings(config.redisUrl, flags.prefix);
  const connection = await connectRedis(settings.redisUrl, 'producer');
  const queue = imagesQueue(settings, connection);
  const state = new BatchState(connection, settings.prefix);
  try {
    if (!(await state.batches()).includes(batch)) throw new UsageError(`no batch "${batch}" in the queue (tokenhot-batch status lists them)`);
    const released = await setBudgetAndRelease(queue, state, batch, budgetPico);
    const { spendPico } = await state.spendAndBudget(batch);
    process.stdout.write(
      `batch ${batch}: ${budgetPico === undefined ? 'no budget' : describeBudget(spendPico, budgetPico)}; ${released} parked row(s) set going again\n`,
    );
    return 0;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
