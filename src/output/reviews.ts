/**
 * Review decisions as data: one append-only JSON Lines file per batch,
 * `<out>/<batch>/.reviews.jsonl`, beside the sidecars. A dot name that does not end in `.json`,
 * so sidecar listings (gallery, manifest) never take it for a row.
 *
 * Each line is one decision on one row: `{rowId, decision, note?, who, at}`. Nothing is ever
 * rewritten: the row's current decision is its last line, the lines before are its history. A
 * `regenerated` line says the row was made again (its earlier lines belong to `<id>.v<version>`),
 * so the new image starts unreviewed.
 *
 * Written with plain node:fs: reviews are for local output folders.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { isBucketUrl } from './location.js';
import { existsSync } from 'node:fs';

export const REVIEWS_FILE = '.reviews.jsonl';
export const DECISIONS = ['approved', 'rejected'] as const;
export type Decision = (typeof DECISIONS)[number];
/** What a row's review state can be: a decision, or none yet. */
export type ReviewState = Decision | 'unreviewed';
/** Long enough for a reason, short enough to go into a prompt. */
export const MAX_NOTE_LENGTH = 500;

const reviewLineSchema = z.object({
  rowId: z.string().min(1),
  decision: z.enum(['approved', 'rejected', 'regenerated']),
  note: z.string().optional(),
  who: z.string(),
  at: z.string(),
  /** On `regenerated`: the version the old image and sidecar were kept as. */
  version: z.number().int().positive().optional(),
});

export type ReviewLine = z.infer<typeof reviewLineSchema>;

/**
 * The output folder reviews are read from and written to: a local one (a bucket's decisions
 * would need a store of their own: not yet). Said plainly instead of finding nothing.
 */
export function reviewableOutput(out: string): string {
  if (isBucketUrl(out)) throw new UsageError(`${out}: review, regenerate and deliver work on a local output folder; an output on a bucket cannot be reviewed yet`);
  return out;
}

/** The batch's folder, which must exist: a misspelt batch is named, not an empty review. */
export function existingBatchFolder(out: string, batch: string): string {
  const folder = batchFolder(out, batch);
  if (!existsSync(folder)) throw new UsageError(`no batch ${batch} under ${out}`);
  return folder;
}

/** A batch name as a folder under the output folder; never a way out of it. */
export function batchFolder(out: string, batch: string): string {
  if (batch === '' || batch.split(/[\\/]/).some((part) => part === '..' || part === '')) throw new UsageError(`--batch: "${batch}" is not a batch name`);
  return join(out, batch);
}

export function reviewsPath(out: string, batch: string): string {
  return join(batchFolder(out, batch), REVIEWS_FILE);
}

/** Who decides: the basic-auth user when there is one, else the user of this machine. */
export function reviewerName(authUser?: string): string {
  if (authUser) return authUser;
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** A decision as the page or the CLI gives it; throws UsageError for a bad one. */
export function checkedDecision(value: { rowId?: unknown; decision?: unknown; note?: unknown }): { rowId: string; decision: Decision; note?: string } {
  if (typeof value.rowId !== 'string' || value.rowId === '') throw new UsageError('rowId: give the row id');
  if (!(DECISIONS as readonly unknown[]).includes(value.decision)) throw new UsageError(`decision: one of ${DECISIONS.join(', ')}`);
  if (value.note !== undefined && typeof value.note !== 'string') throw new UsageError('note: a text');
  const note = typeof value.note === 'string' ? value.note.trim() : '';
  if (note.length > MAX_NOTE_LENGTH) throw new UsageError(`note: at most ${MAX_NOTE_LENGTH} characters`);
  return { rowId: value.rowId, decision: value.decision as Decision, ...(note !== '' ? { note } : {}) };
}

/**
 * Appends one line. One `appendFile` of a line shorter than a pipe buffer: concurrent writers
 * (two reviewers) interleave whole lines, never parts of them.
 */
export async function appendReview(out: string, batch: string, line: Omit<ReviewLine, 'at'> & { at?: string }): Promise<ReviewLine> {
  const full = reviewLineSchema.parse({ ...line, at: line.at ?? new Date().toISOString() });
  await mkdir(batchFolder(out, batch), { recursive: true });
  await appendFile(reviewsPath(out, batch), `${JSON.stringify(full)}\n`, 'utf8');
  return full;
}

/** Every line of a batch's review file, oldest first; a batch never reviewed has none. */
export async function readReviews(out: string, batch: string): Promise<ReviewLine[]> {
  let text: string;
  try {
    text = await readFile(reviewsPath(out, batch), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const lines: ReviewLine[] = [];
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    // A line cut short by a crash mid-write is skipped, not fatal: the lines around it stand.
    try {
      const parsed = reviewLineSchema.safeParse(JSON.parse(raw));
      if (parsed.success) lines.push(parsed.data);
    } catch {
      continue;
    }
  }
  return lines;
}

/** The current decision of each row: its last line, unless that says it was made again. */
export function currentDecisions(lines: ReviewLine[]): Map<string, ReviewLine & { decision: Decision }> {
  const last = new Map<string, ReviewLine>();
  for (const line of lines) last.set(line.rowId, line);
  const current = new Map<string, ReviewLine & { decision: Decision }>();
  for (const [rowId, line] of last) if (line.decision !== 'regenerated') current.set(rowId, line as ReviewLine & { decision: Decision });
  return current;
}

/** A prompt made again: with the reviewer's note as guidance when asked for and given. */
export function guidedPrompt(prompt: string, note: string | undefined, guided: boolean): string {
  return guided && note ? `${prompt}\n\nAvoid: ${note}` : prompt;
}

/**
 * The review state of one row given the current decisions. A decision older than the row's image
 * (`finishedAt`: the row was made again since, by a re-run or a firing) was about another image:
 * the image there now is unreviewed, and is not handed out as approved.
 */
export function stateOf(current: Map<string, ReviewLine>, rowId: string, finishedAt?: string): ReviewState {
  const line = current.get(rowId);
  if (!line || (finishedAt !== undefined && Date.parse(line.at) < Date.parse(finishedAt))) return 'unreviewed';
  return line.decision === 'approved' || line.decision === 'rejected' ? line.decision : 'unreviewed';
}

/** The current decisions of a batch, read from its file. */
export async function batchDecisions(out: string, batch: string): Promise<Map<string, ReviewLine & { decision: Decision }>> {
  return currentDecisions(await readReviews(out, batch));
}
