/**
 * The OpenAI-style images provider (`{base}/v1/images/generations`, and `/edits` for GPT Image
 * with reference images): the same base URL and Bearer key as the Gemini models, one keep-alive
 * connection pool per process, long timeouts, the answer streamed to disk and its links fetched
 * (without the key) before they expire.
 */
import { Agent, request } from 'undici';
import { CallError, redact } from '../../core/errors.js';
import type { BatchRow } from '../../core/types.js';
import { classifyNetworkError } from '../http-errors.js';
import type { ImageLinks } from '../image-link.js';
import { endpointAgent, MAX_ERROR_BODY, readCapped } from '../http-body.js';
import { MalformedAnswerError } from '../json-image-scanner.js';
import type { GenerateOptions, Provider, ProviderAnswer } from '../provider.js';
import { ImagesAnswerScanner, readImagesAnswer } from './answer.js';
import { classifyHttpError } from './errors.js';
import { findImagesModel } from './models.js';
import { buildImagesRequest } from './request.js';

export interface OpenAiImagesOptions {
  baseUrl: string;
  apiKey: string;
  /** Longest wait for an answer, from sending to the last byte. */
  timeoutMs: number;
  /** Connections kept open to the endpoint; at least the number of calls in flight. */
  connections: number;
  /** Where image links are fetched (shared with the Gemini provider's link fallback). */
  links: ImageLinks;
}

export class OpenAiImagesProvider implements Provider {
  readonly name = 'openai-images';
  private readonly agent: Agent;

  constructor(private readonly options: OpenAiImagesOptions) {
    this.agent = endpointAgent(options);
  }

  async generate(row: BatchRow, { sink, signal }: GenerateOptions): Promise<ProviderAnswer> {
    const model = findImagesModel(row.model);
    if (!model) throw new CallError('rowFailed', `${row.model} is not a model of the images endpoint`);
    const call = await buildImagesRequest(this.options.baseUrl, model, row);
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const callSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;

    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(call.url, {
        method: 'POST',
        dispatcher: this.agent,
        signal: callSignal,
        headers: {
          authorization: `Bearer ${this.options.apiKey}`,
          // undici sets the multipart boundary itself.
          ...(typeof call.body === 'string' ? { 'content-type': 'application/json' } : {}),
          'user-agent': 'tokenhot-batch',
        },
        body: call.body,
      });
    } catch (error) {
      throw this.networkError(error, signal);
    }

    if (response.statusCode !== 200) {
      const text = await readCapped(response.body, MAX_ERROR_BODY).catch(() => '');
      // An endpoint may echo the Authorization header back: the key goes before any message is made.
      throw classifyHttpError(response.statusCode, response.headers, redact(text, this.options.apiKey));
    }

    const scanner = new ImagesAnswerScanner(sink);
    let scanned;
    try {
      for await (const chunk of response.body) await scanner.push(chunk as Buffer);
      scanned = scanner.end();
    } catch (error) {
      await scanner.discard();
      response.body.destroy();
      if (error instanceof MalformedAnswerError) throw new CallError('transient', `unreadable answer: ${error.message}`, { status: 200, cause: error });
      throw this.networkError(error, signal, 'body');
    }
    const body = scanned.skeleton;
    // Some gateways answer an error with a 200: nothing in it is billed.
    if (typeof body === 'object' && body !== null && 'error' in body && !('data' in body) && !('usage' in body)) {
      throw classifyHttpError(200, response.headers, redact(JSON.stringify(body), this.options.apiKey));
    }
    try {
      return await readImagesAnswer(scanned, { model, size: call.size, ...(call.quality ? { quality: call.quality } : {}), links: this.options.links, sink, signal });
    } catch (error) {
      // Only a body that says nothing of being billed gets here: asked again like a body cut short.
      if (error instanceof MalformedAnswerError) throw new CallError('transient', `unreadable answer: ${redact(error.message, this.options.apiKey)}`, { status: 200, cause: error });
      throw error;
    }
  }

  /** A shutdown abort stays an abort; everything else is a transient failure. */
  private networkError(error: unknown, signal: AbortSignal | undefined, phase: 'connect' | 'body' = 'connect'): unknown {
    if (signal?.aborted) return signal.reason;
    return classifyNetworkError(error, phase);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
