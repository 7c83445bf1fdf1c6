import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { feedJobOf, feedJobSchema, readShotRows, type FeedJob, type Shot, type ShotRowsOptions } from '../src/catalog/shots.js';
import { FileHashes, rowContentHash } from '../src/rows/content-hash.js';
import { PriceTable } from '../src/cost/pricing.js';
import { formatProblem } from '../src/rows/csv.js';
import { FeedMappingError } from '../src/rows/feeds/products.js';
import type { Row } from '../src/core/types.js';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', 'jobs', 'examples', 'shopify-products.csv');
const PRO = 'gemini-3-pro-image-preview';
const FLASH25 = 'gemini-2.5-flash-image';
const OPTIONS: ShotRowsOptions = { defaults: { model: PRO } };

const THREE_SHOTS: Shot[] = [
  { name: 'hero', prompt: 'Studio photo of {{Title}} in {{Color | default: "its natural finish"}}, on pure white', aspectRatio: '1:1', references: 'first' },
  { name: 'lifestyle', prompt: '{{Title}} by {{Vendor}} in a sunlit {{Type}} corner of a Scandinavian home', aspectRatio: '4:3', imageSize: '2k', references: 'all' },
  { name: 'banner', prompt: 'Wide banner of a {{Type}} collection, soft light', model: 'gemini-3.1-flash-image-preview', aspectRatio: '21:9', references: 'none' },
];

let dir: string;
let definitionFile: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenhot-shots-'));
  definitionFile = join(dir, 'shopify-nightly.yaml');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function job(more: Partial<FeedJob> = {}): FeedJob {
  return { definitionFile, feed: EXAMPLE, format: 'shopify', shots: THREE_SHOTS, ...more };
}

function rowOf(rows: Row[], id: string): Row {
  const row = rows.find((r) => r.id === id);
  if (!row) throw new Error(`no row ${id}`);
  return row;
}

async function mappingError(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FeedMappingError);
  return (error as Error).message;
}

describe('shot lists', () => {
  it('gives every active product of the example every shot, named <handle>--<shot>', async () => {
    const { rows, products, problems, warnings, excluded } = await readShotRows(job(), OPTIONS);
    expect(products).toHaveLength(29);
    expect(excluded.status).toBe(1);
    expect(rows).toHaveLength(29 * 3);
    expect(problems).toEqual([]);
    expect(warnings).toEqual([]);
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    expect(rows.slice(0, 3).map((r) => r.id)).toEqual(['stoneware-mug-speckled--hero', 'stoneware-mug-speckled--lifestyle', 'stoneware-mug-speckled--banner']);
    expect(rows.some((r) => r.id.startsWith('marble-incense-holder'))).toBe(false);
  });

  it("makes each row from its product and shot: prompt, model and options, photos by references, tags, metadata", async () => {
    const { rows } = await readShotRows(job(), OPTIONS);
    const photos = [1, 2, 3].map((n) => `https://cdn.example-shop.com/photos/stoneware-mug-speckled-${n}.jpg`);
    expect(rowOf(rows, 'stoneware-mug-speckled--hero')).toEqual({
      id: 'stoneware-mug-speckled--hero',
      line: 2,
      prompt: 'Studio photo of Speckled Stoneware Mug in Oat, Sage, Charcoal, on pure white',
      model: PRO,
      aspectRatio: '1:1',
      referenceImages: [photos[0]],
      tags: ['kitchen', 'stoneware', 'bestseller'],
      metadata: { product: 'stoneware-mug-speckled', shot: 'hero', feed_line: '2', photos: photos.join(' ') },
    });
    const lifestyle = rowOf(rows, 'stoneware-mug-speckled--lifestyle');
    expect(lifestyle.prompt).toBe('Speckled Stoneware Mug by Fern & Kiln in a sunlit Mugs corner of a Scandinavian home');
    expect(lifestyle.imageSize).toBe('2K');
    expect(lifestyle.referenceImages).toEqual(photos);
    const banner = rowOf(rows, 'stoneware-mug-speckled--banner');
    expect(banner.model).toBe('gemini-3.1-flash-image-preview');
    expect(banner.aspectRatio).toBe('21:9');
    expect(banner.referenceImages).toEqual([]);
    // A product without variants: the default fills in.
    expect(rowOf(rows, 'travel-mug-bamboo--hero').prompt).toBe('Studio photo of Bamboo Lid Travel Mug in its natural finish, on pure white');
  });

  it("takes the job's prompt for shots without one, and the job's defaults for options", async () => {
    const { rows } = await readShotRows(
      job({ prompt: 'Photo of {{Title}}', shots: [{ name: 'hero', references: 'first' }, { name: 'wide', aspectRatio: '16:9', references: 'none' }] }),
      { defaults: { model: PRO, aspectRatio: '4:5', imageSize: '2K' } },
    );
    const hero = rowOf(rows, 'olive-wood-bowl--hero');
    expect([hero.prompt, hero.aspectRatio, hero.imageSize]).toEqual(['Photo of Olive Wood Salad Bowl', '4:5', '2K']);
    expect(rowOf(rows, 'olive-wood-bowl--wide').aspectRatio).toBe('16:9');
  });

  it('without shots makes one row per product, named by its id', async () => {
    const { rows } = await readShotRows(job({ shots: undefined, prompt: 'Photo of {{Title}}' }), OPTIONS);
    expect(rows).toHaveLength(29);
    expect(rowOf(rows, 'olive-wood-bowl').metadata).toEqual({ product: 'olive-wood-bowl', feed_line: expect.any(String), photos: expect.any(String) });
  });

  it('filters with where: like a feed', async () => {
    const { rows } = await readShotRows(job({ where: { Vendor: 'Lumen & Co' } }), OPTIONS);
    expect(rows.map((r) => r.id).filter((id) => id.endsWith('--hero')).sort()).toEqual(['brass-reading-lamp--hero', 'mushroom-table-lamp--hero', 'rattan-pendant-lamp--hero']);
  });
});

describe('shot lists: bad input', () => {
  it("checks each shot's options with its model's rules, naming the definition file and the shot", async () => {
    const message = await mappingError(
      readShotRows(
        job({
          shots: [
            { name: 'hero', prompt: '{{Title}}', aspectRatio: '7:3', references: 'first' },
            { name: 'flat', prompt: '{{Title}}', model: FLASH25, imageSize: '2K', references: 'first' },
            { name: 'poster', prompt: '{{Title}}', model: 'dall-e-3', references: 'first' },
          ],
        }),
        OPTIONS,
      ),
    );
    expect(message.split('\n')).toEqual([
      `${definitionFile}: shots[0].aspect_ratio: "7:3" is not an aspect ratio of ${PRO} (1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)`,
      expect.stringMatching(new RegExp(`^${definitionFile}: shots\\[1\\]\\.image_size: .*${FLASH25}`)),
      `${definitionFile}: shots[2].references: dall-e-3 takes no reference images; give references: none`,
    ]);
  });

  it('refuses a shot without a prompt when the job has none', async () => {
    const message = await mappingError(readShotRows(job({ shots: [{ name: 'hero', references: 'first' }] }), OPTIONS));
    expect(message).toBe(`${definitionFile}: shots[0].prompt: no prompt template; give the shot one, or the job a prompt for every shot`);
  });

  it('refuses shot names that would name the same files', async () => {
    const shot = (name: string): Shot => ({ name, prompt: '{{Title}}', references: 'none' });
    const message = await mappingError(readShotRows(job({ shots: [shot('hero'), shot('Hero'), shot('hero-2')] }), OPTIONS));
    expect(message.split('\n')).toEqual([
      `${definitionFile}: shots[1].name: "Hero" is already the name of shots[0]`,
      `${definitionFile}: shots[2].name: "hero-2" is the file name of the second, third ... image of shots[0] ("hero"); choose another name`,
    ]);
  });

  it('refuses a model this version does not know only when strict, and lists it otherwise', async () => {
    const shots: Shot[] = [{ name: 'hero', prompt: '{{Title}}', model: 'gemini-9-image', references: 'first' }];
    expect((await readShotRows(job({ shots }), OPTIONS)).unknownModels).toEqual(['gemini-9-image']);
    expect(await mappingError(readShotRows(job({ shots }), { ...OPTIONS, strictModels: true }))).toMatch(/shots\[0\]\.model: "gemini-9-image" is not a model this version knows/);
  });

  it('with a budget, refuses a shot whose model has no price', async () => {
    const message = await mappingError(readShotRows(job(), { ...OPTIONS, budgetPrices: new PriceTable([]) }));
    expect(message.split('\n')[0]).toBe(`${definitionFile}: shots[0].model: ${PRO} has no price, so a budget cannot be kept for it; give its price in a TOKENHOT_PRICES file`);
  });

  it('leaves out a product whose prompt comes out empty, naming it by feed line; the others go on', async () => {
    const feed = join(dir, 'merchant.tsv');
    await writeFile(feed, 'id\ttitle\tcolor\nA\tMug\tred\nB\t\t\nC\tBowl\t\n');
    const { rows, problems } = await readShotRows(
      { definitionFile, feed, format: 'merchant', shots: [{ name: 'hero', prompt: '{{title}}', references: 'none' }, { name: 'swatch', prompt: '{{color | default: "grey"}} swatch', references: 'none' }] },
      OPTIONS,
    );
    expect(rows.map((r) => r.id)).toEqual(['A--hero', 'A--swatch', 'C--hero', 'C--swatch']);
    expect(problems.map(formatProblem)).toEqual([`${feed}:3: product "B": the prompt of shot "hero" (shots[0].prompt) comes out empty; the product is left out`]);
  });

  it('sends at most the photos a model takes, and says so', async () => {
    const feed = join(dir, 'merchant.tsv');
    await writeFile(feed, 'id\ttitle\timage_link\tadditional_image_link\nA\tMug\thttps://img/1.jpg\thttps://img/2.jpg,https://img/3.jpg,https://img/4.jpg\n');
    const { rows, warnings } = await readShotRows({ definitionFile, feed, format: 'merchant', shots: [{ name: 'hero', prompt: '{{title}}', model: FLASH25, references: 'all' }] }, OPTIONS);
    expect(rows[0]!.referenceImages).toEqual(['https://img/1.jpg', 'https://img/2.jpg', 'https://img/3.jpg']);
    expect(rows[0]!.metadata.photos).toBe('https://img/1.jpg https://img/2.jpg https://img/3.jpg https://img/4.jpg');
    expect(warnings.map(formatProblem)).toEqual([`${feed}:2: product "A" has 4 photos, but ${FLASH25} takes at most 3: shot "hero" sends the first 3`]);
  });

  it('without shots, refuses product ids of which one names the second image of the other', async () => {
    const feed = join(dir, 'merchant.tsv');
    await writeFile(feed, 'id\ttitle\nvase\tVase\nvase-2\tOther vase\n');
    const message = await mappingError(readShotRows({ definitionFile, feed, format: 'merchant', prompt: '{{title}}' }, OPTIONS));
    expect(message).toBe(`${definitionFile}: id: the product id "vase-2" (line 3 of ${feed}) is the file name of the second image of line 2's product; give the job shots, or an id template that keeps them apart`);
  });
});

describe('feed job definitions', () => {
  it('reads the feed keys of a YAML definition, the feed relative to the definition file', () => {
    const yaml = `
feed: examples/shopify-products.csv
format: shopify
include_status: [draft]
where:
  Vendor: [Northloom, Casa Nube]
  Image Src: { not_empty: true }
shots:
  - name: hero
    prompt: 'Studio photo of {{Title}}'
    aspect_ratio: "1:1"
    image_size: 2k
  - name: banner
    prompt: '{{Title}} banner'
    references: none
`;
    const parsed = feedJobSchema.parse(parseYaml(yaml));
    const feedJob = feedJobOf('/jobs/shopify-nightly.yaml', parsed);
    expect(feedJob).toEqual({
      definitionFile: '/jobs/shopify-nightly.yaml',
      feed: '/jobs/examples/shopify-products.csv',
      format: 'shopify',
      includeStatus: ['draft'],
      where: { Vendor: ['Northloom', 'Casa Nube'], 'Image Src': { not_empty: true } },
      shots: [
        { name: 'hero', prompt: 'Studio photo of {{Title}}', aspectRatio: '1:1', imageSize: '2k', references: 'first' },
        { name: 'banner', prompt: '{{Title}} banner', references: 'none' },
      ],
    });
  });

  it('refuses shot names that cannot be part of a file name or would join ambiguously', () => {
    for (const name of ['hero shot', 'a--b', 'hero.png', '-hero', 'x'.repeat(33)]) {
      expect(feedJobSchema.safeParse({ feed: 'f.csv', format: 'shopify', shots: [{ name, prompt: 'p' }] }).success, name).toBe(false);
    }
    expect(feedJobSchema.safeParse({ feed: 'f.csv', format: 'shopify', shots: [{ name: 'hero_1-wide', prompt: 'p' }] }).success).toBe(true);
  });
});

describe('content hashes of shot rows', () => {
  /** The example with one product's title edited, another's price, another's first photo. */
  async function editedExample(): Promise<string> {
    const text = await readFile(EXAMPLE, 'utf8');
    const edited = text
      .replace('olive-wood-bowl,Olive Wood Salad Bowl,', 'olive-wood-bowl,Olive Wood Serving Bowl,')
      // Only the knit throw's variants cost 129.00.
      .replaceAll(',129.00,', ',139.00,')
      .replace('https://cdn.example-shop.com/photos/concrete-planter-1.jpg', 'https://cdn.example-shop.com/photos/concrete-planter-1b.jpg');
    expect(edited).not.toBe(text);
    const path = join(dir, 'edited.csv');
    await writeFile(path, edited);
    return path;
  }

  async function hashes(rows: Row[], photos = new FileHashes()): Promise<Map<string, string>> {
    return new Map(await Promise.all(rows.map(async (row) => [row.id, await rowContentHash(row, photos)] as const)));
  }

  function changed(before: Map<string, string>, after: Map<string, string>): string[] {
    return [...after].filter(([id, hash]) => before.get(id) !== hash).map(([id]) => id).sort();
  }

  it("changes for the fields a shot's template uses and the photos it sends, not for other columns", async () => {
    const before = await hashes((await readShotRows(job(), OPTIONS)).rows);
    const after = await hashes((await readShotRows(job({ feed: await editedExample() }), OPTIONS)).rows);
    expect(after.size).toBe(before.size);
    // The title is in hero's and lifestyle's prompts, not banner's; the price is in none; the
    // first photo is sent by hero (first) and lifestyle (all), not by banner (none).
    expect(changed(before, after)).toEqual(['concrete-planter--hero', 'concrete-planter--lifestyle', 'olive-wood-bowl--hero', 'olive-wood-bowl--lifestyle']);
  });

  it("changes for every product when a shot's settings change", async () => {
    const before = await hashes((await readShotRows(job(), OPTIONS)).rows);
    const shots = THREE_SHOTS.map((shot) => (shot.name === 'banner' ? { ...shot, aspectRatio: '16:9' } : shot));
    const after = await hashes((await readShotRows(job({ shots }), OPTIONS)).rows);
    expect(changed(before, after)).toEqual([...after.keys()].filter((id) => id.endsWith('--banner')).sort());
  });

  it("changes when a photo's content changes at the same URL, once its content is known", async () => {
    const { rows } = await readShotRows(job({ where: { Handle: 'concrete-planter' } }), OPTIONS);
    const content = new Map<string, string>();
    const byContent = (): FileHashes => new FileHashes(async (url) => content.get(url) ?? 'etag-1');
    const before = await hashes(rows, byContent());
    content.set('https://cdn.example-shop.com/photos/concrete-planter-2.jpg', 'etag-2');
    const after = await hashes(rows, byContent());
    // Photo 2 is sent only by the shot that sends all photos.
    expect(changed(before, after)).toEqual(['concrete-planter--lifestyle']);
    // Without a content hook the URL stands for the photo, and a path is hashed by its bytes as before.
    expect(await new FileHashes().of('https://a/b.jpg')).toBe('url:https://a/b.jpg');
  });
});
