/**
 * Progress of work that takes time: a live bar on a terminal (cli-progress), and a plain line
 * every few seconds otherwise (CI logs, docker logs), both with done, failed, rate, ETA and spend.
 */
import cliProgress from 'cli-progress';
import { formatUsd } from '../cost/pricing.js';

export interface ProgressState {
  done: number;
  failed: number;
  /** Rows settled without work (enqueue: already queued), when `words.skipped` names them. */
  skipped?: number;
  /** Spend so far in picodollars. */
  spendPico: bigint;
  /** Billed answers of models with no price: not in `spendPico`, and never shown as $0 silently. */
  unpriced?: number;
}

/** Counts a settled row: done or failed, and its cost (or, billed without a price, as unpriced). */
export function countSettled(state: ProgressState, outcome: { status: 'done' | 'failed'; costPico?: bigint; usage?: unknown }): void {
  if (outcome.status === 'done') state.done += 1;
  else state.failed += 1;
  if (outcome.costPico !== undefined) state.spendPico += outcome.costPico;
  else if (outcome.usage !== undefined) state.unpriced = (state.unpriced ?? 0) + 1;
}

/** The spend so far, in words: `$1.2345`, or `$1.2345 + 3 unpriced` when some models have no price. */
export function spendText(state: Pick<ProgressState, 'spendPico' | 'unpriced'>): string {
  return `${formatUsd(state.spendPico, 4)}${state.unpriced ? ` + ${state.unpriced} unpriced` : ''}`;
}

export interface Progress {
  update(state: ProgressState): void;
  /** Changes the total (when it is known only later). */
  setTotal(total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Where progress goes; stderr so that stdout stays for reports. */
  stream?: NodeJS.WriteStream;
  /** Seconds between plain lines when not on a terminal. @default 10 */
  intervalSeconds?: number;
  /** Force the plain lines even on a terminal. */
  plain?: boolean;
  /** Words for the counts (`enqueue`: added, already queued, rejected). @default done, failed */
  words?: ProgressWords;
  /** Show the spend so far. @default true */
  spend?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Rows per minute and seconds left, from the rows settled since `startedAt`. */
export function rateAndEta(settled: number, total: number, startedAt: number, now = Date.now()): { perMinute: number; etaSeconds: number } {
  const minutes = (now - startedAt) / 60_000;
  const perMinute = minutes > 0 ? settled / minutes : 0;
  const etaSeconds = perMinute > 0 ? ((total - settled) / perMinute) * 60 : Number.POSITIVE_INFINITY;
  return { perMinute, etaSeconds };
}

export interface ProgressWords {
  done: string;
  failed: string;
  /** A third count, shown between the two when named. */
  skipped?: string;
}

const DEFAULT_WORDS: ProgressWords = { done: 'done', failed: 'failed' };

/** Rows settled: done, failed and (when counted) skipped. */
const settledOf = (state: ProgressState): number => state.done + state.failed + (state.skipped ?? 0);

/** `3 done, 1 failed`, or with a third count `0 added, 10 already queued, 0 rejected`. */
function describeCounts(state: ProgressState, words: ProgressWords): string {
  return `${state.done} ${words.done}${words.skipped ? `, ${state.skipped ?? 0} ${words.skipped}` : ''}, ${state.failed} ${words.failed}`;
}

/** One plain line; a total of 0 means "not known" (a file still being read). */
export function describeProgress(
  label: string,
  state: ProgressState,
  total: number,
  startedAt: number,
  now = Date.now(),
  words = DEFAULT_WORDS,
  spend = true,
): string {
  const settled = settledOf(state);
  const { perMinute, etaSeconds } = rateAndEta(settled, total, startedAt, now);
  const count = total > 0 ? `${settled}/${total}` : `${settled}`;
  const eta = total > 0 ? `, ETA ${formatDuration(etaSeconds)}` : '';
  return `${label}: ${count} (${describeCounts(state, words)}), ${perMinute.toFixed(1)}/min${eta}${spend ? `, spend ${spendText(state)}` : ''}`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const startedAt = Date.now();
  const words = options.words ?? DEFAULT_WORDS;
  const showSpend = options.spend ?? true;
  let total = options.total;
  let state: ProgressState = { done: 0, failed: 0, spendPico: 0n };

  if (stream.isTTY && !options.plain && total > 0) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${options.label} {bar} {value}/{total} | {counts} | {rate}/min | ETA {etaText}${showSpend ? ' | {spend}' : ''}`,
        hideCursor: true,
        barsize: 24,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = (): Record<string, string | number> => {
      const { perMinute, etaSeconds } = rateAndEta(settledOf(state), total, startedAt);
      return { counts: describeCounts(state, words), rate: perMinute.toFixed(1), etaText: formatDuration(etaSeconds), spend: spendText(state) };
    };
    bar.start(total, 0, payload());
    return {
      update(next) {
        state = next;
        bar.update(settledOf(state), payload());
      },
      setTotal(next) {
        total = next;
        bar.setTotal(next);
      },
      stop() {
        bar.update(settledOf(state), payload());
        bar.stop();
      },
    };
  }

  let lastLine = '';
  const print = (final = false): void => {
    // Ended with nothing counted and nothing to count: say so, rather than a line of zeros.
    const line =
      final && total === 0 && settledOf(state) === 0
        ? `${options.label}: nothing to do`
        : describeProgress(options.label, state, total, startedAt, Date.now(), words, showSpend);
    if (line !== lastLine) stream.write(`${line}\n`);
    lastLine = line;
  };
  const timer = setInterval(() => print(), (options.intervalSeconds ?? 10) * 1000);
  timer.unref();
  return {
    update(next) {
      state = next;
    },
    setTotal(next) {
      total = next;
    },
    stop() {
      clearInterval(timer);
      print(true);
    },
  };
}
