/**
 * Logs: pino JSON on stderr (stdout is for reports). Level from LOG_LEVEL, else the command's
 * default. The API key is redacted wherever it could appear, as a last line of defence.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(defaultLevel: string, apiKey?: string): Logger {
  return pino(
    {
      level: process.env.LOG_LEVEL ?? defaultLevel,
      base: { pid: process.pid },
      redact: { paths: ['apiKey', 'headers.authorization', '*.apiKey', '*.headers.authorization'], censor: '[redacted]' },
      ...(apiKey
        ? {
            hooks: {
              logMethod(args, method) {
                const scrub = (value: unknown): unknown => (typeof value === 'string' ? value.split(apiKey).join('[redacted]') : value);
                method.apply(this, args.map(scrub) as Parameters<typeof method>);
              },
            },
          }
        : {}),
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
