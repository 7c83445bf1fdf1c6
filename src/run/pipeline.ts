/**
 * The parts a row needs (providers, output store, ledger, price table), built once per process
 * from the configuration and shared by both runners.
 */
import { requireApiKey, type Config } from '../core/config.js';
import { GeminiProvider } from '../providers/gemini/client.js';
import { ImageLinks } from '../providers/image-link.js';
import { OpenAiImagesProvider } from '../providers/openai-images/client.js';
import { ProviderRouter } from '../providers/router.js';
import type { RowContext } from './generate.js';
import { loadPriceTable } from '../cost/pricing.js';
import { openOutput } from '../output/open-output.js';
import { PhotoCache, photoCacheDir } from '../rows/photo-cache.js';

export interface Pipeline extends RowContext {
  close(): Promise<void>;
}

export async function createPipeline(config: Config): Promise<Pipeline> {
  const prices = await loadPriceTable(config);
  const apiKey = requireApiKey(config);
  // A folder, or a bucket with this machine's spool folder for temporary files and the ledger;
  // a bucket that cannot be used stops the command here, before any row is sent (and billed).
  const output = await openOutput(config.outDir, { durable: config.durable });
  const { store, ledger } = output;
  // Image links are other hosts' (CDNs, buckets): their own pool, and never the key.
  const links = new ImageLinks({ connections: config.concurrency, apiKey });
  const provider = new ProviderRouter({
    gemini: new GeminiProvider({
      baseUrl: config.baseUrl,
      apiKey,
      timeoutMs: config.timeoutMs,
      responseModalities: config.responseModalities,
      connections: config.concurrency,
      links,
    }),
    'openai-images': new OpenAiImagesProvider({
      baseUrl: config.baseUrl,
      apiKey,
      timeoutMs: config.timeoutMs,
      connections: config.concurrency,
      links,
    }),
  });
  // A worker runs for days: it asks the shop again after a minute whether a photo changed. The
  // cache is of this machine: in the output folder, or a bucket's spool.
  const photos = new PhotoCache(photoCacheDir(store.workDir), { apiKey, freshForMs: 60_000 });
  return {
    provider,
    store,
    ledger,
    prices,
    photos,
    async close() {
      await photos.close();
      await output.close();
      await provider.close();
      await links.close();
    },
  };
}
