/**
 * The generateContent request for one row.
 */
import { readFile } from 'node:fs/promises';
import { CallError } from '../../core/errors.js';
import { GEMINI_INPUT_TYPE_NAMES, isGeminiInputMime, sniffImageMime } from '../../rows/image-type.js';
import { geminiCapabilitiesOf } from './models.js';
import type { Row } from '../../core/types.js';

export type ResponseModalities = ['TEXT', 'IMAGE'] | ['IMAGE'];

export interface GeminiRequestBody {
  contents: { role: 'user'; parts: ({ text: string } | { inlineData: { mimeType: string; data: string } })[] }[];
  generationConfig: {
    responseModalities: ResponseModalities;
    imageConfig?: { aspectRatio?: string; imageSize?: string };
  };
}

/** `POST {base}/v1beta/models/{model}:generateContent/`, as Tokenhot documents it. */
export function generateContentUrl(baseUrl: string, model: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v1beta/models/${encodeURIComponent(model)}:generateContent/`;
}

/**
 * Reads the row's reference images from disk. A worker reads them from its own file system, so
 * a path it cannot see (no shared volume) fails the row with a message that says so.
 */
async function referenceParts(row: Row): Promise<{ inlineData: { mimeType: string; data: string } }[]> {
  return Promise.all(
    row.referenceImages.map(async (path) => {
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (error) {
        throw new CallError(
          'rowFailed',
          `reference image ${path} cannot be read on this machine (${(error as NodeJS.ErrnoException).code ?? 'error'}); workers need the same paths as the producer, e.g. a shared volume`,
        );
      }
      const mimeType = sniffImageMime(bytes.subarray(0, 64));
      if (!isGeminiInputMime(mimeType)) throw new CallError('rowFailed', `reference image ${path} is not a ${GEMINI_INPUT_TYPE_NAMES} image`);
      return { inlineData: { mimeType, data: bytes.toString('base64') } };
    }),
  );
}

export async function buildRequestBody(row: Row, responseModalities: ResponseModalities): Promise<GeminiRequestBody> {
  const imageConfig: { aspectRatio?: string; imageSize?: string } = {};
  if (row.aspectRatio) imageConfig.aspectRatio = row.aspectRatio;
  // 2.5 flash takes no imageSize; the CSV check refuses it there, and this keeps a default out.
  if (row.imageSize && geminiCapabilitiesOf(row.model).imageSizes.length > 0) imageConfig.imageSize = row.imageSize;
  return {
    contents: [{ role: 'user', parts: [{ text: row.prompt }, ...(await referenceParts(row))] }],
    generationConfig: {
      responseModalities,
      ...(Object.keys(imageConfig).length > 0 ? { imageConfig } : {}),
    },
  };
}
