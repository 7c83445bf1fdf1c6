/**
 * A 200 answer of the images endpoint, laid out as each vendor's is:
 *   Seedream  {model, created, data:[{url|b64_json, size}], usage:{generated_images, output_tokens, total_tokens}}
 *   GPT Image {created, background, data:[{b64_json|url}], output_format, quality, size, usage:{input_tokens, ...}}
 *   DALL-E    {created, data:[{url|b64_json, revised_prompt (dall-e-3)}]}  (no usage)
 * with its bill worked out beside it for the request log.
 */
import { BodyWriter } from '../body-writer.js';
import { stripDirectives, type Directives } from '../directives.js';
import type { AnswerImage, ImageFactory, ImageMimeType } from '../images.js';
import type { MockBilling, MockImageRecord } from '../records.js';
import { arkImageError } from './errors.js';
import type { LinkStore } from './links.js';
import type { OutputFormat } from './models.js';
import type { ImagesRequest } from './request.js';
import { gptUsage, seedreamUsage } from './usage.js';

export interface ImagesAnswerContext {
  seq: number;
  request: ImagesRequest;
  directives: Directives;
  images: ImageFactory;
  links: LinkStore;
  /** Server option: every link's lifetime (tests shorten it); else the model's own. */
  linkTtlMs?: number;
  /** `http://host:port` as the client reached the mock, for links. */
  origin: string;
}

export interface BuiltImagesAnswer {
  /** `partial`: a Seedream group answer with a failed image. */
  kind: 'image' | 'partial';
  pieces: Buffer[];
  length: number;
  /** Where `[mock:cut]` stops: inside the first base64 image, else mid-body. */
  cutAt: number;
  /** The `usage` sent, if any. */
  usage?: Record<string, unknown>;
  billing: MockBilling;
  images: MockImageRecord[];
}

const MIME_TYPES: Readonly<Record<OutputFormat, ImageMimeType>> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

/** What DALL-E 3 makes of a prompt before drawing it: a longer one, always sent back. */
function revisedPrompt(words: string, style: string | undefined): string {
  return `${words}, depicted in a ${style === 'natural' ? 'natural, realistic' : 'vivid, dramatic'} style with rich detail and balanced composition.`;
}

export async function buildImagesAnswer(ctx: ImagesAnswerContext): Promise<BuiltImagesAnswer> {
  const { request, directives } = ctx;
  const words = stripDirectives(request.prompt);
  // A group with a failed last image: at least two, so that one is made.
  const asked = directives.groupPartial ? Math.max(request.n, 2) : request.n;
  const made = directives.groupPartial ? asked - 1 : asked;
  const rendered = await renderImages(ctx, words, made);

  const body = new BodyWriter();
  writeOpening(body, ctx);
  const { records, cutAt } = writeDataItems(body, ctx, words, rendered);
  if (made < asked) body.text(`${made > 0 ? ',' : ''}{"error":${JSON.stringify(arkImageError())}}`);
  body.text(']');
  const { usage, billing } = usageAndBilling(ctx, made);
  writeClosing(body, ctx, usage);
  body.flush();
  return {
    kind: made < asked ? 'partial' : 'image',
    pieces: body.pieces,
    length: body.length,
    cutAt: cutAt ?? Math.floor(body.length / 2),
    usage,
    billing,
    images: records,
  };
}

function renderImages(ctx: ImagesAnswerContext, words: string, count: number): Promise<AnswerImage[]> {
  const { request } = ctx;
  const mimeType = MIME_TYPES[request.outputFormat];
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      ctx.images.image(
        {
          mimeType,
          size: '',
          aspectRatio: '',
          pixels: { width: request.width, height: request.height },
          prompt: words,
          role: 'final',
          watermark: request.watermark,
          transparent: request.transparent,
        },
        `tokenhot-mock seq=${ctx.seq} image=${i} model=${request.model.id}`,
        true,
      ),
    ),
  );
}

/** The fields before `data`, up to its opening bracket. */
function writeOpening(body: BodyWriter, ctx: ImagesAnswerContext): void {
  const { model } = ctx.request;
  const created = Math.floor(Date.now() / 1000);
  body.text(model.family === 'seedream' ? `{"model":${JSON.stringify(model.id)},"created":${created},` : `{"created":${created},`);
  if (model.family === 'gpt-image') body.text(`"background":"${ctx.request.transparent ? 'transparent' : 'opaque'}",`);
  // Gateways add fields of their own; readers must let them pass.
  if (ctx.directives.gateway && model.family !== 'seedream') body.text('"metadata":null,');
  body.text('"data":[');
}

/** How images are sent: link directives make no sense without links, unless [mock:as-b64] says otherwise. */
function deliveryOf(ctx: ImagesAnswerContext): MockImageRecord['delivery'] {
  const { directives } = ctx;
  const wantsLinks = directives.linkCuts !== undefined || directives.linkExpired;
  return directives.answerAs ?? (wantsLinks ? 'url' : ctx.request.responseFormat);
}

/** One `data` item per image, as a link or as base64; `cutAt` falls inside the first base64 image. */
function writeDataItems(
  body: BodyWriter,
  ctx: ImagesAnswerContext,
  words: string,
  rendered: AnswerImage[],
): { records: MockImageRecord[]; cutAt?: number } {
  const { request, directives } = ctx;
  const { model } = request;
  const delivery = deliveryOf(ctx);
  const records: MockImageRecord[] = [];
  let cutAt: number | undefined;
  const sizeField = model.family === 'seedream' && !directives.gateway ? `,"size":"${request.size}"` : '';
  const revised = model.id === 'dall-e-3' ? `,"revised_prompt":${JSON.stringify(revisedPrompt(words, request.style))}` : '';
  rendered.forEach((image, i) => {
    if (i > 0) body.text(',');
    const record: MockImageRecord = { mimeType: image.mimeType, sha256: image.sha256 ?? '', bytes: image.bytes, delivery };
    if (delivery === 'url') {
      const path = ctx.links.add(image, {
        ttlMs: ctx.linkTtlMs ?? model.linkTtlMs,
        cuts: directives.linkCuts ?? 0,
        expired: directives.linkExpired,
        style: model.family === 'seedream' ? 'tos' : 'azure',
      });
      record.path = path;
      body.text(`{"url":${JSON.stringify(ctx.origin + path)}${sizeField}${revised}}`);
    } else {
      body.text('{"b64_json":"');
      const start = body.offset();
      body.raw(image.data);
      cutAt ??= Math.floor((start + body.offset()) / 2);
      body.text(`"${sizeField}${revised}}`);
    }
    records.push(record);
  });
  return { records, cutAt };
}

/** The `usage` each vendor sends (DALL-E none) and the bill of the images made. */
function usageAndBilling(ctx: ImagesAnswerContext, made: number): { usage?: Record<string, unknown>; billing: MockBilling } {
  const { request, directives } = ctx;
  if (request.model.family === 'seedream') {
    return {
      usage: seedreamUsage(made, request.width, request.height, directives.gateway),
      billing: { images: { count: made, unit: 'image' } },
    };
  }
  if (request.model.family === 'gpt-image') {
    const gpt = gptUsage({
      prompt: request.prompt,
      referenceImages: request.referenceImages,
      quality: request.quality ?? 'high',
      width: request.width,
      height: request.height,
      images: made,
      textDetails: directives.textDetails,
    });
    return { usage: gpt.usage, billing: { tokens: gpt.tokens } };
  }
  return { usage: undefined, billing: { images: { count: made, unit: `${request.size}/${request.quality ?? 'standard'}` } } };
}

/** The fields after `data`: GPT Image's format, quality and size, then the usage. */
function writeClosing(body: BodyWriter, ctx: ImagesAnswerContext, usage: Record<string, unknown> | undefined): void {
  const { request } = ctx;
  if (request.model.family === 'gpt-image') {
    body.text(`,"output_format":"${request.outputFormat}","quality":"${request.quality}","size":"${request.size}"`);
  }
  if (usage) body.text(`,"usage":${JSON.stringify(usage)}`);
  body.text('}');
}
