/**
 * What `--help` says besides the flags, so that it is enough without the README: the environment
 * each command reads, its exit status and, for the commands that take one, the CSV's columns.
 * Each text is written once here and added to the commands that share it.
 */
import type { Command } from 'commander';
import { BASE_ASPECT_RATIOS, capabilitiesOf, MODELS } from '../providers/models.js';

/** The environment, in the words of the commands that read it; a command may say more of one. */
const ENVIRONMENT = {
  TOKENHOT_API_KEY: 'the Bearer key; never logged or written anywhere',
  TOKENHOT_BASE_URL: 'endpoint base URL (--base-url; default https://tokenhot.ai)',
  TOKENHOT_OUT_DIR: 'output folder (--out; default ./output)',
  TOKENHOT_MODEL: 'model for rows that name none (--model)',
  TOKENHOT_PRICES: 'price file over the built-in prices (--prices)',
  REDIS_URL: 'the queue, redis:// or rediss:// (required)',
  TOKENHOT_QUEUE_PREFIX: 'queue key prefix (--prefix; default tokenhot)',
  TOKENHOT_DURABLE: '0: no fsync of images, sidecars and ledger lines (faster; not safe from a power cut)',
  LOG_LEVEL: 'pino log level, on stderr',
  LOG_FORMAT: 'json: JSON logs on a terminal too',
  TOKENHOT_WEBHOOK_SECRET: 'signs webhooks (--notify, notify:); at least 16 characters',
  TOKENHOT_DASHBOARD_USER: 'with TOKENHOT_DASHBOARD_PASSWORD: basic auth for every request',
  TOKENHOT_DASHBOARD_PASSWORD: 'its password',
} as const;

export type EnvName = keyof typeof ENVIRONMENT;

export interface CommandHelp {
  /** Variables read, each with the shared words or words of its own for this command. */
  environment: (EnvName | [EnvName, string])[];
  /** `[status, meaning]`, in order. */
  exits: [number, string][];
  /** Whether the command reads a prompt CSV (run, enqueue, estimate). */
  csv?: boolean;
}

const columns = (rows: [string, string][]): string[] => {
  const width = Math.max(...rows.map(([name]) => name.length));
  return rows.map(([name, text]) => `  ${name.padEnd(width)}  ${text}`);
};

/** A model's aspect ratios, space-separated. */
const ratiosOf = (id: string): string => capabilitiesOf(id).aspectRatios.join(' ');

const CSV_COLUMNS = [
  'CSV: a header row, then one row per image. Comma-, semicolon- or tab-separated: the header line',
  'says which (or --delimiter). UTF-8, with or without a BOM.',
  ...columns([
    ['prompt', 'required: the prompt (in double quotes if it holds the delimiter, quotes or line breaks)'],
    ['id', 'unique in the file; names the outputs (default row-00001, row-00002, ...)'],
    ['model', `${MODELS.map((m) => m.id).join(', ')} (default: --model)`],
    ['aspect_ratio', `Gemini ${BASE_ASPECT_RATIOS.join(' ')}, 3.1 flash also 1:4 4:1 1:8 8:1; Seedream ${ratiosOf('doubao-seedream-4-5-251128')}; GPT Image ${ratiosOf('gpt-image-2')}; DALL-E 3 ${ratiosOf('dall-e-3')}`],
    ['image_size', `1K 2K 4K (or 1k 2k 4k); 3.1 flash also 512; Seedream 4.0 1K 2K 4K, 4.5 2K 4K, 5.0 2K 3K; none on 2.5 flash, GPT Image, DALL-E`],
    ['size', 'an exact WxH instead of aspect_ratio and image_size (Seedream, GPT Image, DALL-E; within what each takes)'],
    ['quality', 'GPT Image low medium high auto; DALL-E 3 standard hd (default standard)'],
    ['reference_images', ';-separated paths of images to edit or draw from, relative to the CSV'],
    ['tags', ';-separated, for cost reports by tag'],
    ['other columns', 'kept as metadata in the sidecar'],
  ]),
  'Empty cells take --model, --aspect-ratio, --image-size. A bad row is named by file:line: column.',
];

export function helpText(help: CommandHelp): string {
  const lines: string[] = [];
  if (help.csv) lines.push('', ...CSV_COLUMNS);
  lines.push('', 'Environment:');
  if (help.environment.length === 0) lines.push('  (none)');
  lines.push(...columns(help.environment.map((entry) => (typeof entry === 'string' ? [entry, ENVIRONMENT[entry]] : entry))));
  lines.push('', 'Exit status:', ...columns(help.exits.map(([status, meaning]) => [String(status), meaning])));
  return lines.join('\n');
}

/** Adds the text after the command's flags in its `--help`. */
export function withHelp(command: Command, help: CommandHelp): Command {
  return command.addHelpText('after', helpText(help));
}

/** Exit statuses several commands share. */
export const EXIT = {
  ok: [0, 'done'] as [number, string],
  usage: [2, 'bad usage or configuration (a flag, the environment), or Redis not reachable'] as [number, string],
  interrupted: [130, 'stopped by Ctrl-C (calls in flight were finished and saved)'] as [number, string],
};

/** The queue's variables, for the commands that only talk to Redis. */
export const QUEUE_ENV: EnvName[] = ['REDIS_URL', 'TOKENHOT_QUEUE_PREFIX'];

/**
 * The dashboard's defaults, which its `--help` states (operator-commands.ts) and its command
 * applies (commands/dashboard.ts); here so that neither of those two imports the other.
 */
export const DEFAULT_DASHBOARD_PORT = 3100;
export const DEFAULT_DASHBOARD_HOST = '127.0.0.1';
