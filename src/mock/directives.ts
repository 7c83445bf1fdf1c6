/**
 * `[mock:...]` directives in a prompt: how tests and dry runs ask the mock for a given
 * behaviour without any side channel. Failure directives form a sequence over the attempts
 * of one prompt: `[mock:429x1][mock:503x2]` answers 429, 503, 503, then normally. A failure
 * directive without `xN` applies to every attempt from then on. Some directives belong to one
 * API family (Gemini's `generateContent` or the OpenAI-style images endpoint); asked of the
 * other family they are an error, so a test never passes by a directive silently ignored.
 */

export type ApiFamily = 'gemini' | 'openai-images';

export type Failure = { type: 'status'; code: number } | { type: 'cut' };

export interface FailureStep {
  failure: Failure;
  /** Attempts it covers; Infinity for "always". */
  times: number;
}

export interface Directives {
  failures: FailureStep[];
  blocked: boolean;
  /** finishReason of an answer without an image. */
  noImage?: string;
  twoImages: boolean;
  allThought: boolean;
  textDetails: boolean;
  latencyMs?: number;
  /** RetryInfo delay of directive 429s (seconds). */
  retryDelaySeconds?: number;
  perDay: boolean;
  /** Send a Retry-After header (seconds) instead of RetryInfo. */
  retryAfterSeconds?: number;
  /** Spread the body of a 200 answer over this many milliseconds (a slow download). */
  trickleMs?: number;
  /**
   * Re-serialize the answer as a gateway written in Go does: empty lists as `null` (a no-image
   * answer has `"parts": null`), no `index`, fields the reader does not know.
   */
  gateway: boolean;
  /** A `thoughtSignature` of this many bytes on every text and image part (real ones reach 1-3 MB). */
  signatureBytes?: number;
  /** Images endpoint: a 400 refusal, of the prompt (`input`), a reference image or the result. */
  refused?: 'input' | 'image' | 'output';
  /** Images endpoint: each link's first N downloads are cut mid-body (Infinity: all of them). */
  linkCuts?: number;
  /** Images endpoint: links answer as expired from the start. */
  linkExpired: boolean;
  /** Images endpoint: answer as links or as base64 whatever the request asked. */
  answerAs?: 'url' | 'b64_json';
  /** Seedream: a group answer whose last image failed (`data[i].error`). */
  groupPartial: boolean;
}

export class DirectiveError extends Error {}

/** Codes a status directive may ask for: the ones a client must classify. */
function allowedStatus(code: number): boolean {
  return [400, 401, 402, 403, 404, 429].includes(code) || (code >= 500 && code <= 599);
}

const DIRECTIVE = /\[mock:([^\]]*)\]/g;

/** Directives that only one family understands, by the name before any `=` or `x`. */
const FAMILY_OF: Readonly<Record<string, ApiFamily>> = {
  blocked: 'gemini',
  'no-image': 'gemini',
  'two-images': 'gemini',
  'all-thought': 'gemini',
  signature: 'gemini',
  perday: 'gemini',
  retry: 'gemini',
  refused: 'openai-images',
  'link-cut': 'openai-images',
  'link-expired': 'openai-images',
  'as-url': 'openai-images',
  'as-b64': 'openai-images',
  'group-partial': 'openai-images',
};

const FAMILY_NAMES: Readonly<Record<ApiFamily, string>> = {
  gemini: 'generateContent (Gemini)',
  'openai-images': '/v1/images (OpenAI-style)',
};

/**
 * Reads every directive of a prompt sent to `family`; an unknown one, or one of the other
 * family, is an error so typos do not pass silently.
 */
export function parseDirectives(prompt: string, family: ApiFamily = 'gemini'): Directives {
  const found: Directives = {
    failures: [],
    blocked: false,
    twoImages: false,
    allThought: false,
    textDetails: false,
    perDay: false,
    gateway: false,
    linkExpired: false,
    groupPartial: false,
  };
  for (const match of prompt.matchAll(DIRECTIVE)) {
    const text = (match[1] ?? '').trim();
    const owner = FAMILY_OF[/^[a-z0-9-]+?(?=x\d+$|=|$)/.exec(text)?.[0] ?? ''];
    if (owner !== undefined && owner !== family) {
      throw new DirectiveError(`mock directive [mock:${text}] is for the ${FAMILY_NAMES[owner]} endpoint only`);
    }
    let m: RegExpMatchArray | null;
    if ((m = text.match(/^(\d{3})(?:x(\d+))?$/))) {
      const code = Number(m[1]);
      if (!allowedStatus(code)) {
        throw new DirectiveError(`mock directive [mock:${text}]: status ${code} is not supported`);
      }
      found.failures.push({ failure: { type: 'status', code }, times: m[2] === undefined ? Infinity : Number(m[2]) });
    } else if ((m = text.match(/^cut(?:x(\d+))?$/))) {
      found.failures.push({ failure: { type: 'cut' }, times: m[1] === undefined ? Infinity : Number(m[1]) });
    } else if (text === 'blocked') {
      found.blocked = true;
    } else if ((m = text.match(/^no-image(?:=([A-Z_]+))?$/))) {
      found.noImage = m[1] ?? 'IMAGE_SAFETY';
    } else if (text === 'two-images') {
      found.twoImages = true;
    } else if (text === 'all-thought') {
      found.allThought = true;
    } else if (text === 'text-details') {
      found.textDetails = true;
    } else if ((m = text.match(/^latency=(\d+)$/))) {
      found.latencyMs = Number(m[1]);
    } else if ((m = text.match(/^trickle=(\d+)$/))) {
      found.trickleMs = Number(m[1]);
    } else if ((m = text.match(/^retry=(\d+(?:\.\d+)?)s?$/))) {
      found.retryDelaySeconds = Number(m[1]);
    } else if (text === 'gateway') {
      found.gateway = true;
    } else if ((m = text.match(/^signature=(\d+(?:\.\d+)?)(k|m)b$/i))) {
      found.signatureBytes = Math.round(Number(m[1]) * (m[2]!.toLowerCase() === 'm' ? 1024 * 1024 : 1024));
    } else if (text === 'perday') {
      found.perDay = true;
    } else if ((m = text.match(/^retry-after=(\d+)$/))) {
      found.retryAfterSeconds = Number(m[1]);
    } else if ((m = text.match(/^refused(?:=(input|image|output))?$/))) {
      found.refused = (m[1] ?? 'input') as Directives['refused'];
    } else if ((m = text.match(/^link-cut(?:x(\d+))?$/))) {
      found.linkCuts = m[1] === undefined ? Infinity : Number(m[1]);
    } else if (text === 'link-expired') {
      found.linkExpired = true;
    } else if (text === 'as-url' || text === 'as-b64') {
      found.answerAs = text === 'as-url' ? 'url' : 'b64_json';
    } else if (text === 'group-partial') {
      found.groupPartial = true;
    } else {
      throw new DirectiveError(`unknown mock directive [mock:${text}]`);
    }
  }
  return found;
}

/** The failure for the `attempt`-th request (1-based) of a prompt, if any. */
export function failureFor(directives: Directives, attempt: number): Failure | undefined {
  let covered = 0;
  for (const step of directives.failures) {
    covered += step.times;
    if (attempt <= covered) return step.failure;
  }
  return undefined;
}

/** The prompt as a person wrote it, for captions and text parts. */
export function stripDirectives(prompt: string): string {
  return prompt.replace(DIRECTIVE, ' ').replace(/\s+/g, ' ').trim();
}

/** One line per directive, for `mock-server --help` and the README. */
export const DIRECTIVE_HELP: readonly string[] = [
  'Both endpoints:',
  '[mock:CODE] [mock:CODExN] answer CODE (400 401 402 403 404 429 5xx) always / for the first N attempts',
  '                          (a 429 of the images endpoint is the gateway\'s own, in Chinese, no Retry-After)',
  '[mock:cut] [mock:cutxN]   200, body cut inside the (first) image, socket destroyed (not billed)',
  '[mock:retry-after=N]      directive 429s send Retry-After: N',
  '[mock:gateway]            as a gateway re-serializes answers (Gemini: see below; Seedream: usage',
  '                          prompt_tokens/completion_tokens 0 instead of generated_images, no size;',
  '                          GPT Image, DALL-E: a field the reader does not know)',
  '[mock:text-details]       text output tokens listed apart (candidatesTokensDetails / output_tokens_details)',
  '[mock:latency=MS]         latency of this request',
  '[mock:trickle=MS]         send the body of the answer slowly, spread over MS milliseconds',
  'generateContent (Gemini) only:',
  '[mock:blocked]            200, no candidates, promptFeedback.blockReason PROHIBITED_CONTENT (billed)',
  '[mock:no-image[=REASON]]  200, text only, finishReason IMAGE_SAFETY or REASON (billed)',
  '[mock:two-images]         two final images',
  '[mock:all-thought]        every image part marked thought (the last one is the final image)',
  '[mock:retry=2.5s]         RetryInfo delay of directive 429s (default 1s; with retry-after=N, no RetryInfo)',
  '[mock:perday]             directive 429s name a per-day quota',
  '[mock:gateway]            as a Go gateway re-serializes it: empty lists as null (no-image: "parts": null),',
  '                          no index, unknown fields (groundingMetadata, serviceTier, trafficType, createTime)',
  '[mock:signature=2MB]      a thoughtSignature of that size (KB or MB) on every text and image part',
  '/v1/images (OpenAI-style) only:',
  '[mock:refused[=input|image|output]]  400 refusal: Seedream Input{Text,Image}/OutputImageSensitiveContentDetected,',
  '                          GPT Image moderation_blocked, DALL-E content_policy_violation (not billed)',
  '[mock:as-url] [mock:as-b64]  answer links / base64 whatever response_format asked',
  '[mock:link-cut] [mock:link-cutxN]  each link\'s downloads (all / the first N) cut mid-body, then whole',
  '[mock:link-expired]       links answer 403 (expired) from the start (both answer with links)',
  '[mock:group-partial]      Seedream: a group of max(n, 2) images whose last one is data[i].error (billed per image made)',
  'Failure directives run in order over the attempts of one exact prompt: [mock:429x1][mock:503x2].',
];
