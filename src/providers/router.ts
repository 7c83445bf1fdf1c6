/**
 * Both providers behind the one seam: each row goes to the provider of its model
 * (`providerOf` in models.ts: the images endpoint's seven, Gemini for the rest).
 */
import type { BatchRow, Row } from '../core/types.js';
import { providerOf } from './models.js';
import type { GenerateOptions, Provider, ProviderAnswer, ProviderName } from './provider.js';

export class ProviderRouter implements Provider {
  /** The provider of rows no other claims: unknown model ids go to Gemini, as they always have. */
  readonly name: ProviderName = 'gemini';

  constructor(private readonly providers: Readonly<Record<ProviderName, Provider>>) {}

  providerFor(row: Row): Provider {
    return this.providers[providerOf(row.model)];
  }

  generate(row: BatchRow, options: GenerateOptions): Promise<ProviderAnswer> {
    return this.providerFor(row).generate(row, options);
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.providers).map((provider) => provider.close()));
  }
}
