/**
 * A row's reference image, read for a request: the same for every provider, which then checks
 * the type against what its model takes.
 */
import { readFile } from 'node:fs/promises';
import { CallError } from '../core/errors.js';
import { sniffImageMime, SNIFF_BYTES } from '../rows/image-type.js';

/**
 * The file's bytes and its type by its bytes. A worker reads it from its own file system, so a
 * path it cannot see (no shared volume) fails the row with a message that says so.
 */
export async function readReferenceImage(path: string): Promise<{ bytes: Buffer; mimeType: ReturnType<typeof sniffImageMime> }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new CallError(
      'rowFailed',
      `reference image ${path} cannot be read on this machine (${(error as NodeJS.ErrnoException).code ?? 'error'}); workers need the same paths as the producer, e.g. a shared volume`,
    );
  }
  return { bytes, mimeType: sniffImageMime(bytes.subarray(0, SNIFF_BYTES)) };
}
