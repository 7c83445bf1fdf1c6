/**
 * Price tables and the cost rule, the only place either is defined.
 *
 * Cost of one response, prices in USD per million tokens:
 *   prompt × input + imageOut × imageOutput + (candidates − imageOut + thoughts) × textOutput
 *
 * Money is counted in whole picodollars (1e-12 USD) as bigint. Prices are kept in micro-USD per
 * million tokens (0.30 → 300,000), and tokens × that price is exactly the cost in picodollars:
 * no rounding anywhere, and sums over millions of responses never drift.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { TokenCounts } from '../core/types.js';
import { tokenCountsOf, type BillingRecord } from './billing.js';

/** Prices of one model from a date on, in micro-USD per million tokens. */
export interface ModelPrice {
  model: string;
  /** First day (UTC, `YYYY-MM-DD`) the price applies; undefined = always. */
  from?: string;
  input: bigint;
  textOutput: bigint;
  imageOutput: bigint;
}

const PICO_PER_USD = 1_000_000_000_000n;

/** "2.00" or 2 → 2,000,000 micro-USD. Up to six decimals; anything finer is refused, not rounded. */
export function parseUsdPerMillion(value: string | number, where: string): bigint {
  const text = typeof value === 'number' ? String(value) : value.trim();
  const match = text.match(/^(\d+)(?:\.(\d{1,6}))?$/);
  if (!match) throw new Error(`${where}: "${text}" is not a price in USD per million tokens (e.g. 2.50, at most 6 decimals)`);
  return BigInt(match[1]!) * 1_000_000n + BigInt((match[2] ?? '').padEnd(6, '0'));
}

const price = (input: string, textOutput: string, imageOutput: string, model: string): ModelPrice => ({
  model,
  input: parseUsdPerMillion(input, model),
  textOutput: parseUsdPerMillion(textOutput, model),
  imageOutput: parseUsdPerMillion(imageOutput, model),
});

/** Public list prices (design page, section 2). */
export const BUILTIN_PRICES: readonly ModelPrice[] = [
  price('2.00', '12.00', '120.00', 'gemini-3-pro-image-preview'),
  price('0.50', '3.00', '60.00', 'gemini-3.1-flash-image-preview'),
  price('0.30', '2.50', '30.00', 'gemini-2.5-flash-image'),
];

const bare = (model: string): string => model.replace(/-preview$/, '');

export class PriceTable {
  /**
   * Keyed by the id without `-preview`: a renamed model keeps its price, so a price given under
   * either name (a user's override too) is the price of both.
   */
  private readonly byModel = new Map<string, ModelPrice[]>();

  /** Later entries override earlier ones for the same model and date. */
  constructor(prices: readonly ModelPrice[] = BUILTIN_PRICES) {
    for (const entry of prices) {
      const key = bare(entry.model);
      const list = (this.byModel.get(key) ?? []).filter((other) => other.from !== entry.from);
      list.push(entry);
      // Newest start date first; an undated price is the oldest.
      list.sort((a, b) => (b.from ?? '').localeCompare(a.from ?? ''));
      this.byModel.set(key, list);
    }
  }

  /** The table with a user's prices laid over it. */
  withOverrides(prices: readonly ModelPrice[]): PriceTable {
    return new PriceTable([...[...this.byModel.values()].flat(), ...prices]);
  }

  /** The price of `model` (with or without `-preview`) on the day of `isoTime`. */
  priceOf(model: string, isoTime: string): ModelPrice | undefined {
    const day = isoTime.slice(0, 10);
    return this.byModel.get(bare(model))?.find((entry) => entry.from === undefined || entry.from <= day);
  }
}

/**
 * The cost of one billing record at `price`, in picodollars; undefined when it bills something
 * the price does not price (never a silent $0).
 */
export function billedCostPico(billing: BillingRecord, price: ModelPrice): bigint | undefined {
  if (billing.images !== undefined && billing.images.count > 0) return undefined;
  return costPico(tokenCountsOf(billing), price);
}

/** The cost rule, in picodollars. */
export function costPico(counts: TokenCounts, price: ModelPrice): bigint {
  return (
    BigInt(counts.promptTokens) * price.input +
    BigInt(counts.imageOutputTokens) * price.imageOutput +
    BigInt(counts.textOutputTokens + counts.thoughtsTokens) * price.textOutput
  );
}

/** Picodollars → USD as a number (exact to 1e-12 for any realistic sum). */
export function picoToUsd(pico: bigint): number {
  const whole = pico / PICO_PER_USD;
  const rest = pico % PICO_PER_USD;
  return Number(whole) + Number(rest) / 1e12;
}

/** A USD amount given by a user (a budget) → picodollars, to the micro-dollar. */
export function usdToPico(usd: number): bigint {
  return BigInt(Math.round(usd * 1e6)) * 1_000_000n;
}

/** `$1,234.5678` style, rounded half up at `decimals`. */
export function formatUsd(pico: bigint, decimals = 4): string {
  const negative = pico < 0n;
  const abs = negative ? -pico : pico;
  const unit = 10n ** BigInt(12 - decimals);
  const rounded = (abs + unit / 2n) / unit;
  const scale = 10n ** BigInt(decimals);
  const whole = (rounded / scale).toLocaleString('en-US');
  const fraction = decimals > 0 ? `.${(rounded % scale).toString().padStart(decimals, '0')}` : '';
  return `${negative ? '-' : ''}$${whole}${fraction}`;
}

const priceFileSchema = z.object({
  prices: z.array(
    z.object({
      model: z.string().min(1),
      from: z
        .string()
        .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD')
        .optional(),
      input: z.union([z.string(), z.number()]),
      textOutput: z.union([z.string(), z.number()]),
      imageOutput: z.union([z.string(), z.number()]),
    }),
  ),
});

/**
 * Reads a user's price file (JSON or YAML):
 *   prices:
 *     - { model: gemini-3-pro-image-preview, input: 1.60, textOutput: 9.60, imageOutput: 96.00 }
 *     - { model: gemini-3-pro-image-preview, from: 2026-12-01, input: 1.80, ... }
 */
export async function loadPriceFile(path: string): Promise<ModelPrice[]> {
  const text = await readFile(path, 'utf8');
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new Error(`${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'} (${(error as Error).message})`);
  }
  const parsed = priceFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${path}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return parsed.data.prices.map((entry, index) => {
    const where = `${path}: prices.${index}`;
    return {
      model: entry.model,
      from: entry.from,
      input: parseUsdPerMillion(entry.input, `${where}.input`),
      textOutput: parseUsdPerMillion(entry.textOutput, `${where}.textOutput`),
      imageOutput: parseUsdPerMillion(entry.imageOutput, `${where}.imageOutput`),
    };
  });
}

/** The built-in table with the user's price file (`TOKENHOT_PRICES`), if any, laid over it. */
export async function loadPriceTable(config: { priceFile?: string | undefined }): Promise<PriceTable> {
  const table = new PriceTable();
  return config.priceFile ? table.withOverrides(await loadPriceFile(config.priceFile)) : table;
}
