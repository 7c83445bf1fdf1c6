/**
 * `tokenhot-batch report`: the ledger as a cost report (table, JSON, CSV or one HTML page).
 */
import { lstat, rename, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { loadConfig, type ConfigFlags } from '../../core/config.js';
import { describeBudget } from '../../run/budget.js';
import { UsageError } from '../../core/errors.js';
import { ledgerDir, ledgerFiles, scanLedger } from '../../output/ledger.js';
import { loadPriceTable } from '../../cost/pricing.js';
import { htmlChunks, renderHtml, type HtmlReportOptions } from '../../views/report-html.js';
import { approvalFigures, GROUP_KEYS, renderApprovalTable, renderCsv, renderJson, renderTable, reportBound, ReportBuilder, type GroupKey, type Report, type ReviewedRow } from '../../cost/report.js';
import { readReviews } from '../../output/reviews.js';
import { batchesIn, readReviewRows } from '../../views/review/rows.js';

export const REPORT_FORMATS = ['table', 'json', 'csv', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportFlags extends ConfigFlags {
  prefix?: string;
  batch?: string;
  product?: string;
  by?: string;
  format?: string;
  since?: string;
  until?: string;
  /** Write the report to this file instead of stdout. */
  output?: string;
  /** Approval figures even when no batch has a decision yet (they show when one has). */
  withReviews?: boolean;
}

export function parseGroupKeys(value: string | undefined): GroupKey[] {
  if (!value) return [];
  const keys = value
    .split(',')
    .map((key) => key.trim())
    .filter(Boolean);
  for (const key of keys) {
    if (!(GROUP_KEYS as readonly string[]).includes(key)) throw new UsageError(`--by: "${key}" is not one of ${GROUP_KEYS.join(', ')}`);
  }
  return [...new Set(keys)] as GroupKey[];
}

function parseFormat(value: string | undefined): ReportFormat {
  const format = value ?? 'table';
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format: "${format}" is not one of ${REPORT_FORMATS.join(', ')}`);
  return format as ReportFormat;
}

/** Bad dates are bad usage (exit 2), found before the ledger is read. */
function checkDate(edge: 'since' | 'until', value: string | undefined): void {
  try {
    reportBound(value, edge);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function renderReport(report: Report, format: ReportFormat, by: GroupKey[], options: Omit<HtmlReportOptions, 'by'> = {}): string {
  switch (format) {
    case 'json':
      return renderJson(report);
    case 'csv':
      return renderCsv(report, by);
    case 'table':
      return renderTable(report, by) + (report.reviews ? renderApprovalTable(report.reviews) : '');
    case 'html':
      return renderHtml(report, { ...options, by });
  }
}

/** The report as pieces to write in order: the HTML page a table row at a time (see report-html.ts). */
function reportChunks(report: Report, format: ReportFormat, by: GroupKey[], options: Omit<HtmlReportOptions, 'by'>): Iterable<string> {
  return format === 'html' ? htmlChunks(report, { ...options, by }) : [renderReport(report, format, by, options)];
}

/** Pieces joined up to about 64 KiB: one write each, not one per table row. */
function* batched(chunks: Iterable<string>): Generator<string> {
  let pending = '';
  for (const chunk of chunks) {
    pending += chunk;
    if (pending.length >= 65_536) {
      yield pending;
      pending = '';
    }
  }
  if (pending) yield pending;
}

async function writeStdout(chunks: Iterable<string>): Promise<void> {
  for (const chunk of batched(chunks)) if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

/**
 * Write-then-rename, so a reader of FILE (a web server, a mail job) never sees half a report.
 * Not for anything but a plain file: renaming over /dev/stdout, a FIFO or a symlink would
 * replace it with a file, so those are written in place.
 */
async function writeOutput(file: string, chunks: Iterable<string>): Promise<void> {
  const existing = await lstat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing && !existing.isFile()) {
    await writeFile(file, batched(chunks));
    return;
  }
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, batched(chunks));
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    // Name the file the user gave, not the temp file beside it.
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'its folder does not exist' : (error as Error).message;
    throw new UsageError(`--output: cannot write ${file}: ${reason}`);
  }
}

/** Flags that are bad usage (exit 2), found before the ledger is read. */
function checkFilters(flags: ReportFlags): void {
  checkDate('since', flags.since);
  checkDate('until', flags.until);
  if (flags.since && flags.until && flags.since.slice(0, 10) > flags.until.slice(0, 10)) {
    throw new UsageError(`--since ${flags.since} is after --until ${flags.until}: no day is in between`);
  }
  if (flags.output !== undefined && flags.output.trim() === '') throw new UsageError('--output: give a file name');
  if (flags.product !== undefined && flags.product.trim() === '') throw new UsageError('--product: give a product id');
}

/** Batch names and products seen, to help with a --batch or --product that matches none (a few, not one per line). */
interface SeenNames {
  batches: Set<string>;
  products: Set<string>;
}

/** The report of every ledger line, with the ledger's read warnings (and a filter that matched nothing) on top. */
async function readReport(outDir: string, builder: ReportBuilder, flags: ReportFlags, costs?: ReportBuilder): Promise<Report> {
  const readWarnings: string[] = [];
  const files = await ledgerFiles(outDir);
  const seen: SeenNames = { batches: new Set(), products: new Set() };
  // scanLedger rather than readLedger: no promise per line, no entry kept (see there).
  await scanLedger(
    outDir,
    (entry) => {
      builder.add(entry);
      costs?.add(entry);
      if (flags.batch !== undefined && seen.batches.size < 50) seen.batches.add(entry.batch);
      if (flags.product !== undefined && seen.products.size < 50 && typeof entry.product === 'string') seen.products.add(entry.product);
    },
    { onWarning: (message) => readWarnings.push(message) },
  );
  const report = builder.finish();
  // A typo in --out, --batch or --product must not look like a batch that cost nothing.
  if (files.length === 0) readWarnings.push(`no ledger under ${ledgerDir(outDir)}: nothing billed was recorded in this output folder (is --out / TOKENHOT_OUT_DIR right?)`);
  else if (report.totals.requests === 0) readWarnings.push(...unmatchedFilter(flags, seen));
  report.warnings.unshift(...readWarnings);
  return report;
}

/** Why a report of a --batch or --product came out empty, when that filter alone can say. */
function unmatchedFilter(flags: ReportFlags, seen: SeenNames): string[] {
  if (flags.since || flags.until) return [];
  if (flags.batch !== undefined && flags.product !== undefined) return [`no ledger line of batch ${flags.batch} with product ${flags.product}`];
  if (flags.batch !== undefined) return [`no ledger line of batch ${flags.batch}; batches in the ledger: ${someOf(seen.batches)}`];
  if (flags.product === undefined) return [];
  return seen.products.size === 0
    ? [`no ledger line of product ${flags.product}: no line names a product (rows without a product column or shot list, or lines written before products were recorded)`]
    : [`no ledger line of product ${flags.product}; products in the ledger: ${someOf(seen.products)}`];
}

export async function reportCommand(flags: ReportFlags): Promise<number> {
  const config = loadConfig(flags);
  const by = parseGroupKeys(flags.by);
  const format = parseFormat(flags.format);
  checkFilters(flags);
  const filters = { batch: flags.batch, product: flags.product, since: flags.since, until: flags.until, prices: await loadPriceTable(config) };
  const builder = new ReportBuilder({ by, ...filters });
  const reviewed = await reviewedRows(config.outDir, flags);
  const costs = reviewed ? new ReportBuilder({ by: ['batch', 'model', 'shot'], ...filters }) : undefined;
  const report = await readReport(config.outDir, builder, flags, costs);
  if (reviewed && costs) report.reviews = approvalFigures(reviewed.rows, costs.finish(), reviewed.batches);
  if (config.redisUrl) report.warnings.push(...(await budgetWarnings(config.redisUrl, flags.prefix, flags.batch)));
  const chunks = reportChunks(report, format, by, { batch: flags.batch, product: flags.product, since: flags.since, until: flags.until });
  if (flags.output !== undefined) {
    await writeOutput(flags.output, chunks);
    process.stderr.write(`report written to ${flags.output}\n`);
  } else {
    await writeStdout(chunks);
  }
  // The table carries its warnings on top; the other formats are for programs, so a person
  // sees the warnings on stderr.
  if (format !== 'table' || flags.output !== undefined) for (const warning of report.warnings) process.stderr.write(`warning: ${warning}\n`);
  return 0;
}

/**
 * The finished rows of the batches with review decisions (`--batch`, else every batch of the
 * output folder), for the approval figures; undefined when there are none to count.
 */
async function reviewedRows(outDir: string, flags: ReportFlags): Promise<{ batches: string[]; rows: ReviewedRow[] } | undefined> {
  const candidates = flags.batch !== undefined ? [flags.batch] : await batchesIn(outDir);
  const batches: string[] = [];
  for (const batch of candidates) if (flags.withReviews || (await readReviews(outDir, batch)).length > 0) batches.push(batch);
  if (batches.length === 0) return undefined;
  const rows: ReviewedRow[] = [];
  for (const batch of batches) {
    for (const row of await readReviewRows(outDir, batch)) {
      if (row.status !== 'done') continue;
      if (flags.product !== undefined && row.sidecar.metadata?.product !== flags.product) continue;
      rows.push({ batch, model: row.model, shot: row.shot ?? '', review: row.review, images: row.images.length });
    }
  }
  return { batches, rows };
}

/** The first ten names, in order, for a warning. */
function someOf(names: Set<string>): string {
  return `${[...names].sort().slice(0, 10).join(', ')}${names.size > 10 ? ', ...' : ''}`;
}

/**
 * With REDIS_URL, the report also says which batches are over budget (their remaining rows wait,
 * not failed). The ledger does not know budgets; Redis does. A Redis that cannot be reached only
 * costs this note, never the report.
 */
async function budgetWarnings(redisUrl: string, prefix: string | undefined, batch: string | undefined): Promise<string[]> {
  try {
    // Loaded only with REDIS_URL: a report of the ledger alone needs no BullMQ.
    const [{ connectRedis, queueSettings }, { BatchState }] = await Promise.all([import('../../queue/queue.js'), import('../../queue/batch-state.js')]);
    const settings = queueSettings(redisUrl, prefix);
    const connection = await connectRedis(settings.redisUrl, 'producer');
    try {
      const state = new BatchState(connection, settings.prefix);
      const names = batch ? await state.batchesUnder(batch) : await state.batches();
      const warnings: string[] = [];
      for (const name of names) {
        const counts = await state.counts(name);
        if (counts.overBudget > 0 && counts.budgetPico !== undefined) {
          warnings.push(`batch ${name} is OVER BUDGET: ${describeBudget(counts.spendPico, counts.budgetPico)}; ${counts.overBudget} row(s) wait (tokenhot-batch budget ${name} --usd MORE)`);
        }
      }
      return warnings;
    } finally {
      connection.disconnect();
    }
  } catch (error) {
    return [`budgets not checked: ${(error as Error).message}`];
  }
}
