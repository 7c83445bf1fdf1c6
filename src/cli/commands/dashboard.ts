/**
 * `tokenhot-batch dashboard`: Bull Board for the queues and a page of batches (see
 * views/dashboard/server.ts), on 127.0.0.1:3100 by default, until SIGINT or SIGTERM.
 */
import { loadConfig } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { credentialsFromEnv, isLoopbackHost } from '../../views/dashboard/access.js';
import { BOARD_PATH, startDashboard } from '../../views/dashboard/server.js';
import { queueSettings } from '../../queue/queue.js';
import { DEFAULT_DASHBOARD_HOST, DEFAULT_DASHBOARD_PORT } from '../help.js';
import { wholeFlag } from './flag-values.js';


export interface DashboardFlags {
  port?: string;
  host?: string;
  prefix?: string;
  refresh?: string;
  failed?: string;
}

export async function dashboardCommand(flags: DashboardFlags): Promise<number> {
  const port = wholeFlag('--port', flags.port, DEFAULT_DASHBOARD_PORT, 0, 65_535);
  const refreshSeconds = wholeFlag('--refresh', flags.refresh, 10, 0, 3_600);
  const failedLimit = wholeFlag('--failed', flags.failed, 20, 0, 10_000);
  const host = flags.host ?? DEFAULT_DASHBOARD_HOST;
  const credentials = credentialsFromEnv();
  // Bull Board can retry, clean and remove jobs: off loopback, never without a password.
  if (!credentials && !(await isLoopbackHost(host))) {
    throw new UsageError(
      `refusing to serve the dashboard on ${host} without a password: anyone who can reach it could retry or remove jobs. ` +
        'Set TOKENHOT_DASHBOARD_USER and TOKENHOT_DASHBOARD_PASSWORD (and put TLS in front of it), or listen on 127.0.0.1',
    );
  }
  const settings = queueSettings(loadConfig({}).redisUrl, flags.prefix);
  const dashboard = await startDashboard({
    settings,
    host,
    port,
    credentials,
    refreshSeconds,
    failedLimit,
    onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
  });
  process.stderr.write(
    `dashboard on ${dashboard.url}/ (batches; Bull Board at ${dashboard.url}${BOARD_PATH}), queue prefix ${settings.prefix}, basic auth ${credentials ? 'on' : 'off'}\n` +
      '  Ctrl-C stops it\n',
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      // A second signal while closing leaves at once.
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await dashboard.close();
  process.stderr.write('dashboard stopped\n');
  return 0;
}
