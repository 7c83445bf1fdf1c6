/**
 * Logs: pino on stderr (stdout is for reports). JSON for machines (docker logs, CI); on a
 * terminal, pino-pretty makes the same lines readable. Level from LOG_LEVEL, else the command's
 * default. The API key is redacted wherever it could appear, as a last line of defence.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { redact } from './errors.js';

export type { Logger };

export function createLogger(defaultLevel: string, apiKey?: string): Logger {
  const readable = process.stderr.isTTY && process.env.LOG_FORMAT !== 'json';
  const destination = readable ? pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' }) : pino.destination({ fd: 2, sync: true });
  return pino(
    {
      level: process.env.LOG_LEVEL ?? defaultLevel,
      base: { pid: process.pid },
      redact: { paths: ['apiKey', 'headers.authorization', '*.apiKey', '*.headers.authorization'], censor: '[redacted]' },
      ...(apiKey
        ? {
            hooks: {
              logMethod(args, method) {
                const scrub = (value: unknown): unknown => (typeof value === 'string' ? redact(value, apiKey) : value);
                method.apply(this, args.map(scrub) as Parameters<typeof method>);
              },
            },
          }
        : {}),
    },
    destination,
  );
}
