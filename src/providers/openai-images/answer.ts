/**
 * From a streamed images answer to what the pipeline keeps. `data[i].b64_json` strings were
 * decoded into temporary files as they came (see ImagesAnswerScanner); `data[i].url` links are
 * fetched now, into the same sink, before they expire. Every image is an image by its bytes: the
 * answer says no type.
 *
 * A 200 with `data` (DALL·E sends no usage) or with `usage` is billed, so it is always returned,
 * whatever else its body holds: an image that cannot be had (a failed group image, an expired
 * link, bytes that are no image) becomes a row failure naming why, never a call asked again.
 */
import { open } from 'node:fs/promises';
import { sniffImageMime, SNIFF_BYTES } from '../../rows/image-type.js';
import type { ImageLinks } from '../image-link.js';
import { JsonImageScanner, MalformedAnswerError, placeholderIndex, removeTempFile, type JsonFrame, type ScannedAnswer } from '../json-image-scanner.js';
import type { FinalImage, ImageSink, ProviderAnswer } from '../provider.js';
import type { ImagesModel } from './models.js';
import { imagesBilling } from './usage.js';

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);
const stringOf = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/** `data[i].b64_json` of the top-level object. */
function isB64Json(frames: readonly JsonFrame[]): boolean {
  const [root, list, item] = frames;
  return frames.length === 3 && root!.isObject && root!.key === 'data' && !list!.isObject && item!.isObject && item!.key === 'b64_json';
}

export class ImagesAnswerScanner extends JsonImageScanner {
  constructor(sink: ImageSink) {
    super(sink, { isImage: isB64Json });
  }
}

export interface AnswerContext {
  model: ImagesModel;
  /** The size and quality asked for: what DALL·E bills by. */
  size: string;
  quality?: string;
  links: ImageLinks;
  sink: ImageSink;
  signal?: AbortSignal;
}

/** The type of an image file by its first bytes. */
async function sniffFile(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
    return sniffImageMime(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** `code: message` of a failed group image (`data[i].error`). */
function failedImageWords(error: unknown): string {
  if (!isObject(error)) return String(error);
  const code = stringOf(error.code);
  const message = stringOf(error.message);
  return [code, message].filter(Boolean).join(': ') || 'no reason given';
}

/**
 * Reads a scanned answer; fetches its links. Throws `MalformedAnswerError` only for a body that
 * says nothing of being billed (no `data`, no `usage`), which is asked again like a body cut short.
 */
export async function readImagesAnswer(scanned: ScannedAnswer, context: AnswerContext): Promise<ProviderAnswer> {
  const body = scanned.skeleton;
  const usage = isObject(body) && isObject(body.usage) ? body.usage : undefined;
  const data = isObject(body) ? body.data : undefined;
  if (!isObject(body) || (!Array.isArray(data) && usage === undefined)) {
    await Promise.all([...scanned.images.values()].map((image) => removeTempFile(image.tempPath)));
    const what = !isObject(body) ? `a JSON ${Array.isArray(body) ? 'list' : typeof body}` : data === undefined ? 'no data, no usage' : `data is ${data === null ? 'null' : typeof data}, no usage`;
    throw new MalformedAnswerError(`the answer is not an images answer (${what})`);
  }

  const images: FinalImage[] = [];
  const texts: string[] = [];
  const problems: string[] = [];
  let saveError = scanned.saveError;
  let failedCode: string | undefined;
  const items = Array.isArray(data) ? data : [];
  for (const [i, item] of items.entries()) {
    const which = items.length > 1 ? `image ${i + 1}` : 'the image';
    if (!isObject(item)) {
      problems.push(`data[${i}] is ${item === null ? 'null' : typeof item}`);
      continue;
    }
    const revised = stringOf(item.revised_prompt);
    if (revised) texts.push(revised);
    if (item.error !== undefined && item.error !== null) {
      failedCode ??= isObject(item.error) ? stringOf(item.error.code) : undefined;
      problems.push(`${which} failed (${failedImageWords(item.error)})`);
      continue;
    }
    const index = placeholderIndex(item.b64_json);
    if (index !== undefined) {
      const image = scanned.images.get(index);
      // Missing only when it could not be saved; `saveError` says why.
      if (!image) continue;
      let mimeType: string | undefined;
      try {
        mimeType = await sniffFile(image.tempPath);
      } catch (error) {
        // The answer is billed: a file that cannot be read back is a save error, which still
        // reaches the ledger, never an error that loses the bill.
        saveError ??= error;
        continue;
      }
      if (mimeType) images.push({ ...image, mimeType });
      else {
        await removeTempFile(image.tempPath);
        problems.push(`${which}: b64_json holds no image (judged by its content)`);
      }
      continue;
    }
    const url = stringOf(item.url);
    if (url) {
      if (saveError !== undefined) continue;
      const fetched = await context.links.fetch(url, context.sink, context.signal);
      if ('image' in fetched) images.push(fetched.image);
      else if ('failed' in fetched) problems.push(fetched.failed);
      else saveError = fetched.saveError;
      continue;
    }
    problems.push(`data[${i}] has neither b64_json nor url`);
  }
  if (items.length === 0) problems.push(Array.isArray(data) ? 'data is empty' : `no data (${data === null ? 'null' : 'missing'})`);

  const generated = items.filter((item) => isObject(item) && (item.error === undefined || item.error === null)).length;
  return {
    images,
    // A revised prompt describes the image made; with none made it would only blur the reason.
    texts: images.length > 0 ? texts : [],
    // A group image refused by moderation says so in its code; nothing else here is a finish reason.
    ...(images.length === 0 && failedCode ? { finishReason: failedCode } : {}),
    usage: { field: 'usage', value: usage ?? {} },
    billing: imagesBilling(context.model, usage, { images: generated, size: context.size, ...(context.quality ? { quality: context.quality } : {}) }),
    ...(stringOf(body.model) ? { modelVersion: stringOf(body.model) } : {}),
    ...(stringOf(body.id) ? { responseId: stringOf(body.id) } : {}),
    ...(images.length === 0 && problems.length > 0 ? { problem: problems.join('; ') } : {}),
    ...(saveError === undefined ? {} : { saveError }),
  };
}
