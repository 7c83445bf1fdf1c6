/**
 * The Gemini generateContent provider: one keep-alive connection pool per process, Bearer auth,
 * a long timeout (4K images take well over a minute), and the answer streamed to disk.
 */
import { Agent, request } from 'undici';
import { CallError, redact } from '../../core/errors.js';
import type { ImageLinks } from '../image-link.js';
import type { GenerateOptions, Provider, ProviderAnswer } from '../provider.js';
import type { BatchRow } from '../../core/types.js';
import { endpointAgent, MAX_ERROR_BODY, readCapped } from '../http-body.js';
import { readAnswer } from './answer.js';
import { AnswerScanner, MalformedAnswerError } from './answer-stream.js';
import { classifyHttpError, classifyNetworkError } from './errors.js';
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
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const callSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;

    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(generateContentUrl(this.options.baseUrl, row.model), {
        method: 'POST',
        dispatcher: this.agent,
        signal: callSignal,
        headers: {
          authorization: `Bearer ${this.options.apiKey}`,
          'content-type': 'application/json',
          'user-agent': 'tokenhot-batch',
        },
        body,
      });
    } catch (error) {
      throw this.networkError(error, signal);
    }

    if (response.statusCode !== 200) {
      const text = await readCapped(response.body, MAX_ERROR_BODY).catch(() => '');
      // An endpoint may echo the Authorization header back ("invalid token Bearer sk-..."):
      // the key goes before its words reach any message, sidecar or log.
      throw classifyHttpError(response.statusCode, response.headers, redact(text, this.options.apiKey));
    }

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
      throw this.networkError(error, signal, 'body');
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
