/**
 * The Gemini generateContent provider: one keep-alive connection pool per process, Bearer auth,
 * a long timeout (4K images take well over a minute), and the answer streamed to disk.
 */
import type { Agent } from 'undici';
import { CallError } from '../../core/errors.js';
import type { ImageLinks } from '../image-link.js';
import type { GenerateOptions, Provider, ProviderAnswer } from '../provider.js';
import type { BatchRow } from '../../core/types.js';
import { endpointAgent, networkFailure, postToEndpoint } from '../http-body.js';
import { readAnswer } from './answer.js';
import { AnswerScanner, MalformedAnswerError } from './answer-stream.js';
import { classifyHttpError } from './errors.js';
import { buildRequestBody, generateContentUrl, type ResponseModalities } from './request.js';

export interface GeminiOptions {
  baseUrl: string;
  apiKey: string;
  /** Longest wait for an answer, from sending to the last byte. */
  timeoutMs: number;
  responseModalities: ResponseModalities;
  /** Connections kept open to the endpoint; at least the number of calls in flight. */
  connections: number;
  /** Where a gateway's image links are fetched; without it an answer's links are not followed. */
  links?: ImageLinks;
}

export class GeminiProvider implements Provider {
  readonly name = 'gemini';
  private readonly agent: Agent;

  constructor(private readonly options: GeminiOptions) {
    this.agent = endpointAgent(options);
  }

  async generate(row: BatchRow, { sink, signal }: GenerateOptions): Promise<ProviderAnswer> {
    const body = JSON.stringify(await buildRequestBody(row, this.options.responseModalities));
    const response = await postToEndpoint({
      agent: this.agent,
      url: generateContentUrl(this.options.baseUrl, row.model),
      apiKey: this.options.apiKey,
      body,
      timeoutMs: this.options.timeoutMs,
      signal,
      classifyHttpError,
    });

    const scanner = new AnswerScanner(sink);
    try {
      for await (const chunk of response.body) await scanner.push(chunk as Buffer);
      const scanned = scanner.end();
      return await readAnswer(scanned, this.options.links ? { links: this.options.links, sink, signal } : undefined);
    } catch (error) {
      await scanner.discard();
      response.body.destroy();
      // Only a body without usage gets here (a billed one is always read, see readAnswer): nothing
      // says it was billed, so it is asked again like a body cut short.
      if (error instanceof MalformedAnswerError) throw new CallError('transient', `unreadable answer: ${error.message}`, { status: 200, cause: error });
      if (error instanceof CallError) throw error;
      throw networkFailure(error, signal, 'body');
    }
  }


  async close(): Promise<void> {
    await this.agent.close();
  }
}
