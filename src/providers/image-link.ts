/**
 * Images answered as links (`data[i].url`; a gateway's `fileData.fileUri` or Markdown link in a
 * Gemini answer), fetched at once: Seedream's links expire in 24 h, DALL·E's in an hour.
 *
 * The generation behind a link is already billed, so a failed download is retried as a download
 * (connection lost, timeout, 5xx, a body cut short), never by asking for the image again; a link
 * that is gone (403/404/410: an expired signed link) fails the row at once. Links go to other
 * hosts than the endpoint: they get their own connection pool and never the API key. Bytes are
 * streamed into the row's image sink (the temporary files of inline images), limited in size and
 * time, and must be an image by their content, whatever the headers say.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { redact } from '../core/errors.js';
import { sniffImageMime, SNIFF_BYTES } from '../rows/image-type.js';
import { parseRetryAfter } from './http-errors.js';
import { giveBackWriteBuffer, takeWriteBuffer } from './json-image-scanner.js';
import type { FinalImage, ImageFileWriter, ImageSink } from './provider.js';

export interface ImageLinkOptions {
  /** Largest image taken, in bytes. @default 50 MB */
  maxBytes?: number;
  /** Longest one download may take, from asking to the last byte. @default 120000 */
  timeoutMs?: number;
  /** Downloads of one link, the first included. @default 4 */
  attempts?: number;
  /** Ceiling of the first wait between downloads; doubles each time (full jitter). @default 1000 */
  baseDelayMs?: number;
  /** Connections kept open per link host. @default 8 */
  connections?: number;
  /** Kept out of every message (links never get it; a message must not hold it either). */
  apiKey?: string;
  /** What messages call a link. @default "image link" */
  label?: string;
  /** Said after "is gone (HTTP 404)". @default "; links live 1 to 24 hours" */
  goneHint?: string;
}

/** What a server said identifies the version sent, for asking later whether it changed. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

/** How fetching a link ended: the image, a row failure (billed: the answer was), or a local write that failed. */
export type LinkResult = { image: FinalImage; validators: Validators } | { failed: string } | { saveError: unknown };
/** `fetchIfChanged`'s: also that the version known is still the one served. */
export type ConditionalLinkResult = LinkResult | { notModified: true };

const DEFAULTS = { maxBytes: 50 * 1024 * 1024, timeoutMs: 120_000, attempts: 4, baseDelayMs: 1_000, connections: 8, label: 'image link', goneHint: '; links live 1 to 24 hours' };
const MAX_REDIRECTS = 5;

/** One try's end: `retry` for what another download may cure, `failed` for what it cannot. */
type Attempt = ConditionalLinkResult | { retry: string; afterMs?: number };

class SaveError extends Error {
  constructor(readonly original: unknown) {
    super('cannot save the image');
  }
}

export class ImageLinks {
  private readonly agent: Agent;
  private readonly settings: Required<Omit<ImageLinkOptions, 'apiKey'>>;

  constructor(private readonly options: ImageLinkOptions = {}) {
    this.settings = {
      maxBytes: options.maxBytes ?? DEFAULTS.maxBytes,
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      attempts: options.attempts ?? DEFAULTS.attempts,
      baseDelayMs: options.baseDelayMs ?? DEFAULTS.baseDelayMs,
      connections: options.connections ?? DEFAULTS.connections,
      label: options.label ?? DEFAULTS.label,
      goneHint: options.goneHint ?? DEFAULTS.goneHint,
    };
    this.agent = new Agent({
      connections: this.settings.connections,
      keepAliveTimeout: 10_000,
      headersTimeout: this.settings.timeoutMs,
      // A link that stops sending for this long is a download cut short.
      bodyTimeout: Math.min(this.settings.timeoutMs, 30_000),
      connect: { timeout: 15_000 },
    });
  }

  /** Fetches the image behind `link` into a temporary file of `sink`; throws only the abort of `signal`. */
  async fetch(link: string, sink: ImageSink, signal?: AbortSignal): Promise<LinkResult> {
    // Without validators there is no 304 to take: the server's answer is the image or a failure.
    return (await this.download(link, sink, signal, undefined)) as LinkResult;
  }

  /** As `fetch`, asking the server whether the version `known` changed (a cache revalidating). */
  fetchIfChanged(link: string, sink: ImageSink, known: Validators, signal?: AbortSignal): Promise<ConditionalLinkResult> {
    return this.download(link, sink, signal, known);
  }

  private async download(link: string, sink: ImageSink, signal: AbortSignal | undefined, known: Validators | undefined): Promise<ConditionalLinkResult> {
    const url = parseLink(link);
    if (typeof url === 'string') return { failed: this.words(url) };
    if (url.protocol === 'data:') return this.fromDataUri(link, sink);

    let last = '';
    for (let attempt = 1; attempt <= this.settings.attempts; attempt++) {
      const result = await this.attempt(url, sink, signal, known);
      if (!('retry' in result) && !('failed' in result)) return result;
      if ('failed' in result) return { failed: this.words(`${this.settings.label} ${describeLink(url)} ${result.failed}`) };
      last = result.retry;
      if (attempt < this.settings.attempts) {
        const ceiling = this.settings.baseDelayMs * 2 ** (attempt - 1);
        // Throws the signal's own reason, as the rest of this method does.
        await delay(Math.max(result.afterMs ?? 0, Math.round(Math.random() * ceiling)), undefined, { signal }).catch((error: unknown) => {
          throw signal?.aborted ? signal.reason : error;
        });
      }
    }
    return { failed: this.words(`${this.settings.label} ${describeLink(url)} could not be downloaded in ${this.settings.attempts} attempts (last: ${last})`) };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private words(text: string): string {
    return redact(text, this.options.apiKey);
  }

  private async attempt(start: URL, sink: ImageSink, signal: AbortSignal | undefined, known: Validators | undefined): Promise<Attempt> {
    const timeout = AbortSignal.timeout(this.settings.timeoutMs);
    const callSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let url = start;
    let response: Awaited<ReturnType<typeof request>>;
    for (let redirects = 0; ; redirects++) {
      try {
        // No Authorization header, on purpose: a link is another host's (a CDN, a bucket).
        response = await request(url, {
          method: 'GET',
          dispatcher: this.agent,
          signal: callSignal,
          headers: { 'user-agent': 'tokenhot-batch', accept: 'image/*', ...conditionalHeaders(known) },
        });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        return { retry: networkWords(error, timeout.aborted) };
      }
      const location = header(response.headers, 'location');
      if (response.statusCode >= 300 && response.statusCode < 400 && location) {
        discard(response.body);
        if (redirects >= MAX_REDIRECTS) return { failed: `redirects more than ${MAX_REDIRECTS} times` };
        const next = parseLink(location, url);
        if (typeof next === 'string' || next.protocol === 'data:') return { failed: `redirects to ${typeof next === 'string' ? 'something that is not a link' : 'a data URI'}` };
        url = next;
        continue;
      }
      break;
    }

    const status = response.statusCode;
    if (status === 304 && known) {
      discard(response.body);
      return { notModified: true };
    }
    if (status !== 200) {
      discard(response.body);
      if (status === 403 || status === 404 || status === 410) return { failed: `has expired or is gone (HTTP ${status})${this.settings.goneHint}` };
      if (status === 408 || status === 429 || status >= 500) return { retry: `HTTP ${status}`, afterMs: retryAfterMs(header(response.headers, 'retry-after')) };
      return { failed: `was refused (HTTP ${status})` };
    }
    const declared = Number(header(response.headers, 'content-length') ?? NaN);
    if (declared > this.settings.maxBytes) {
      discard(response.body);
      return { failed: `is ${formatMb(declared)}, over the ${formatMb(this.settings.maxBytes)} taken` };
    }

    let writer: ImageFileWriter | undefined;
    try {
      writer = await sink.open().catch((error: unknown) => {
        throw new SaveError(error);
      });
      const written = await this.receive(response.body, writer);
      if ('failed' in written) {
        discard(response.body);
        await writer.discard().catch(() => undefined);
        return written;
      }
      if (Number.isFinite(declared) && written.bytes !== declared) {
        await writer.discard().catch(() => undefined);
        return { retry: `the download was cut short (${written.bytes} of ${declared} bytes)` };
      }
      const mimeType = sniffImageMime(written.head);
      if (!mimeType) {
        await writer.discard().catch(() => undefined);
        const type = header(response.headers, 'content-type');
        return { failed: `is not an image (judged by its content${type ? `; it says ${type.split(';')[0]}` : ''})` };
      }
      const image = await writer.close().catch((error: unknown) => {
        throw new SaveError(error);
      });
      return { image: { ...image, mimeType }, validators: validatorsOf(response.headers) };
    } catch (error) {
      discard(response.body);
      await writer?.discard().catch(() => undefined);
      if (error instanceof SaveError) return { saveError: error.original };
      if (signal?.aborted) throw signal.reason;
      return { retry: timeout.aborted ? `no image in ${this.settings.timeoutMs / 1000} s` : `the download was cut short (${networkWords(error, false)})` };
    }
  }

  /**
   * Streams the body into `writer`, within the byte limit; the first bytes are kept for sniffing.
   * Chunks are gathered in a write buffer reused from image to image (see takeWriteBuffer), not
   * joined anew for each write: a buffer made per write outlives young collections while the
   * write is pending, and is then garbage that waits for a full one.
   */
  private async receive(body: AsyncIterable<Buffer>, writer: ImageFileWriter): Promise<{ bytes: number; head: Buffer } | { failed: string }> {
    let bytes = 0;
    let head = Buffer.alloc(0);
    const gathered = takeWriteBuffer();
    let gatheredBytes = 0;
    const flush = async (): Promise<void> => {
      if (gatheredBytes === 0) return;
      const chunk = gathered.subarray(0, gatheredBytes);
      gatheredBytes = 0;
      await writer.write(chunk).catch((error: unknown) => {
        throw new SaveError(error);
      });
    };
    try {
      for await (const chunk of body) {
        bytes += chunk.length;
        if (bytes > this.settings.maxBytes) return { failed: `is over the ${formatMb(this.settings.maxBytes)} taken` };
        if (head.length < SNIFF_BYTES) head = Buffer.concat([head, chunk.subarray(0, SNIFF_BYTES - head.length)]);
        // Copied in as far as it fits; a full buffer is written before the rest goes in.
        for (let at = 0; at < chunk.length; ) {
          if (gatheredBytes === gathered.length) await flush();
          const copied = chunk.copy(gathered, gatheredBytes, at);
          gatheredBytes += copied;
          at += copied;
        }
      }
      await flush();
      return { bytes, head };
    } finally {
      // Every write above was awaited: none of the buffer's bytes is still to be written.
      giveBackWriteBuffer(gathered);
    }
  }

  /** A `data:image/...;base64,` link (a gateway's way of inlining): decoded, checked like any other. */
  private async fromDataUri(link: string, sink: ImageSink): Promise<LinkResult> {
    const comma = link.indexOf(',');
    if (comma === -1 || !/;base64$/i.test(link.slice(0, comma))) return { failed: 'the image link is a data URI without base64 data' };
    const bytes = Buffer.from(link.slice(comma + 1), 'base64');
    if (bytes.length > this.settings.maxBytes) return { failed: `the image in a data URI is over the ${formatMb(this.settings.maxBytes)} taken` };
    const mimeType = sniffImageMime(bytes.subarray(0, SNIFF_BYTES));
    if (!mimeType) return { failed: 'the data URI given as image link holds no image (judged by its content)' };
    let writer: ImageFileWriter | undefined;
    try {
      writer = await sink.open();
      await writer.write(bytes);
      return { image: { ...(await writer.close()), mimeType }, validators: {} };
    } catch (error) {
      await writer?.discard().catch(() => undefined);
      return { saveError: error };
    }
  }
}

function conditionalHeaders(known: Validators | undefined): Record<string, string> {
  return { ...(known?.etag ? { 'if-none-match': known.etag } : {}), ...(known?.lastModified ? { 'if-modified-since': known.lastModified } : {}) };
}

function validatorsOf(headers: Record<string, string | string[] | undefined>): Validators {
  const etag = header(headers, 'etag');
  const lastModified = header(headers, 'last-modified');
  return { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
}

/** The link as a URL, or words for why it is not one that can be fetched. */
function parseLink(link: string, base?: URL): URL | string {
  let url: URL;
  try {
    url = new URL(link.trim(), base);
  } catch {
    return `the image link "${link.slice(0, 80)}" is not a URL`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:' && url.protocol !== 'data:') return `the image link is a ${url.protocol} URL, not http(s)`;
  return url;
}

/** Host and path, shortened: a signed link's query is long and tells a person nothing. */
export function describeLink(url: URL): string {
  const path = url.pathname.length > 48 ? `${url.pathname.slice(0, 45)}...` : url.pathname;
  return `${url.host}${path}`;
}

/** Drops a body not read (or read no further): an undici body destroyed bare emits an abort nobody hears. */
function discard(body: { on(event: 'error', listener: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A CDN's Retry-After, capped: a download is not worth a long wait. */
function retryAfterMs(value: string | undefined): number | undefined {
  const ms = parseRetryAfter(value);
  return ms === undefined ? undefined : Math.min(30_000, ms);
}

function networkWords(error: unknown, timedOut: boolean): string {
  if (timedOut) return 'no answer in time';
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  return `${code ?? (error as Error).name ?? 'error'}: ${message}`;
}

function formatMb(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${Math.round(bytes / (1024 * 1024))} MB`;
}

