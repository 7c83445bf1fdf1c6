/**
 * Which handler answers a request: the mock's own routes (control endpoints, image links,
 * photos), then the two API families, whose requests are numbered, read whole and logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { controlRoutes, unknownControlPath } from './control.js';
import { googleError, invalidArgument } from './errors.js';
import { handleGenerateRequest, sendError } from './gemini-handler.js';
import type { MockState } from './mock-state.js';
import { handleImagesRequest } from './openai-images/handler.js';
import { PHOTO_PATH } from './photos.js';
import { MAX_BODY_BYTES, readBody } from './request-body.js';
import { findRoute, GET_OR_HEAD, type Route } from './routes.js';
import type { Incoming } from './runtime.js';

const GENERATE_PATH = /^\/v1beta\/models\/([^/]+):generateContent\/?$/;

/** Tokenhot's pages show the images path with and without a trailing slash. */
const IMAGES_PATH = /^\/v1\/images\/(generations|edits)\/?$/;

const FILE_PATH = /^\/__mock\/files\/[0-9a-f]+\.[a-z]+$/;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function createRouter(state: MockState): RequestHandler {
  const routes = [...controlRoutes(state), ...contentRoutes(state)];
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://mock').pathname;
    const found = findRoute(routes, req.method, path);
    if (found) {
      req.resume();
      return found.route.serve(req, res, { path, name: found.name });
    }
    if (path.startsWith('/__mock/')) {
      req.resume();
      return unknownControlPath(req, res, path);
    }
    return serveApiRequest(state, req, res, path);
  };
}

/** What the mock serves besides answers: the links of `url` answers and a shop's photos. */
function contentRoutes(state: MockState): Route[] {
  return [
    { methods: GET_OR_HEAD, path: PHOTO_PATH, serve: (req, res, { name }) => state.photos.serve(req, res, name) },
    { methods: GET_OR_HEAD, path: FILE_PATH, serve: (req, res, { path }) => state.links.serve(req, res, path) },
  ];
}

/** A request to either API family (or to a path of neither): numbered, read whole, handed on. */
async function serveApiRequest(state: MockState, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const imagesMatch = req.method === 'POST' ? IMAGES_PATH.exec(path) : null;
  const match = req.method === 'POST' ? GENERATE_PATH.exec(path) : null;
  const incoming: Incoming = {
    seq: state.nextSeq(),
    receivedAt: Date.now(),
    family: imagesMatch || path.startsWith('/v1/') ? 'openai-images' : 'gemini',
    model: match ? safeDecode(match[1] ?? '') : '',
    prompt: '',
  };
  // Read the whole body even for errors, so keep-alive connections stay in step.
  const { body, tooLarge } = await readBody(req);
  const rt = state.runtime;
  if (incoming.family === 'openai-images') {
    const refuse = (status: number, message: string): void => {
      rt.sendJson(res, status, { error: { message, type: 'invalid_request_error', param: null, code: null } });
      rt.record(incoming, { status, kind: 'error' });
    };
    if (!imagesMatch) return refuse(404, `Invalid URL (${req.method ?? ''} ${path})`);
    if (tooLarge) return refuse(413, `Request payload size exceeds the limit: ${MAX_BODY_BYTES} bytes.`);
    return handleImagesRequest(rt, req, res, incoming, body, imagesMatch[1] as 'generations' | 'edits');
  }
  if (!match) return sendError(rt, res, incoming, googleError(404, `Path ${req.method ?? ''} ${path} was not found.`));
  if (tooLarge) {
    return sendError(rt, res, incoming, invalidArgument(`Request payload size exceeds the limit: ${MAX_BODY_BYTES} bytes.`));
  }
  await handleGenerateRequest(rt, req, res, incoming, body);
}

/** A malformed %-escape in a model id is the client's 404, not the mock's 500. */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
