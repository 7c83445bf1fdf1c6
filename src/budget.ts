/**
 * Budget caps: once a batch's spend reaches its cap, no new call of that batch starts. Calls
 * already in flight finish (they are billed whatever we do), so the overshoot is at most those.
 * The in-process runner and the workers both ask `mayStart`; the spend comes from the ledger
 * (in-process) or from the batch's counter in Redis (workers).
 */
import { geminiTokenCounts } from './gemini/usage.js';
import { scanLedger } from './ledger.js';
import { costPico, formatUsd, usdToPico, type PriceTable } from './pricing.js';
import { UsageError } from './errors.js';

/** True while a new call may start: no cap, or spend below it. */
export function mayStart(spentPico: bigint, budgetPico: bigint | undefined): boolean {
  return budgetPico === undefined || spentPico < budgetPico;
}

/** `--budget-usd` (or another flag, named in the error) → picodollars; a cap must be a positive amount. */
export function parseBudget(value: string | number | undefined, flag = '--budget-usd'): bigint | undefined {
  if (value === undefined) return undefined;
  const usd = Number(value);
  if (!Number.isFinite(usd) || usd <= 0) throw new UsageError(`${flag}: "${value}" is not an amount of dollars above 0`);
  return usdToPico(usd);
}

export function describeBudget(spentPico: bigint, budgetPico: bigint): string {
  return `spent ${formatUsd(spentPico, 4)} of a ${formatUsd(budgetPico, 2)} budget`;
}

/** What a batch has cost so far, from every ledger file (every run, every process). */
export async function ledgerSpend(outDir: string, batch: string, prices: PriceTable, onWarning?: (message: string) => void): Promise<bigint> {
  let total = 0n;
  await scanLedger(
    outDir,
    (entry) => {
      if (entry.batch !== batch) return;
      const price = prices.priceOf(entry.model, entry.ts);
      if (price) total += costPico(geminiTokenCounts(entry.usageMetadata ?? {}), price);
    },
    onWarning ? { onWarning } : {},
  );
  return total;
}
