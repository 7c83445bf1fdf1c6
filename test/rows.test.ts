import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readImageMime, sniffImageMime, GEMINI_INPUT_MIME_TYPES, isGeminiInputMime } from '../src/rows/image-type.js';
import {
  CsvFileError,
  formatProblem,
  MAX_REFERENCE_BYTES,
  readRows,
  rejectedRowCount,
  type RowDefaults,
  type RowProblem,
  type RowRead,
} from '../src/rows/csv.js';
import type { Row } from '../src/core/types.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'csv');
const PRO = 'gemini-3-pro-image-preview';
const FLASH31 = 'gemini-3.1-flash-image-preview';
const FLASH25 = 'gemini-2.5-flash-image';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenhot-rows-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function csv(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  return path;
}

async function readAll(path: string, defaults: RowDefaults = { model: PRO }): Promise<RowRead[]> {
  const out: RowRead[] = [];
  for await (const read of readRows(path, { defaults })) out.push(read);
  return out;
}

function rowsOf(reads: RowRead[]): Row[] {
  return reads.flatMap((r) => ('row' in r ? [r.row] : []));
}

function problemsOf(reads: RowRead[]): RowProblem[] {
  return reads.flatMap((r) => ('problem' in r ? [r.problem] : []));
}

async function fileError(path: string, defaults: RowDefaults = { model: PRO }): Promise<CsvFileError> {
  try {
    await readAll(path, defaults);
  } catch (error) {
    if (error instanceof CsvFileError) return error;
    throw error;
  }
  throw new Error('expected a CsvFileError');
}

async function png(name: string, width = 4, height = 4): Promise<string> {
  const path = join(dir, name);
  await mkdir(dirname(path), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: { r: 200, g: 10, b: 10 } } })
    .png()
    .toFile(path);
  return path;
}

async function jpeg(name: string): Promise<string> {
  const path = join(dir, name);
  await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 10, g: 10, b: 200 } } })
    .jpeg()
    .toFile(path);
  return path;
}

describe('image types by content', () => {
  it('recognises PNG, JPEG, WebP and GIF made by sharp, whatever the file is called', async () => {
    const base = sharp({ create: { width: 2, height: 2, channels: 3, background: '#336699' } });
    const cases = [
      ['a.jpg', await base.clone().png().toBuffer(), 'image/png'],
      ['b.png', await base.clone().jpeg().toBuffer(), 'image/jpeg'],
      ['c.bin', await base.clone().webp().toBuffer(), 'image/webp'],
      ['d.png', await base.clone().gif().toBuffer(), 'image/gif'],
    ] as const;
    for (const [name, bytes, mime] of cases) {
      expect(sniffImageMime(bytes)).toBe(mime);
      await writeFile(join(dir, name), bytes);
      expect(await readImageMime(join(dir, name))).toBe(mime);
    }
  });

  it('tells HEIC and HEIF by their ftyp brands, and refuses AVIF', () => {
    const ftyp = (major: string, ...compatible: string[]): Uint8Array => {
      const size = 16 + 4 * compatible.length;
      const bytes = Buffer.alloc(size);
      bytes.writeUInt32BE(size, 0);
      bytes.write('ftyp', 4, 'latin1');
      bytes.write(major, 8, 'latin1');
      compatible.forEach((b, i) => bytes.write(b, 16 + 4 * i, 'latin1'));
      return bytes;
    };
    expect(sniffImageMime(ftyp('heic', 'mif1', 'heic'))).toBe('image/heic');
    expect(sniffImageMime(ftyp('mif1', 'mif1', 'heic'))).toBe('image/heic');
    expect(sniffImageMime(ftyp('mif1', 'mif1'))).toBe('image/heif');
    expect(sniffImageMime(ftyp('avif', 'mif1', 'avif'))).toBeUndefined();
    expect(sniffImageMime(ftyp('mif1', 'mif1', 'avif'))).toBeUndefined();
    expect(sniffImageMime(ftyp('isom', 'mp41'))).toBeUndefined();
  });

  it('says nothing for text, empty input and truncated magic', () => {
    expect(sniffImageMime(Buffer.from('id,prompt\n'))).toBeUndefined();
    expect(sniffImageMime(new Uint8Array())).toBeUndefined();
    expect(sniffImageMime(Uint8Array.from([0x89, 0x50, 0x4e]))).toBeUndefined();
  });

  it('lists the input types Gemini takes, without GIF', () => {
    expect([...GEMINI_INPUT_MIME_TYPES]).toEqual(['image/png', 'image/jpeg', 'image/webp', 'image/heic', 'image/heif']);
    expect(isGeminiInputMime('image/gif')).toBe(false);
    expect(isGeminiInputMime(undefined)).toBe(false);
  });
});

describe('readRows: reading the file', () => {
  it('reads the example catalog: quoting, multi-line prompts, CJK, defaults, tags and metadata', async () => {
    const path = join(FIXTURES, 'catalog.csv');
    const reads = await readAll(path, { model: PRO, imageSize: '1K' });
    expect(problemsOf(reads)).toEqual([]);
    expect(rowsOf(reads)).toEqual([
      {
        id: 'mug-red',
        line: 2,
        prompt: 'A red mug, studio light, "hero" shot',
        model: PRO,
        aspectRatio: '1:1',
        imageSize: '2K',
        referenceImages: [],
        tags: ['catalog', 'mugs'],
        metadata: { sku: 'SKU-1', notes: '' },
      },
      {
        id: 'poster',
        line: 3,
        prompt: 'A poster\nwith two lines',
        model: FLASH31,
        aspectRatio: '1:4',
        imageSize: '512',
        referenceImages: [],
        tags: ['posters'],
        metadata: { sku: 'SKU-2', notes: 'tall' },
      },
      {
        id: 'row-00003',
        line: 5,
        prompt: '東京の夜景、ネオン、雨',
        model: PRO,
        imageSize: '1K',
        referenceImages: [],
        tags: [],
        metadata: { sku: 'SKU-3', notes: '日本語' },
      },
      {
        // The default image size does not apply to 2.5 flash, which takes none.
        id: 'row-00004',
        line: 6,
        prompt: '一只猫坐在窗台上，水彩画风格',
        model: FLASH25,
        aspectRatio: '16:9',
        referenceImages: [],
        tags: [],
        metadata: { sku: 'SKU-4', notes: '' },
      },
    ]);
  });

  it('reads UTF-8 with a BOM and CRLF line ends', async () => {
    const path = await csv('bom.csv', '\uFEFFprompt,id\r\nfirst,a\r\nsecond,b\r\n');
    const rows = rowsOf(await readAll(path));
    expect(rows.map((r) => [r.id, r.line, r.prompt])).toEqual([
      ['a', 2, 'first'],
      ['b', 3, 'second'],
    ]);
  });

  it('gives the start line of each record after multi-line quoted records, LF and CRLF alike', async () => {
    const lines = [
      'id,prompt',
      'a,"one, with comma"',
      'b,"two',
      'lines, ""quoted"""',
      'c,"three',
      '',
      'lines with a blank one"',
      'd,four',
    ];
    for (const eol of ['\n', '\r\n', '\r']) {
      const path = await csv(`multi-${eol.length}-${eol.charCodeAt(0)}.csv`, lines.join(eol) + eol);
      const rows = rowsOf(await readAll(path));
      expect(rows.map((r) => [r.id, r.line])).toEqual([
        ['a', 2],
        ['b', 3],
        ['c', 5],
        ['d', 8],
      ]);
      expect(rows[1]?.prompt).toBe(`two${eol}lines, "quoted"`);
      expect(rows[2]?.prompt).toBe(`three${eol}${eol}lines with a blank one`);
    }
  });

  it('counts lines across mixed line ends', async () => {
    const path = await csv('mixed.csv', 'id,prompt\r\na,x\nb,"y\r\nz"\rc,w\r\n');
    const rows = rowsOf(await readAll(path));
    expect(rows.map((r) => [r.id, r.line])).toEqual([
      ['a', 2],
      ['b', 3],
      ['c', 5],
    ]);
  });

  it('skips blank lines, in the middle and at the end, without losing the line count', async () => {
    const path = await csv('blank.csv', '\nid,prompt\n\na,x\n   \n,,\nb,y\n\n\n');
    const reads = await readAll(path);
    expect(problemsOf(reads)).toEqual([]);
    expect(rowsOf(reads).map((r) => [r.id, r.line])).toEqual([
      ['a', 4],
      ['b', 7],
    ]);
  });

  it('numbers default ids by record, not by line', async () => {
    const path = await csv('default-ids.csv', 'prompt\nx\n"multi\nline"\n\ny\n');
    const rows = rowsOf(await readAll(path));
    expect(rows.map((r) => [r.id, r.line])).toEqual([
      ['row-00001', 2],
      ['row-00002', 3],
      ['row-00003', 6],
    ]);
  });

  it('round-trips CJK prompts exactly, also where a read chunk splits a character', async () => {
    const prompts = ['一只猫坐在窗台上，水彩画风格', '東京タワーの夜景、「ネオン」、雨上がり', '한국어 프롬프트', '🐱 emoji, "quoted"'];
    const records: string[] = [];
    // Over 64 KiB (one read chunk) so multi-byte characters straddle chunk boundaries.
    for (let i = 0; i < 4000; i++) records.push(`r${i},"${(prompts[i % prompts.length] ?? '').replace(/"/g, '""')}"`);
    const path = await csv('cjk.csv', `id,prompt\n${records.join('\n')}\n`);
    const rows = rowsOf(await readAll(path));
    expect(rows).toHaveLength(4000);
    rows.forEach((row, i) => {
      expect(row.prompt).toBe(prompts[i % prompts.length]);
      expect(row.line).toBe(i + 2);
    });
  });

  it('keeps quotes inside an unquoted cell literally', async () => {
    const path = await csv('quotes.csv', 'id,prompt\na,He said "hi" twice\n');
    expect(rowsOf(await readAll(path))[0]?.prompt).toBe('He said "hi" twice');
  });

  it('yields nothing for a file with only a header', async () => {
    expect(await readAll(await csv('header.csv', 'id,prompt\n'))).toEqual([]);
    expect(await readAll(await csv('header-noeol.csv', '\uFEFFprompt'))).toEqual([]);
  });

  it('reads a last record without a line end', async () => {
    const rows = rowsOf(await readAll(await csv('noeol.csv', 'id,prompt\na,x\nb,y')));
    expect(rows.map((r) => r.id)).toEqual(['a', 'b']);
  });

  it('lets a consumer stop early', async () => {
    const path = await csv('early.csv', `prompt\n${'x\n'.repeat(5000)}`);
    let seen = 0;
    for await (const read of readRows(path, { defaults: { model: PRO } })) {
      expect('row' in read).toBe(true);
      if (++seen === 3) break;
    }
    expect(seen).toBe(3);
  });
});

describe('readRows: files that cannot be used', () => {
  it('names a missing file as the user gave it', async () => {
    const error = await fileError(join(dir, 'nope.csv'));
    expect(error.file).toBe(join(dir, 'nope.csv'));
    expect(error.message).toContain('nope.csv');
    expect(error.line).toBeUndefined();
  });

  it('refuses a folder', async () => {
    expect((await fileError(dir)).reason).toContain('folder');
  });

  it('refuses an empty file: no header', async () => {
    expect((await fileError(await csv('empty.csv', ''))).reason).toContain('is empty');
    expect((await fileError(await csv('blank-lines.csv', '\n\r\n\n'))).reason).toContain('is empty');
    expect((await fileError(await csv('bom-only.csv', '\uFEFF'))).reason).toContain('is empty');
  });

  it('refuses a header without prompt, naming the file and what it found', async () => {
    const path = await csv('noprompt.csv', 'id,text\na,b\n');
    const error = await fileError(path);
    expect(error).toBeInstanceOf(CsvFileError);
    expect(error.file).toBe(path);
    expect(error.line).toBe(1);
    expect(error.message).toBe(`${path}:1: the header has no "prompt" column (found: id, text; read as comma-separated)`);
  });

  it('reads semicolon- and tab-separated files (Excel in much of Europe, feeds), the delimiter detected from the header line', async () => {
    expect(rowsOf(await readAll(join(FIXTURES, 'semicolons.csv')))).toMatchObject([{ id: '1', prompt: 'a red mug', model: PRO }]);
    // Delimiters inside quotes do not count; a `;` list in a quoted cell stays one cell.
    const semi = await csv('semi.csv', `"id";"prompt, long";prompt;tags\n1;x;"a mug, blue; on a table";"a;b"\n`);
    expect(rowsOf(await readAll(semi))).toMatchObject([{ id: '1', prompt: 'a mug, blue; on a table', tags: ['a', 'b'], metadata: { 'prompt, long': 'x' } }]);
    const tsv = await csv('feed.tsv', `\n\uFEFFid\tprompt\taspect_ratio\na\tred, white and blue\t16:9\n`);
    expect(rowsOf(await readAll(tsv))).toMatchObject([{ id: 'a', prompt: 'red, white and blue', aspectRatio: '16:9' }]);
    // One column: nothing to detect, a comma it is.
    expect(rowsOf(await readAll(await csv('one.csv', 'prompt\n"a, b; c"\n'))).map((r) => r.prompt)).toEqual(['a, b; c']);
  });

  it('takes the delimiter it is given, and a header that still has no prompt names the delimiter used', async () => {
    const path = await csv('pipes.csv', 'id|prompt\na|a mug, blue\n');
    const read = async (delimiter?: string): Promise<RowRead[]> => {
      const out: RowRead[] = [];
      for await (const r of readRows(path, { defaults: { model: PRO }, ...(delimiter ? { delimiter } : {}) })) out.push(r);
      return out;
    };
    expect(rowsOf(await read('|'))).toMatchObject([{ id: 'a', prompt: 'a mug, blue' }]);
    await expect(read()).rejects.toThrow(`${path}:1: the header has no "prompt" column (found: id|prompt; read as comma-separated); it looks "|"-separated: give --delimiter '|'`);
    const semi = join(FIXTURES, 'semicolons.csv');
    const error = await readRows(semi, { defaults: { model: PRO }, delimiter: '\t' }).next().catch((e: unknown) => e);
    expect((error as CsvFileError).message).toBe(
      `${semi}:1: the header has no "prompt" column (found: id;prompt;model; read as tab-separated, as --delimiter says); it looks semicolon-separated: give --delimiter ';'`,
    );
  });

  it('matches header names trimmed and in any case, with spaces for underscores', async () => {
    const path = await csv('headers.csv', ' PROMPT , Aspect Ratio ,ID\nx,16:9,a\n');
    expect(rowsOf(await readAll(path))).toMatchObject([{ id: 'a', prompt: 'x', aspectRatio: '16:9' }]);
  });

  it('refuses duplicate header names', async () => {
    const error = await fileError(await csv('dup-header.csv', 'id,prompt,Prompt\na,b,c\n'));
    expect(error.reason).toContain('column 2 and column 3 both "prompt"');
    const other = await fileError(await csv('dup-header2.csv', 'prompt,sku,SKU \na,b,c\n'));
    expect(other.reason).toContain('"sku"');
  });

  it('refuses invalid UTF-8, naming the line, after yielding the rows before it', async () => {
    const bytes = Buffer.concat([
      Buffer.from('id,prompt\na,caf\u00e9\nb,"two\nlines"\nc,caf'),
      Buffer.from([0xe9]), // Latin-1 é
      Buffer.from('\nd,x\n'),
    ]);
    const path = await csv('latin1.csv', bytes);
    const seen: string[] = [];
    let error: unknown;
    try {
      for await (const read of readRows(path, { defaults: { model: PRO } })) if ('row' in read) seen.push(read.row.id);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CsvFileError);
    expect((error as CsvFileError).line).toBe(5);
    expect((error as CsvFileError).message).toMatch(/latin1\.csv:5: not UTF-8 text \(byte 0xe9\)/);
    expect(seen.length).toBeLessThanOrEqual(2);
  });

  it('refuses a truncated UTF-8 character at the end, overlong forms and surrogates', async () => {
    const cut = Buffer.from('prompt\n猫');
    expect((await fileError(await csv('cut.csv', cut.subarray(0, cut.length - 1)))).reason).toContain('not UTF-8');
    expect((await fileError(await csv('overlong.csv', Buffer.from([0x70, 0x0a, 0xc0, 0xaf])))).reason).toContain('not UTF-8');
    const surrogate = Buffer.concat([Buffer.from('prompt\n'), Buffer.from([0xed, 0xa0, 0x80])]);
    expect((await fileError(await csv('surrogate.csv', surrogate))).line).toBe(2);
  });

  it('refuses UTF-16, binary files, images and Excel workbooks', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('prompt\r\nx\r\n', 'utf16le')]);
    expect((await fileError(await csv('utf16.csv', utf16))).reason).toContain('UTF-16');
    const nul = Buffer.concat([Buffer.from('prompt\nabc'), Buffer.from([0]), Buffer.from('\n')]);
    const nulError = await fileError(await csv('nul.csv', nul));
    expect(nulError.reason).toContain('binary');
    expect(nulError.line).toBe(2);
    const image = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#000' } }).png().toBuffer();
    expect((await fileError(await csv('image.csv', image))).reason).toContain('image/png');
    const zip = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00]), Buffer.alloc(30)]);
    expect((await fileError(await csv('book.csv', zip))).reason).toContain('Excel');
  });

  it('refuses an unclosed quote, naming the line where its record starts', async () => {
    const records = Array.from({ length: 3000 }, (_, i) => `r${i},p${i}`).join('\n');
    const path = await csv('unclosed.csv', `id,prompt\n${records}\nx,"never\nclosed\n`);
    let rows = 0;
    let error: unknown;
    try {
      for await (const read of readRows(path, { defaults: { model: PRO } })) if ('row' in read) rows++;
    } catch (e) {
      error = e;
    }
    expect(rows).toBe(3000);
    expect(error).toBeInstanceOf(CsvFileError);
    expect((error as CsvFileError).line).toBe(3002);
    expect((error as CsvFileError).reason).toContain('never closed');
  });

  it('refuses a huge record instead of holding it in memory', async () => {
    const path = await csv('huge.csv', `prompt\n"${'x'.repeat(1024 * 1024 + 10)}"\n`);
    const error = await fileError(path);
    expect(error.line).toBe(2);
    expect(error.reason).toContain('over 1 MB');
  });

  it('needs a default model', async () => {
    const path = await csv('ok.csv', 'prompt\nx\n');
    await expect(readAll(path, { model: '' })).rejects.toThrow(TypeError);
  });
});

describe('readRows: row checks', () => {
  it('formats problems as file:line: column: reason', () => {
    expect(formatProblem({ file: 'prompts.csv', line: 14, column: 'aspect_ratio', reason: 'bad' })).toBe(
      'prompts.csv:14: aspect_ratio: bad',
    );
    expect(formatProblem({ file: 'prompts.csv', line: 3, column: '', reason: 'has 3 fields' })).toBe('prompts.csv:3: has 3 fields');
  });

  it('reports a blank prompt and keeps going', async () => {
    const path = await csv('blank-prompt.csv', 'id,prompt\na,   \nb,ok\n');
    const reads = await readAll(path);
    expect(problemsOf(reads)).toEqual([{ file: path, line: 2, column: 'prompt', reason: 'is empty; every row needs a prompt' }]);
    expect(rowsOf(reads).map((r) => r.id)).toEqual(['b']);
  });

  it('reports duplicate ids on the second occurrence, naming the first line, in any case', async () => {
    const path = await csv('dup.csv', 'id,prompt\na,x\nb,"y\nz"\na,w\nB,v\n');
    const reads = await readAll(path);
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:5: id: "a" is already the id of line 2`,
      `${path}:6: id: "B" is already the id of line 3; ids that differ only in case name the same files on macOS and Windows`,
    ]);
    expect(rowsOf(reads).map((r) => r.id)).toEqual(['a', 'b']);
  });

  it('refuses an id that is the file name of another row\'s second image, in either order', async () => {
    const path = await csv('second-image.csv', 'id,prompt\nshot,x\nshot-2,y\nwide-3,z\nWIDE,w\nshot-1,v\n');
    const reads = await readAll(path);
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:3: id: "shot-2" is the file name of image 2 of row "shot" (line 2); choose another id`,
      `${path}:5: id: "WIDE" would name its second, third ... image like the row "wide-3" (line 4); choose another id`,
    ]);
    expect(rowsOf(reads).map((r) => r.id)).toEqual(['shot', 'wide-3', 'shot-1']);
  });

  it('refuses ids that are unsafe as file names', async () => {
    const bad = ['../x', 'a/b', 'a\\b', 'x..y', '.hidden', '-dash', 'a b', 'x.json', 'X.JSON', 'ü', 'a'.repeat(121)];
    const path = await csv('unsafe.csv', `id,prompt\n${bad.map((id) => `${id},p`).join('\n')}\nok.v2_final-1,p\n${'b'.repeat(120)},p\n`);
    const reads = await readAll(path);
    const problems = problemsOf(reads);
    expect(problems.map((p) => [p.line, p.column])).toEqual(bad.map((_, i) => [i + 2, 'id']));
    expect(problems[0]?.reason).toBe('"../x" cannot name output files: it contains a slash');
    expect(problems[3]?.reason).toContain('".."');
    expect(problems[7]?.reason).toContain('.json');
    expect(rowsOf(reads).map((r) => r.id)).toEqual(['ok.v2_final-1', 'b'.repeat(120)]);
  });

  it('gives an empty id the default id, which must not collide with given ids', async () => {
    const path = await csv('ids.csv', 'id,prompt\nrow-00002,first\n"  ",second\n,third\nrow-00003,fourth\n');
    const reads = await readAll(path);
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:3: id: this row has no id and its default id "row-00002" is already used on line 2; give this row an id`,
      `${path}:5: id: "row-00003" is already the id of line 4 (the default id of that row, which has no id)`,
    ]);
    expect(rowsOf(reads).map((r) => [r.id, r.prompt])).toEqual([
      ['row-00002', 'first'],
      ['row-00003', 'third'],
    ]);
  });

  it('checks aspect ratios per model', async () => {
    const path = await csv(
      'ratios.csv',
      `prompt,model,aspect_ratio\na,${FLASH31},1:4\nb,${PRO},1:4\nc,${PRO},5:7\nd,,21:9\ne,${FLASH25},8:1\n`,
    );
    const reads = await readAll(path);
    expect(rowsOf(reads).map((r) => [r.line, r.model, r.aspectRatio])).toEqual([
      [2, FLASH31, '1:4'],
      [5, PRO, '21:9'],
    ]);
    const messages = problemsOf(reads).map(formatProblem);
    expect(messages).toEqual([
      `${path}:3: aspect_ratio: "1:4" is not an aspect ratio of ${PRO} (1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)`,
      `${path}:4: aspect_ratio: "5:7" is not an aspect ratio of ${PRO} (1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)`,
      `${path}:6: aspect_ratio: "8:1" is not an aspect ratio of ${FLASH25} (1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)`,
    ]);
  });

  it('checks image sizes per model: 512 only on 3.1 flash, none on 2.5 flash; 2k as Tokenhot\'s docs write it becomes the 2K the API requires', async () => {
    const path = await csv(
      'sizes.csv',
      `prompt,model,image_size\na,${PRO},1k\nb,${PRO},512\nc,${FLASH31},512\nd,${FLASH25},1K\ne,${PRO},4K\nf,${FLASH31}, 2k \ng,${PRO},5k\n`,
    );
    const reads = await readAll(path);
    expect(rowsOf(reads).map((r) => [r.line, r.imageSize])).toEqual([
      [2, '1K'],
      [4, '512'],
      [6, '4K'],
      [7, '2K'],
    ]);
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:3: image_size: "512" is not an image size of ${PRO} (1K, 2K, 4K)`,
      `${path}:5: image_size: ${FLASH25} takes no image_size; leave the cell empty`,
      `${path}:8: image_size: "5k" is not an image size of ${PRO} (1K, 2K, 4K)`,
    ]);
    // A default size written the same way (--image-size 4k, a job definition's imageSize: 4k).
    expect(rowsOf(await readAll(await csv('default-size.csv', 'prompt\nx\n'), { model: PRO, imageSize: '4k' }))[0]?.imageSize).toBe('4K');
  });

  it('applies defaults to empty cells and checks them for the row model', async () => {
    const path = await csv('defaults.csv', `prompt,model,aspect_ratio,image_size\na,,,\nb,${FLASH31},,\nc,${FLASH25},,\n`);
    const reads = await readAll(path, { model: FLASH31, aspectRatio: '1:8', imageSize: '512' });
    expect(rowsOf(reads).map((r) => [r.line, r.model, r.aspectRatio, r.imageSize])).toEqual([
      [2, FLASH31, '1:8', '512'],
      [3, FLASH31, '1:8', '512'],
    ]);
    // 2.5 flash drops the default size (it takes none) but cannot do 1:8.
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:4: aspect_ratio: "1:8" (the default) is not an aspect ratio of ${FLASH25} (1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)`,
    ]);
  });

  it('checks model ids by shape and lets unknown models through with the common limits', async () => {
    const path = await csv('models.csv', 'prompt,model,image_size\na,gemini 3 pro,\nb,gemini-4-image,2K\nc,-x,\n');
    const reads = await readAll(path);
    expect(rowsOf(reads).map((r) => r.model)).toEqual(['gemini-4-image']);
    expect(problemsOf(reads).map((p) => [p.line, p.column])).toEqual([
      [2, 'model'],
      [4, 'model'],
    ]);
    expect(problemsOf(reads)[0]?.reason).toBe(`"gemini 3 pro" is not a model id (like ${PRO})`);
  });

  it('reports a record with too many or too few fields, naming its line, and goes on', async () => {
    const path = await csv('count.csv', 'id,prompt,tags\na,"x, y",t\nb,x, y,t\nc,x\nd,ok,t\n');
    const reads = await readAll(path);
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:3: has 4 fields but the header (line 1) has 3; a cell holding the delimiter (comma-separated file) must be in double quotes, the quote its first character`,
      `${path}:4: has 2 fields but the header (line 1) has 3`,
    ]);
    expect(rowsOf(reads).map((r) => r.id)).toEqual(['a', 'd']);
  });

  it('reports every problem of a row, and yields no row for it', async () => {
    const path = await csv('many.csv', `id,prompt,model,aspect_ratio,image_size\n../x, ,${PRO},1:8,5K\nok,fine,,,\nb,x,${PRO},7:7,\n`);
    const reads = await readAll(path);
    expect(rowsOf(reads).map((r) => r.id)).toEqual(['ok']);
    expect(problemsOf(reads).map((p) => [p.line, p.column])).toEqual([
      [2, 'id'],
      [2, 'prompt'],
      [2, 'aspect_ratio'],
      [2, 'image_size'],
      [4, 'aspect_ratio'],
    ]);
    // Rejected rows, not problems: the first row's four reasons are one rejected row.
    expect(rejectedRowCount(problemsOf(reads))).toBe(2);
  });

  it('tells of a model id it does not know once per id, with the nearest known one; refuses it when asked (--strict)', async () => {
    const path = await csv('unknown.csv', `prompt,model\na,gemini-3-pro-imag\nb,\nc,gemini-3-pro-imag\nd,imagen-9\ne,${FLASH31}\n`);
    const told: string[] = [];
    const lenient: RowRead[] = [];
    for await (const read of readRows(path, { defaults: { model: 'gemini-9-image' }, unknownModel: (model, where) => told.push(`${where.line} ${model}`) })) lenient.push(read);
    // Rows run as written; the default model (a flag, checked once by the command) is not told of per row.
    expect(rowsOf(lenient).map((r) => r.model)).toEqual(['gemini-3-pro-imag', 'gemini-9-image', 'gemini-3-pro-imag', 'imagen-9', FLASH31]);
    expect(told).toEqual(['2 gemini-3-pro-imag', '5 imagen-9']);

    const strict: RowRead[] = [];
    for await (const read of readRows(path, { defaults: { model: PRO }, unknownModel: 'refuse' })) strict.push(read);
    expect(rowsOf(strict).map((r) => r.line)).toEqual([3, 6]);
    expect(problemsOf(strict).map(formatProblem)).toEqual([
      `${path}:2: model: "gemini-3-pro-imag" is not a model this version knows (did you mean ${PRO}?); --strict refuses it`,
      `${path}:4: model: "gemini-3-pro-imag" is not a model this version knows (did you mean ${PRO}?); --strict refuses it`,
      `${path}:5: model: "imagen-9" is not a model this version knows (known: ${PRO}, ${FLASH31}, ${FLASH25}, doubao-seedream-4-0-250828, doubao-seedream-4-5-251128, doubao-seedream-5-0-260128, gpt-image-1.5, gpt-image-2, dall-e-3, dall-e-2); --strict refuses it`,
    ]);
  });

  it('splits tags and keeps other columns as metadata', async () => {
    const path = await csv(
      'meta.csv',
      'prompt,Tags,SKU,Campaign Name,__proto__,\nx," spring ; sale;;spring; ",  A-1 ," Summer, 2025 ",p,\ny,,,,,\n',
    );
    const rows = rowsOf(await readAll(path));
    expect(rows[0]?.tags).toEqual(['spring', 'sale']);
    // Entries, because `__proto__` in an object literal would set the prototype, not a key.
    expect(Object.entries(rows[0]?.metadata ?? {})).toEqual([
      ['sku', '  A-1 '],
      ['campaign name', ' Summer, 2025 '],
      ['__proto__', 'p'],
    ]);
    expect(Object.getPrototypeOf(rows[0]?.metadata)).toBe(Object.prototype);
    expect(rows[1]?.tags).toEqual([]);
    expect(Object.entries(rows[1]?.metadata ?? {})).toEqual([
      ['sku', ''],
      ['campaign name', ''],
      ['__proto__', ''],
    ]);
  });

  it('reports a value in a column without a header name', async () => {
    const path = await csv('unnamed.csv', 'prompt,\nx,\ny,oops\n');
    const reads = await readAll(path);
    expect(rowsOf(reads).map((r) => r.prompt)).toEqual(['x']);
    expect(problemsOf(reads).map(formatProblem)).toEqual([`${path}:3: column 2: has a value but no name in the header`]);
  });
});

describe('readRows: reference images', () => {
  it('accepts PNG and JPEG made with sharp, resolved against the CSV folder', async () => {
    await png('refs/a.png');
    await jpeg('refs/b.jpg');
    const path = await csv('refs.csv', 'prompt,reference_images\nx, refs/a.png ; refs/b.jpg ;\n');
    const rows = rowsOf(await readAll(path));
    expect(rows[0]?.referenceImages).toEqual([resolve(dir, 'refs/a.png'), resolve(dir, 'refs/b.jpg')]);
  });

  it('keeps absolute paths and takes relative ones from the CSV folder, not the working directory', async () => {
    const a = await png('imgs/a.png');
    await png('deep/imgs/b.png');
    const path = await csv('deep/list.csv', `prompt,reference_images\nx,${a};imgs/b.png\n`);
    const rows = rowsOf(await readAll(path));
    expect(rows[0]?.referenceImages).toEqual([a, join(dir, 'deep/imgs/b.png')]);
  });

  it('reports missing files, folders, text named .png, GIFs, and does not expand ~', async () => {
    await writeFile(join(dir, 'fake.png'), 'this is text, not a PNG\n');
    await writeFile(join(dir, 'anim.gif'), await sharp({ create: { width: 2, height: 2, channels: 3, background: '#fff' } }).gif().toBuffer());
    await mkdir(join(dir, 'folder.png'));
    await writeFile(join(dir, 'empty.png'), '');
    const path = await csv('bad-refs.csv', 'prompt,reference_images\nx,missing.png;fake.png;anim.gif;folder.png;empty.png;~/cat.png\n');
    const problems = problemsOf(await readAll(path));
    expect(problems.map((p) => [p.line, p.column])).toEqual(Array.from({ length: 6 }, () => [2, 'reference_images']));
    expect(problems.map((p) => p.reason)).toEqual([
      `"missing.png" does not exist (looked for ${join(dir, 'missing.png')})`,
      `"fake.png" is not a PNG, JPEG, WebP, HEIC or HEIF image (judged by its content, not its name) (looked for ${join(dir, 'fake.png')})`,
      `"anim.gif" is image/gif; reference images must be PNG, JPEG, WebP, HEIC or HEIF (looked for ${join(dir, 'anim.gif')})`,
      `"folder.png" is not a file (looked for ${join(dir, 'folder.png')})`,
      `"empty.png" is not a PNG, JPEG, WebP, HEIC or HEIF image (judged by its content, not its name) (looked for ${join(dir, 'empty.png')})`,
      `"~/cat.png" does not exist (looked for ${join(dir, '~/cat.png')}); "~" is not expanded, write the full path`,
    ]);
  });

  it('limits the number of references per model', async () => {
    await png('r.png');
    const four = 'r.png;r.png;r.png;r.png';
    const path = await csv('count-refs.csv', `prompt,model,reference_images\nx,${FLASH25},${four}\ny,${PRO},${four}\n`);
    const reads = await readAll(path);
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:2: reference_images: 4 images, but ${FLASH25} takes at most 3`,
    ]);
    expect(rowsOf(reads).map((r) => r.referenceImages.length)).toEqual([4]);
    const fifteen = Array.from({ length: 15 }, () => 'r.png').join(';');
    const path2 = await csv('count-refs2.csv', `prompt,reference_images\nx,${fifteen}\n`);
    expect(problemsOf(await readAll(path2))[0]?.reason).toBe(`15 images, but ${PRO} takes at most 14`);
  });

  it('limits the total size of a row\u2019s references to the request limit', async () => {
    // Only the magic bytes are read, so a PNG signature and padding stand in for a big image.
    const half = Buffer.alloc(Math.floor(MAX_REFERENCE_BYTES * 0.6));
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(half);
    await writeFile(join(dir, 'big.png'), half);
    const path = await csv('big.csv', 'prompt,reference_images\nx,big.png\ny,big.png;big.png\n');
    const reads = await readAll(path);
    expect(rowsOf(reads).map((r) => r.line)).toEqual([2]);
    expect(problemsOf(reads).map(formatProblem)).toEqual([
      `${path}:3: reference_images: the images total 24.0 MB, over the 20 MB a request's inline data is limited to`,
    ]);
  });

  it('checks a reference used by many rows once', async () => {
    const ref = await png('shared.png');
    const path = await csv('shared.csv', `prompt,reference_images\n${'x,shared.png\n'.repeat(10_000)}`);
    let count = 0;
    for await (const read of readRows(path, { defaults: { model: PRO } })) {
      expect('row' in read).toBe(true);
      // After the first row, the file is gone: later rows pass only because the check was cached.
      if (++count === 1) await unlink(ref);
    }
    expect(count).toBe(10_000);
  });
});
