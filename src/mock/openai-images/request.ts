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

/** A field's value as the request holds it, or the 400 that refuses it. */
type Field<T> = { ok: true; value: T } | { ok: false; error: ImagesErrorAnswer };

/** The fields past the gateway, which drops the rest before the model sees the request. */
type Forwarded = Record<string, unknown>;

function accept<T>(value: T): Field<T> {
  return { ok: true, value };
}

function refuse(error: ImagesErrorAnswer): { ok: false; error: ImagesErrorAnswer } {
  return { ok: false, error };
}

function given(f: Forwarded, name: string): boolean {
  return f[name] !== undefined && f[name] !== null;
}

export function checkImagesRequest(body: ImagesBody, model: ImagesModel, endpoint: ImagesEndpoint): CheckResult {
  const f: Forwarded = Object.fromEntries(Object.entries(body.fields).filter(([name]) => FORWARDED.has(name)));
  const prompt = checkPrompt(body.prompt, model, f);
  if (prompt) return refuse(prompt);
  const referenceImages = checkReferenceImages(body, model, endpoint, f);
  if (!referenceImages.ok) return referenceImages;
  const n = checkCount(model, f, referenceImages.value);
  if (!n.ok) return n;
  const pixels = checkSize(model, f);
  if (!pixels.ok) return pixels;
  const quality = checkQuality(model, f);
  if (!quality.ok) return quality;
  const responseFormat = checkResponseFormat(model, f);
  if (!responseFormat.ok) return responseFormat;
  const outputFormat = checkOutputFormat(model, f);
  if (!outputFormat.ok) return outputFormat;
  const transparent = checkBackground(model, f, outputFormat.value);
  if (!transparent.ok) return transparent;
  const moderation = checkModeration(model, f);
  if (moderation) return refuse(moderation);
  const style = checkStyle(model, f);
  if (!style.ok) return style;
  const watermark = checkWatermark(model, f);
  if (!watermark.ok) return watermark;
  const { width, height } = pixels.value;
  return {
    ok: true,
    request: {
      endpoint,
      model,
      prompt: body.prompt,
      n: n.value,
      size: `${width}x${height}`,
      width,
      height,
      quality: quality.value,
      outputFormat: outputFormat.value,
      responseFormat: responseFormat.value,
      referenceImages: referenceImages.value,
      watermark: watermark.value,
      style: style.value,
      transparent: transparent.value,
    },
  };
}

/** The prompt is there and not too long; streaming is asked for only to be refused. */
function checkPrompt(prompt: string, model: ImagesModel, f: Forwarded): ImagesErrorAnswer | undefined {
  if (!prompt.trim()) return missingPrompt(model);
  if (prompt.length > model.maxPromptChars) {
    return invalidField(model, 'prompt', `the prompt is ${prompt.length} characters, at most ${model.maxPromptChars}`);
  }
  if (given(f, 'stream') && booleanOf(f.stream) === true) return invalidField(model, 'stream', 'the mock does not stream images');
  return undefined;
}

/** How many reference images: files on /edits, Seedream's `image` on /generations. */
function checkReferenceImages(body: ImagesBody, model: ImagesModel, endpoint: ImagesEndpoint, f: Forwarded): Field<number> {
  if (endpoint === 'edits') return checkEditFiles(body.files, model);
  if (!given(f, 'image') && !given(f, 'images')) return accept(0);
  if (model.family !== 'seedream') return refuse(unknownParameter(given(f, 'image') ? 'image' : 'images'));
  const counted = seedreamReferences(model, f.image ?? f.images);
  return typeof counted === 'number' ? accept(counted) : refuse(counted);
}

function checkEditFiles(files: Buffer[], model: ImagesModel): Field<number> {
  if (!model.edits) {
    return refuse(openaiInvalid(`Invalid value: '${model.id}'. /v1/images/edits takes gpt-image-1.5, gpt-image-2 or dall-e-2.`, 'model'));
  }
  if (files.length === 0) return refuse(openaiInvalid("Missing required parameter: 'image'.", 'image', 'missing_required_parameter'));
  if (files.length > model.maxReferenceImages) {
    return refuse(openaiInvalid(`Invalid 'image': too many images, ${files.length} > ${model.maxReferenceImages}.`, 'image', 'invalid_value'));
  }
  const bad = files.findIndex((file) => !imageMagic(file));
  if (bad >= 0) {
    return refuse(openaiInvalid(`Invalid file 'image[${bad}]': unsupported image. Supported formats are 'image/jpeg', 'image/png', and 'image/webp'.`, 'image', 'invalid_image_file'));
  }
  return accept(files.length);
}

/** `n`: within the model's limit, and for Seedream within 15 images counting the references. */
function checkCount(model: ImagesModel, f: Forwarded, referenceImages: number): Field<number> {
  const n = given(f, 'n') ? integerOf(f.n) : 1;
  if (n === undefined || n < 1) return refuse(invalidField(model, 'n', `n must be an integer of at least 1, got ${JSON.stringify(f.n)}`));
  if (n > model.maxImages) {
    return refuse(model.maxImages === 1 ? openaiInvalid('You must provide n=1 for this model.', 'n') : invalidField(model, 'n', `n must be at most ${model.maxImages}, got ${n}`));
  }
  if (model.family === 'seedream' && n + referenceImages > 15) {
    return refuse(invalidField(model, 'n', `reference images and generated images together must be at most 15, got ${referenceImages} + ${n}`));
  }
  return accept(n);
}

function checkSize(model: ImagesModel, f: Forwarded): Field<{ width: number; height: number }> {
  const sizeAsked = given(f, 'size') ? f.size : model.defaultSize;
  if (typeof sizeAsked !== 'string') return refuse(invalidField(model, 'size', `size must be a string, got ${JSON.stringify(sizeAsked)}`));
  const pixels = resolveSize(model, sizeAsked);
  if (!('refused' in pixels)) return accept(pixels);
  // DALL-E and GPT Image without free sizes take presets only, and say so as for any list.
  if (model.family === 'dall-e' || (model.family === 'gpt-image' && !model.freeSize)) {
    return refuse(oneOf(model, 'size', sizeAsked, Object.keys(model.presets)) as ImagesErrorAnswer);
  }
  return refuse(invalidField(model, 'size', pixels.refused));
}

/** The quality billed: `auto` resolved; undefined for models without qualities (Seedream). */
function checkQuality(model: ImagesModel, f: Forwarded): Field<string | undefined> {
  if (model.qualities.length === 0) return accept(undefined);
  const asked = given(f, 'quality') ? f.quality : model.defaultQuality;
  const refused = oneOf(model, 'quality', asked, model.qualities);
  if (refused) return refuse(refused);
  return accept(asked === 'auto' ? AUTO_QUALITY : (asked as string));
}

function checkResponseFormat(model: ImagesModel, f: Forwarded): Field<ResponseFormat> {
  if (!given(f, 'response_format')) return accept(model.defaultResponseFormat);
  const refused = oneOf(model, 'response_format', f.response_format, model.responseFormats);
  return refused ? refuse(refused) : accept(f.response_format as ResponseFormat);
}

/** `output_format`, where the model has a choice, and GPT Image's `output_compression` for it. */
function checkOutputFormat(model: ImagesModel, f: Forwarded): Field<OutputFormat> {
  let outputFormat = model.defaultFormat;
  if (given(f, 'output_format') && model.outputFormats.length > 0) {
    const refused = oneOf(model, 'output_format', f.output_format, model.outputFormats);
    if (refused) return refuse(refused);
    outputFormat = f.output_format as OutputFormat;
  }
  if (given(f, 'output_compression') && model.family === 'gpt-image') {
    const compression = integerOf(f.output_compression);
    if (compression === undefined || compression < 0 || compression > 100) {
      return refuse(invalidField(model, 'output_compression', 'output_compression must be an integer from 0 to 100'));
    }
    if (outputFormat === 'png') return refuse(invalidField(model, 'output_compression', 'output_compression is only for jpeg and webp'));
  }
  return accept(outputFormat);
}

/** GPT Image's `background`: true for a transparent one, which jpeg cannot hold. */
function checkBackground(model: ImagesModel, f: Forwarded, outputFormat: OutputFormat): Field<boolean> {
  if (!given(f, 'background') || model.family !== 'gpt-image') return accept(false);
  const refused = oneOf(model, 'background', f.background, model.backgrounds);
  if (refused) return refuse(refused);
  const transparent = f.background === 'transparent';
  if (transparent && outputFormat === 'jpeg') {
    return refuse(invalidField(model, 'background', 'a transparent background needs output_format png or webp'));
  }
  return accept(transparent);
}

function checkModeration(model: ImagesModel, f: Forwarded): ImagesErrorAnswer | undefined {
  if (!given(f, 'moderation') || model.family !== 'gpt-image') return undefined;
  return oneOf(model, 'moderation', f.moderation, ['low', 'auto']);
}

/** The style answered: the one asked, else the model's first (DALL-E 3's `vivid`), else none. */
function checkStyle(model: ImagesModel, f: Forwarded): Field<string | undefined> {
  const fallback = model.styles.length > 0 ? model.styles[0] : undefined;
  if (!given(f, 'style') || model.styles.length === 0) return accept(fallback);
  const refused = oneOf(model, 'style', f.style, model.styles);
  return refused ? refuse(refused) : accept(f.style as string);
}

/** Seedream watermarks unless told not to; the others never do. */
function checkWatermark(model: ImagesModel, f: Forwarded): Field<boolean> {
  if (model.family !== 'seedream') return accept(false);
  const asked = given(f, 'watermark') ? booleanOf(f.watermark) : true;
  return asked === undefined ? refuse(invalidField(model, 'watermark', 'watermark must be true or false')) : accept(asked);
}
