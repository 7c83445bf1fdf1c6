/**
 * The mock's control endpoints under `/__mock/`: what it was asked (`requests`, `downloads`,
 * `photo-requests`), `reset`, photo changes, and holding answers back (`hold`, `release`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { googleError } from './errors.js';
import type { MockState } from './mock-state.js';
import { PHOTO_CHANGE_PATH } from './photos.js';
import { GET, POST, type Route } from './routes.js';
import { sendJson } from './send.js';

export function controlRoutes(state: MockState): Route[] {
  const holdAnswer = (res: ServerResponse): void => sendJson(res, 200, { ok: true, held: state.hold.isHeld });
  return [
    { methods: GET, path: '/__mock/requests', serve: (_req, res) => sendJson(res, 200, state.log.records) },
    { methods: GET, path: '/__mock/downloads', serve: (_req, res) => sendJson(res, 200, state.links.downloads) },
    {
      methods: POST,
      path: '/__mock/reset',
      serve: (_req, res) => {
        state.reset();
        sendJson(res, 200, { ok: true });
      },
    },
    {
      methods: POST,
      path: PHOTO_CHANGE_PATH,
      serve: (_req, res, { name }) => sendJson(res, 200, { ok: true, version: state.photos.change(name) }),
    },
    { methods: GET, path: '/__mock/photo-requests', serve: (_req, res) => sendJson(res, 200, state.photos.requests) },
    {
      methods: POST,
      path: '/__mock/hold',
      serve: (_req, res) => {
        state.hold.hold();
        holdAnswer(res);
      },
    },
    {
      methods: POST,
      path: '/__mock/release',
      serve: (_req, res) => {
        state.hold.release();
        holdAnswer(res);
      },
    },
  ];
}

/** Any other `/__mock/` path, or a control path asked with another method. */
export function unknownControlPath(req: IncomingMessage, res: ServerResponse, path: string): void {
  sendJson(res, 404, googleError(404, `Path ${req.method ?? ''} ${path} was not found.`).body);
}
