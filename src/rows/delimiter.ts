/**
 * Delimiter: Excel writes ";" where the decimal mark is a comma (much of Europe), and feeds come
 * tab-separated; the header line says which.
 */
import { open } from 'node:fs/promises';

/** The delimiter a file is read with, and whether the user gave it (`--delimiter`) or it was detected. */
export interface Delimiter {
  value: string;
  given: boolean;
}

const DETECTED_DELIMITERS = [',', ';', '\t'];

/** `comma-separated`, `semicolon-separated`, `tab-separated`, `"|"-separated`. */
export function delimiterName(delimiter: string): string {
  const names: Record<string, string> = { ',': 'comma-separated', ';': 'semicolon-separated', '\t': 'tab-separated' };
  return names[delimiter] ?? `"${delimiter}"-separated`;
}

/**
 * The delimiter of the text's first non-blank line (the header): whichever of `,` `;` and tab it
 * holds most often outside quotes; a comma on a tie or when it holds none (a one-column file).
 */
export function delimiterOfHeader(text: string): string {
  const counts = new Map<string, number>();
  let quoted = false;
  let seen = false;
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') quoted = !quoted;
    else if (quoted) continue;
    else if (c === '\n' || c === '\r') {
      if (seen) break;
    } else if (DETECTED_DELIMITERS.includes(c)) counts.set(c, (counts.get(c) ?? 0) + 1);
    if (c.trim() !== '') seen = true;
  }
  let best = ',';
  for (const delimiter of DETECTED_DELIMITERS) if ((counts.get(delimiter) ?? 0) > (counts.get(best) ?? 0)) best = delimiter;
  return best;
}

/** The delimiter from the file's first 64 KB; a comma when it cannot be read (the reading says why). */
export async function detectDelimiter(csvPath: string): Promise<string> {
  try {
    const handle = await open(csvPath, 'r');
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
      return delimiterOfHeader(buffer.toString('utf8', 0, bytesRead));
    } finally {
      await handle.close();
    }
  } catch {
    return ',';
  }
}
