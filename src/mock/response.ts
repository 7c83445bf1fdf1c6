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

export async function buildAnswer(ctx: AnswerContext): Promise<BuiltAnswer> {
  const { request, directives, model } = ctx;
  const responseId = randomBytes(12).toString('base64url');
  const modelVersion = JSON.stringify(ctx.modelId);
  const tail = (usage: UsageMetadata) =>
    `"usageMetadata":${JSON.stringify(usage)},"modelVersion":${modelVersion},"responseId":"${responseId}"}`;
  const body = new BodyWriter();

  const gateway = directives.gateway;
  const signature = (): string => thoughtSignature(directives.signatureBytes);
  if (directives.blocked) {
    const usage = blockedUsage(request.prompt, request.referenceImages);
    body.text(`{${gateway ? `"candidates":null,${gatewayTopFields()}` : ''}"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},${tail(usage)}`);
    return finish(body, 'blocked', usage, [], 0, undefined);
  }

  const words = stripDirectives(request.prompt);
  const gemini3 = model.thoughtImages;
  const noImage = directives.noImage !== undefined || !request.wantsImage;
  const finalCount = noImage ? 0 : directives.twoImages ? 2 : 1;
  const thoughtCount = !noImage && gemini3 && ctx.thoughtImages ? 2 : 0;
  // A no-image answer always explains itself in text, whatever modalities were asked for.
  const textPart = request.wantsText || noImage;

  const render = (role: ImageRole, index: number): Promise<AnswerImage> =>
    ctx.images.image(
      {
        mimeType: model.outputMimeType,
        size: request.imageSize,
        aspectRatio: request.aspectRatio,
        prompt: words,
        role,
      },
      `tokenhot-mock seq=${ctx.seq} part=${index} role=${role} response=${responseId}`,
      role === 'final',
    );
  const thoughts = await Promise.all(
    Array.from({ length: thoughtCount }, (_, i) => render(i === 0 ? 'thought-1' : 'thought-2', i)),
  );
  const finals = await Promise.all(Array.from({ length: finalCount }, (_, i) => render('final', thoughtCount + i)));
  const usageOf = (textPart: boolean): UsageMetadata =>
    answerUsage({
      model,
      prompt: request.prompt,
      referenceImages: request.referenceImages,
      imageSize: request.imageSize,
      finalImages: finalCount,
      textPart,
      textDetails: directives.textDetails,
    });

  if (gateway && noImage) {
    // What a Go gateway makes of a blocked image: no parts at all (`null`), the thinking still billed.
    const usage: UsageMetadata = { ...usageOf(false), candidatesTokensDetails: null };
    const finishReason = directives.noImage ?? 'STOP';
    const message = 'Unable to show the generated image. The image was filtered out because it violated Google\'s Generative AI Prohibited Use policy.';
    body.text(`{"candidates":[{"content":{"parts":null,"role":"model"},"finishReason":"${finishReason}","finishMessage":${JSON.stringify(message)}}],${gatewayTopFields()}${tail(usage)}`);
    return finish(body, 'no-image', usage, [], 0, undefined);
  }

  let parts = 0;
  body.text('{"candidates":[{"content":{"role":"model","parts":[');
  const separator = () => {
    if (parts++ > 0) body.text(',');
  };
  if (gemini3) {
    separator();
    const plan = `**Composing the image**\n\nPlanning the layout for: ${words.slice(0, 80)}`;
    body.text(JSON.stringify({ text: plan, thought: true, ...(directives.signatureBytes ? { thoughtSignature: signature() } : {}) }));
  }
  for (const image of thoughts) {
    separator();
    writeImagePart(body, image, true, signature());
  }
  if (textPart) {
    separator();
    const text = noImage
      ? "I'm unable to generate that image. Try rephrasing the request."
      : finalCount > 1
        ? 'Here are two takes on your request.'
        : 'Here is the image you asked for.';
    body.text(JSON.stringify({ text, ...(directives.signatureBytes ? { thoughtSignature: signature() } : {}) }));
  }
  let cutAt: number | undefined;
  for (const image of finals) {
    separator();
    const data = writeImagePart(body, image, directives.allThought, gemini3 || directives.signatureBytes ? signature() : undefined);
    // Cut in the middle of the first final image's data: headers and JSON prefix arrive intact.
    cutAt ??= Math.floor((data.start + data.end) / 2);
  }
  const finishReason = noImage ? (directives.noImage ?? 'STOP') : 'STOP';
  body.text(gateway ? `]},"finishReason":"${finishReason}",${GATEWAY_CANDIDATE_FIELDS}}],${gatewayTopFields()}` : `]},"finishReason":"${finishReason}","index":0}],`);
  const usage = usageOf(textPart);
  body.text(tail(usage));
  const logged = finals.map((f) => ({ mimeType: f.mimeType, sha256: f.sha256 ?? '', bytes: f.bytes }));
  return finish(body, noImage ? 'no-image' : 'image', usage, logged, thoughtCount, cutAt);
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
