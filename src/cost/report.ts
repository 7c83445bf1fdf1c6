/**
 * Cost reports: the ledger, streamed, summed per group with the cost rule and the price table of
 * each line's day. Sums are exact (tokens and images as integers, money in picodollars).
 *
 * Speed: a report reads every line of the ledger once, so the work per line is kept small. The
 * cost is not computed per line (several BigInt products per line and group were a large part
 * of a report's time): each group sums, per price, the tokens of each kind and the images of
 * each unit of its lines, and the cost rule is applied once per (group, price, unit) at the end.
 * The rule is linear (Σ(count × rate) = rate × Σcount), so the result is the same to the
 * picodollar. Whether a line is priced at all (a rate for each kind it bills, a price for its
 * unit) is decided per line, so a bucket holds only what its price prices.
 */
import { billedCostPico, formatUsd, picoToUsd, unpricedPart, type ModelPrice, type PriceTable } from './pricing.js';
import type { LedgerEntry } from '../core/types.js';
import { billingOfEntry, providerOfEntry } from '../output/ledger.js';
import type { BillingRecord } from './billing.js';
import { csvCell, csvDecimal } from '../output/csv-cells.js';

export { csvCell };

export const GROUP_KEYS = ['provider', 'model', 'day', 'batch', 'tag', 'product', 'shot'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

/**
 * The group of lines without a tag, product or shot, when grouping by it (lines of rows that
 * named none, and lines of versions that did not record products and shots).
 */
export const NO_VALUE = '(none)';

/** The totals of the contract (`report --format json`). */
export interface Totals {
  /** Cost of the priced lines; lines with no price are counted in `unpricedRequests`. */
  costUsd: number;
  /**
   * The priced lines' cost over the images they made (failed answers' cost included, so it is
   * what a delivered image cost); null when they made none.
   */
  costPerImageUsd: number | null;
  requests: number;
  images: number;
  failedRows: number;
  /**
   * Token fields as providers bill them (prompt = text and image input); a provider that bills
   * by the image adds 0 to them.
   */
  promptTokens: number;
  imageOutputTokens: number;
  textOutputTokens: number;
  thoughtsTokens: number;
  totalTokens: number;
  unpricedRequests: number;
}

export interface ReportGroup extends Totals {
  key: Partial<Record<GroupKey, string>>;
}

export interface Report {
  totals: Totals;
  groups: ReportGroup[];
  /**
   * Totals per UTC day, oldest first, whatever `by` is: the HTML chart needs them, and they come
   * from the same pass over the ledger. Not part of the JSON contract.
   */
  daily: ReportGroup[];
  /** Models with lines that have no price: their tokens are shown, their cost is not counted. Said loudly. */
  unpricedModels: string[];
  warnings: string[];
  /** Approval figures, when the report's batches have review decisions (see `approvalFigures`). */
  reviews?: ReviewFigures;
}

/** A row as the approval figures count it: its sidecar's model and shot, its current decision. */
export interface ReviewedRow {
  batch: string;
  model: string;
  /** `metadata.shot`; empty when none. */
  shot: string;
  review: 'approved' | 'rejected' | 'unreviewed';
  /** Images of the row's current version. */
  images: number;
}

export interface ApprovalTotals {
  /** Finished rows (failed rows have nothing to review). */
  rows: number;
  approved: number;
  rejected: number;
  unreviewed: number;
  /** approved / (approved + rejected); null before any decision. */
  approvalRate: number | null;
  /** The ledger cost of the group: every answer, rejected and regenerated ones included. */
  costUsd: number;
  approvedImages: number;
  /** costUsd / approvedImages: what a usable picture really cost; null with none approved. */
  costPerApprovedImageUsd: number | null;
}

export interface ApprovalGroup extends ApprovalTotals {
  key: { model: string; shot: string };
}

export interface ReviewFigures {
  /** The batches whose decisions are counted. */
  batches: string[];
  totals: ApprovalTotals;
  byModelShot: ApprovalGroup[];
}

export interface ReportOptions {
  by: GroupKey[];
  prices: PriceTable;
  /** Only this batch and its sub-batches (`name/...`). */
  batch?: string;
  /** Only lines of this product (the ledger's `product`, as written). */
  product?: string;
  /** From this UTC day (`YYYY-MM-DD`) or ISO time on, inclusive. */
  since?: string;
  /** To this UTC day (`YYYY-MM-DD`) inclusive, or up to an ISO time (exclusive). */
  until?: string;
}

/** Images of one unit in a bucket. */
interface UnitCount {
  unit: string;
  count: number;
}

/** Sums of the lines of one group that share one price (see the header). */
interface PriceBucket {
  price: ModelPrice;
  inputText: number;
  inputImage: number;
  outputText: number;
  outputImage: number;
  thinking: number;
  units: UnitCount[];
}

/** One ledger line, read once and added to the totals, its day and each of its groups. */
interface Line {
  images: number;
  failed: boolean;
  inputText: number;
  inputImage: number;
  outputText: number;
  outputImage: number;
  thinking: number;
  totalTokens: number;
  imageCount: number;
  imageUnit: string;
  /** undefined when the line is not (wholly) priced. */
  price: ModelPrice | undefined;
}

interface Group {
  key: Partial<Record<GroupKey, string>>;
  acc: Accumulator;
}

/** A level of the group tree: the next key's values, and at the last level the group. */
interface GroupNode {
  children: Map<string, GroupNode>;
  group?: Group;
}

class Accumulator {
  requests = 0;
  images = 0;
  /** Images of the priced lines: what cost per image divides by. */
  pricedImages = 0;
  failedRows = 0;
  promptTokens = 0;
  imageOutputTokens = 0;
  textOutputTokens = 0;
  thoughtsTokens = 0;
  totalTokens = 0;
  unpricedRequests = 0;
  // A group sees few prices (one per model and price period), so a list beats a Map; the last
  // bucket used is tried first, as neighbouring lines mostly share a price.
  private readonly buckets: PriceBucket[] = [];
  private last: PriceBucket | undefined;

  add(line: Line): void {
    this.requests += 1;
    this.images += line.images;
    if (line.failed) this.failedRows += 1;
    // Token sums are whole numbers far below 2^53 (that is 9e15 tokens), so they stay exact.
    this.promptTokens += line.inputText + line.inputImage;
    this.imageOutputTokens += line.outputImage;
    this.textOutputTokens += line.outputText;
    this.thoughtsTokens += line.thinking;
    this.totalTokens += line.totalTokens;
    const price = line.price;
    if (price === undefined) {
      this.unpricedRequests += 1;
      return;
    }
    this.pricedImages += line.images;
    let bucket = this.last;
    if (bucket?.price !== price) {
      bucket = this.buckets.find((candidate) => candidate.price === price);
      if (!bucket) {
        bucket = { price, inputText: 0, inputImage: 0, outputText: 0, outputImage: 0, thinking: 0, units: [] };
        this.buckets.push(bucket);
      }
      this.last = bucket;
    }
    bucket.inputText += line.inputText;
    bucket.inputImage += line.inputImage;
    bucket.outputText += line.outputText;
    bucket.outputImage += line.outputImage;
    bucket.thinking += line.thinking;
    if (line.imageCount > 0) {
      // A price has a handful of units (DALL·E 3: six): a short list.
      const units = bucket.units;
      let unit = units.find((candidate) => candidate.unit === line.imageUnit);
      if (!unit) {
        unit = { unit: line.imageUnit, count: 0 };
        units.push(unit);
      }
      unit.count += line.imageCount;
    }
  }

  /** The cost rule of pricing.ts applied to each price's sums: exact, in picodollars. */
  costPico(): bigint {
    let total = 0n;
    for (const bucket of this.buckets) {
      const { price, units, ...tokens } = bucket;
      // Every line in a bucket was priced by its price, so the sums are too (never undefined here).
      total += billedCostPico({ tokens }, price)!;
      for (const { unit, count } of units) total += billedCostPico({ images: { count, unit } }, price)!;
    }
    return total;
  }

  totals(): Totals {
    const cost = this.costPico();
    const perImage = this.pricedImages > 0 ? (cost + BigInt(this.pricedImages) / 2n) / BigInt(this.pricedImages) : undefined;
    return {
      costUsd: picoToUsd(cost),
      costPerImageUsd: perImage === undefined ? null : picoToUsd(perImage),
      requests: this.requests,
      images: this.images,
      failedRows: this.failedRows,
      promptTokens: this.promptTokens,
      imageOutputTokens: this.imageOutputTokens,
      textOutputTokens: this.textOutputTokens,
      thoughtsTokens: this.thoughtsTokens,
      totalTokens: this.totalTokens,
      unpricedRequests: this.unpricedRequests,
    };
  }
}

/** A count from a ledger line's billing record (any JSON at all): a whole number, else 0. */
function count(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/** Lines with no price, by model and what is not priced (`''`: the model has no price at all). */
interface Unpriced {
  model: string;
  part: string;
  requests: number;
}

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** A day or ISO time → the ISO time it means: `since` starts its day, `until` ends after its day. */
export function reportBound(value: string | undefined, edge: 'since' | 'until'): string | undefined {
  if (value === undefined || value === '') return undefined;
  const time = Date.parse(DAY_PATTERN.test(value) ? `${value}T00:00:00.000Z` : value);
  if (Number.isNaN(time)) throw new Error(`--${edge}: "${value}" is not a date (YYYY-MM-DD) or an ISO time`);
  // A day bound covers the whole day: `until` is the start of the next day, exclusive.
  const day = DAY_PATTERN.test(value);
  if (day && new Date(time).toISOString().slice(0, 10) !== value) throw new Error(`--${edge}: "${value}" is not a day of the calendar`);
  return new Date(day && edge === 'until' ? time + 86_400_000 : time).toISOString();
}

/**
 * Sums ledger entries into a report, one entry at a time, so the caller can stream any number of
 * them (`buildReport` is the loop around it).
 */
export class ReportBuilder {
  private readonly since: string | undefined;
  private readonly until: string | undefined;
  private readonly batchPrefix: string | undefined;
  private readonly total = new Accumulator();
  private readonly days = new Map<string, Accumulator>();
  private readonly groupTree: GroupNode = { children: new Map() };
  private readonly groups: Group[] = [];
  /** Lines with no price, keyed by model and the part not priced. */
  private readonly unpriced = new Map<string, Unpriced>();
  /** Some line counted in more than one tag group. */
  private multiTagged = false;
  /** Price of each (model, day): the table's lookup per line would cost more than the line's sums. */
  private readonly priceCache = new Map<string, Map<string, ModelPrice | null>>();
  private readonly tagIndex: number;
  /**
   * Scratch space for the line being added, reused for every line (`add` is synchronous and
   * nothing keeps it). Measured over a million lines: while an object made per line was held
   * in a per-line object, V8's allocation-site pretenuring sent that garbage to the old heap in
   * about half the runs (peak RSS ~205 MB instead of ~130 MB; gone with
   * --no-allocation-site-pretenuring). Copying the counts in here keeps the peak steady.
   */
  private readonly line: Line = {
    images: 0,
    failed: false,
    inputText: 0,
    inputImage: 0,
    outputText: 0,
    outputImage: 0,
    thinking: 0,
    totalTokens: 0,
    imageCount: 0,
    imageUnit: '',
    price: undefined,
  };
  private readonly values: string[];

  constructor(private readonly options: ReportOptions) {
    this.since = reportBound(options.since, 'since');
    this.until = reportBound(options.until, 'until');
    this.batchPrefix = options.batch ? `${options.batch}/` : undefined;
    this.tagIndex = options.by.indexOf('tag');
    this.values = options.by.map(() => '');
  }

  add(entry: LedgerEntry): void {
    const { options } = this;
    if (options.batch && entry.batch !== options.batch && !entry.batch.startsWith(this.batchPrefix!)) return;
    if (options.product !== undefined && entry.product !== options.product) return;
    // Ledger times are `toISOString()` text, where string order is time order; any other form
    // (an offset) is brought to it first, so the UTC day and the bounds are right.
    const ts = entry.ts.endsWith('Z') && entry.ts.length === 24 ? entry.ts : normalizeTime(entry.ts);
    if (this.since !== undefined && ts < this.since) return;
    if (this.until !== undefined && ts >= this.until) return;
    const day = ts.slice(0, 10);
    const line = this.line;
    line.images = typeof entry.images === 'number' ? entry.images : 0;
    line.failed = entry.outcome === 'failed';
    const billing = billingOfEntry(entry);
    this.readBilling(billing, line);
    const price = this.priceOf(entry.model, day);
    const missing = price === undefined ? '' : unpricedPart(billing, price);
    if (missing !== undefined) this.countUnpriced(entry.model, missing);
    line.price = missing === undefined ? price : undefined;
    this.total.add(line);
    let dayAcc = this.days.get(day);
    if (!dayAcc) {
      dayAcc = new Accumulator();
      this.days.set(day, dayAcc);
    }
    dayAcc.add(line);
    if (options.by.length > 0) this.addToGroups(entry, day, line);
  }

  /** A line's billing record (from a file: any JSON) into `line`, as whole numbers. */
  private readBilling(billing: BillingRecord, line: Line): void {
    const tokens = billing.tokens;
    if (typeof tokens === 'object' && tokens !== null) {
      line.inputText = count(tokens.inputText);
      line.inputImage = count(tokens.inputImage);
      line.outputText = count(tokens.outputText);
      line.outputImage = count(tokens.outputImage);
      line.thinking = count(tokens.thinking);
      line.totalTokens = count(tokens.total) || line.inputText + line.inputImage + line.outputText + line.outputImage + line.thinking;
    } else {
      line.inputText = line.inputImage = line.outputText = line.outputImage = line.thinking = line.totalTokens = 0;
    }
    const images = billing.images;
    const unit: unknown = typeof images === 'object' && images !== null ? images.unit : undefined;
    line.imageCount = typeof unit === 'string' ? count(images!.count) : 0;
    line.imageUnit = typeof unit === 'string' ? unit : '';
  }

  private countUnpriced(model: string, part: string): void {
    const id = `${model}\u0000${part}`;
    const known = this.unpriced.get(id);
    if (known) known.requests += 1;
    else this.unpriced.set(id, { model, part, requests: 1 });
  }

  private addToGroups(entry: LedgerEntry, day: string, line: Line): void {
    const by = this.options.by;
    // The values of every key but tag, in `by` order; a line has one of each.
    const values = this.values;
    for (let index = 0; index < by.length; index += 1) values[index] = keyValue(by[index]!, entry, day);
    if (this.tagIndex < 0) {
      this.addToGroup(values, line);
      return;
    }
    // A line counts once in each of its tags (a tag listed twice is still one). No array is
    // made per line: see `line` for why.
    const tags: unknown = entry.tags;
    let tagged = 0;
    if (Array.isArray(tags)) {
      for (let index = 0; index < tags.length; index += 1) {
        const tag: unknown = tags[index];
        if (typeof tag !== 'string' || tags.indexOf(tag) !== index) continue;
        values[this.tagIndex] = tag;
        this.addToGroup(values, line);
        tagged += 1;
      }
    }
    if (tagged > 1) this.multiTagged = true;
    if (tagged === 0) {
      values[this.tagIndex] = NO_VALUE;
      this.addToGroup(values, line);
    }
  }

  /**
   * Groups live in a tree of Maps, one level per `by` key: a lookup per value is cheaper than
   * building one string id per line and group, and no two keys can collide whatever characters
   * a batch name or tag holds.
   */
  private addToGroup(values: string[], line: Line): void {
    let node = this.groupTree;
    for (const value of values) {
      let child = node.children.get(value);
      if (!child) {
        child = { children: new Map() };
        node.children.set(value, child);
      }
      node = child;
    }
    if (!node.group) {
      const key: Partial<Record<GroupKey, string>> = {};
      this.options.by.forEach((name, index) => (key[name] = values[index]!));
      node.group = { key, acc: new Accumulator() };
      this.groups.push(node.group);
    }
    node.group.acc.add(line);
  }

  private priceOf(model: string, day: string): ModelPrice | undefined {
    let byDay = this.priceCache.get(model);
    if (!byDay) {
      byDay = new Map();
      this.priceCache.set(model, byDay);
    }
    let price = byDay.get(day);
    if (price === undefined) {
      price = this.options.prices.priceOf(model, `${day}T00:00:00.000Z`) ?? null;
      byDay.set(day, price);
    }
    return price ?? undefined;
  }

  finish(): Report {
    const by = this.options.by;
    const unpriced = [...this.unpriced.values()].sort((a, b) => compareText(a.model, b.model) || compareText(a.part, b.part));
    const warnings = unpriced.map(({ model, part, requests }) =>
      part === ''
        ? `NO PRICE for model "${model}" (${requests.toLocaleString('en-US')} requests): its tokens are shown but its cost is NOT counted; add it to a price file (--prices)`
        : `NO PRICE for model "${model}": ${part} (${requests.toLocaleString('en-US')} requests): their cost is NOT counted; add it to a price file (--prices)`,
    );
    if (this.multiTagged) warnings.push('a line with several tags counts in each of its tag groups, so tag groups may add up to more than the totals');
    return {
      totals: this.total.totals(),
      groups: this.groups.map(({ key, acc }) => ({ key, ...acc.totals() })).sort((a, b) => compareKeys(a.key, b.key, by)),
      daily: [...this.days.entries()].sort(([a], [b]) => compareText(a, b)).map(([day, acc]) => ({ key: { day }, ...acc.totals() })),
      unpricedModels: [...new Set(unpriced.map(({ model }) => model))],
      warnings,
    };
  }
}

/** A line's value of one key (tag aside: a line may have several, see `addToGroups`). */
function keyValue(key: GroupKey, entry: LedgerEntry, day: string): string {
  switch (key) {
    case 'provider':
      return providerOfEntry(entry);
    case 'model':
      return entry.model;
    case 'day':
      return day;
    case 'batch':
      return entry.batch;
    case 'product':
      return labelOf(entry.product);
    case 'shot':
      return labelOf(entry.shot);
    case 'tag':
      return '';
  }
}

/** A product or shot as read from a file (any JSON): its text, or `(none)`. */
function labelOf(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : NO_VALUE;
}

function normalizeTime(ts: string): string {
  const time = Date.parse(ts);
  // An unreadable time keeps its text: the line still counts, under whatever day its text says.
  return Number.isNaN(time) ? ts : new Date(time).toISOString();
}

export async function buildReport(entries: AsyncIterable<LedgerEntry> | Iterable<LedgerEntry>, options: ReportOptions): Promise<Report> {
  const builder = new ReportBuilder(options);
  for await (const entry of entries) builder.add(entry);
  return builder.finish();
}

/** Code-unit order: the same on every machine, whatever its locale (days sort as dates). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKeys(a: Partial<Record<GroupKey, string>>, b: Partial<Record<GroupKey, string>>, by: GroupKey[]): number {
  for (const key of by) {
    const order = compareText(a[key] ?? '', b[key] ?? '');
    if (order !== 0) return order;
  }
  return 0;
}

// ---------------------------------------------------------------- renderers

/** The fields of T, money first: the order of the JSON, the CSV and the tables. */
export const TOTAL_FIELDS: readonly (keyof Totals)[] = [
  'costUsd',
  'costPerImageUsd',
  'requests',
  'images',
  'failedRows',
  'promptTokens',
  'imageOutputTokens',
  'textOutputTokens',
  'thoughtsTokens',
  'totalTokens',
  'unpricedRequests',
];

/** Only the fields of T, in `TOTAL_FIELDS` order (a group's `key` is added by the caller). */
function totalsOnly(t: Totals): Totals {
  return Object.fromEntries(TOTAL_FIELDS.map((field) => [field, t[field]])) as unknown as Totals;
}

/** `{"totals": T, "groups": [{"key": {...}, ...T}], "warnings": [...]}`: the contract, and only it. */
export function renderJson(report: Report): string {
  return `${JSON.stringify(
    {
      totals: totalsOnly(report.totals),
      groups: report.groups.map((group) => ({ key: group.key, ...totalsOnly(group) })),
      ...(report.unpricedModels.length > 0 ? { unpricedModels: report.unpricedModels } : {}),
      warnings: report.warnings,
      // Added beside the contract's fields, only when there are decisions to count.
      ...(report.reviews ? { reviews: report.reviews } : {}),
    },
    null,
    2,
  )}\n`;
}

const usdPico = (usd: number): bigint => BigInt(Math.round(usd * 1e6)) * 1_000_000n;

/** A USD amount as `$1,234.5678`, with `+ ?` when some requests had no price. */
export function costText(totals: Totals, decimals = 4): string {
  return `${formatUsd(usdPico(totals.costUsd), decimals)}${totals.unpricedRequests > 0 ? ' + ?' : ''}`;
}

/** Cost per image as `$0.0400`, `-` when no priced answer made an image. */
export function costPerImageText(totals: Totals): string {
  return totals.costPerImageUsd === null ? '-' : formatUsd(usdPico(totals.costPerImageUsd), 4);
}

const COLUMNS: { title: string; value: (t: Totals) => string }[] = [
  { title: 'cost', value: (t) => costText(t) },
  { title: 'per image', value: (t) => costPerImageText(t) },
  { title: 'requests', value: (t) => t.requests.toLocaleString('en-US') },
  { title: 'images', value: (t) => t.images.toLocaleString('en-US') },
  { title: 'failed', value: (t) => t.failedRows.toLocaleString('en-US') },
  { title: 'prompt tok', value: (t) => t.promptTokens.toLocaleString('en-US') },
  { title: 'image tok', value: (t) => t.imageOutputTokens.toLocaleString('en-US') },
  { title: 'text tok', value: (t) => t.textOutputTokens.toLocaleString('en-US') },
  { title: 'thought tok', value: (t) => t.thoughtsTokens.toLocaleString('en-US') },
];

/**
 * Ledger text shown in a terminal: control characters (escape sequences that could rewrite the
 * screen, newlines that break the alignment) and bidi overrides are shown as `\xNN` / `\uNNNN`.
 */
export function terminalText(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (char) => {
    const code = char.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** An aligned text table with a totals row; warnings first, so they are not missed. */
export function renderTable(report: Report, by: GroupKey[]): string {
  const header = [...by, ...COLUMNS.map((column) => column.title)];
  const rows = report.groups.map((group) => [...by.map((key) => terminalText(group.key[key] ?? '')), ...COLUMNS.map((column) => column.value(group))]);
  const totalRow = [...by.map((_, index) => (index === 0 ? 'TOTAL' : '')), ...COLUMNS.map((column) => column.value(report.totals))];
  if (by.length === 0) totalRow.unshift('TOTAL');
  const head = by.length === 0 ? ['', ...header] : header;
  const all = [head, ...rows, totalRow];
  const widths = head.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
  const keyColumns = by.length === 0 ? 1 : by.length;
  const line = (row: string[]): string =>
    row
      .map((cell, col) => (col < keyColumns ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  const body = [line(head), rule, ...rows.map(line), ...(rows.length > 0 ? [rule] : []), line(totalRow)];
  const warnings = report.warnings.map((warning) => `WARNING: ${terminalText(warning)}`);
  return `${[...warnings, ...body].join('\n')}\n`;
}

/** The report as CSV, cells by the rule of output/csv-cells.ts. */
export function renderCsv(report: Report, by: GroupKey[]): string {
  const lines = [[...by, ...TOTAL_FIELDS].map(csvCell).join(',')];
  const row = (key: Partial<Record<GroupKey, string>>, totals: Totals): string =>
    [...by.map((k) => csvCell(key[k] ?? '')), ...TOTAL_FIELDS.map((field) => csvDecimal(totals[field]))].join(',');
  for (const group of report.groups) lines.push(row(group.key, group));
  lines.push(row(Object.fromEntries(by.map((k, i) => [k, i === 0 ? 'TOTAL' : ''])), report.totals));
  return `${lines.join('\n')}\n`;
}

/** Counts of one model and shot, before the rates are worked out. */
interface ApprovalCount {
  rows: number;
  approved: number;
  rejected: number;
  unreviewed: number;
  approvedImages: number;
  costPico: bigint;
}

const emptyApproval = (): ApprovalCount => ({ rows: 0, approved: 0, rejected: 0, unreviewed: 0, approvedImages: 0, costPico: 0n });

function approvalTotals(count: ApprovalCount): ApprovalTotals {
  const decided = count.approved + count.rejected;
  const costUsd = picoToUsd(count.costPico);
  return {
    rows: count.rows,
    approved: count.approved,
    rejected: count.rejected,
    unreviewed: count.unreviewed,
    approvalRate: decided === 0 ? null : count.approved / decided,
    costUsd,
    approvedImages: count.approvedImages,
    costPerApprovedImageUsd: count.approvedImages === 0 ? null : picoToUsd(count.costPico / BigInt(count.approvedImages)),
  };
}

/** Whether a ledger line's batch is one of `batches` or a sub-batch of one. */
function inBatches(batch: string, batches: string[]): boolean {
  return batches.some((name) => batch === name || batch.startsWith(`${name}/`));
}

/**
 * Approval rate and cost per approved image by model and shot. `costs` is a report grouped by
 * batch, model and shot: the cost of a group is every ledger line of the reviewed batches with
 * that model and shot, so rejected and regenerated answers weigh on the approved ones.
 */
export function approvalFigures(rows: ReviewedRow[], costs: Report, batches: string[]): ReviewFigures {
  const counts = new Map<string, { key: { model: string; shot: string }; count: ApprovalCount }>();
  const countOf = (model: string, shot: string): ApprovalCount => {
    const id = JSON.stringify([model, shot]);
    let entry = counts.get(id);
    if (!entry) counts.set(id, (entry = { key: { model, shot }, count: emptyApproval() }));
    return entry.count;
  };
  for (const row of rows) {
    const count = countOf(row.model, row.shot || NO_VALUE);
    count.rows++;
    count[row.review]++;
    if (row.review === 'approved') count.approvedImages += row.images;
  }
  for (const group of costs.groups) {
    if (!inBatches(group.key.batch ?? '', batches)) continue;
    countOf(group.key.model ?? NO_VALUE, group.key.shot ?? NO_VALUE).costPico += usdToPicoExact(group.costUsd);
  }
  const total = emptyApproval();
  for (const { count } of counts.values()) {
    for (const field of ['rows', 'approved', 'rejected', 'unreviewed', 'approvedImages'] as const) total[field] += count[field];
    total.costPico += count.costPico;
  }
  const byModelShot = [...counts.values()]
    .sort((a, b) => compareText(a.key.model, b.key.model) || compareText(a.key.shot, b.key.shot))
    .map(({ key, count }) => ({ key, ...approvalTotals(count) }));
  return { batches, totals: approvalTotals(total), byModelShot };
}

/** A report's USD figure (picoToUsd of an exact sum) back to picodollars. */
function usdToPicoExact(usd: number): bigint {
  return BigInt(Math.round(usd * 1e12));
}

const percent = (rate: number | null): string => (rate === null ? '-' : `${(rate * 100).toFixed(1)}%`);
const usdOrDash = (usd: number | null): string => (usd === null ? '-' : formatUsd(usdToPicoExact(usd), 4));

/** The approval figures as a text table, printed under the cost table. */
export function renderApprovalTable(figures: ReviewFigures): string {
  const header = ['model', 'shot', 'rows', 'approved', 'rejected', 'unreviewed', 'approval', 'cost', 'per approved image'];
  const cells = (key: string[], t: ApprovalTotals): string[] => [
    ...key,
    String(t.rows),
    String(t.approved),
    String(t.rejected),
    String(t.unreviewed),
    percent(t.approvalRate),
    formatUsd(usdToPicoExact(t.costUsd), 4),
    usdOrDash(t.costPerApprovedImageUsd),
  ];
  const rows = figures.byModelShot.map((group) => cells([terminalText(group.key.model), terminalText(group.key.shot)], group));
  const all = [header, ...rows, cells(['TOTAL', ''], figures.totals)];
  const widths = header.map((_, col) => Math.max(...all.map((row) => row[col]!.length)));
  const line = (row: string[]): string => row.map((cell, col) => (col < 2 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ').trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return `\nreview of ${figures.batches.map(terminalText).join(', ')} (current decisions; cost of every answer, rejected ones included):\n${[line(header), rule, ...rows.map(line), rule, line(all[all.length - 1]!)].join('\n')}\n`;
}
