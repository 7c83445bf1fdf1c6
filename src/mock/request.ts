/**
 * Reads and checks a generateContent request body the way the endpoint does: what the mock
 * needs (prompt, reference image count, aspect ratio, size) or the 400 message to answer.
 */
import type { ModelCapabilities } from '../providers/models.js';

export interface GenerateRequest {
  /** Text parts of the request, joined by newlines; directives and per-prompt counters use it. */
  prompt: string;
  referenceImages: number;
  aspectRatio: string;
  /** `imageSize` in effect: the asked one, else the model's default. */
  imageSize: string;
  /** `responseModalities` asked for (both when absent). */
  wantsText: boolean;
  wantsImage: boolean;
}

export type ParseResult = { ok: true; request: GenerateRequest } | { ok: false; message: string; prompt: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text parts, best effort, so even a refused request shows its prompt in the log. */
function textOf(contents: unknown): string {
  if (!Array.isArray(contents)) return '';
  const texts: string[] = [];
  for (const content of contents) {
    if (!isObject(content) || !Array.isArray(content.parts)) continue;
    for (const part of content.parts) {
      if (isObject(part) && typeof part.text === 'string') texts.push(part.text);
    }
  }
  return texts.join('\n');
}

/** The prompt of a body that is refused before it is checked (bad key, unknown model). */
export function promptOf(raw: Buffer): string {
  try {
    const body: unknown = JSON.parse(raw.toString('utf8'));
    return isObject(body) ? textOf(body.contents) : '';
  } catch {
    return '';
  }
}

export function parseGenerateRequest(raw: Buffer, model: ModelCapabilities): ParseResult {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return { ok: false, message: 'Invalid JSON payload received. Unexpected token.', prompt: '' };
  }
  if (!isObject(body)) return { ok: false, message: 'Invalid JSON payload received. Expected an object.', prompt: '' };
  const prompt = textOf(body.contents);
  const fail = (message: string): ParseResult => ({ ok: false, message, prompt });

  if (!Array.isArray(body.contents) || body.contents.length === 0) {
    return fail('* GenerateContentRequest.contents: contents is not specified');
  }
  let parts = 0;
  let referenceImages = 0;
  for (const content of body.contents) {
    if (!isObject(content) || !Array.isArray(content.parts)) {
      return fail('* GenerateContentRequest.contents: parts is not specified');
    }
    for (const part of content.parts) {
      parts++;
      if (!isObject(part)) return fail('Invalid JSON payload received. Expected a part object.');
      if (part.inlineData !== undefined) {
        const data = part.inlineData;
        if (!isObject(data) || typeof data.mimeType !== 'string' || typeof data.data !== 'string') {
          return fail('* GenerateContentRequest.contents.parts.inline_data: mime_type and data are required');
        }
        referenceImages++;
      } else if (typeof part.text !== 'string') {
        return fail(
          '* GenerateContentRequest.contents.parts.data: required oneof field "data" must have one initialized field',
        );
      }
    }
  }
  if (parts === 0) return fail('* GenerateContentRequest.contents.parts: contents.parts must not be empty');
  if (referenceImages > model.maxReferenceImages) {
    return fail(`Too many input images: ${referenceImages} (at most ${model.maxReferenceImages} for ${model.id}).`);
  }

  const config = body.generationConfig ?? {};
  if (!isObject(config)) return fail('Invalid JSON payload received. generationConfig must be an object.');
  let wantsText = true;
  let wantsImage = true;
  if (config.responseModalities !== undefined) {
    const modalities = config.responseModalities;
    if (!Array.isArray(modalities) || modalities.some((m) => m !== 'TEXT' && m !== 'IMAGE')) {
      return fail(`Invalid value at 'generation_config.response_modalities': ${JSON.stringify(modalities)}`);
    }
    wantsText = modalities.includes('TEXT');
    wantsImage = modalities.includes('IMAGE');
  }
  const imageConfig = config.imageConfig ?? {};
  if (!isObject(imageConfig)) return fail('Invalid JSON payload received. imageConfig must be an object.');
  const aspectRatio = imageConfig.aspectRatio ?? '1:1';
  if (typeof aspectRatio !== 'string' || !model.aspectRatios.includes(aspectRatio)) {
    return fail(`Unsupported aspect ratio: ${String(aspectRatio)}. Supported: ${model.aspectRatios.join(', ')}.`);
  }
  const imageSize = imageConfig.imageSize;
  if (imageSize !== undefined && (typeof imageSize !== 'string' || !model.imageSizes.includes(imageSize))) {
    return fail(
      model.imageSizes.length === 0
        ? `imageSize is not supported for ${model.id}.`
        : `Unsupported image size: ${String(imageSize)}. Supported: ${model.imageSizes.join(', ')}.`,
    );
  }
  return {
    ok: true,
    request: {
      prompt,
      referenceImages,
      aspectRatio,
      imageSize: imageSize ?? model.defaultImageSize,
      wantsText,
      wantsImage,
    },
  };
}
