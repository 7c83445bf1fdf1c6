/**
 * The parts a row needs (provider, output store, ledger, price table), built once per process
 * from the configuration and shared by both runners.
 */
import { requireApiKey, type Config } from '../core/config.js';
import { GeminiProvider } from '../providers/gemini/client.js';
import type { RowContext } from './generate.js';
import { Ledger } from '../output/ledger.js';
import { loadPriceTable } from '../cost/pricing.js';
import { OutputStore } from '../output/storage.js';

export interface Pipeline extends RowContext {
  close(): Promise<void>;
}

export async function createPipeline(config: Config): Promise<Pipeline> {
  const prices = await loadPriceTable(config);
  const provider = new GeminiProvider({
    baseUrl: config.baseUrl,
    apiKey: requireApiKey(config),
    timeoutMs: config.timeoutMs,
    responseModalities: config.responseModalities,
    connections: config.concurrency,
  });
  const store = new OutputStore(config.outDir, { durable: config.durable });
  const ledger = new Ledger(store.root, { durable: config.durable });
  return {
    provider,
    store,
    ledger,
    prices,
    async close() {
      await ledger.close();
      await provider.close();
    },
  };
}
