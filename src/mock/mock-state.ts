/**
 * What one mock server keeps between requests: the request log, images, links, photos, the
 * quota, per-prompt attempt counts, the hold, pending sleeps and whether it is closing; and the
 * runtime it hands each API family's handler.
 */
import { ImageFactory } from './images.js';
import { LinkStore } from './openai-images/links.js';
import type { MockOptions } from './options.js';
import { MockPhotos } from './photos.js';
import { TokenBucket } from './quota.js';
import { RequestLog } from './records.js';
import type { Incoming, MockRuntime, RecordFields } from './runtime.js';
import { AnswerHold } from './answer-hold.js';
import { sendBody, sendJson } from './send.js';
import { Sleeps } from './sleeps.js';

export class MockState {
  readonly log: RequestLog;
  readonly images: ImageFactory;
  readonly links = new LinkStore();
  readonly photos = new MockPhotos();
  readonly hold = new AnswerHold();
  readonly sleeps = new Sleeps();
  readonly runtime: MockRuntime;
  closing = false;
  private readonly bucket: TokenBucket | undefined;
  private readonly attempts = new Map<string, number>();
  private seq = 0;

  constructor(readonly options: MockOptions) {
    this.log = new RequestLog(options.requestLog);
    this.images = new ImageFactory(options.payload === 'real' ? 'real' : 'small');
    this.bucket =
      options.rps !== undefined && options.rps > 0
        ? new TokenBucket(options.rps, options.burst ?? Math.max(1, options.rps))
        : undefined;
    this.runtime = this.createRuntime();
  }

  /** Numbers requests in arrival order. */
  nextSeq(): number {
    return ++this.seq;
  }

  /** `POST /__mock/reset`: forgets what was asked, not how the server was started. */
  reset(): void {
    this.log.clear();
    this.attempts.clear();
    this.links.clear();
    this.photos.clear();
  }

  record(incoming: Incoming, fields: RecordFields): void {
    this.log.add({
      seq: incoming.seq,
      family: incoming.family,
      receivedAt: incoming.receivedAt,
      answeredAt: Date.now(),
      model: incoming.model,
      prompt: incoming.prompt,
      images: [],
      thoughtImages: 0,
      ...fields,
    });
  }

  private createRuntime(): MockRuntime {
    const pace = { sleep: (ms: number) => this.sleeps.sleep(ms), closing: () => this.closing };
    return {
      options: this.options,
      images: this.images,
      links: this.links,
      takeQuota: () => this.bucket?.take() ?? 0,
      attempt: (key) => {
        const attempt = (this.attempts.get(key) ?? 0) + 1;
        this.attempts.set(key, attempt);
        return attempt;
      },
      sleep: pace.sleep,
      released: () => this.hold.released(),
      closing: pace.closing,
      record: (incoming, fields) => this.record(incoming, fields),
      sendJson,
      sendBody: (res, seq, body, how) => sendBody(res, seq, body, how, pace),
    };
  }
}
