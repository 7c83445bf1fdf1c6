/**
 * One request to Gemini's `generateContent`, top to bottom: key, model, request checks,
 * directives, quota, injected failures, latency, answer, request log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { capabilitiesOf, findModel, type ModelCapabilities } from '../providers/models.js';
import { DirectiveError, failureFor, parseDirectives, type Directives } from './directives.js';
import {
  apiKeyInvalid,
  googleError,
  invalidArgument,
  modelNotFound,
  quotaExceeded,
  unauthenticated,
  type ErrorAnswer,
} from './errors.js';
import { findImagesModel } from './openai-images/models.js';
import { parseGenerateRequest, promptOf, type GenerateRequest } from './request.js';
import { buildAnswer, type BuiltAnswer } from './response.js';
import type { Incoming, MockRuntime } from './runtime.js';

/** 'answered': a failure was sent; 'cut': an answer must still be generated, to be cut. */
type InjectedFailure = 'answered' | 'cut' | undefined;

export function sendError(rt: MockRuntime, res: ServerResponse, incoming: Incoming | undefined, answer: ErrorAnswer): void {
  rt.sendJson(res, answer.status, answer.body, answer.headers);
  if (incoming) rt.record(incoming, { status: answer.status, kind: answer.kind });
}

export async function handleGenerateRequest(
  rt: MockRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  incoming: Incoming,
  body: Buffer,
): Promise<void> {
  const model = admittedModel(rt, req, res, incoming, body);
  if (!model) return;
  const read = readRequest(rt, res, incoming, body, model);
  if (!read) return;
  // The quota is checked before the model runs: a refused request is neither billed nor
  // counted as an attempt of its prompt.
  const wait = rt.takeQuota();
  if (wait > 0) return sendError(rt, res, incoming, quotaExceeded({ retryDelaySeconds: wait }));
  const failed = injectedFailure(rt, res, incoming, read.request.prompt, read.directives);
  if (failed === 'answered') return;
  await generateAndSend(rt, res, incoming, model, read, failed === 'cut');
}

/** A model this version does not know, held to the common subset of the known ones. */
function extraModel(id: string): ModelCapabilities {
  return { ...capabilitiesOf(id), imageTokens: { '1K': 1120, '2K': 1120, '4K': 2000 } };
}

/** The caller's key, then the model asked for; refusals here still show their prompt in the log. */
function admittedModel(
  rt: MockRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  incoming: Incoming,
  body: Buffer,
): ModelCapabilities | undefined {
  const refuse = (answer: ErrorAnswer): undefined => {
    incoming.prompt = promptOf(body);
    sendError(rt, res, incoming, answer);
    return undefined;
  };
  const { options } = rt;
  if (options.apiKey !== undefined) {
    const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Never echo the key: neither answer nor log mentions what was sent.
    if (!auth) return refuse(unauthenticated());
    if (auth[1] !== options.apiKey) return refuse(apiKeyInvalid());
  }
  // The product's registry knows both families; generateContent serves only Gemini's models.
  const known = findImagesModel(incoming.model) ? undefined : findModel(incoming.model);
  const model = known ?? (options.extraModels?.includes(incoming.model) ? extraModel(incoming.model) : undefined);
  if (!model || options.retiredModels?.includes(incoming.model)) return refuse(modelNotFound(incoming.model));
  return model;
}

/** The request checked against the model, and the directives of its prompt; undefined once refused. */
function readRequest(
  rt: MockRuntime,
  res: ServerResponse,
  incoming: Incoming,
  body: Buffer,
  model: ModelCapabilities,
): { request: GenerateRequest; directives: Directives } | undefined {
  const parsed = parseGenerateRequest(body, model);
  incoming.prompt = parsed.ok ? parsed.request.prompt : parsed.prompt;
  if (!parsed.ok) {
    sendError(rt, res, incoming, invalidArgument(parsed.message));
    return undefined;
  }
  try {
    return { request: parsed.request, directives: parseDirectives(parsed.request.prompt) };
  } catch (error) {
    if (!(error instanceof DirectiveError)) throw error;
    sendError(rt, res, incoming, invalidArgument(error.message));
    return undefined;
  }
}

/** A failure a directive asks for this attempt, else the random 5xx of `failRate5xx`. */
function injectedFailure(
  rt: MockRuntime,
  res: ServerResponse,
  incoming: Incoming,
  prompt: string,
  directives: Directives,
): InjectedFailure {
  // Only prompts with failure directives need counting; a million plain prompts cost nothing.
  let failed: InjectedFailure;
  if (directives.failures.length > 0) failed = directiveFailure(rt, res, incoming, directives, rt.attempt(prompt));
  if (failed === undefined && rt.options.failRate5xx && Math.random() < rt.options.failRate5xx) {
    sendError(rt, res, incoming, googleError(503));
    return 'answered';
  }
  return failed;
}

function directiveFailure(
  rt: MockRuntime,
  res: ServerResponse,
  incoming: Incoming,
  directives: Directives,
  attempt: number,
): InjectedFailure {
  const failure = failureFor(directives, attempt);
  if (!failure) return undefined;
  if (failure.type === 'cut') return 'cut';
  if (failure.code === 429) {
    sendError(
      rt,
      res,
      incoming,
      quotaExceeded({
        retryDelaySeconds: directives.retryDelaySeconds ?? 1,
        perDay: directives.perDay,
        retryAfterSeconds: directives.retryAfterSeconds,
      }),
    );
  } else if (failure.code === 401) {
    sendError(rt, res, incoming, unauthenticated());
  } else if (failure.code === 404) {
    sendError(rt, res, incoming, modelNotFound(incoming.model));
  } else {
    sendError(rt, res, incoming, googleError(failure.code));
  }
  return 'answered';
}

/** The answer, made during the latency asked for, sent unless the client or the server left. */
async function generateAndSend(
  rt: MockRuntime,
  res: ServerResponse,
  incoming: Incoming,
  model: ModelCapabilities,
  { request, directives }: { request: GenerateRequest; directives: Directives },
  cut: boolean,
): Promise<void> {
  const latency = directives.latencyMs ?? (rt.options.latencyMs ?? 0) + Math.random() * (rt.options.latencyJitterMs ?? 0);
  const [answer] = await Promise.all([
    buildAnswer({
      seq: incoming.seq,
      modelId: incoming.model,
      model,
      request,
      directives,
      thoughtImages: rt.options.thoughtImages ?? true,
      images: rt.images,
    }),
    rt.sleep(latency),
  ]);
  await rt.released();
  if (rt.closing()) return;
  if (res.destroyed || res.socket?.destroyed) {
    // The client gave up while the image was "generating" (e.g. its timeout): keep a trace,
    // with nginx's "client closed request" status, since nothing was sent.
    rt.record(incoming, { status: 499, kind: 'error' });
    return;
  }
  sendAnswer(rt, res, incoming, answer, cut, directives.trickleMs);
}

function sendAnswer(rt: MockRuntime, res: ServerResponse, incoming: Incoming, answer: BuiltAnswer, cut: boolean, trickleMs?: number): void {
  rt.sendBody(res, incoming.seq, answer, { cut, trickleMs });
  if (cut) {
    rt.record(incoming, { status: 200, kind: 'cut', thoughtImages: answer.thoughtImages });
    return;
  }
  // Billed when the answer is generated and sent, as the real endpoint bills, whether or not
  // the client lives to read it all.
  rt.record(incoming, {
    status: 200,
    kind: answer.kind,
    usageMetadata: answer.usageMetadata,
    images: answer.finals,
    thoughtImages: answer.thoughtImages,
  });
}
