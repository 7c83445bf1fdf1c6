/**
 * A Provider whose answers a test scripts per row: for testing the attempt policy and the one-row
 * step in this process, without HTTP. Each call of a row takes the row's next step; a row with
 * no steps left (or none) answers an image. Answers are billed as Gemini's are, from usage.
 */
import { CallError, type CallErrorDetails, type ErrorKind } from '../../src/core/errors.js';
import type { BatchRow } from '../../src/core/types.js';
import type { GenerateOptions, Provider, ProviderAnswer } from '../../src/providers/provider.js';

export type Step =
  | { answer: 'image'; afterMs?: number }
  /** Billed, no image: a blocked prompt. */
  | { answer: 'blocked' }
  /** Billed, no image, and something in the body the reader could not use. */
  | { answer: 'problem'; problem: string }
  /** Billed, but its image could not be saved here. */
  | { answer: 'unsaved' }
  | { error: CallError; afterMs?: number };

export const image = (afterMs?: number): Step => ({ answer: 'image', afterMs });
export const blocked = (): Step => ({ answer: 'blocked' });
export const problem = (text: string): Step => ({ answer: 'problem', problem: text });
export const unsaved = (): Step => ({ answer: 'unsaved' });
export const fails = (kind: ErrorKind, message: string, details: CallErrorDetails = {}, afterMs?: number): Step => ({
  error: new CallError(kind, message, details),
  afterMs,
});

export interface Call {
  rowId: string;
  model: string;
  /** When the call started and ended (ms since epoch). */
  at: number;
  endedAt?: number;
  /** Order of the call's start and end among all starts and ends, to tell what came after what. */
  startSeq: number;
  endSeq?: number;
}

/** What a row's `call`-th call (1-based) does; undefined: an image. */
export type Script = (row: BatchRow, call: number) => Step | undefined;

/** A script from a list of steps per row id. */
export function stepsById(steps: Record<string, Step[]>): Script {
  return (row, call) => steps[row.id]?.[call - 1];
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const USAGE = { promptTokenCount: 10, candidatesTokenCount: 1290, totalTokenCount: 1300, candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1290 }] };
const BILLING = { tokens: { inputText: 10, inputImage: 0, outputText: 0, outputImage: 1290, thinking: 0 } };

export class ScriptedProvider implements Provider {
  readonly name = 'gemini' as const;
  readonly calls: Call[] = [];
  private readonly callsOf = new Map<string, number>();
  private seq = 0;

  constructor(private readonly script: Script = () => undefined) {}

  /** The calls of one row. */
  callsFor(rowId: string): Call[] {
    return this.calls.filter((call) => call.rowId === rowId);
  }

  /** Calls that started after `call` ended. */
  startedAfter(call: Call): Call[] {
    return this.calls.filter((other) => call.endSeq !== undefined && other.startSeq > call.endSeq);
  }

  async generate(row: BatchRow, options: GenerateOptions): Promise<ProviderAnswer> {
    const record: Call = { rowId: row.id, model: row.model, at: Date.now(), startSeq: ++this.seq };
    this.calls.push(record);
    try {
      return await this.answer(row, options);
    } finally {
      record.endedAt = Date.now();
      record.endSeq = ++this.seq;
    }
  }

  private async answer(row: BatchRow, options: GenerateOptions): Promise<ProviderAnswer> {
    const call = (this.callsOf.get(row.id) ?? 0) + 1;
    this.callsOf.set(row.id, call);
    const step = this.script(row, call) ?? image();
    if ('afterMs' in step && step.afterMs) await new Promise((resolve) => setTimeout(resolve, step.afterMs));
    if ('error' in step) throw step.error;
    const billed = { texts: [], usage: { field: 'usageMetadata' as const, value: USAGE }, billing: BILLING };
    switch (step.answer) {
      case 'image': {
        const writer = await options.sink.open();
        await writer.write(PNG);
        return { ...billed, images: [{ ...(await writer.close()), mimeType: 'image/png' }], finishReason: 'STOP' };
      }
      case 'blocked':
        return { ...billed, images: [], blockReason: 'PROHIBITED_CONTENT' };
      case 'problem':
        return { ...billed, images: [], problem: step.problem };
      case 'unsaved':
        return { ...billed, images: [], saveError: new Error('the disk said no, this once') };
    }
  }

  async close(): Promise<void> {}
}
