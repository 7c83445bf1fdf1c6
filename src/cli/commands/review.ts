/**
 * `tokenhot-batch review [out]`: the review page on loopback; `review list`: the decisions.
 */
import { loadConfig } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { credentialsFromEnv } from '../../views/dashboard/access.js';
import { batchesIn, readReviewRows, type ReviewRow } from '../../views/review/rows.js';
import { wholeFlag } from './flag-values.js';
import { existingBatchFolder, reviewableOutput } from '../../output/reviews.js';

export interface ReviewPageFlags {
  out?: string;
  batch?: string;
  port?: string;
}

export interface ReviewListFlags {
  out?: string;
  batch?: string;
  rejected?: boolean;
  approved?: boolean;
  unreviewed?: boolean;
  format?: string;
}

const DEFAULT_REVIEW_PORT = 3200;

export async function reviewPageCommand(outArgument: string | undefined, flags: ReviewPageFlags): Promise<number> {
  if (outArgument !== undefined && flags.out !== undefined && outArgument !== flags.out) throw new UsageError(`give the output folder once (${outArgument}, --out ${flags.out})`);
  const out = reviewableOutput(loadConfig({ out: outArgument ?? flags.out }).outDir);
  if (flags.batch) existingBatchFolder(out, flags.batch);
  const port = wholeFlag('--port', flags.port, DEFAULT_REVIEW_PORT, 0, 65535);
  const { startReviewServer } = await import('../../views/review/server.js');
  const server = await startReviewServer({ out, port, credentials: credentialsFromEnv() });
  const page = flags.batch ? `${server.url}/review/${encodeURIComponent(flags.batch)}` : `${server.url}/review/`;
  process.stderr.write(`review page on ${page} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}

type Filter = 'rejected' | 'approved' | 'unreviewed' | undefined;

function filterOf(flags: ReviewListFlags): Filter {
  return flags.rejected ? 'rejected' : flags.approved ? 'approved' : flags.unreviewed ? 'unreviewed' : undefined;
}

/** Failed rows have nothing to review: they show under no filter but the whole list. */
function keep(row: ReviewRow, filter: Filter): boolean {
  if (filter === undefined) return true;
  if (filter === 'unreviewed') return row.status === 'done' && row.review === 'unreviewed';
  return row.review === filter;
}

export async function reviewListCommand(flags: ReviewListFlags): Promise<number> {
  const out = reviewableOutput(loadConfig({ out: flags.out }).outDir);
  if (flags.batch) existingBatchFolder(out, flags.batch);
  const batches = flags.batch ? [flags.batch] : await batchesIn(out);
  const filter = filterOf(flags);
  const listed: { batch: string; row: ReviewRow }[] = [];
  for (const batch of batches) {
    for (const row of await readReviewRows(out, batch)) if (keep(row, filter)) listed.push({ batch, row });
  }
  process.stdout.write(flags.format === 'json' ? renderJson(listed) : renderTable(listed));
  return 0;
}

function renderJson(listed: { batch: string; row: ReviewRow }[]): string {
  const rows = listed.map(({ batch, row }) => ({
    batch,
    rowId: row.id,
    status: row.status,
    review: row.review,
    ...(row.decision?.note !== undefined ? { note: row.decision.note } : {}),
    ...(row.decision ? { who: row.decision.who, at: row.decision.at } : {}),
    model: row.model,
    files: row.images.map((image) => image.file),
  }));
  return `${JSON.stringify(rows, null, 2)}\n`;
}

function renderTable(listed: { batch: string; row: ReviewRow }[]): string {
  const header = ['batch', 'row', 'status', 'review', 'who', 'at', 'note'];
  const lines = listed.map(({ batch, row }) => [batch, row.id, row.status, row.review, row.decision?.who ?? '', row.decision?.at ?? '', oneLine(row.decision?.note ?? '')]);
  const widths = header.map((name, index) => Math.max(name.length, ...lines.map((line) => line[index]!.length)));
  const format = (cells: string[]): string => cells.map((cell, index) => (index === cells.length - 1 ? cell : cell.padEnd(widths[index]!))).join('  ').trimEnd();
  return `${[format(header), ...lines.map(format)].join('\n')}\n${listed.length} row(s)\n`;
}

/** Notes come from a browser: no line breaks or terminal escapes in a table. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}
