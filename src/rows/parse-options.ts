/** How every CSV the tool reads (prompt files, feeds) is parsed by csv-parse: one rule for both. */
import type { Options } from 'csv-parse';

/**
 * One record may not exceed this. A prompt is a few KB at most; without a cap, a big file with no
 * line breaks (not a CSV) would be held in memory whole.
 */
export const MAX_RECORD_BYTES = 1024 * 1024;

export function csvParseOptions(delimiter: string): Options {
  return {
    bom: true,
    delimiter,
    raw: true,
    // Blank lines come through as records so every physical line is seen and counted.
    skip_empty_lines: false,
    // Wrong field counts become row problems instead of ending the file.
    relax_column_count: true,
    // `He said "hi"` in an unquoted cell is meant literally; only a cell that starts with a quote is quoted.
    relax_quotes: true,
    // Files glued together from several editors mix line endings.
    record_delimiter: ['\r\n', '\n', '\r'],
    max_record_size: MAX_RECORD_BYTES,
  };
}
