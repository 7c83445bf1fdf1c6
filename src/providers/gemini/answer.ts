/**
 * From a scanned generateContent answer to what the pipeline keeps: the final images (never the
 * interim thought images), the text parts, finishReason, block reason and usageMetadata verbatim.
 *
 * Read leniently: gateways re-serialize answers (a Go one writes an empty list as `null`), drop
 * `index`, add fields of their own. An answer that carries `usageMetadata` was billed, so it is
 * always returned, whatever else its body holds: a shape that yields no image becomes a row
 * failure naming what was missing (`problem`), never an error that would ask (and bill) again.
 *
 * Some gateways answer the image as a link instead of inline data: a `fileData.fileUri` part, or
 * a text part holding a Markdown image link `![...](https://...)`. An answer with no inline image
 * has those fetched at once (image-link.ts), like the images endpoint's links.
 */
import type { ImageLinks } from '../image-link.js';
import type { FinalImage, ImageSink, ProviderAnswer } from '../provider.js';
import type { UsageMetadata } from '../../core/types.js';
import { MalformedAnswerError, placeholderIndex, removeTempFile, type ScannedAnswer } from './answer-stream.js';
import { geminiBilling } from './usage.js';

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);
const stringOf = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** What one lenient look at a field found: the value, or words for what was wrong with it. */
type Found<T> = { value: T; problem?: undefined } | { value?: undefined; problem: string };

/** `path` as a list, or words for what is there instead (`null`, nothing, another type). */
function listAt(container: Fields, key: string, path: string): Found<unknown[]> {
  const value = container[key];
  if (Array.isArray(value)) return { value };
  if (value === undefined) return { problem: `no ${path}` };
  return { problem: `${path} is ${value === null ? 'null' : `not a list (${typeof value})`}` };
}

function objectAt(container: Fields, key: string, path: string): Found<Fields> {
  const value = container[key];
  if (isObject(value)) return { value };
  if (value === undefined) return { problem: `no ${path}` };
  return { problem: `${path} is ${value === null ? 'null' : `not an object (${Array.isArray(value) ? 'list' : typeof value})`}` };
}

interface ImagePart {
  index: number;
  mimeType: string;
  thought: boolean;
}

function imagePartOf(part: Fields): ImagePart | undefined {
  const inline = isObject(part.inlineData) ? part.inlineData : isObject(part.inline_data) ? part.inline_data : undefined;
  const index = placeholderIndex(inline?.data);
  if (index === undefined || !inline) return undefined;
  const mimeType = stringOf(inline.mimeType) ?? stringOf(inline.mime_type) ?? 'application/octet-stream';
  return { index, mimeType, thought: part.thought === true };
}

/**
 * The final images of an answer: every non-thought image part. When every image part is marked
 * thought (a known bug of the Gemini 3 models), the last one is the final image.
 */
export function selectFinalImages(parts: ImagePart[]): ImagePart[] {
  const images = parts.filter((part) => part.mimeType.startsWith('image/'));
  const finals = images.filter((part) => !part.thought);
  if (finals.length > 0) return finals;
  const last = images[images.length - 1];
  return last ? [last] : [];
}

/** The first candidate's parts, or what kept the reader from them. */
function partsOf(body: Fields): { candidate?: Fields; parts: Fields[]; problem?: string } {
  const candidates = listAt(body, 'candidates', 'candidates');
  if (candidates.problem !== undefined) return { parts: [], problem: candidates.problem };
  const first = candidates.value[0];
  if (!isObject(first)) return { parts: [], problem: first === undefined ? 'candidates is empty' : 'candidates[0] is not an object' };
  const content = objectAt(first, 'content', 'candidates[0].content');
  if (content.problem !== undefined) return { candidate: first, parts: [], problem: content.problem };
  const parts = listAt(content.value, 'parts', 'candidates[0].content.parts');
  if (parts.problem !== undefined) return { candidate: first, parts: [], problem: parts.problem };
  return { candidate: first, parts: parts.value.filter(isObject) };
}

/** Where an answer's image links are fetched to; without it, links are not looked for. */
export interface LinkFetching {
  links: ImageLinks;
  sink: ImageSink;
  signal?: AbortSignal;
}

/** A Markdown image link in a text part: `![alt](https://...)`, optionally with a title. */
const MARKDOWN_IMAGE = /!\[[^\]]*\]\(\s*<?((?:https?:\/\/|data:image\/)[^\s)>]+)>?(?:\s+"[^"]*")?\s*\)/g;

/** The image links of the answer's non-thought parts, in part order. */
export function imageLinksOf(parts: Fields[]): string[] {
  const links: string[] = [];
  for (const part of parts) {
    if (part.thought === true) continue;
    const file = isObject(part.fileData) ? part.fileData : isObject(part.file_data) ? part.file_data : undefined;
    const uri = stringOf(file?.fileUri) ?? stringOf(file?.file_uri);
    if (uri) links.push(uri);
    if (typeof part.text === 'string') for (const match of part.text.matchAll(MARKDOWN_IMAGE)) links.push(match[1]!);
  }
  return links;
}

/**
 * Builds the answer and removes the temporary files of every image that is not final. Throws
 * `MalformedAnswerError` only for a body that carries no usage (nothing says it was billed).
 */
export async function readAnswer(scanned: ScannedAnswer, fetching?: LinkFetching): Promise<ProviderAnswer> {
  const body = scanned.skeleton;
  const usage = isObject(body) && isObject(body.usageMetadata) ? (body.usageMetadata as UsageMetadata) : undefined;
  if (!isObject(body)) {
    await discardAll(scanned);
    throw new MalformedAnswerError(`the answer is not a generateContent answer (a JSON ${Array.isArray(body) ? 'list' : typeof body})`);
  }
  const { candidate, parts, problem } = partsOf(body);
  if (problem !== undefined && usage === undefined && !isObject(body.promptFeedback)) {
    await discardAll(scanned);
    throw new MalformedAnswerError(`the answer does not look like generateContent's (${problem}, no usageMetadata)`);
  }

  const finals = selectFinalImages(parts.map(imagePartOf).filter((part): part is ImagePart => part !== undefined));
  const kept = new Set(finals.map((part) => part.index));
  const images: FinalImage[] = [];
  for (const part of finals) {
    const image = scanned.images.get(part.index);
    // Missing only when it could not be saved; `saveError` says why.
    if (image) images.push({ ...image, mimeType: part.mimeType });
  }
  await Promise.all(
    [...scanned.images.entries()].filter(([index]) => !kept.has(index)).map(([, image]) => removeTempFile(image.tempPath)),
  );

  // The gateway's fallback: an answer with no inline image may hold it as a link.
  let saveError = scanned.saveError;
  const linkProblems: string[] = [];
  if (finals.length === 0 && fetching && saveError === undefined) {
    for (const link of imageLinksOf(parts)) {
      const fetched = await fetching.links.fetch(link, fetching.sink, fetching.signal);
      if ('image' in fetched) images.push(fetched.image);
      else if ('failed' in fetched) linkProblems.push(fetched.failed);
      else {
        saveError = fetched.saveError;
        break;
      }
    }
  }

  const feedback = isObject(body.promptFeedback) ? body.promptFeedback : undefined;
  const blockReason = stringOf(feedback?.blockReason);
  return {
    images,
    texts: parts.filter((part) => typeof part.text === 'string' && part.thought !== true).map((part) => part.text as string),
    finishReason: stringOf(candidate?.finishReason),
    finishMessage: stringOf(candidate?.finishMessage),
    blockReason,
    usage: { field: 'usageMetadata', value: usage ?? {} },
    billing: geminiBilling(usage ?? {}),
    modelVersion: stringOf(body.modelVersion),
    responseId: stringOf(body.responseId),
    // A blocked prompt has no candidates, a blocked image often no parts, by design: the reason
    // says all there is. Only a shape nothing explains is named.
    ...(images.length === 0 && linkProblems.length > 0
      ? { problem: linkProblems.join('; ') }
      : problem !== undefined && blockReason === undefined && finals.length === 0 && !explainsNoImage(stringOf(candidate?.finishReason))
        ? { problem }
        : {}),
    ...(saveError === undefined ? {} : { saveError }),
  };
}

/** finishReasons that say why an answer has no image (the design page's list, and Google's). */
const NO_IMAGE_REASONS = new Set(['IMAGE_SAFETY', 'NO_IMAGE', 'IMAGE_OTHER', 'IMAGE_PROHIBITED_CONTENT', 'IMAGE_RECITATION', 'PROHIBITED_CONTENT', 'SAFETY', 'RECITATION', 'BLOCKLIST', 'SPII']);

function explainsNoImage(finishReason: string | undefined): boolean {
  return finishReason !== undefined && NO_IMAGE_REASONS.has(finishReason);
}

async function discardAll(scanned: ScannedAnswer): Promise<void> {
  await Promise.all([...scanned.images.values()].map((image) => removeTempFile(image.tempPath)));
}
