/** Cells of the CSV files the tool writes (cost reports, manifests), one rule for both. */

/**
 * A spreadsheet runs a cell that starts with = + - @ (or tab/CR) as a formula; a leading ' makes
 * it text. Then RFC 4180 quoting for commas, quotes and line breaks.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/**
 * Plain decimals to the picodollar costs are reckoned in (a tiny cost would otherwise print as
 * `3e-7`, which not every sheet reads); an empty cell for no figure.
 */
export function csvDecimal(value: number | null): string {
  if (value === null) return '';
  return Number.isInteger(value) ? String(value) : value.toFixed(12).replace(/\.?0+$/, '');
}
