/**
 * The generateContent request for one row.
 */
import { CallError } from '../../core/errors.js';
import { GEMINI_INPUT_TYPE_NAMES, isGeminiInputMime } from '../../rows/image-type.js';
import { readReferenceImage } from '../reference-image.js';
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

/** The row's reference images as inline data, each of a type Gemini takes. */
async function referenceParts(row: Row): Promise<{ inlineData: { mimeType: string; data: string } }[]> {
  return Promise.all(
    row.referenceImages.map(async (path) => {
      const { bytes, mimeType } = await readReferenceImage(path);
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
