/**
 * The links of `url` answers: `/__mock/files/<token>.<ext>` on the mock itself, standing in for
 * the object stores real answers point at (Volcengine TOS for Seedream, Azure Blob for OpenAI).
 * A link serves the image bytes with their Content-Type and Content-Length (ranges too, as the
 * stores do) until it expires. An expired link answers 403 with the store's XML error, because
 * a signed URL is refused at its signature check, before the object is looked up; 404 only
 * means a link this mock never made (or forgot: it keeps the newest LINK_LIMIT).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnswerImage } from '../images.js';

/** Links kept; older ones are forgotten (404), so a long-running mock does not grow forever. */
const LINK_LIMIT = 20_000;

/** Whose object store a link imitates, for the shape of its errors. */
export type LinkStyle = 'tos' | 'azure';

interface Link {
  image: AnswerImage;
  mimeType: string;
  expiresAt: number;
  /** Downloads still to cut mid-body (`[mock:link-cutxN]`). */
  cutsLeft: number;
  style: LinkStyle;
}

/** One GET or HEAD of a link, for tests that check how a client fetched its images. */
export interface MockDownloadRecord {
  path: string;
  at: number;
  status: number;
  /** Body bytes written; fewer than the Content-Length when the download was cut. */
  bytesSent: number;
  cut: boolean;
}

export interface NewLink {
  ttlMs: number;
  cuts: number;
  expired: boolean;
  style: LinkStyle;
}

const EXTENSIONS: Readonly<Record<string, string>> = { 'image/jpeg': 'jpeg', 'image/png': 'png', 'image/webp': 'webp' };

function xml(status: number, fields: Record<string, string>): { status: number; body: string } {
  const inner = Object.entries(fields)
    .map(([name, value]) => `<${name}>${value}</${name}>`)
    .join('');
  return { status, body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${inner}</Error>` };
}

function expiredError(link: Link, now: number): { status: number; body: string } {
  const requestId = randomBytes(12).toString('hex');
  if (link.style === 'azure') {
    return xml(403, {
      Code: 'AuthenticationFailed',
      Message: `Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.\nRequestId:${requestId}\nTime:${new Date(now).toISOString()}`,
      AuthenticationErrorDetail: `Signed expiry time [${new Date(link.expiresAt).toUTCString()}] must be after signed start time [${new Date(now).toUTCString()}]`,
    });
  }
  return xml(403, {
    Code: 'AccessDenied',
    Message: 'Request has expired',
    RequestId: requestId,
    Expires: new Date(link.expiresAt).toISOString(),
    ServerTime: new Date(now).toISOString(),
  });
}

function notFound(): { status: number; body: string } {
  return xml(404, { Code: 'NoSuchKey', Message: 'The specified key does not exist.', RequestId: randomBytes(12).toString('hex') });
}

/** The bytes of an image: its base64 pieces decode one by one (the cached prefix is 3-aligned). */
function bytesOf(image: AnswerImage): Buffer {
  return Buffer.concat(image.data.map((piece) => Buffer.from(piece.toString('latin1'), 'base64')));
}

/** A single `bytes=a-b` range, as clients resuming a download ask; undefined for none or many. */
function rangeOf(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(size - 1, Number(match[2]));
  }
  return start >= size || start > end ? 'unsatisfiable' : { start, end };
}

export class LinkStore {
  private readonly links = new Map<string, Link>();
  readonly downloads: MockDownloadRecord[] = [];

  /** Registers an image and returns its path (`/__mock/files/<token>.<ext>`). */
  add(image: AnswerImage, options: NewLink, now = Date.now()): string {
    const token = randomBytes(16).toString('hex');
    const path = `/__mock/files/${token}.${EXTENSIONS[image.mimeType] ?? 'bin'}`;
    this.links.set(path, {
      image,
      mimeType: image.mimeType,
      expiresAt: options.expired ? now - 1 : now + options.ttlMs,
      cutsLeft: options.cuts,
      style: options.style,
    });
    if (this.links.size > LINK_LIMIT) {
      const oldest = this.links.keys().next().value;
      if (oldest !== undefined) this.links.delete(oldest);
    }
    return path;
  }

  clear(): void {
    this.links.clear();
    this.downloads.length = 0;
  }

  /** Answers a GET or HEAD of a link. */
  serve(req: IncomingMessage, res: ServerResponse, path: string, now = Date.now()): void {
    const link = this.links.get(path);
    const log = (status: number, bytesSent: number, cut = false): void => {
      this.downloads.push({ path, at: now, status, bytesSent, cut });
    };
    const fail = ({ status, body }: { status: number; body: string }) => {
      const text = Buffer.from(body);
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': text.length });
      res.end(req.method === 'HEAD' ? undefined : text);
      log(status, 0);
    };
    if (!link) return fail(notFound());
    if (now >= link.expiresAt) return fail(expiredError(link, now));

    const bytes = bytesOf(link.image);
    const range = rangeOf(req.headers.range, bytes.length);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}`, 'content-length': 0 });
      res.end();
      return log(416, 0);
    }
    const body = range ? bytes.subarray(range.start, range.end + 1) : bytes;
    const status = range ? 206 : 200;
    res.writeHead(status, {
      'content-type': link.mimeType,
      'content-length': body.length,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${range.start}-${range.end}/${bytes.length}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return log(status, 0);
    }
    if (link.cutsLeft > 0) {
      link.cutsLeft--;
      // Half the body reaches the client, then the connection drops, as a flaky CDN does.
      const part = body.subarray(0, Math.floor(body.length / 2));
      res.write(part, () => res.destroy());
      return log(status, part.length, true);
    }
    res.end(body);
    log(status, body.length);
  }
}
