import { quotaScope } from '../run/pacing.js';
import { LocalPacer } from '../run/rate-gate.js';
import type { BatchRow } from '../core/types.js';

/** Each quota scope (the provider, see quotaScope) learns its own pace, as in queue mode. */
export class LocalPacers {
  private readonly byScope = new Map<string, LocalPacer>();

  constructor(private readonly rpm: number | undefined) {}

  for(row: BatchRow): LocalPacer {
    const scope = quotaScope(row);
    let pacer = this.byScope.get(scope);
    if (!pacer) this.byScope.set(scope, (pacer = new LocalPacer(this.rpm)));
    return pacer;
  }
}
