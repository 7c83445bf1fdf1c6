/**
 * The streaming reader bound to generateContent answers: `inlineData.data` strings are images,
 * `thoughtSignature` strings (1-3 MB on each part of a real answer, of use only to a multi-turn
 * chat) are never held, nor written to a sidecar or the ledger.
 */
import { JsonImageScanner, type JsonFrame } from '../json-image-scanner.js';
import type { ImageSink } from '../provider.js';

export { Base64StreamDecoder, MalformedAnswerError, placeholderIndex, removeTempFile, type ScannedAnswer } from '../json-image-scanner.js';

/** `inlineData.data` (camelCase or snake_case). */
function isInlineData(frames: readonly JsonFrame[]): boolean {
  const top = frames[frames.length - 1];
  const parent = frames[frames.length - 2];
  return Boolean(top?.isObject && top.key === 'data' && parent?.isObject && (parent.key === 'inlineData' || parent.key === 'inline_data'));
}

function isSignature(frames: readonly JsonFrame[]): boolean {
  const top = frames[frames.length - 1];
  return Boolean(top?.isObject && (top.key === 'thoughtSignature' || top.key === 'thought_signature'));
}

export class AnswerScanner extends JsonImageScanner {
  constructor(sink: ImageSink) {
    super(sink, { isImage: isInlineData, isSkipped: isSignature });
  }
}
