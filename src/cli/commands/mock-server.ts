/**
 * `tokenhot-batch mock-server`: a local endpoint of both API families (Gemini's generateContent,
 * the OpenAI-style /v1/images) for dry runs and tests.
 */
import { UsageError } from '../../core/errors.js';
import { startMockServer, type MockOptions } from '../../mock/index.js';
import { numberFlag } from './flag-values.js';

export interface MockServerFlags {
  port?: string;
  host?: string;
  apiKey?: string;
  latencyMs?: string;
  latencyJitterMs?: string;
  payload?: string;
  rps?: string;
  burst?: string;
  failRate?: string;
  requestLog?: string;
  thoughtImages?: boolean;
  extraModel?: string[];
  retireModel?: string[];
  linkTtlMs?: string;
}

export function mockOptionsFrom(flags: MockServerFlags): MockOptions {
  if (flags.payload !== undefined && flags.payload !== 'small' && flags.payload !== 'real') throw new UsageError(`--payload: "${flags.payload}" is not small or real`);
  return {
    port: numberFlag('--port', flags.port, 0) ?? 8787,
    host: flags.host ?? '127.0.0.1',
    apiKey: flags.apiKey ?? process.env.TOKENHOT_API_KEY,
    latencyMs: numberFlag('--latency-ms', flags.latencyMs, 0),
    latencyJitterMs: numberFlag('--latency-jitter-ms', flags.latencyJitterMs, 0),
    payload: flags.payload as MockOptions['payload'],
    rps: numberFlag('--rps', flags.rps, 0),
    burst: numberFlag('--burst', flags.burst, 0),
    failRate5xx: numberFlag('--fail-rate', flags.failRate, 0),
    requestLog: flags.requestLog,
    thoughtImages: flags.thoughtImages,
    extraModels: flags.extraModel,
    retiredModels: flags.retireModel,
    linkTtlMs: numberFlag('--link-ttl-ms', flags.linkTtlMs, 0),
  };
}

export async function mockServerCommand(flags: MockServerFlags): Promise<number> {
  const options = mockOptionsFrom(flags);
  const server = await startMockServer(options);
  process.stderr.write(
    `mock endpoint on ${server.url} (key ${options.apiKey ? 'required' : 'not checked'}` +
      `${options.rps ? `, quota ${options.rps} requests/s` : ''}, payload ${options.payload ?? 'small'})\n` +
      `  generateContent at ${server.url}/v1beta/models/MODEL:generateContent, images at ${server.url}/v1/images/generations\n` +
      `  use it with: TOKENHOT_BASE_URL=${server.url} tokenhot-batch run prompts.csv\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
