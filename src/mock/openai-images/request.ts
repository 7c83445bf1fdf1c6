/**
 * Reads and checks an images request as the service behind the gateway would: a JSON body on
 * /v1/images/generations, a multipart form (`image[]` files) on /v1/images/edits. Fields the
 * gateway does not forward are dropped silently, as it does; what a model refuses is a 400 in
 * its vendor's shape.
 */
import { AUTO_QUALITY, resolveSize, type ImagesModel, type OutputFormat, type ResponseFormat } from './models.js';
import {
  invalidField,
  missingPrompt,
  openaiInvalid,
  unknownParameter,
  type ImagesErrorAnswer,
} from './errors.js';

export type ImagesEndpoint = 'generations' | 'edits';

export interface ImagesRequest {
  endpoint: ImagesEndpoint;
  model: ImagesModel;
  prompt: string;
  n: number;
  /** The size answered (`WxH`): presets and `auto` resolved. */
  size: string;
  width: number;
  height: number;
  /** The quality billed and answered (`auto` resolved); undefined for Seedream. */
  quality?: string;
  outputFormat: OutputFormat;
  responseFormat: ResponseFormat;
  referenceImages: number;
  watermark: boolean;
  style?: string;
  transparent: boolean;
}

/** The body as fields, before any model's rules: JSON values, or multipart strings and files. */
export interface ImagesBody {
  model: string;
  prompt: string;
  fields: Record<string, unknown>;
  /** Files sent on /edits (`image[]` or `image`). */
  files: Buffer[];
}

export type ReadResult = { ok: true; body: ImagesBody } | { ok: false; error: ImagesErrorAnswer; model: string; prompt: string };

export type CheckResult = { ok: true; request: ImagesRequest } | { ok: false; error: ImagesErrorAnswer };

/** The fields new-api forwards to an images upstream; anything else never reaches the model. */
const FORWARDED = new Set([
  'model',
  'prompt',
  'n',
  'size',
  'quality',
  'response_format',
  'style',
  'background',
  'moderation',
  'output_format',
  'output_compression',
  'watermark',
  'image',
  'images',
  'mask',
  'stream',
]);

/** Reference images (Seedream's `image`) may be this large each. */
const MAX_REFERENCE_BYTES = 10 * 1024 * 1024;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

async function readMultipart(raw: Buffer, contentType: string): Promise<ImagesBody> {
  // The fetch API's own multipart parser (undici): no dependency for one form.
  const bytes = new Uint8Array(raw.byteLength);
  bytes.set(raw);
  const form = await new Response(bytes, { headers: { 'content-type': contentType } }).formData();
  const fields: Record<string, unknown> = {};
  const files: Buffer[] = [];
  for (const [name, value] of form.entries()) {
    if (name === 'image[]' || name === 'image') {
      files.push(typeof value === 'string' ? Buffer.from(value) : Buffer.from(await value.arrayBuffer()));
    } else if (typeof value === 'string') {
      fields[name] = value;
    }
  }
  return { model: text(fields.model), prompt: text(fields.prompt), fields, files };
}

export async function readImagesBody(raw: Buffer, contentType: string | undefined, endpoint: ImagesEndpoint): Promise<ReadResult> {
  const type = contentType ?? '';
  if (endpoint === 'edits') {
    if (!/^multipart\/form-data/i.test(type)) {
      const error = openaiInvalid(`Invalid Content-Type header (${type || 'none'}), expected multipart/form-data.`, null, null);
      return { ok: false, error, model: '', prompt: '' };
    }
    try {
      return { ok: true, body: await readMultipart(raw, type) };
    } catch {
      return { ok: false, error: openaiInvalid('Could not parse multipart form.', null, null), model: '', prompt: '' };
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    const error = openaiInvalid('We could not parse the JSON body of your request.', null, null);
    return { ok: false, error, model: '', prompt: '' };
  }
  if (!isObject(parsed)) return { ok: false, error: openaiInvalid('The body must be a JSON object.', null, null), model: '', prompt: '' };
  return { ok: true, body: { model: text(parsed.model), prompt: text(parsed.prompt), fields: parsed, files: [] } };
}

/** Multipart sends every field as text: a number or boolean may come as a string. */
function integerOf(value: unknown): number | undefined {
  const number = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) ? number : undefined;
}

function booleanOf(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  return undefined;
}

function imageMagic(bytes: Buffer): boolean {
  const png = bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  const jpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  const webp = bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP';
  return png || jpeg || webp;
}

/** Seedream's `image`: URLs or data URIs, checked without fetching anything. */
function seedreamReferences(model: ImagesModel, value: unknown): number | ImagesErrorAnswer {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.some((item) => typeof item !== 'string')) {
    return invalidField(model, 'image', 'image must be a string or a list of strings');
  }
  if (list.length > model.maxReferenceImages) {
    return invalidField(model, 'image', `at most ${model.maxReferenceImages} reference images, got ${list.length}`);
  }
  for (const [i, item] of (list as string[]).entries()) {
    const data = /^data:image\/(png|jpeg|jpg|webp|bmp|tiff|gif);base64,(.*)$/is.exec(item);
    if (data) {
      if (Math.floor(((data[2] ?? '').length * 3) / 4) > MAX_REFERENCE_BYTES) {
        return invalidField(model, 'image', `image ${i + 1} is larger than 10 MB`);
      }
    } else if (!/^https?:\/\/\S+$/i.test(item)) {
      return invalidField(model, 'image', `image ${i + 1} is neither an http(s) URL nor a data:image/...;base64, URI`);
    }
  }
  return list.length;
}

/** A value as OpenAI's messages quote it: 'hd'. */
function quoted(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? 'undefined';
}

/** Undefined when `value` is allowed, else the 400 as each vendor words it. */
function oneOf(model: ImagesModel, param: string, value: unknown, allowed: readonly string[]): ImagesErrorAnswer | undefined {
  if (typeof value === 'string' && allowed.includes(value)) return undefined;
  const list = allowed.map(quoted).join(', ');
  return model.family === 'dall-e'
    ? openaiInvalid(`${quoted(value)} is not one of [${list}] - '${param}'`, null, null)
    : invalidField(model, param, `Invalid value: ${quoted(value)}. Supported values are: ${list}`);
}

export function checkImagesRequest(body: ImagesBody, model: ImagesModel, endpoint: ImagesEndpoint): CheckResult {
  const fail = (error: ImagesErrorAnswer): CheckResult => ({ ok: false, error });
  // Fields past the gateway: the rest is dropped before the model sees the request.
  const f = Object.fromEntries(Object.entries(body.fields).filter(([name]) => FORWARDED.has(name)));
  const given = (name: string) => f[name] !== undefined && f[name] !== null;

  if (!body.prompt.trim()) return fail(missingPrompt(model));
  if (body.prompt.length > model.maxPromptChars) {
    return fail(invalidField(model, 'prompt', `the prompt is ${body.prompt.length} characters, at most ${model.maxPromptChars}`));
  }
  if (given('stream') && booleanOf(f.stream) === true) return fail(invalidField(model, 'stream', 'the mock does not stream images'));

  if (endpoint === 'edits' && !model.edits) {
    return fail(openaiInvalid(`Invalid value: '${model.id}'. /v1/images/edits takes gpt-image-1.5, gpt-image-2 or dall-e-2.`, 'model'));
  }
  let referenceImages = 0;
  if (endpoint === 'edits') {
    if (body.files.length === 0) return fail(openaiInvalid("Missing required parameter: 'image'.", 'image', 'missing_required_parameter'));
    if (body.files.length > model.maxReferenceImages) {
      return fail(openaiInvalid(`Invalid 'image': too many images, ${body.files.length} > ${model.maxReferenceImages}.`, 'image', 'invalid_value'));
    }
    const bad = body.files.findIndex((file) => !imageMagic(file));
    if (bad >= 0) {
      return fail(openaiInvalid(`Invalid file 'image[${bad}]': unsupported image. Supported formats are 'image/jpeg', 'image/png', and 'image/webp'.`, 'image', 'invalid_image_file'));
    }
    referenceImages = body.files.length;
  } else if (given('image') || given('images')) {
    if (model.family !== 'seedream') return fail(unknownParameter(given('image') ? 'image' : 'images'));
    const counted = seedreamReferences(model, f.image ?? f.images);
    if (typeof counted !== 'number') return fail(counted);
    referenceImages = counted;
  }

  const n = given('n') ? integerOf(f.n) : 1;
  if (n === undefined || n < 1) return fail(invalidField(model, 'n', `n must be an integer of at least 1, got ${JSON.stringify(f.n)}`));
  if (n > model.maxImages) {
    return fail(model.maxImages === 1 ? openaiInvalid('You must provide n=1 for this model.', 'n') : invalidField(model, 'n', `n must be at most ${model.maxImages}, got ${n}`));
  }
  if (model.family === 'seedream' && n + referenceImages > 15) {
    return fail(invalidField(model, 'n', `reference images and generated images together must be at most 15, got ${referenceImages} + ${n}`));
  }

  const sizeAsked = given('size') ? f.size : model.defaultSize;
  if (typeof sizeAsked !== 'string') return fail(invalidField(model, 'size', `size must be a string, got ${JSON.stringify(sizeAsked)}`));
  const pixels = resolveSize(model, sizeAsked);
  if ('refused' in pixels) {
    if (model.family === 'dall-e') return fail(oneOf(model, 'size', sizeAsked, Object.keys(model.presets)) as ImagesErrorAnswer);
    if (model.family === 'gpt-image' && !model.freeSize) {
      return fail(oneOf(model, 'size', sizeAsked, Object.keys(model.presets)) as ImagesErrorAnswer);
    }
    return fail(invalidField(model, 'size', pixels.refused));
  }

  let quality: string | undefined;
  if (model.qualities.length > 0) {
    const asked = given('quality') ? f.quality : model.defaultQuality;
    const refused = oneOf(model, 'quality', asked, model.qualities);
    if (refused) return fail(refused);
    quality = asked === 'auto' ? AUTO_QUALITY : (asked as string);
  }

  let responseFormat = model.defaultResponseFormat;
  if (given('response_format')) {
    const refused = oneOf(model, 'response_format', f.response_format, model.responseFormats);
    if (refused) return fail(refused);
    responseFormat = f.response_format as ResponseFormat;
  }

  let outputFormat = model.defaultFormat;
  if (given('output_format') && model.outputFormats.length > 0) {
    const refused = oneOf(model, 'output_format', f.output_format, model.outputFormats);
    if (refused) return fail(refused);
    outputFormat = f.output_format as OutputFormat;
  }
  if (given('output_compression') && model.family === 'gpt-image') {
    const compression = integerOf(f.output_compression);
    if (compression === undefined || compression < 0 || compression > 100) {
      return fail(invalidField(model, 'output_compression', 'output_compression must be an integer from 0 to 100'));
    }
    if (outputFormat === 'png') return fail(invalidField(model, 'output_compression', 'output_compression is only for jpeg and webp'));
  }

  let transparent = false;
  if (given('background') && model.family === 'gpt-image') {
    const refused = oneOf(model, 'background', f.background, model.backgrounds);
    if (refused) return fail(refused);
    transparent = f.background === 'transparent';
    if (transparent && outputFormat === 'jpeg') {
      return fail(invalidField(model, 'background', 'a transparent background needs output_format png or webp'));
    }
  }
  if (given('moderation') && model.family === 'gpt-image') {
    const refused = oneOf(model, 'moderation', f.moderation, ['low', 'auto']);
    if (refused) return fail(refused);
  }

  let style: string | undefined;
  if (given('style') && model.styles.length > 0) {
    const refused = oneOf(model, 'style', f.style, model.styles);
    if (refused) return fail(refused);
    style = f.style as string;
  }

  let watermark = false;
  if (model.family === 'seedream') {
    const asked = given('watermark') ? booleanOf(f.watermark) : true;
    if (asked === undefined) return fail(invalidField(model, 'watermark', 'watermark must be true or false'));
    watermark = asked;
  }

  return {
    ok: true,
    request: {
      endpoint,
      model,
      prompt: body.prompt,
      n,
      size: `${pixels.width}x${pixels.height}`,
      width: pixels.width,
      height: pixels.height,
      quality,
      outputFormat,
      responseFormat,
      referenceImages,
      watermark,
      style: style ?? (model.styles.length > 0 ? model.styles[0] : undefined),
      transparent,
    },
  };
}
