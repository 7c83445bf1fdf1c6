/**
 * Budget caps, kept to the cent rather than to the calls in flight. Before a call starts, its
 * estimated cost is reserved against the batch's cap, and it starts only if spend + the
 * reservations of calls in flight + its own estimate fit under the cap. Once the answer is
 * billed, its reservation becomes the real cost; an unbilled end (an error, a refusal, a retry
 * to come) gives the reservation back. So the spend can pass the cap only by the estimates'
 * error of the calls in flight, a fraction of a call.
 *
 * In-process the reservations live here in memory (`LocalBudget`); with Redis they live beside
 * the batch's spend counter (`BatchState.reserve`, which makes the same sum atomically), and
 * `QueueBudget` keeps a worker's reservations alive while their calls run, so that those of a
 * killed worker lapse with its job locks.
 */
import { estimateRowCost } from '../cost/estimate.js';
import { billingOfEntry, scanLedger } from '../output/ledger.js';
import type { BatchState, BudgetRefusal } from '../queue/batch-state.js';
import { billedCostPico, formatUsd, usdToPico, type PriceTable } from '../cost/pricing.js';
import { UsageError } from '../core/errors.js';
import type { Row } from '../core/types.js';

/** The rule: no cap, or the spend, what calls in flight hold and this call's estimate fit under it. */
export function fitsBudget(spentPico: bigint, reservedPico: bigint, estimatePico: bigint, budgetPico: bigint | undefined): boolean {
  return budgetPico === undefined || spentPico + reservedPico + estimatePico <= budgetPico;
}

/**
 * What a call reserves: the row's estimate as `estimate` makes it, with the answer's short text
 * part counted whether asked for or not (the dearer case, by a few hundredths of a cent). A model
 * with no price reserves nothing: with a budget, its rows are refused before they run.
 */
export function reservationFor(row: Pick<Row, 'prompt' | 'model' | 'imageSize' | 'referenceImages'>, prices: PriceTable): bigint {
  return estimateRowCost(row, prices, true) ?? 0n;
}

/** One call's hold on its batch's budget. */
export interface Reservation {
  /** The answer was billed: the reservation becomes its real cost. */
  settle(costPico: bigint): Promise<void>;
  /** The call ended without a bill: the reservation goes. A no-op once settled or released. */
  release(): Promise<void>;
}

/** `--budget-usd` (or another flag, named in the error) → picodollars; a cap must be a positive amount. */
export function parseBudget(value: string | number | undefined, flag = '--budget-usd'): bigint | undefined {
  if (value === undefined) return undefined;
  const usd = Number(value);
  if (!Number.isFinite(usd) || usd <= 0) throw new UsageError(`${flag}: "${value}" is not an amount of dollars above 0`);
  return usdToPico(usd);
}

export function describeBudget(spentPico: bigint, budgetPico: bigint, reservedPico = 0n): string {
  const held = reservedPico > 0n ? ` (+ ${formatUsd(reservedPico, 4)} held by calls in flight)` : '';
  return `spent ${formatUsd(spentPico, 4)}${held} of a ${formatUsd(budgetPico, 2)} budget`;
}

/** The reservations of one in-process run. */
export class LocalBudget {
  private reservedPico = 0n;
  private listeners: (() => void)[] = [];

  /** `spentPico`: what the batch cost before this run (from the ledger). */
  constructor(
    private readonly budgetPico: bigint | undefined,
    private spent: bigint,
  ) {}

  /** The batch's spend: earlier runs and every answer billed in this one. */
  get spentPico(): bigint {
    return this.spent;
  }

  /**
   * Reserves `estimatePico`, waiting while calls in flight hold the room it needs (they may
   * cost less than they hold, or end unbilled). Undefined once it cannot fit whatever they do:
   * spend only grows. `signal` ends the wait (with its reason).
   */
  async reserve(estimatePico: bigint, signal?: AbortSignal): Promise<Reservation | undefined> {
    for (;;) {
      if (!fitsBudget(this.spent, 0n, estimatePico, this.budgetPico)) return undefined;
      if (fitsBudget(this.spent, this.reservedPico, estimatePico, this.budgetPico)) {
        this.reservedPico += estimatePico;
        return this.hold(estimatePico);
      }
      await this.nextChange(signal);
    }
  }

  private hold(estimatePico: bigint): Reservation {
    let open = true;
    const close = (): void => {
      if (!open) return;
      open = false;
      this.reservedPico -= estimatePico;
    };
    return {
      settle: async (costPico) => {
        close();
        this.spent += costPico;
        this.changed();
      },
      release: async () => {
        if (!open) return;
        close();
        this.changed();
      },
    };
  }

  private changed(): void {
    for (const listener of this.listeners.splice(0)) listener();
  }

  private nextChange(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      const onAbort = (): void => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.listeners.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}

/**
 * A worker's reservations in Redis. Each lasts `ttlMs` (the job lock's duration) and is renewed
 * while its call runs, so a killed worker's reservations are gone once its job locks are.
 * Settling or releasing one that leaves room wakes jobs parked over budget (`wake` sets them
 * going; they park again if the room went to another row first).
 */
export class QueueBudget {
  /** Call id → its batch and job, for the calls this worker has in flight. */
  private readonly held = new Map<string, { batch: string; jobId: string }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly batches: BatchState,
    private readonly ttlMs: number,
    private readonly wake: (jobIds: string[]) => Promise<void>,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(ttlMs / 2)));
    this.timer.unref();
  }

  /**
   * `callId` names this call of the job (its lock token): a job taken again after a stall is
   * another call, which replaces the first one's reservation. A refused job is listed as parked.
   */
  async reserve(batch: string, jobId: string, callId: string, estimatePico: bigint): Promise<{ reservation: Reservation } | { refused: BudgetRefusal }> {
    const result = await this.batches.reserve(batch, jobId, callId, estimatePico, this.ttlMs);
    if ('refused' in result) return result;
    this.held.set(callId, { batch, jobId });
    let open = true;
    const end = async (costPico: bigint | undefined): Promise<void> => {
      if (costPico === undefined && !open) return;
      open = false;
      try {
        const woken = await this.batches.settleReservation(batch, jobId, callId, costPico, estimatePico);
        if (woken.length > 0) await this.wake(woken);
      } finally {
        this.held.delete(callId);
      }
    };
    return { reservation: { settle: (costPico) => end(costPico), release: () => end(undefined) } };
  }

  private async renew(): Promise<void> {
    const byBatch = new Map<string, string[]>();
    for (const { batch, jobId } of this.held.values()) byBatch.set(batch, [...(byBatch.get(batch) ?? []), jobId]);
    for (const [batch, jobIds] of byBatch) {
      // Redis away for a moment: the next round renews them (or they lapse, as a lock does).
      await this.batches.renewReservations(batch, jobIds, this.ttlMs).catch(() => undefined);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** What a batch has cost so far, from every ledger file (every run, every process). */
export async function ledgerSpend(outDir: string, batch: string, prices: PriceTable, onWarning?: (message: string) => void): Promise<bigint> {
  let total = 0n;
  await scanLedger(
    outDir,
    (entry) => {
      if (entry.batch !== batch) return;
      const price = prices.priceOf(entry.model, entry.ts);
      if (price) total += billedCostPico(billingOfEntry(entry), price) ?? 0n;
    },
    onWarning ? { onWarning } : {},
  );
  return total;
}
