/**
 * One CSV format for every model: aspect_ratio, image_size, size and quality are checked against
 * the row's model by its provider, refused by file:line: column: naming what the model can, and
 * mapped to the model's native `size` by one table.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatProblem, readRows, type RowDefaults, type RowRead } from '../src/rows/csv.js';
import { findImagesModel, nativeSize } from '../src/providers/openai-images/models.js';
import { providerOf } from '../src/providers/models.js';
import type { Row } from '../src/core/types.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-options-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function read(content: string, defaults: RowDefaults = { model: 'gemini-3-pro-image-preview' }): Promise<{ rows: Row[]; problems: string[]; path: string }> {
  const path = join(dir, 'rows.csv');
  await writeFile(path, content);
  const reads: RowRead[] = [];
  for await (const one of readRows(path, { defaults })) reads.push(one);
  return {
    path,
    rows: reads.flatMap((r) => ('row' in r ? [r.row] : [])),
    problems: reads.flatMap((r) => ('problem' in r ? [formatProblem(r.problem).slice(path.length + 1)] : [])),
  };
}

const native = (row: Row): string => nativeSize(findImagesModel(row.model)!, row);

describe('routing', () => {
  it('sends the seven images endpoint models to openai-images, Gemini ids and unknown ids to Gemini', () => {
    expect(['doubao-seedream-4-0-250828', 'doubao-seedream-4-5-251128', 'doubao-seedream-5-0-260128', 'gpt-image-1.5', 'gpt-image-2', 'dall-e-3', 'dall-e-2'].map(providerOf)).toEqual(
      Array(7).fill('openai-images'),
    );
    expect(['gemini-3-pro-image-preview', 'gemini-3-pro-image', 'imagen-9'].map(providerOf)).toEqual(['gemini', 'gemini', 'gemini']);
  });
});

describe('the size table', () => {
  it('maps aspect_ratio and image_size to each model\u2019s native size', async () => {
    const { rows, problems } = await read(
      [
        'id,model,aspect_ratio,image_size,size,quality,prompt',
        's1,doubao-seedream-4-5-251128,16:9,,,,a',
        's2,doubao-seedream-4-5-251128,4:3,4k,,,b',
        's3,doubao-seedream-4-0-250828,21:9,1K,,,c',
        's4,doubao-seedream-5-0-260128,2:3,3K,,,d',
        's5,doubao-seedream-5-0-260128,,3K,,,e',
        's6,doubao-seedream-4-0-250828,,,,,f',
        'g1,gpt-image-2,3:2,,,HIGH,g',
        'g2,gpt-image-1.5,,,,,h',
        'g3,gpt-image-2,,,2048 x 1152,low,i',
        'd1,dall-e-3,16:9,,,hd,j',
        'd2,dall-e-3,9:16,,,,k',
        'd3,dall-e-2,,,512x512,,l',
      ].join('\n'),
    );
    expect(problems).toEqual([]);
    expect(rows.map((row) => [row.id, native(row), row.quality ?? '-'])).toEqual([
      ['s1', '2848x1600', '-'],
      ['s2', '4704x3520', '-'],
      ['s3', '1512x648', '-'],
      ['s4', '2496x3744', '-'],
      // A tier alone is a preset: the model picks the ratio from the prompt.
      ['s5', '3K', '-'],
      ['s6', '2048x2048', '-'],
      ['g1', '1536x1024', 'high'],
      ['g2', 'auto', '-'],
      ['g3', '2048x1152', 'low'],
      ['d1', '1792x1024', 'hd'],
      ['d2', '1024x1792', '-'],
      ['d3', '512x512', '-'],
    ]);
  });
});

describe('options a model cannot honour', () => {
  it('are refused by column, naming what the model can', async () => {
    const { problems } = await read(
      [
        'model,aspect_ratio,image_size,size,quality,prompt',
        'doubao-seedream-4-5-251128,4:5,,,,a',
        'doubao-seedream-4-5-251128,,1K,,,b',
        'doubao-seedream-4-5-251128,,,1024x1024,,c',
        'doubao-seedream-4-0-250828,,,,hd,d',
        'gpt-image-1.5,16:9,,,,e',
        'gpt-image-1.5,,2K,,,f',
        'gpt-image-2,,,1000x1000,ultra,g',
        'dall-e-3,21:9,,,,h',
        'dall-e-3,,,,low,i',
        'dall-e-2,,,300x300,,j',
        'gpt-image-2,1:1,,1024x1024,,k',
        'gemini-3-pro-image-preview,,,1024x1024,high,l',
      ].join('\n'),
    );
    expect(problems).toEqual([
      '2: aspect_ratio: "4:5" is not an aspect ratio of doubao-seedream-4-5-251128 (1:1, 4:3, 3:4, 16:9, 9:16, 3:2, 2:3, 21:9; or an exact size)',
      '3: image_size: "1K" is not an image size of doubao-seedream-4-5-251128 (2K, 4K)',
      '4: size: "1024x1024" is not a size of doubao-seedream-4-5-251128 (1,048,576 pixels): 2048x2048, 2304x1728, 1728x2304, 2848x1600, 1600x2848, 2496x1664, 1664x2496, 3136x1344, 4096x4096, 4704x3520, 3520x4704, 5504x3040, 3040x5504, 4992x3328, 3328x4992, 6240x2656, 2K, 4K, or WxH of 3,686,400 to 16,777,216 pixels, ratio within 1:16..16:1',
      '5: quality: doubao-seedream-4-0-250828 takes no quality; leave the cell empty',
      '6: aspect_ratio: "16:9" is not an aspect ratio of gpt-image-1.5 (1:1, 3:2, 2:3)',
      '7: image_size: gpt-image-1.5 takes no image_size; give aspect_ratio (1:1, 3:2, 2:3) or size',
      '8: size: "1000x1000" is not a size of gpt-image-2 (not multiples of 16): 1024x1024, 1536x1024, 1024x1536, auto, or WxH in multiples of 16, long side at most 3840',
      '8: quality: "ultra" is not a quality of gpt-image-2 (low, medium, high, auto)',
      '9: aspect_ratio: "21:9" is not an aspect ratio of dall-e-3 (1:1, 16:9, 9:16)',
      '10: quality: "low" is not a quality of dall-e-3 (standard, hd)',
      '11: size: "300x300" is not a size of dall-e-2: 1024x1024, 256x256, 512x512',
      '12: size: an exact size goes alone; leave aspect_ratio empty',
      '13: size: gemini-3-pro-image-preview takes no exact size; give aspect_ratio and image_size instead',
      '13: quality: gemini-3-pro-image-preview takes no quality; leave the cell empty',
    ]);
  });

  it('drops defaults a model takes no part of, and says so of those it cannot take', async () => {
    const csv = ['model,aspect_ratio,size,prompt', 'gpt-image-2,1:1,,a', 'dall-e-3,,1024x1792,b', 'doubao-seedream-4-5-251128,,,c', 'gpt-image-2,,,d'].join('\n');
    const { rows, problems } = await read(csv, { model: 'gemini-3-pro-image-preview', aspectRatio: '2:3', imageSize: '4k' });
    // GPT Image takes no image size: the default 4K does not apply; 2:3 does. A size cell makes both give way.
    expect(problems).toEqual([]);
    expect(rows.map((row) => [row.model, native(row)])).toEqual([
      ['gpt-image-2', '1024x1024'],
      ['dall-e-3', '1024x1792'],
      ['doubao-seedream-4-5-251128', '3328x4992'],
      ['gpt-image-2', '1024x1536'],
    ]);
    const refused = await read('model,prompt\ndall-e-3,a\n', { model: 'gemini-3-pro-image-preview', aspectRatio: '4:3' });
    expect(refused.problems).toEqual(['2: aspect_ratio: "4:3" (the default) is not an aspect ratio of dall-e-3 (1:1, 16:9, 9:16)']);
  });

  it('checks reference images by each model\u2019s rules: none on DALL-E, no HEIC nor GIF for GPT Image', async () => {
    await writeFile(join(dir, 'r.png'), await sharp({ create: { width: 2, height: 2, channels: 3, background: '#fff' } }).png().toBuffer());
    await writeFile(join(dir, 'a.gif'), await sharp({ create: { width: 2, height: 2, channels: 3, background: '#fff' } }).gif().toBuffer());
    const fifteen = Array(15).fill('r.png').join(';');
    const { rows, problems } = await read(
      ['model,reference_images,prompt', `dall-e-3,r.png,a`, `gpt-image-2,a.gif,b`, `doubao-seedream-4-0-250828,a.gif,c`, `doubao-seedream-4-0-250828,${fifteen},d`, `gpt-image-2,r.png;r.png,e`].join('\n'),
    );
    expect(problems).toEqual([
      '2: reference_images: dall-e-3 takes no reference images',
      `3: reference_images: "a.gif" is image/gif; reference images for gpt-image-2 must be PNG, JPEG or WebP (looked for ${join(dir, 'a.gif')})`,
      '5: reference_images: 15 images, but doubao-seedream-4-0-250828 takes at most 14',
    ]);
    expect(rows.map((row) => [row.model, row.referenceImages.length])).toEqual([
      ['doubao-seedream-4-0-250828', 1],
      ['gpt-image-2', 2],
    ]);
  });
});
