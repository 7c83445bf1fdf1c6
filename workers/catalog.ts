/**
 * Entry point of a process that runs only catalog firings (`work` also runs them beside the
 * images worker): `node dist/workers/catalog.js`, configured from the environment.
 */
import { BatchState } from '../src/queue/batch-state.js';
import { startCatalogWorker } from '../src/catalog/worker.js';
import { loadConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/log.js';
import { loadPriceTable } from '../src/cost/pricing.js';
import { connectRedis, imagesQueue, queueSettings } from '../src/queue/queue.js';

const config = loadConfig();
const log = createLogger('info');
const settings = queueSettings(config.redisUrl, undefined);
const connection = await connectRedis(settings.redisUrl, 'worker');
const images = imagesQueue(settings, connection);
const worker = startCatalogWorker(settings, connection, images, new BatchState(connection, settings.prefix), config, await loadPriceTable(config), log);
log.info('catalog worker started');

await new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});
await worker.close();
await images.close();
connection.disconnect();
