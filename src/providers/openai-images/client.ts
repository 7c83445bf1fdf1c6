/**
 * The OpenAI-style images provider (`{base}/v1/images/generations`, and `/edits` for GPT Image
 * with reference images): the same base URL and Bearer key as the Gemini models, one keep-alive
 * connection pool per process, long timeouts, the answer streamed to disk and its links fetched
 * (without the key) before they expire.
 */
import type { Agent } from 'undici';
import { CallError, redact } from '../../core/errors.js';
import type { BatchRow } from '../../core/types.js';
import type { ImageLinks } from '../image-link.js';
import { endpointAgent, networkFailure, postToEndpoint } from '../http-body.js';
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
    const response = await postToEndpoint({
      agent: this.agent,
      url: call.url,
      apiKey: this.options.apiKey,
      body: call.body,
      timeoutMs: this.options.timeoutMs,
      signal,
      classifyHttpError,
    });

    const scanner = new ImagesAnswerScanner(sink);
    let scanned;
    try {
      for await (const chunk of response.body) await scanner.push(chunk as Buffer);
      scanned = scanner.end();
    } catch (error) {
      await scanner.discard();
      response.body.destroy();
      if (error instanceof MalformedAnswerError) throw new CallError('transient', `unreadable answer: ${error.message}`, { status: 200, cause: error });
      throw networkFailure(error, signal, 'body');
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


  async close(): Promise<void> {
    await this.agent.close();
  }
}
