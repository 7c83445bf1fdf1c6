/**
 * What one mock server shares with the handler of each API family: its options, images, links,
 * quota, per-prompt attempt counts, hold/close state, the request log and how bodies are sent.
 */
import type { ServerResponse } from 'node:http';
import type { ApiFamily } from './directives.js';
import type { ImageFactory } from './images.js';
import type { MockOptions } from './options.js';
import type { LinkStore } from './openai-images/links.js';
import type { MockRequestRecord } from './records.js';

/** A request as first seen: numbered on arrival; model and prompt filled in as they are read. */
export interface Incoming {
  seq: number;
  receivedAt: number;
  family: ApiFamily;
  model: string;
  prompt: string;
}

export type RecordFields = Pick<MockRequestRecord, 'status' | 'kind'> & Partial<MockRequestRecord>;

/** A body ready for one writev, and where `[mock:cut]` stops it. */
export interface Sendable {
  pieces: readonly Buffer[];
  length: number;
  cutAt: number;
}

export interface MockRuntime {
  readonly options: MockOptions;
  readonly images: ImageFactory;
  readonly links: LinkStore;
  /** Takes a request from the quota: 0 when admitted, else the seconds until one would be. */
  takeQuota(): number;
  /** Counts an attempt of `key` (a prompt) and returns its 1-based number. */
  attempt(key: string): number;
  /** A delay that closing cuts short. */
  sleep(ms: number): Promise<void>;
  /** Resolves when generated answers may go out (see MockServer.hold). */
  released(): Promise<void>;
  closing(): boolean;
  record(incoming: Incoming, fields: RecordFields): void;
  sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void;
  /**
   * Sends a 200 body: whole, spread over `trickleMs`, or (`cut`) stopped at `cutAt` with the
   * socket destroyed once the partial body is with the kernel.
   */
  sendBody(res: ServerResponse, seq: number, body: Sendable, how: { cut: boolean; trickleMs?: number }): void;
}
