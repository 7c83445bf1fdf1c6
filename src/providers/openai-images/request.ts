/**
 * The images endpoint's request for one row. Sent strictly: only fields the gateway forwards
 * (design.md 1b: a new-api gateway drops the ones it does not know, silently), each only for the
 * models that take it. One image per call (`n: 1`): a row is one image.
 */
import { basename } from 'node:path';
import { FormData } from 'undici';
import { CallError } from '../../core/errors.js';
import { readReferenceImage } from '../reference-image.js';
import type { Row } from '../../core/types.js';
import { billedQuality, nativeSize, type ImagesModel } from './models.js';

export interface GenerationsBody {
  model: string;
  prompt: string;
  size: string;
  n: 1;
  quality?: string;
  response_format?: 'b64_json';
  output_format?: 'png';
  watermark?: false;
  /** Seedream's reference images, as data URIs. */
  image?: string[];
}

export interface ImagesRequest {
  url: string;
  /** JSON for /generations, multipart for /edits. */
  body: string | FormData;
  /** What the answer is billed by (DALL·E: size and quality). */
  size: string;
  quality?: string;
}

function endpoint(baseUrl: string, path: 'generations' | 'edits'): string {
  return `${baseUrl.replace(/\/+$/, '')}/v1/images/${path}`;
}

interface Reference {
  path: string;
  bytes: Buffer;
  mimeType: string;
}

/**
 * The row's reference images, read on this machine (a worker needs the producer's paths, e.g. a
 * shared volume) and checked again: the file may have changed since the CSV was read.
 */
async function readReferences(model: ImagesModel, row: Row): Promise<Reference[]> {
  const rules = model.references;
  if (row.referenceImages.length > rules.max) {
    throw new CallError('rowFailed', rules.max === 0 ? `${model.id} takes no reference images` : `${row.referenceImages.length} reference images, but ${model.id} takes at most ${rules.max}`);
  }
  return Promise.all(
    row.referenceImages.map(async (path) => {
      const { bytes, mimeType } = await readReferenceImage(path);
      if (!mimeType || !rules.mimeTypes.includes(mimeType)) throw new CallError('rowFailed', `reference image ${path} is not a ${rules.typeNames} image`);
      if (rules.maxBytesEach !== undefined && bytes.length > rules.maxBytesEach) {
        throw new CallError('rowFailed', `reference image ${path} is over the ${rules.maxBytesEach / (1024 * 1024)} MB ${model.id} takes per image`);
      }
      return { path, bytes, mimeType };
    }),
  );
}

/** The JSON body of /v1/images/generations. */
export function generationsBody(model: ImagesModel, row: Row, size: string, quality: string | undefined, references: Reference[] = []): GenerationsBody {
  return {
    model: model.id,
    prompt: row.prompt,
    size,
    n: 1,
    ...(quality !== undefined ? { quality } : {}),
    ...(model.responseFormat ? { response_format: model.responseFormat } : {}),
    ...(model.outputFormat ? { output_format: model.outputFormat } : {}),
    ...(model.watermark === false ? { watermark: false as const } : {}),
    ...(references.length > 0 ? { image: references.map((ref) => `data:${ref.mimeType};base64,${ref.bytes.toString('base64')}`) } : {}),
  };
}

/**
 * The call for one row: /generations with a JSON body, or for GPT Image with reference images
 * /edits with a multipart body (`image[]`), as OpenAI takes them.
 */
export async function buildImagesRequest(baseUrl: string, model: ImagesModel, row: Row): Promise<ImagesRequest> {
  const size = nativeSize(model, row);
  // DALL·E bills by quality: the one billed is sent, not left to the endpoint's default.
  const quality = model.family === 'dall-e' ? billedQuality(model, row.quality) : row.quality;
  const references = await readReferences(model, row);
  if (references.length === 0 || model.referencesVia === 'body') {
    return { url: endpoint(baseUrl, 'generations'), body: JSON.stringify(generationsBody(model, row, size, quality, references)), size, ...(quality ? { quality } : {}) };
  }
  const form = new FormData();
  form.set('model', model.id);
  form.set('prompt', row.prompt);
  form.set('size', size);
  form.set('n', '1');
  if (quality !== undefined) form.set('quality', quality);
  if (model.outputFormat) form.set('output_format', model.outputFormat);
  for (const ref of references) form.append('image[]', new Blob([new Uint8Array(ref.bytes)], { type: ref.mimeType }), basename(ref.path));
  return { url: endpoint(baseUrl, 'edits'), body: form, size, ...(quality ? { quality } : {}) };
}
