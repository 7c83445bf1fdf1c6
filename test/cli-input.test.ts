/**
 * Sizes and flags as people write them: `2k` for `2K`, a bad flag said once, unknown model ids
 * with the nearest known one, semicolon- and tab-separated files, rejected rows counted as rows,
 * `--redo-changed`, help that is enough without the README, and the small things of a run's
 * output. The CLI runs in this process against a mock endpoint over real HTTP.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadDefinition } from '../src/catalog/definition.js';
import { startMockServer, type MockServer } from '../src/mock/server.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';

const KEY = 'test-key-cli-input';
const PRO = 'gemini-3-pro-image-preview';
const FLASH31 = 'gemini-3.1-flash-image-preview';
const FLASH25 = 'gemini-2.5-flash-image';

let mock: MockServer;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-cli-input-'));
  mock = await startMockServer({ apiKey: KEY });
  env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
});
afterAll(async () => {
  await mock.close();
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const count = (text: string, part: string): number => text.split(part).length - 1;
const sidecar = async (out: string, batch: string, id: string): Promise<{ prompt: string; parameters: { imageSize?: string } }> =>
  JSON.parse(await readFile(join(out, batch, `${id}.json`), 'utf8')) as { prompt: string; parameters: { imageSize?: string } };

describe('sizes and flags as people write them', () => {
  it('takes 1k/2k/4k in the CSV and --image-size and sends the uppercase form the API requires', async () => {
    const csv = await file('lower-k.csv', `id,prompt,model,image_size\na,a mug,${PRO},4k\nb,a cup,${FLASH31},\n`);
    const out = join(dir, 'lower-k-out');
    const result = await runInProcess(['run', csv, '--out', out, '--image-size', '2k', '--plain'], env);
    // The mock, like Google, answers 400 to a lowercase k: both rows done means 4K and 2K were sent.
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect((await sidecar(out, 'lower-k', 'a')).parameters.imageSize).toBe('4K');
    expect((await sidecar(out, 'lower-k', 'b')).parameters.imageSize).toBe('2K');
  });

  it('takes imageSize: 2k in a job definition', async () => {
    const definition = await file('nightly.yaml', `name: nightly\ncsv: rows.csv\nschedule: { every: 1d }\ndefaults: { model: ${PRO}, imageSize: 2k }\n`);
    expect(await loadDefinition(definition)).toMatchObject({ defaults: { imageSize: '2K' } });
  });

  it('a bad flag value is one error naming the flag, exit 2, nothing sent: not one line per row', async () => {
    const csv = await file('three.csv', `prompt,model\none,${PRO}\ntwo,${FLASH31}\nthree,${FLASH25}\n`);
    const before = mock.requests.length;
    for (const [flag, value] of [
      ['--image-size', '5K'],
      ['--aspect-ratio', '5:7'],
      ['--delimiter', 'ab'],
    ] as const) {
      const result = await runInProcess(['run', csv, '--out', join(dir, 'bad-flag-out'), flag, value, '--plain'], env);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(new RegExp(`^error: ${flag}: "${value}" is not an? [a-z ]+ \\(.*\\)\\n$`));
    }
    const estimate = await runInProcess(['estimate', csv, '--image-size', '5K']);
    expect(estimate.code).toBe(2);
    expect(estimate.stderr).toBe('error: --image-size: "5K" is not an image size (512, 1K, 2K, 3K, 4K; 512 on 3.1 flash only)\n');
    expect(mock.requests.length).toBe(before);
  });

  it('a flag value the model of rows that name none cannot take is one error, not one per row', async () => {
    const csv = await file('no-model-flags.csv', `prompt\none\ntwo\nthree\n`);
    const result = await runInProcess(['run', csv, '--out', join(dir, 'no-model-out'), '--image-size', '512', '--dry-run'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`error: --image-size: "512" is not an image size of ${PRO}, the model of rows that name none (give --model for another): 1K, 2K, 4K\n`);
    const flash = await runInProcess(['run', csv, '--out', join(dir, 'no-model-out'), '--image-size', '512', '--model', FLASH31, '--dry-run'], env);
    expect(flash.code, flash.stderr).toBe(0);
  });
});

describe('model ids this version does not know', () => {
  it('estimate warns once with the nearest known id and exits 1; so for --model', async () => {
    const csv = await file('typo.csv', `prompt,model\none,gemini-3-pro-imag\ntwo,gemini-3-pro-imag\nthree,${PRO}\n`);
    const result = await runInProcess(['estimate', csv]);
    expect(result.code).toBe(1);
    expect(count(result.stderr, 'warning:')).toBe(1);
    expect(result.stderr).toContain(`typo.csv:2: model: "gemini-3-pro-imag" is not a model this version knows (did you mean ${PRO}?)`);

    const plain = await file('no-model.csv', 'prompt\none\ntwo\n');
    const flag = await runInProcess(['estimate', plain, '--model', 'gemini-3.1-flash-imag', '--format', 'json']);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toBe(`warning: --model: "gemini-3.1-flash-imag" is not a model this version knows (did you mean ${FLASH31}?); rows that name no model are sent with it as written\n`);
    expect((JSON.parse(flag.stdout) as { unknownModels: string[] }).unknownModels).toEqual(['gemini-3.1-flash-imag']);

    // The same id as --model and in rows: said once; and run --dry-run exits as estimate does.
    const both = await file('both.csv', 'prompt,model\none,gemini-3.1-flash-imag\ntwo,\n');
    const dry = await runInProcess(['run', both, '--model', 'gemini-3.1-flash-imag', '--dry-run', '--out', join(dir, 'both-out')]);
    expect(dry.code).toBe(1);
    expect(count(dry.stderr, 'warning:')).toBe(1);
  });

  it('run warns once at validation and tries the rows; --strict refuses them before any request', async () => {
    const csv = await file('typo-run.csv', `id,prompt,model\na,one,gemini-2.5-flash-imag\nb,two,gemini-2.5-flash-imag\n`);
    const before = mock.requests.length;
    const strict = await runInProcess(['run', csv, '--out', join(dir, 'typo-strict'), '--strict', '--plain'], env);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toContain(`typo-run.csv:2: model: "gemini-2.5-flash-imag" is not a model this version knows (did you mean ${FLASH25}?); --strict refuses it`);
    expect(mock.requests.length).toBe(before);
    const strictFlag = await runInProcess(['run', csv, '--out', join(dir, 'typo-strict'), '--strict', '--model', 'gemini-9', '--plain'], env);
    expect(strictFlag.code).toBe(2);
    expect(strictFlag.stderr).toMatch(/^error: --model: "gemini-9" is not a model this version knows \(known: .*\); --strict refuses it\n$/);

    const lenient = await runInProcess(['run', csv, '--out', join(dir, 'typo-lenient'), '--plain'], env);
    expect(count(lenient.stderr, 'is not a model this version knows')).toBe(1);
    // The mock does not serve it either: the rows were sent, and failed with its 404.
    expect(mock.requests.length).toBe(before + 2);
    expect(lenient.code).toBe(1);
  });
});

describe('semicolon- and tab-separated files', () => {
  it('runs a file Excel saved with ";" (delimiter from the header line), estimates a TSV, and takes --delimiter', async () => {
    const csv = await file('excel.csv', `id;prompt;aspect_ratio;tags\r\nmug;"Tasse, rot; auf Holz";4:3;"küche;rot"\r\ncup;Becher;;\r\n`);
    const out = join(dir, 'excel-out');
    const run = await runInProcess(['run', csv, '--out', out, '--model', FLASH25, '--plain'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('batch excel: 2 done, 0 failed');
    expect((await sidecar(out, 'excel', 'mug')).prompt).toBe('Tasse, rot; auf Holz');

    const tsv = await file('feed.tsv', 'id\ttitle\tprompt\nsku-1\tMug, red\ta red mug\nsku-2\tCup\ta cup\n');
    const estimate = await runInProcess(['estimate', tsv, '--format', 'json']);
    expect(estimate.code, estimate.stderr).toBe(0);
    expect((JSON.parse(estimate.stdout) as { rows: number }).rows).toBe(2);

    const forced = await runInProcess(['estimate', tsv, '--delimiter', ';']);
    expect(forced.code).toBe(2);
    expect(forced.stderr).toBe(`error: ${tsv}:1: the header has no "prompt" column (found: id\ttitle\tprompt; read as semicolon-separated, as --delimiter says); it looks tab-separated: give --delimiter tab\n`);
    expect((await runInProcess(['estimate', tsv, '--delimiter', 'tab'])).code).toBe(0);
  });
});

describe('a run\'s summary', () => {
  it('counts rejected rows, not problems: a row with three bad cells is one rejected row, its three reasons listed', async () => {
    const csv = await file('bad-cells.csv', `id,prompt,model,aspect_ratio,image_size\nok,a mug,${FLASH25},,\nbad,,${PRO},7:7,8K\n`);
    const run = await runInProcess(['run', csv, '--out', join(dir, 'bad-cells-out'), '--plain'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('batch bad-cells: 1 done, 0 failed, 1 rejected');
    expect(run.stdout).toMatch(/bad-cells\.csv:3: prompt: .*\n.*bad-cells\.csv:3: aspect_ratio: .*\n.*bad-cells\.csv:3: image_size: /);
    const estimate = await runInProcess(['estimate', csv, '--format', 'json']);
    expect(JSON.parse(estimate.stdout)).toMatchObject({ rejected: 1, rejectedRows: [expect.any(String), expect.any(String), expect.any(String)] });
    const strict = await runInProcess(['run', csv, '--out', join(dir, 'bad-cells-out'), '--strict'], env);
    expect(strict.stderr).toContain('rejected (--strict): 1 bad row(s)');
  });

  it('run --redo-changed makes again the finished rows whose prompt or parameters changed in the file', async () => {
    const csv = join(dir, 'redo.csv');
    const out = join(dir, 'redo-out');
    await writeFile(csv, `id,prompt,model\nsame,a mug,${FLASH25}\nedited,a teapot,${FLASH25}\n`);
    expect((await runInProcess(['run', csv, '--out', out, '--plain'], env)).code).toBe(0);
    await writeFile(csv, `id,prompt,model\nsame,a mug,${FLASH25}\nedited,a blue teapot,${FLASH25}\n`);
    const before = mock.requests.length;
    const redo = await runInProcess(['run', csv, '--out', out, '--redo-changed', '--plain'], env);
    expect(redo.code, redo.stdout + redo.stderr).toBe(0);
    expect(redo.stdout).toContain('batch redo: 1 done, 0 failed, 1 already done');
    expect(redo.stdout).not.toContain('changed in the file since');
    expect(mock.requests.slice(before).map((request) => request.prompt)).toEqual(['a blue teapot']);
    expect((await sidecar(out, 'redo', 'edited')).prompt).toBe('a blue teapot');
  });

  it('--redo-changed also makes again an edited row whose billed answer was refused, and --dry-run counts what the run does', async () => {
    const csv = join(dir, 'redo-failed.csv');
    const out = join(dir, 'redo-failed-out');
    await writeFile(csv, `id,prompt,model
fine,a mug,${FLASH25}
blocked,a poster [mock:blocked],${FLASH25}
edited,a teapot,${FLASH25}
`);
    expect((await runInProcess(['run', csv, '--out', out, '--plain'], env)).code).toBe(1);
    // The user rewrites the blocked prompt and edits another finished row.
    await writeFile(csv, `id,prompt,model
fine,a mug,${FLASH25}
blocked,a calm poster,${FLASH25}
edited,a blue teapot,${FLASH25}
`);
    const dry = await runInProcess(['run', csv, '--out', out, '--redo-changed', '--dry-run'], env);
    const before = mock.requests.length;
    const redo = await runInProcess(['run', csv, '--out', out, '--redo-changed', '--plain'], env);
    expect(redo.code, redo.stdout + redo.stderr).toBe(0);
    expect(mock.requests.slice(before).map((request) => request.prompt).sort()).toEqual(['a blue teapot', 'a calm poster']);
    expect(dry.stdout).toMatch(/^TOTAL\s+2\s/m);
  });

  it('says a bad key\'s message once', async () => {
    const rows = await file('keyed.csv', `id,prompt,model\nk1,one,${FLASH25}\nk2,two,${FLASH25}\n`);
    const wrong = await runInProcess(['run', rows, '--out', join(dir, 'keyed-out'), '--plain'], { ...env, TOKENHOT_API_KEY: 'sk-wrong-key-0123' });
    expect(wrong.code).toBe(2);
    expect(count(wrong.stdout + wrong.stderr, 'the API key was refused')).toBe(1);
    expect(wrong.stderr).toContain('error: the API key was refused');
    expect(wrong.stdout + wrong.stderr).not.toContain('sk-wrong-key-0123');
  });

  it('lists failed rows in line order', async () => {
    // The slow row of line 2 settles after the quick one of line 3; the list is by line.
    const csv = await file('order.csv', `id,prompt,model\nslow,one [mock:blocked] [mock:latency=400],${FLASH25}\nquick,two [mock:blocked],${FLASH25}\n`);
    const out = join(dir, 'order-out');
    const run = await runInProcess(['run', csv, '--out', out, '--plain'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/failed rows:\n\s+slow \(line 2\): .*\n\s+quick \(line 3\): /);
  });

  it('a progress line with nothing to do says so', async () => {
    const csv = await file('idle.csv', `id,prompt,model\na,one,${FLASH25}\n`);
    const out = join(dir, 'idle-out');
    expect((await runInProcess(['run', csv, '--out', out, '--plain'], env)).code).toBe(0);
    const again = await runInProcess(['run', csv, '--out', out, '--plain'], env);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('idle: nothing to do\n');
  });
});

describe('help', () => {
  it('each command names the environment it reads and its exit status; run, enqueue and estimate the CSV columns; enqueue only what it uses', async () => {
    const help = async (command: string): Promise<string> => {
      const result = await runInProcess([command, '--help']);
      expect(result.code).toBe(0);
      return result.stdout;
    };
    const run = await help('run');
    for (const part of ['TOKENHOT_API_KEY', 'TOKENHOT_BASE_URL', 'REDIS_URL', 'Exit status:', '130', 'image_size', 'reference_images', '--redo-changed']) expect(run).toContain(part);
    const enqueue = await help('enqueue');
    for (const part of ['REDIS_URL', 'TOKENHOT_QUEUE_PREFIX', 'Exit status:', 'aspect_ratio', '--delimiter', 'where the workers write this batch']) expect(enqueue).toContain(part);
    for (const unused of ['--concurrency', '--base-url', '--timeout', '--image-only', 'TOKENHOT_API_KEY']) expect(enqueue).not.toContain(unused);
    expect(enqueue).toContain('--batch <name>          batch name (default: the file name)');
    expect(await help('estimate')).toContain('prompt            required');
    for (const command of ['work', 'status', 'report', 'budget', 'pause', 'mock-server', 'gallery', 'dashboard']) {
      const text = await help(command);
      expect(text, command).toContain('Environment:');
      expect(text, command).toContain('Exit status:');
    }
    expect(await help('status')).toContain('REDIS_URL');
  });
});

describe('enqueue and status', () => {
  const redisUrl = inject('redisUrl');

  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await removePrefix(redisUrl, prefix);
  });
  const queueEnv = (name: string): Record<string, string> => {
    const prefix = uniquePrefix(name);
    prefixes.push(prefix);
    return { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix };
  };

  it('enqueue names the batch after the file, as run does, and reads a ";" file', async () => {
    const csv = await file('spring.csv', `id;prompt;model\na;one;${FLASH25}\nb;two;${FLASH25}\n`);
    const first = await runInProcess(['enqueue', csv, '--plain'], queueEnv('cli-input-name'));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('batch spring: 2 added, 0 already queued or done, 0 rejected\n');
  });

  it('enqueueing again ends its progress on what was added', async () => {
    const csv = await file('again.csv', `id,prompt,model\na,one,${FLASH25}\nb,two,${FLASH25}\n`);
    const queue = queueEnv('cli-input-again');
    expect((await runInProcess(['enqueue', csv, '--batch', 'again', '--plain'], queue)).code).toBe(0);
    const again = await runInProcess(['enqueue', csv, '--batch', 'again', '--plain'], queue);
    expect(again.stderr.trim().split('\n').at(-1)).toMatch(/^enqueue again: 2\/2 \(0 added, 2 already queued, 0 rejected\)/);
  });

  it('on a terminal, an enqueue refused after its bar started ends the bar and gives the cursor back', async () => {
    const csv = await file('refused-tty.csv', `id,prompt,model\na,one,${FLASH25}\nb,two,gemini-2.5-flash-imag\n`);
    const wasTty = process.stderr.isTTY;
    process.stderr.isTTY = true;
    try {
      const refused = await runInProcess(['enqueue', csv, '--strict'], queueEnv('cli-input-tty'));
      expect(refused.code).toBe(2);
      // The bar hid the cursor when it started; without its stop the shell is left without one.
      const hidden = refused.stderr.indexOf('\x1b[?25l');
      expect(hidden).toBeGreaterThanOrEqual(0);
      expect(refused.stderr.indexOf('\x1b[?25h')).toBeGreaterThan(hidden);
      expect(refused.stderr).toContain('refused-tty.csv:3: model');
    } finally {
      process.stderr.isTTY = wasTty;
    }
  });

  it('status --batch includes sub-batches, as report --batch does', async () => {
    const queue = queueEnv('cli-input-status');
    const csv = await file('sub.csv', `prompt,model\nthree,${FLASH25}\n`);
    for (const batch of ['spring', 'spring/extra', 'springtime']) expect((await runInProcess(['enqueue', csv, '--batch', batch, '--plain'], queue)).code).toBe(0);
    const status = await runInProcess(['status', '--batch', 'spring', '--format', 'json'], queue);
    expect((JSON.parse(status.stdout) as { batches: { batch: string }[] }).batches.map((b) => b.batch).sort()).toEqual(['spring', 'spring/extra']);
  });
});
