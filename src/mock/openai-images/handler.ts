/**
 * One request to /v1/images/generations or /v1/images/edits, top to bottom: key, quota, model,
 * checks, directives, injected failures, refusal, latency, answer, request log. The order is
 * the gateway's: it checks the key and its own quota before any model sees the request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DirectiveError, failureFor, parseDirectives, type Directives } from '../directives.js';
import type { Incoming, MockRuntime } from '../runtime.js';
import { buildImagesAnswer } from './answer.js';
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
import { checkImagesRequest, readImagesBody, type ImagesEndpoint } from './request.js';

/** The gateway's quota as its message states it: requests per minute. */
function perMinute(rt: MockRuntime): number {
  return Math.max(1, Math.round((rt.options.rps ?? 1) * 60));
}

export async function handleImagesRequest(
  rt: MockRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  incoming: Incoming,
  raw: Buffer,
  endpoint: ImagesEndpoint,
): Promise<void> {
  const refuse = (answer: ImagesErrorAnswer): void => {
    rt.sendJson(res, answer.status, answer.body, answer.headers);
    rt.record(incoming, { status: answer.status, kind: answer.kind });
  };

  const read = await readImagesBody(raw, req.headers['content-type'], endpoint);
  incoming.model = read.ok ? read.body.model : read.model;
  incoming.prompt = read.ok ? read.body.prompt : read.prompt;
  if (rt.options.apiKey !== undefined) {
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Never echo the key: neither answer nor log mentions what was sent.
    if (!auth) return refuse(missingKey());
    if (auth[1] !== rt.options.apiKey) return refuse(invalidKey());
  }
  // The gateway's quota comes before the model: a refused request is neither billed nor an attempt.
  if (rt.takeQuota() > 0) return refuse(gatewayRateLimited(perMinute(rt)));
  if (!read.ok) return refuse(read.error);
  if (!incoming.model) return refuse(openaiInvalid("Missing required parameter: 'model'.", 'model', 'missing_required_parameter'));
  const model = findImagesModel(incoming.model);
  if (!model || rt.options.retiredModels?.includes(model.id)) return refuse(modelNotFound(incoming.model));

  const checked = checkImagesRequest(read.body, model, endpoint);
  if (!checked.ok) return refuse(checked.error);
  const request = checked.request;
  let directives: Directives;
  try {
    directives = parseDirectives(request.prompt, 'openai-images');
  } catch (error) {
    if (error instanceof DirectiveError) return refuse(openaiInvalid(error.message, 'prompt', null));
    throw error;
  }

  let cut = false;
  if (directives.failures.length > 0) {
    const failure = failureFor(directives, rt.attempt(`images\n${request.prompt}`));
    if (failure?.type === 'status') return refuse(withRetryAfter(statusError(failure.code, model, perMinute(rt)), directives));
    cut = failure?.type === 'cut';
  }
  if (directives.refused) return refuse(refusal(model, directives.refused));
  if (!cut && rt.options.failRate5xx && Math.random() < rt.options.failRate5xx) {
    return refuse(statusError(503, model, perMinute(rt)));
  }

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
  await rt.released();
  if (rt.closing()) return;
  if (res.destroyed || res.socket?.destroyed) {
    // The client gave up while the image was "generating": nginx's "client closed request".
    return rt.record(incoming, { status: 499, kind: 'error' });
  }
  rt.sendBody(res, incoming.seq, answer, { cut, trickleMs: directives.trickleMs });
  const asked = askedOf(model, request.size, request.quality);
  if (cut) return rt.record(incoming, { status: 200, kind: 'cut', ...asked });
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
