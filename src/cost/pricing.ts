/**
 * Price tables and the cost rule, the only place either is defined.
 *
 * A billed answer comes as a billing record (billing.ts): tokens by kind, and/or a count of images
 * of a unit (`image` for Seedream, `1024x1024/hd` for DALL·E). Its cost is
 *   Σ tokens of each kind × that kind's rate  +  images × the price of their unit
 * and a kind that was billed but has no rate, or a unit with no price, makes it unpriced: never a
 * silent $0.
 *
 * Money is counted in whole picodollars (1e-12 USD) as bigint. Token rates are kept in micro-USD
 * per million tokens (0.30 → 300,000), so tokens × rate is exactly the cost in picodollars; image
 * prices are kept in picodollars. No rounding anywhere, and sums over millions of answers never
 * drift.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { BillingRecord } from './billing.js';

/** The token kinds of a billing record that carry a rate. */
export const TOKEN_KINDS = ['inputText', 'inputImage', 'outputText', 'outputImage', 'thinking'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** Rates in micro-USD per million tokens; a kind without one is not priced. */
export type TokenRates = Partial<Record<TokenKind, bigint>>;

/** Prices of one model from a date on. */
export interface ModelPrice extends TokenRates {
  model: string;
  /** First day (UTC, `YYYY-MM-DD`) the price applies; undefined = always. */
  from?: string;
  /** Where and when the price was read (a page and its date, a price file's entry). */
  source?: string;
  /** Picodollars per image, by the unit images are billed in (`image`, `1024x1024/standard`). */
  perImage?: Readonly<Record<string, bigint>>;
}

const PICO_PER_USD = 1_000_000_000_000n;

/**
 * A number from a JSON or YAML file as the decimal its shortest form says: `1e-12` is
 * `0.000000000001` (String() would give the exponent form, which no price pattern reads).
 */
function plainDecimal(value: number): string {
  const match = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(String(value));
  if (!match) return String(value);
  const digits = match[1]! + (match[2] ?? '');
  const point = 1 + Number(match[3]);
  if (point <= 0) return `0.${'0'.repeat(-point)}${digits}`;
  return point >= digits.length ? digits + '0'.repeat(point - digits.length) : `${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** `text` as a whole number of 10^-decimals, or undefined when it is not a plain decimal with at most that many places. */
function parseFixed(value: string | number, decimals: number): bigint | undefined {
  const text = typeof value === 'number' ? plainDecimal(value) : value.trim();
  const match = text.match(new RegExp(`^(\\d+)(?:\\.(\\d{1,${decimals}}))?$`));
  if (!match) return undefined;
  return BigInt(match[1]!) * 10n ** BigInt(decimals) + BigInt((match[2] ?? '').padEnd(decimals, '0'));
}

/** "2.00" or 2 → 2,000,000 micro-USD. Up to six decimals; anything finer is refused, not rounded. */
export function parseUsdPerMillion(value: string | number, where: string): bigint {
  const micro = parseFixed(value, 6);
  if (micro === undefined) throw new Error(`${where}: "${typeof value === 'number' ? plainDecimal(value) : value.trim()}" is not a price in USD per million tokens (e.g. 2.50, at most 6 decimals)`);
  return micro;
}

/** "0.035" → 35,000,000,000 picodollars. Up to twelve decimals; anything finer is refused, not rounded. */
export function parseUsdPerImage(value: string | number, where: string): bigint {
  const pico = parseFixed(value, 12);
  if (pico === undefined) throw new Error(`${where}: "${typeof value === 'number' ? plainDecimal(value) : value.trim()}" is not a price in USD per image (e.g. 0.04, at most 12 decimals)`);
  return pico;
}

/**
 * Gemini's three prices as token rates: input covers text and image input, the text price covers
 * text output and thinking (design.md section 2).
 */
export function geminiRates(input: bigint, textOutput: bigint, imageOutput: bigint): TokenRates {
  return { inputText: input, inputImage: input, outputText: textOutput, thinking: textOutput, outputImage: imageOutput };
}

const LIST_PRICES = 'design.md section 2, list prices 2026';

const perMillion = (usd: string): bigint => parseUsdPerMillion(usd, 'built-in price');
const perImage = (prices: Record<string, string>): Record<string, bigint> =>
  Object.fromEntries(Object.entries(prices).map(([unit, usd]) => [unit, parseUsdPerImage(usd, 'built-in price')]));
const gemini = (model: string, input: string, textOutput: string, imageOutput: string): ModelPrice => ({
  model,
  source: LIST_PRICES,
  ...geminiRates(perMillion(input), perMillion(textOutput), perMillion(imageOutput)),
});
const gptImage = (model: string, rates: { inputText: string; inputImage: string; outputImage: string; outputText: string }): ModelPrice => ({
  model,
  source: LIST_PRICES,
  inputText: perMillion(rates.inputText),
  inputImage: perMillion(rates.inputImage),
  outputImage: perMillion(rates.outputImage),
  outputText: perMillion(rates.outputText),
});
const byImage = (model: string, prices: Record<string, string>): ModelPrice => ({ model, source: LIST_PRICES, perImage: perImage(prices) });

/** Public list prices of the ten models (design.md section 2). */
export const BUILTIN_PRICES: readonly ModelPrice[] = [
  gemini('gemini-3-pro-image-preview', '2.00', '12.00', '120.00'),
  gemini('gemini-3.1-flash-image-preview', '0.50', '3.00', '60.00'),
  gemini('gemini-2.5-flash-image', '0.30', '2.50', '30.00'),
  // GPT Image bills no thinking; text output is listed though an image answer has none.
  gptImage('gpt-image-1.5', { inputText: '5', inputImage: '8', outputImage: '32', outputText: '10' }),
  gptImage('gpt-image-2', { inputText: '5', inputImage: '8', outputImage: '30', outputText: '10' }),
  byImage('doubao-seedream-4-0-250828', { image: '0.03' }),
  byImage('doubao-seedream-4-5-251128', { image: '0.04' }),
  byImage('doubao-seedream-5-0-260128', { image: '0.035' }),
  byImage('dall-e-3', {
    '1024x1024/standard': '0.04',
    '1792x1024/standard': '0.08',
    '1024x1792/standard': '0.08',
    '1024x1024/hd': '0.08',
    '1792x1024/hd': '0.12',
    '1024x1792/hd': '0.12',
  }),
  byImage('dall-e-2', { '256x256/standard': '0.016', '512x512/standard': '0.018', '1024x1024/standard': '0.02' }),
];

const bare = (model: string): string => model.replace(/-preview$/, '');

export class PriceTable {
  /**
   * Keyed by the id without `-preview`: a renamed model keeps its price, so a price given under
   * either name (a user's override too) is the price of both.
   */
  private readonly byModel = new Map<string, ModelPrice[]>();

  /** Later entries replace earlier ones for the same model and date (a whole price, not a field). */
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

/** The price of one image of `unit`; an own property only (a unit named `constructor` has none). */
export function imagePrice(price: ModelPrice, unit: string): bigint | undefined {
  return price.perImage !== undefined && Object.hasOwn(price.perImage, unit) ? price.perImage[unit] : undefined;
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * What `price` leaves unpriced in `billing` (`thinking tokens`, `images of unit "2048x2048/hd"`),
 * or undefined when it prices all of it. A count that is not a whole number is not priced either.
 */
export function unpricedPart(billing: BillingRecord, price: ModelPrice): string | undefined {
  // A ledger line's record is whatever JSON the file holds: nulls are no record.
  const tokens = billing.tokens;
  if (tokens != null) {
    for (const kind of TOKEN_KINDS) {
      const count: unknown = tokens[kind];
      if (count === 0 || count === undefined) continue;
      if (!isCount(count)) return `${kind} tokens of ${JSON.stringify(count)}, not a whole number`;
      if (price[kind] === undefined) return `${kind} tokens`;
    }
  }
  const images = billing.images;
  if (images != null && images.count !== 0) {
    if (!isCount(images.count)) return `an image count of ${JSON.stringify(images.count)}, not a whole number`;
    if (imagePrice(price, images.unit) === undefined) return `images of unit ${JSON.stringify(images.unit)}`;
  }
  return undefined;
}

/**
 * The cost rule: the cost of one billing record at `price`, in picodollars; undefined when it
 * bills something the price does not price (never a silent $0). Linear in the counts, so the
 * cost of a sum of records is the sum of their costs (the report relies on it).
 */
export function billedCostPico(billing: BillingRecord, price: ModelPrice): bigint | undefined {
  if (unpricedPart(billing, price) !== undefined) return undefined;
  let total = 0n;
  const tokens = billing.tokens;
  if (tokens != null) {
    for (const kind of TOKEN_KINDS) if (tokens[kind]) total += BigInt(tokens[kind]) * price[kind]!;
  }
  const images = billing.images;
  if (images != null && images.count !== 0) total += BigInt(images.count) * imagePrice(price, images.unit)!;
  return total;
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

const amount = z.union([z.string(), z.number()]);

/** Gemini's three prices, kept as before; each sets the rates of the kinds it covers (`geminiRates`). */
const GEMINI_FIELDS = { input: ['inputText', 'inputImage'], textOutput: ['outputText', 'thinking'], imageOutput: ['outputImage'] } as const;

const priceFileSchema = z.strictObject({
  prices: z.array(
    // Strict: a misspelt field (`imageOuput`) would otherwise leave a kind unpriced in silence.
    z.strictObject({
      model: z.string().min(1),
      from: z
        .string()
        .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD')
        .optional(),
      source: z.string().optional(),
      input: amount.optional(),
      textOutput: amount.optional(),
      imageOutput: amount.optional(),
      inputText: amount.optional(),
      inputImage: amount.optional(),
      outputText: amount.optional(),
      outputImage: amount.optional(),
      thinking: amount.optional(),
      perImage: z.record(z.string().min(1), amount).optional(),
    }),
  ),
});

type PriceFileEntry = z.infer<typeof priceFileSchema>['prices'][number];

function priceOfEntry(entry: PriceFileEntry, where: string): ModelPrice {
  const price: ModelPrice = { model: entry.model, source: entry.source ?? where };
  if (entry.from !== undefined) price.from = entry.from;
  for (const [field, kinds] of Object.entries(GEMINI_FIELDS) as [keyof typeof GEMINI_FIELDS, readonly TokenKind[]][]) {
    const value = entry[field];
    if (value === undefined) continue;
    const clash = kinds.find((kind) => entry[kind] !== undefined);
    if (clash) throw new Error(`${where}.${clash}: given with ${field}, which sets it too; give one of them`);
    const rate = parseUsdPerMillion(value, `${where}.${field}`);
    for (const kind of kinds) price[kind] = rate;
  }
  for (const kind of TOKEN_KINDS) {
    const value = entry[kind];
    if (value !== undefined) price[kind] = parseUsdPerMillion(value, `${where}.${kind}`);
  }
  if (entry.perImage !== undefined) {
    price.perImage = Object.fromEntries(Object.entries(entry.perImage).map(([unit, usd]) => [unit, parseUsdPerImage(usd, `${where}.perImage.${unit}`)]));
  }
  if (!TOKEN_KINDS.some((kind) => price[kind] !== undefined) && Object.keys(price.perImage ?? {}).length === 0) {
    throw new Error(`${where}: no price: give token rates (input, textOutput, imageOutput, or inputText, inputImage, outputText, outputImage, thinking) or perImage`);
  }
  return price;
}

/**
 * Reads a user's price file (JSON or YAML). Token rates are USD per million tokens, image prices
 * USD per image of a unit:
 *   prices:
 *     - { model: gemini-3-pro-image-preview, input: 1.60, textOutput: 9.60, imageOutput: 96.00 }
 *     - { model: gemini-3-pro-image-preview, from: 2026-12-01, input: 1.80, ... }
 *     - { model: gpt-image-2, inputText: 5, inputImage: 8, outputImage: 30, outputText: 10 }
 *     - { model: dall-e-3, perImage: { 1024x1024/standard: 0.04, 1024x1024/hd: 0.08 } }
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
  return parsed.data.prices.map((entry, index) => priceOfEntry(entry, `${path}: prices.${index}`));
}

/** The built-in table with the user's price file (`TOKENHOT_PRICES`), if any, laid over it. */
export async function loadPriceTable(config: { priceFile?: string | undefined }): Promise<PriceTable> {
  const table = new PriceTable();
  return config.priceFile ? table.withOverrides(await loadPriceFile(config.priceFile)) : table;
}
