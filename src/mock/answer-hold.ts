/**
 * Holds generated answers back until released (`MockServer.hold`, `POST /__mock/hold`): tests use
 * it to kill a client at a moment when no answer is on the wire.
 */
export class AnswerHold {
  private held: { promise: Promise<void>; release: () => void } | undefined;

  get isHeld(): boolean {
    return this.held !== undefined;
  }

  hold(): void {
    if (this.held) return;
    let release = (): void => undefined;
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.held = { promise, release };
  }

  release(): void {
    this.held?.release();
    this.held = undefined;
  }

  /** Resolves when answers may go out. */
  released(): Promise<void> {
    return this.held?.promise ?? Promise.resolve();
  }
}
