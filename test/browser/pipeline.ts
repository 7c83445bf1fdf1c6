/**
 * Data for the browser tests, made the way a user makes it: a CSV run by the real CLI against a
 * `mock-server` process. And the ledger's figures for a batch, summed here independently of the
 * report code, so a page is checked against the ledger itself.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { geminiBilling } from '../../src/providers/gemini/usage.js';
import { billedCostPico, PriceTable } from '../../src/cost/pricing.js';
import type { LedgerEntry } from '../../src/core/types.js';

export const KEY = 'browser-test-key-42';

export interface CsvRow {
  id: string;
  prompt: string;
  model: string;
  aspectRatio?: string;
  imageSize?: string;
  tags?: string[];
}

const cell = (value: string): string => (/[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

export async function writeCsv(path: string, rows: CsvRow[]): Promise<string> {
  const lines = ['id,prompt,model,aspect_ratio,image_size,tags'];
  for (const row of rows) lines.push([row.id, row.prompt, row.model, row.aspectRatio ?? '', row.imageSize ?? '', (row.tags ?? []).join(';')].map(cell).join(','));
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

export interface LedgerFigures {
  requests: number;
  images: number;
  failed: number;
  costPico: bigint;
  /** Cost of each row's answers, by row id. */
  rowCostPico: Map<string, bigint>;
}

export async function ledgerFigures(out: string, batch: string): Promise<LedgerFigures> {
  const prices = new PriceTable();
  const figures: LedgerFigures = { requests: 0, images: 0, failed: 0, costPico: 0n, rowCostPico: new Map() };
  const dir = join(out, 'ledger');
  for (const name of await readdir(dir)) {
    for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) {
      if (line.trim() === '') continue;
      const entry = JSON.parse(line) as LedgerEntry;
      if (entry.batch !== batch) continue;
      const price = prices.priceOf(entry.model, entry.ts);
      if (!price) throw new Error(`no price for ${entry.model}`);
      const cost = billedCostPico(geminiBilling(entry.usageMetadata ?? {}), price)!;
      figures.requests += 1;
      figures.images += entry.images;
      if (entry.outcome === 'failed') figures.failed += 1;
      figures.costPico += cost;
      figures.rowCostPico.set(entry.rowId, (figures.rowCostPico.get(entry.rowId) ?? 0n) + cost);
    }
  }
  return figures;
}
