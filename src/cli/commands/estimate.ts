/**
 * `tokenhot-batch estimate <csv>` and `run --dry-run`: what a file will cost, sending nothing.
 */
import { loadConfig, type Config, type ConfigFlags } from '../../core/config.js';
import { ESTIMATE_ASSUMPTIONS, estimateRows, type Estimate, type EstimateLine } from '../../cost/estimate.js';
import { formatUsd, loadPriceTable } from '../../cost/pricing.js';
import { formatProblem, rejectedRowCount, type CsvReading, type RowProblem } from '../../rows/csv.js';
import { OutputStore } from '../../output/storage.js';
import { planRow, type Sidecar } from '../../run/generate.js';
import type { Row } from '../../core/types.js';
import { csvInput, warnOnStderr, type CsvInputFlags } from './csv-input.js';
import { csvSource, readSourceRows, type RowSource } from '../../rows/row-source.js';
import { rowInput, type JobInputFlags } from './job-input.js';

export interface EstimateFlags extends ConfigFlags, CsvInputFlags, JobInputFlags {
  format?: string;
  /** Leave out rows a run of this batch would not do (run --dry-run). */
  batch?: string;
  /** With `batch`: count rows that failed on a billed answer too, as `run --retry-failed` runs them. */
  retryFailed?: boolean;
  /** With `batch`: count finished rows changed in the file since, as `run --redo-changed` runs them. */
  redoChanged?: boolean;
}

export function renderEstimate(estimate: Estimate, rejected: RowProblem[], skipped: number): string {
  // Money first, as in the report; a model billed by the image has no tokens to show.
  const header = ['model', 'size', 'rows', 'est. cost', 'prompt tok', 'image tok', 'text+thinking tok'];
  const fmt = (n: number): string => n.toLocaleString('en-US');
  const tokens = (line: EstimateLine, n: number): string => (line.billedImages > 0 ? '-' : fmt(n));
  const rows = estimate.lines.map((line) => [
    line.model,
    line.imageSize,
    fmt(line.rows),
    line.costPico === undefined ? 'NO PRICE' : formatUsd(line.costPico, 4),
    tokens(line, line.promptTokens),
    tokens(line, line.imageOutputTokens),
    tokens(line, line.otherOutputTokens),
  ]);
  const total = ['TOTAL', '', fmt(estimate.rows), `${formatUsd(estimate.costPico, 4)}${estimate.unpricedModels.length > 0 ? ' + ?' : ''}`, '', '', ''];
  const all = [header, ...rows, total];
  const widths = header.map((_, col) => Math.max(...all.map((row) => row[col]!.length)));
  const line = (row: string[]): string => row.map((cell, col) => (col < 2 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ').trimEnd();
  const out = [line(header), ...rows.map(line), line(total)];
  if (skipped > 0) out.push(`(${skipped} row(s) a run would not do again are not counted: done, or failed on a billed answer)`);
  if (rejected.length > 0) {
    out.push(`${rejectedRowCount(rejected)} bad row(s) not counted:`);
    for (const problem of rejected.slice(0, 20)) out.push(`  ${formatProblem(problem)}`);
    if (rejected.length > 20) out.push(`  ... and ${rejected.length - 20} more`);
  }
  for (const model of estimate.unpricedModels) out.push(`WARNING: NO PRICE for model "${model}": its cost is not in the total`);
  const a = ESTIMATE_ASSUMPTIONS;
  out.push(
    '',
    'How this was estimated (nothing was sent): Gemini image output tokens per model and size from the provider\'s price pages; ' +
      `prompt tokens from the prompt's length (about ${a.charsPerToken} characters a token, one per CJK character) plus ${a.tokensPerReferenceImage} per reference image; ` +
      `${a.thinkingTokens} thinking tokens for Gemini 3 models and ${a.textTokens} text tokens per answer. ` +
      'Seedream and DALL-E: one image a row at the price of its size and quality (shown under size); ' +
      'GPT Image: the output tokens OpenAI publishes for the size and quality (auto counted as high) plus the prompt. ' +
      'Retries of blocked or failed rows and price changes are not included.',
  );
  return `${out.join('\n')}\n`;
}

export async function estimateFile(
  csvPath: string,
  flags: EstimateFlags,
  config: Config,
  reading: CsvReading,
  source: RowSource = csvSource(csvPath),
): Promise<{ estimate: Estimate; rejected: RowProblem[]; skipped: number }> {
  const rows: Row[] = [];
  const rejected: RowProblem[] = [];
  let skipped = 0;
  const store = flags.batch ? new OutputStore(config.outDir) : undefined;
  for await (const read of readSourceRows(source, { ...reading, defaults: { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize } })) {
    if ('problem' in read) rejected.push(read.problem);
    else if (store && planRow(read.row, await store.readSidecar<Sidecar>(flags.batch!, read.row.id), flags) !== 'run') skipped += 1;
    else rows.push(read.row);
  }
  const estimate = estimateRows(rows, await loadPriceTable(config), (config.responseModalities as readonly string[]).includes('TEXT'));
  return { estimate, rejected, skipped };
}

export async function estimateCommand(csv: string | undefined, flags: EstimateFlags): Promise<number> {
  const input = await rowInput(csv, flags, loadConfig(flags), warnOnStderr);
  const { config } = input;
  const { reading, unknownModels } = csvInput(flags, config, warnOnStderr);
  const { estimate, rejected, skipped } = await estimateFile(input.path, flags, config, reading, input.source);
  if (flags.format === 'json') {
    const lines = estimate.lines.map(({ costPico, ...rest }) => ({ ...rest, costUsd: costPico === undefined ? null : Number(costPico) / 1e12 }));
    process.stdout.write(
      `${JSON.stringify(
        {
          rows: estimate.rows,
          costUsd: Number(estimate.costPico) / 1e12,
          lines,
          unpricedModels: estimate.unpricedModels,
          unknownModels,
          rejected: rejectedRowCount(rejected),
          rejectedRows: rejected.map(formatProblem),
          alreadyFinished: skipped,
          assumptions: ESTIMATE_ASSUMPTIONS,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    process.stdout.write(renderEstimate(estimate, rejected, skipped));
  }
  // As for `run` and `enqueue`: bad rows are worth a non-zero status in a script; so is a model
  // this version does not know, whose tokens it cannot estimate.
  return rejected.length > 0 || unknownModels.length > 0 ? 1 : 0;
}
