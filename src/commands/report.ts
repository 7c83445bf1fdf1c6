/**
 * `tokenhot-batch report`: the ledger as a cost report.
 */
import { loadConfig, type ConfigFlags } from '../config.js';
import { UsageError } from '../errors.js';
import { geminiTokenCounts } from '../gemini/usage.js';
import { readLedger } from '../ledger.js';
import { loadPriceTable } from '../pipeline.js';
import { buildReport, GROUP_KEYS, renderCsv, renderJson, renderTable, type GroupKey, type Report } from '../report.js';

export const REPORT_FORMATS = ['table', 'json', 'csv'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportFlags extends ConfigFlags {
  batch?: string;
  by?: string;
  format?: string;
  since?: string;
  until?: string;
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

function checkDate(name: string, value: string | undefined): void {
  if (value !== undefined && Number.isNaN(Date.parse(value))) throw new UsageError(`${name}: "${value}" is not a date (YYYY-MM-DD)`);
}

export function renderReport(report: Report, format: ReportFormat, by: GroupKey[]): string {
  switch (format) {
    case 'json':
      return renderJson(report);
    case 'csv':
      return renderCsv(report, by);
    case 'table':
      return renderTable(report, by);
  }
}

export async function reportCommand(flags: ReportFlags): Promise<number> {
  const config = loadConfig(flags);
  const by = parseGroupKeys(flags.by);
  const format = parseFormat(flags.format);
  checkDate('--since', flags.since);
  checkDate('--until', flags.until);
  const warnings: string[] = [];
  const report = await buildReport(readLedger(config.outDir, { onWarning: (message) => warnings.push(message) }), {
    by,
    batch: flags.batch,
    since: flags.since,
    until: flags.until,
    prices: await loadPriceTable(config),
    tokenCounts: geminiTokenCounts,
  });
  report.warnings.unshift(...warnings);
  process.stdout.write(renderReport(report, format, by));
  if (format !== 'table') for (const warning of report.warnings) process.stderr.write(`warning: ${warning}\n`);
  return 0;
}
