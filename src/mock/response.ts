/**
 * Success answers (images, blocked, no image) as a list of buffers ready for one writev: the
 * large base64 image data goes in as the cached buffers themselves, never copied into a JSON
 * string. The JSON is laid out like the real endpoint's, including `thought` after
 * `inlineData`, which a streaming reader only learns after the image bytes.
 */
import { randomBytes } from 'node:crypto';
import type { ModelCapabilities } from '../providers/models.js';
import type { UsageMetadata } from '../core/types.js';
import type { Directives } from './directives.js';
import { stripDirectives } from './directives.js';
import type { AnswerImage, ImageFactory, ImageRole } from './images.js';
import type { GenerateRequest } from './request.js';
import { answerUsage, blockedUsage } from './usage.js';
import { BodyWriter } from './body-writer.js';

export interface BuiltAnswer {
  kind: 'image' | 'blocked' | 'no-image';
  pieces: Buffer[];
  length: number;
  /** Where `[mock:cut]` stops: inside the final image's base64, else mid-body. */
  cutAt: number;
  usageMetadata: UsageMetadata;
  finals: { mimeType: string; sha256: string; bytes: number }[];
  thoughtImages: number;
}

export interface AnswerContext {
  seq: number;
  modelId: string;
  model: ModelCapabilities;
  request: GenerateRequest;
  directives: Directives;
  /** Whether Gemini 3 models send their interim thought images (server option). */
  thoughtImages: boolean;
  images: ImageFactory;
}

/** Opaque like the real one; only its presence and round trip matter to clients. */
function thoughtSignature(bytes = 96): string {
  return bytes === 96 ? randomBytes(96).toString('base64') : bigSignature(bytes);
}

const bigSignatures = new Map<number, string>();

/** Megabyte signatures are made once per size: only their length matters to a reader. */
function bigSignature(bytes: number): string {
  let signature = bigSignatures.get(bytes);
  if (signature === undefined) {
    signature = randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').slice(0, bytes);
    bigSignatures.set(bytes, signature);
  }
  return signature;
}

/** Fields a gateway adds that the reader does not know (recorded from real answers). */
const GATEWAY_CANDIDATE_FIELDS = '"groundingMetadata":{"webSearchQueries":null,"groundingChunks":null}';
const gatewayTopFields = (): string => `"serviceTier":"standard","trafficType":"ON_DEMAND","createTime":${JSON.stringify(new Date().toISOString())},`;

/** Writes one image part; returns the byte range of its base64 data in the body. */
function writeImagePart(
  body: BodyWriter,
  image: AnswerImage,
  thought: boolean,
  signature: string | undefined,
): { start: number; end: number } {
  body.text(`{"inlineData":{"mimeType":${JSON.stringify(image.mimeType)},"data":"`);
  const start = body.offset();
  body.raw(image.data);
  const end = body.offset();
  body.text(`"}${thought ? ',"thought":true' : ''}${signature ? `,"thoughtSignature":"${signature}"` : ''}}`);
  return { start, end };
}

/** What an answer holds, decided before anything is rendered. */
interface AnswerShape {
  /** The prompt without its directives: what the images are "of". */
  words: string;
  /** Gemini 3 models think in text and interim images before the final one. */
  gemini3: boolean;
  noImage: boolean;
  finalCount: number;
  thoughtCount: number;
  textPart: boolean;
}

/** The parts every answer ends with: its id, the model version and the usage. */
interface AnswerFrame {
  responseId: string;
  tail(usage: UsageMetadata): string;
}

export async function buildAnswer(ctx: AnswerContext): Promise<BuiltAnswer> {
  const frame = answerFrame(ctx.modelId);
  if (ctx.directives.blocked) return blockedAnswer(ctx, frame);
  const shape = answerShape(ctx);
  const thoughts = await Promise.all(
    Array.from({ length: shape.thoughtCount }, (_, i) => renderImage(ctx, shape, frame, i === 0 ? 'thought-1' : 'thought-2', i)),
  );
  const finals = await Promise.all(
    Array.from({ length: shape.finalCount }, (_, i) => renderImage(ctx, shape, frame, 'final', shape.thoughtCount + i)),
  );
  if (ctx.directives.gateway && shape.noImage) return gatewayFilteredAnswer(ctx, shape, frame);
  return partsAnswer(ctx, shape, frame, thoughts, finals);
}

function answerFrame(modelId: string): AnswerFrame {
  const responseId = randomBytes(12).toString('base64url');
  const modelVersion = JSON.stringify(modelId);
  return {
    responseId,
    // A newline after the last bracket, as Google's servers and Go's JSON encoder end a body.
    tail: (usage) => `"usageMetadata":${JSON.stringify(usage)},"modelVersion":${modelVersion},"responseId":"${responseId}"}\n`,
  };
}

function answerShape(ctx: AnswerContext): AnswerShape {
  const { request, directives, model } = ctx;
  const gemini3 = model.thoughtImages;
  const noImage = directives.noImage !== undefined || !request.wantsImage;
  return {
    words: stripDirectives(request.prompt),
    gemini3,
    noImage,
    finalCount: noImage ? 0 : directives.twoImages ? 2 : 1,
    thoughtCount: !noImage && gemini3 && ctx.thoughtImages ? 2 : 0,
    // A no-image answer always explains itself in text, whatever modalities were asked for.
    textPart: request.wantsText || noImage,
  };
}

function renderImage(ctx: AnswerContext, shape: AnswerShape, frame: AnswerFrame, role: ImageRole, index: number): Promise<AnswerImage> {
  return ctx.images.image(
    {
      mimeType: ctx.model.outputMimeType,
      size: ctx.request.imageSize,
      aspectRatio: ctx.request.aspectRatio,
      prompt: shape.words,
      role,
    },
    `tokenhot-mock seq=${ctx.seq} part=${index} role=${role} response=${frame.responseId}`,
    role === 'final',
  );
}

function usageOf(ctx: AnswerContext, shape: AnswerShape, textPart: boolean): UsageMetadata {
  return answerUsage({
    model: ctx.model,
    prompt: ctx.request.prompt,
    referenceImages: ctx.request.referenceImages,
    imageSize: ctx.request.imageSize,
    finalImages: shape.finalCount,
    textPart,
    textDetails: ctx.directives.textDetails,
  });
}

function blockedAnswer(ctx: AnswerContext, frame: AnswerFrame): BuiltAnswer {
  const body = new BodyWriter();
  const usage = blockedUsage(ctx.request.prompt, ctx.request.referenceImages);
  body.text(`{${ctx.directives.gateway ? `"candidates":null,${gatewayTopFields()}` : ''}"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},${frame.tail(usage)}`);
  return finish(body, 'blocked', usage, [], 0, undefined);
}

/** What a Go gateway makes of a blocked image: no parts at all (`null`), the thinking still billed. */
function gatewayFilteredAnswer(ctx: AnswerContext, shape: AnswerShape, frame: AnswerFrame): BuiltAnswer {
  const body = new BodyWriter();
  const usage: UsageMetadata = { ...usageOf(ctx, shape, false), candidatesTokensDetails: null };
  const finishReason = ctx.directives.noImage ?? 'STOP';
  const message = 'Unable to show the generated image. The image was filtered out because it violated Google\'s Generative AI Prohibited Use policy.';
  body.text(`{"candidates":[{"content":{"parts":null,"role":"model"},"finishReason":"${finishReason}","finishMessage":${JSON.stringify(message)}}],${gatewayTopFields()}${frame.tail(usage)}`);
  return finish(body, 'no-image', usage, [], 0, undefined);
}

/** An answer with parts: the thinking (Gemini 3), the text, the final images. */
function partsAnswer(
  ctx: AnswerContext,
  shape: AnswerShape,
  frame: AnswerFrame,
  thoughts: readonly AnswerImage[],
  finals: readonly AnswerImage[],
): BuiltAnswer {
  const { directives } = ctx;
  const body = new BodyWriter();
  body.text('{"candidates":[{"content":{"role":"model","parts":[');
  const cutAt = writeParts(body, ctx, shape, thoughts, finals);
  const finishReason = shape.noImage ? (directives.noImage ?? 'STOP') : 'STOP';
  body.text(directives.gateway ? `]},"finishReason":"${finishReason}",${GATEWAY_CANDIDATE_FIELDS}}],${gatewayTopFields()}` : `]},"finishReason":"${finishReason}","index":0}],`);
  const usage = usageOf(ctx, shape, shape.textPart);
  body.text(frame.tail(usage));
  const logged = finals.map((f) => ({ mimeType: f.mimeType, sha256: f.sha256 ?? '', bytes: f.bytes }));
  return finish(body, shape.noImage ? 'no-image' : 'image', usage, logged, shape.thoughtCount, cutAt);
}

/** Writes the parts in the real endpoint's order; returns where `[mock:cut]` stops. */
function writeParts(
  body: BodyWriter,
  ctx: AnswerContext,
  shape: AnswerShape,
  thoughts: readonly AnswerImage[],
  finals: readonly AnswerImage[],
): number | undefined {
  const { directives } = ctx;
  const signature = (): string => thoughtSignature(directives.signatureBytes);
  let parts = 0;
  const separator = () => {
    if (parts++ > 0) body.text(',');
  };
  if (shape.gemini3) {
    separator();
    const plan = `**Composing the image**\n\nPlanning the layout for: ${shape.words.slice(0, 80)}`;
    body.text(JSON.stringify({ text: plan, thought: true, ...(directives.signatureBytes ? { thoughtSignature: signature() } : {}) }));
  }
  for (const image of thoughts) {
    separator();
    writeImagePart(body, image, true, signature());
  }
  if (shape.textPart) {
    separator();
    const text = shape.noImage
      ? "I'm unable to generate that image. Try rephrasing the request."
      : shape.finalCount > 1
        ? 'Here are two takes on your request.'
        : 'Here is the image you asked for.';
    body.text(JSON.stringify({ text, ...(directives.signatureBytes ? { thoughtSignature: signature() } : {}) }));
  }
  let cutAt: number | undefined;
  for (const image of finals) {
    separator();
    const data = writeImagePart(body, image, directives.allThought, shape.gemini3 || directives.signatureBytes ? signature() : undefined);
    // Cut in the middle of the first final image's data: headers and JSON prefix arrive intact.
    cutAt ??= Math.floor((data.start + data.end) / 2);
  }
  return cutAt;
}

function finish(
  body: BodyWriter,
  kind: BuiltAnswer['kind'],
  usageMetadata: UsageMetadata,
  finals: BuiltAnswer['finals'],
  thoughtImages: number,
  cutAt: number | undefined,
): BuiltAnswer {
  body.flush();
  return {
    kind,
    pieces: body.pieces,
    length: body.length,
    cutAt: cutAt ?? Math.floor(body.length / 2),
    usageMetadata,
    finals,
    thoughtImages,
  };
}
