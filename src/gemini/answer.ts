/**
 * From a scanned generateContent answer to what the pipeline keeps: the final images (never the
 * interim thought images), the text parts, finishReason, block reason and usageMetadata verbatim.
 */
import { z } from 'zod';
import type { FinalImage, ProviderAnswer } from '../provider.js';
import type { UsageMetadata } from '../types.js';
import { MalformedAnswerError, placeholderIndex, removeTempFile, type ScannedAnswer } from './answer-stream.js';

const partSchema = z.looseObject({
  text: z.string().optional(),
  thought: z.boolean().optional(),
  inlineData: z.looseObject({ mimeType: z.string().optional(), data: z.string().optional() }).optional(),
  inline_data: z.looseObject({ mime_type: z.string().optional(), data: z.string().optional() }).optional(),
});

const answerSchema = z.looseObject({
  candidates: z
    .array(
      z.looseObject({
        content: z.looseObject({ parts: z.array(partSchema).optional() }).optional(),
        finishReason: z.string().optional(),
        finishMessage: z.string().optional(),
      }),
    )
    .optional(),
  promptFeedback: z.looseObject({ blockReason: z.string().optional(), blockReasonMessage: z.string().optional() }).optional(),
  usageMetadata: z.looseObject({}).optional(),
  modelVersion: z.string().optional(),
  responseId: z.string().optional(),
});

type Part = z.infer<typeof partSchema>;

interface ImagePart {
  index: number;
  mimeType: string;
  thought: boolean;
}

function imagePartOf(part: Part): ImagePart | undefined {
  const index = placeholderIndex(part.inlineData?.data ?? part.inline_data?.data);
  if (index === undefined) return undefined;
  const mimeType = part.inlineData?.mimeType ?? part.inline_data?.mime_type ?? 'application/octet-stream';
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

/** Builds the answer and removes the temporary files of every image that is not final. */
export async function readAnswer(scanned: ScannedAnswer): Promise<ProviderAnswer> {
  const parsed = answerSchema.safeParse(scanned.skeleton);
  if (!parsed.success) throw new MalformedAnswerError(`the answer does not look like generateContent's (${parsed.error.issues[0]?.message ?? 'bad shape'})`);
  const body = parsed.data;
  const candidate = body.candidates?.[0];
  const parts = candidate?.content?.parts ?? [];

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

  return {
    images,
    texts: parts.filter((part) => typeof part.text === 'string' && part.thought !== true).map((part) => part.text as string),
    finishReason: candidate?.finishReason,
    finishMessage: candidate?.finishMessage,
    blockReason: body.promptFeedback?.blockReason,
    usageMetadata: (body.usageMetadata ?? {}) as UsageMetadata,
    modelVersion: body.modelVersion,
    responseId: body.responseId,
    ...(scanned.saveError === undefined ? {} : { saveError: scanned.saveError }),
  };
}
