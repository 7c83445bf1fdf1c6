/**
 * Error answers of the images endpoint, all in the OpenAI shape `{"error":{message,type,param,
 * code}}` but written by three parties, as clients meet them through Tokenhot: the gateway
 * itself (new-api: Chinese messages, `new_api_error`, a request id in the message), OpenAI
 * (GPT Image, DALL-E) and Volcengine Ark (Seedream: `BadRequest`, CamelCase codes).
 */
import { randomBytes } from 'node:crypto';
import type { ImagesModel } from './models.js';

export interface ImagesErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface ImagesErrorAnswer {
  status: number;
  body: ImagesErrorBody;
  headers?: Record<string, string>;
  kind: 'error' | 'rate-limited' | 'refused';
}

function answer(status: number, error: ImagesErrorBody['error'], kind: ImagesErrorAnswer['kind'] = 'error'): ImagesErrorAnswer {
  return { status, body: { error }, kind };
}

/** new-api's request id: a timestamp and random digits. */
function gatewayRequestId(): string {
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  return `${stamp}${String(randomBytes(6).readUIntBE(0, 6) % 1e12).padStart(12, '0')}`;
}

/** An error the gateway writes itself, before any upstream is asked. */
export function gatewayError(status: number, message: string, code = ''): ImagesErrorAnswer {
  return answer(status, { message: `${message} (request id: ${gatewayRequestId()})`, type: 'new_api_error', param: '', code }, status === 429 ? 'rate-limited' : 'error');
}

/** The gateway's per-user request quota: no Retry-After and no rate-limit headers. */
export function gatewayRateLimited(perMinute: number): ImagesErrorAnswer {
  return gatewayError(429, `您已达到请求数限制：1分钟内最多请求${perMinute}次`, 'rate_limit_exceeded');
}

export function missingKey(): ImagesErrorAnswer {
  return gatewayError(401, '未提供令牌');
}

/** Never echoes what was sent. */
export function invalidKey(): ImagesErrorAnswer {
  return gatewayError(401, '无效的令牌');
}

export function modelNotFound(model: string): ImagesErrorAnswer {
  return answer(404, {
    message: `The model \`${model}\` does not exist or you do not have access to it.`,
    type: 'invalid_request_error',
    param: null,
    code: 'model_not_found',
  });
}

/** OpenAI's 400 for a value it does not take (GPT Image, DALL-E). */
export function openaiInvalid(message: string, param: string | null, code: string | null = 'invalid_value'): ImagesErrorAnswer {
  return answer(400, { message, type: 'invalid_request_error', param, code });
}

function arkRequestId(): string {
  return `021${Date.now()}${randomBytes(12).toString('hex')}`;
}

/** Volcengine Ark's 400 (Seedream). */
export function arkError(code: string, message: string, param = ''): ImagesErrorAnswer {
  return answer(400, { message: `${message} Request id: ${arkRequestId()}`, type: 'BadRequest', param, code });
}

/** A 400 for a bad field, in the shape of the model's own vendor. */
export function invalidField(model: ImagesModel, param: string, message: string): ImagesErrorAnswer {
  return model.family === 'seedream'
    ? arkError('InvalidParameter', `The parameter \`${param}\` specified in the request is not valid: ${message}.`, param)
    : openaiInvalid(message, param);
}

/** A field the endpoint does not know (OpenAI refuses them; the gateway forwards the ones it knows). */
export function unknownParameter(name: string): ImagesErrorAnswer {
  return openaiInvalid(`Unknown parameter: '${name}'.`, name, 'unknown_parameter');
}

export function missingPrompt(model: ImagesModel | undefined): ImagesErrorAnswer {
  return model?.family === 'seedream'
    ? arkError('MissingParameter', 'The request failed because it is missing the `prompt` parameter.', 'prompt')
    : openaiInvalid("Missing required parameter: 'prompt'.", 'prompt', 'missing_required_parameter');
}

const ARK_REFUSALS: Readonly<Record<'input' | 'image' | 'output', [string, string]>> = {
  input: ['InputTextSensitiveContentDetected', 'The request failed because the input text may contain sensitive information.'],
  image: ['InputImageSensitiveContentDetected', 'The request failed because the input image may contain sensitive information.'],
  output: ['OutputImageSensitiveContentDetected', 'The request failed because the output image may contain sensitive information.'],
};

/** The safety system's 400, per vendor (never billed). */
export function refusal(model: ImagesModel, what: 'input' | 'image' | 'output'): ImagesErrorAnswer {
  if (model.family === 'seedream') {
    const [code, message] = ARK_REFUSALS[what];
    return { ...arkError(code, message), kind: 'refused' };
  }
  if (model.family === 'gpt-image') {
    return answer(
      400,
      {
        message: `Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID req_${randomBytes(16).toString('hex')}.`,
        type: 'image_generation_user_error',
        param: null,
        code: 'moderation_blocked',
      },
      'refused',
    );
  }
  return answer(
    400,
    {
      message: 'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.',
      type: 'invalid_request_error',
      param: null,
      code: 'content_policy_violation',
    },
    'refused',
  );
}

/** A group image Seedream could not deliver (`data[i].error`). */
export function arkImageError(): { code: string; message: string } {
  const [code, message] = ARK_REFUSALS.output;
  return { code, message };
}

const SERVER_MESSAGES: Readonly<Record<number, string>> = {
  500: 'The server had an error while processing your request. Sorry about that!',
  502: 'Bad gateway.',
  503: 'The engine is currently overloaded, please try again later.',
  504: 'Gateway timeout.',
};

/** What a `[mock:CODE]` directive (or the random 5xx) answers on the images endpoint. */
export function statusError(status: number, model: ImagesModel, perMinute: number): ImagesErrorAnswer {
  if (status === 429) return gatewayRateLimited(perMinute);
  if (status === 401) return invalidKey();
  if (status === 402) return gatewayError(402, '用户额度不足，剩余额度: $0.000000', 'insufficient_user_quota');
  if (status === 403) return gatewayError(403, `该令牌无权访问模型 ${model.id}`);
  if (status === 404) return modelNotFound(model.id);
  if (status === 400) return invalidField(model, 'prompt', 'refused on request (mock directive)');
  return answer(status, { message: SERVER_MESSAGES[status] ?? 'Upstream error.', type: 'server_error', param: null, code: null });
}
