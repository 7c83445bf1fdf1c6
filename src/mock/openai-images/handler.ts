/**
 * One request to /v1/images/generations or /v1/images/edits, top to bottom: key, quota, model,
 * checks, directives, injected failures, refusal, latency, answer, request log. The order is
 * the gateway's: it checks the key and its own quota before any model sees the request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DirectiveError, failureFor, parseDirectives, type Directives } from '../directives.js';
import type { Incoming, MockRuntime } from '../runtime.js';
import { buildImagesAnswer, type BuiltImagesAnswer } from './answer.js';
import {
  gatewayRateLimited,
  invalidKey,
  missingKey,
  modelNotFound,
  openaiInvalid,
  refusal,
  statusError,
  type ImagesErrorAnswer,
} from './errors.js';
import { findImagesModel, type ImagesModel } from './models.js';
import { listPriceMicroUsd } from './prices.js';
import { checkImagesRequest, readImagesBody, type ImagesEndpoint, type ImagesRequest, type ReadResult } from './request.js';

/** The gateway's quota as its message states it: requests per minute. */
function perMinute(rt: MockRuntime): number {
  return Math.max(1, Math.round((rt.options.rps ?? 1) * 60));
}

/** A request the gateway and the model take: it is generated and answered. */
interface Accepted {
  model: ImagesModel;
  request: ImagesRequest;
  directives: Directives;
  /** `[mock:cut]` on this attempt: the answer stops mid-body. */
  cut: boolean;
}

type Admission = { accepted: Accepted } | { refused: ImagesErrorAnswer };

export async function handleImagesRequest(
  rt: MockRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  incoming: Incoming,
  raw: Buffer,
  endpoint: ImagesEndpoint,
): Promise<void> {
  const read = await readImagesBody(raw, req.headers['content-type'], endpoint);
  incoming.model = read.ok ? read.body.model : read.model;
  incoming.prompt = read.ok ? read.body.prompt : read.prompt;
  const admission = admit(rt, req, incoming, read, endpoint);
  if ('refused' in admission) return refuse(rt, res, incoming, admission.refused);
  const { accepted } = admission;
  const answer = await generate(rt, req, incoming, accepted);
  await rt.released();
  if (rt.closing()) return;
  if (res.destroyed || res.socket?.destroyed) {
    // The client gave up while the image was "generating": nginx's "client closed request".
    return rt.record(incoming, { status: 499, kind: 'error' });
  }
  rt.sendBody(res, incoming.seq, answer, { cut: accepted.cut, trickleMs: accepted.directives.trickleMs });
  recordAnswer(rt, incoming, accepted, answer);
}

function refuse(rt: MockRuntime, res: ServerResponse, incoming: Incoming, answer: ImagesErrorAnswer): void {
  rt.sendJson(res, answer.status, answer.body, answer.headers);
  rt.record(incoming, { status: answer.status, kind: answer.kind });
}

/** The gateway's checks, then the model's, then what the prompt's directives inject. */
function admit(rt: MockRuntime, req: IncomingMessage, incoming: Incoming, read: ReadResult, endpoint: ImagesEndpoint): Admission {
  const gateway = gatewayRefusal(rt, req);
  if (gateway) return { refused: gateway };
  if (!read.ok) return { refused: read.error };
  if (!incoming.model) return { refused: openaiInvalid("Missing required parameter: 'model'.", 'model', 'missing_required_parameter') };
  const model = findImagesModel(incoming.model);
  if (!model || rt.options.retiredModels?.includes(model.id)) return { refused: modelNotFound(incoming.model) };
  const checked = checkImagesRequest(read.body, model, endpoint);
  if (!checked.ok) return { refused: checked.error };
  let directives: Directives;
  try {
    directives = parseDirectives(checked.request.prompt, 'openai-images');
  } catch (error) {
    if (error instanceof DirectiveError) return { refused: openaiInvalid(error.message, 'prompt', null) };
    throw error;
  }
  return injectFailures(rt, model, checked.request, directives);
}

/** The key, then the gateway's quota: a refused request is neither billed nor an attempt. */
function gatewayRefusal(rt: MockRuntime, req: IncomingMessage): ImagesErrorAnswer | undefined {
  if (rt.options.apiKey !== undefined) {
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Never echo the key: neither answer nor log mentions what was sent.
    if (!auth) return missingKey();
    if (auth[1] !== rt.options.apiKey) return invalidKey();
  }
  if (rt.takeQuota() > 0) return gatewayRateLimited(perMinute(rt));
  return undefined;
}

/** Failures asked for by directives (this attempt's), a refusal, or the server's random 503s. */
function injectFailures(rt: MockRuntime, model: ImagesModel, request: ImagesRequest, directives: Directives): Admission {
  let cut = false;
  if (directives.failures.length > 0) {
    const failure = failureFor(directives, rt.attempt(`images\n${request.prompt}`));
    if (failure?.type === 'status') return { refused: withRetryAfter(statusError(failure.code, model, perMinute(rt)), directives) };
    cut = failure?.type === 'cut';
  }
  if (directives.refused) return { refused: refusal(model, directives.refused) };
  if (!cut && rt.options.failRate5xx && Math.random() < rt.options.failRate5xx) {
    return { refused: statusError(503, model, perMinute(rt)) };
  }
  return { accepted: { model, request, directives, cut } };
}

/** Builds the answer while the latency (asked for, else the server's) runs. */
async function generate(rt: MockRuntime, req: IncomingMessage, incoming: Incoming, accepted: Accepted): Promise<BuiltImagesAnswer> {
  const { request, directives } = accepted;
  const latency = directives.latencyMs ?? (rt.options.latencyMs ?? 0) + Math.random() * (rt.options.latencyJitterMs ?? 0);
  const [answer] = await Promise.all([
    buildImagesAnswer({
      seq: incoming.seq,
      request,
      directives,
      images: rt.images,
      links: rt.links,
      linkTtlMs: rt.options.linkTtlMs,
      origin: `http://${req.headers.host ?? 'localhost'}`,
    }),
    rt.sleep(latency),
  ]);
  return answer;
}

/** A cut answer is logged as cut; a whole one with its usage and bill. */
function recordAnswer(rt: MockRuntime, incoming: Incoming, accepted: Accepted, answer: BuiltImagesAnswer): void {
  const { model, request } = accepted;
  const asked = askedOf(model, request.size, request.quality);
  if (accepted.cut) return rt.record(incoming, { status: 200, kind: 'cut', ...asked });
  // Billed once generated and sent, as the real service bills, whether or not the client
  // lives to read it all.
  rt.record(incoming, {
    status: 200,
    kind: answer.kind,
    usage: answer.usage,
    billing: answer.billing,
    listPriceMicroUsd: listPriceMicroUsd(model.id, answer.billing),
    images: answer.images,
    ...asked,
  });
}

/** The size and quality a record names (Seedream has no quality). */
function askedOf(model: ImagesModel, size: string, quality: string | undefined): { size: string; quality?: string } {
  return model.family === 'seedream' || quality === undefined ? { size } : { size, quality };
}

function withRetryAfter(answer: ImagesErrorAnswer, directives: Directives): ImagesErrorAnswer {
  if (answer.status !== 429 || directives.retryAfterSeconds === undefined) return answer;
  return { ...answer, headers: { ...answer.headers, 'retry-after': String(directives.retryAfterSeconds) } };
}
