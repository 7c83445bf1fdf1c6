import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CsvFileError, formatProblem, readRows } from '../src/rows/csv.js';
import { readFeedFile } from '../src/rows/feeds/feed-file.js';
import { fileSafeId } from '../src/rows/feeds/product-id.js';
import { FeedMappingError, readProducts, type FeedMapping } from '../src/rows/feeds/products.js';
import type { Product } from '../src/rows/feeds/types.js';

const SHOPIFY_EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', 'jobs', 'examples', 'shopify-products.csv');
const SHOPIFY_HEADER =
  'Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,Variant SKU,Variant Grams,Variant Inventory Tracker,Variant Inventory Qty,Variant Inventory Policy,Variant Fulfillment Service,Variant Price,Variant Compare At Price,Variant Requires Shipping,Variant Taxable,Variant Barcode,Image Src,Image Position,Image Alt Text,Gift Card,SEO Title,SEO Description,Variant Image,Variant Weight Unit,Cost per item,Status';
const COLUMNS = SHOPIFY_HEADER.split(',');

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenhot-feeds-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** A Shopify record: the named cells, every other column empty, quoted as Shopify quotes. */
function shopifyRecord(cells: Record<string, string>): string {
  return COLUMNS.map((column) => {
    const value = cells[column] ?? '';
    return /[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
  }).join(',');
}

function mapping(feed: string, more: Partial<FeedMapping> = {}): FeedMapping {
  return { definitionFile: join(dir, 'job.yaml'), feed, format: 'shopify', ...more };
}

function byId(products: Product[], id: string): Product {
  const product = products.find((p) => p.id === id);
  if (!product) throw new Error(`no product ${id} among ${products.map((p) => p.id).join(', ')}`);
  return product;
}

async function mappingError(promise: Promise<unknown>): Promise<FeedMappingError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FeedMappingError);
  return error as FeedMappingError;
}

describe('feed files', () => {
  it('reads a BOM-prefixed comma file with quoted commas, quotes and line breaks, naming each record by its first line', async () => {
    const path = await file('feed.csv', '\uFEFFid,title,description\nA1,Mug,"Big, round"\nA2,Vase,"Two\nlines, ""quoted"""\n\nA3,Bowl,plain\n');
    const { table, problems } = await readFeedFile(path);
    expect(table.columns).toEqual(['id', 'title', 'description']);
    expect(table.records.map((r) => [r.line, r.cells.id, r.cells.description])).toEqual([
      [2, 'A1', 'Big, round'],
      [3, 'A2', 'Two\nlines, "quoted"'],
      [6, 'A3', 'plain'],
    ]);
    expect(problems).toEqual([]);
  });

  it('detects semicolons (a PIM export) and tabs (a Merchant Center feed) from the header line', async () => {
    const pim = await readFeedFile(await file('pim.csv', 'sku;name;price\nS-1;"Lamp; brass";12,50\n'));
    expect(pim.table.delimiter).toBe(';');
    expect(pim.table.records[0]!.cells).toEqual({ sku: 'S-1', name: 'Lamp; brass', price: '12,50' });
    const tsv = await readFeedFile(await file('feed.tsv', 'id\ttitle\timage_link\nX\tThrow, wool\thttps://a/x.jpg\n'));
    expect(tsv.table.delimiter).toBe('\t');
    expect(tsv.table.records[0]!.cells.title).toBe('Throw, wool');
  });

  it('leaves out a record whose field count differs from the header, naming its line', async () => {
    const path = await file('feed.csv', 'id,title\nA,Mug\nB,Vase,extra\nC,Bowl\n');
    const { table, problems } = await readFeedFile(path);
    expect(table.records.map((r) => r.cells.id)).toEqual(['A', 'C']);
    expect(problems.map(formatProblem)).toEqual([`${path}:3: has 3 fields but the header (line 1) has 2; left out (a cell holding the delimiter of this comma-separated file must be in double quotes)`]);
  });

  it('refuses files that are not usable feeds, saying what they are', async () => {
    const reasons = async (content: string | Uint8Array): Promise<string> => {
      const error = await readFeedFile(await file(`f${Math.random()}.csv`, content)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CsvFileError);
      return (error as CsvFileError).message;
    };
    expect(await reasons('')).toMatch(/is empty; a feed starts with a header row/);
    expect(await reasons(new Uint8Array([0xff, 0xfe, 0x41, 0x00]))).toMatch(/is UTF-16 text; save it as UTF-8/);
    expect(await reasons(Buffer.from('id,title\nA,Caf\xe9\n', 'latin1'))).toMatch(/:2: not UTF-8 text/);
    expect(await reasons('id,Title,title\n1,a,b\n')).toMatch(/:1: the header names column 2 and column 3 both "title"/);
    expect(await reasons('id,title\nA,"never closed\n')).toMatch(/a quote is never closed/);
    const missing = await readFeedFile(join(dir, 'nope.csv')).catch((e: unknown) => e);
    expect((missing as Error).message).toBe(`${join(dir, 'nope.csv')}: no such file`);
  });
});

describe('Shopify product exports', () => {
  it('groups the example export by Handle: 30 products, the draft left out, 29 taken', async () => {
    const read = await readProducts(mapping(SHOPIFY_EXAMPLE));
    expect(read.products).toHaveLength(29);
    expect(read.excluded).toEqual({ status: 1, where: 0 });
    expect(read.products.map((p) => p.id)).not.toContain('marble-incense-holder');
    expect(read.problems).toEqual([]);
    for (const product of read.products) {
      expect(product.photos.length).toBeGreaterThanOrEqual(1);
      expect(product.photos.length).toBeLessThanOrEqual(3);
      expect(product.photos[0]).toBe(`https://cdn.example-shop.com/photos/${product.id}-1.jpg`);
    }
    const mug = byId(read.products, 'stoneware-mug-speckled');
    expect(mug.line).toBe(2);
    expect(mug.fields.Title).toBe('Speckled Stoneware Mug');
    expect(mug.fields['Body (HTML)']).toContain('<p>Thrown by hand and glazed twice, so each');
    expect(mug.tags).toEqual(['kitchen', 'stoneware', 'bestseller']);
  });

  it('takes drafts when include_status asks for them', async () => {
    const read = await readProducts(mapping(SHOPIFY_EXAMPLE, { includeStatus: ['Draft'] }));
    expect(read.products).toHaveLength(30);
    expect(byId(read.products, 'marble-incense-holder').fields.Status).toBe('draft');
  });

  it('orders photos by Image Position, drops repeats, and gathers variant options under their names', async () => {
    const path = await file(
      'products.csv',
      [
        SHOPIFY_HEADER,
        shopifyRecord({ Handle: 'vase', Title: 'Ribbed Vase', Vendor: 'Casa', Tags: ' decor ,glass,, decor', 'Option1 Name': 'Color', 'Option1 Value': 'Clear', 'Option2 Name': 'Size', 'Option2 Value': 'S', 'Image Src': 'https://cdn/v-2.jpg', 'Image Position': '2', 'Variant Price': '10', Status: 'active' }),
        shopifyRecord({ Handle: 'vase', 'Option1 Value': 'Smoke', 'Option2 Value': 'S', 'Image Src': 'https://cdn/v-1.jpg', 'Image Position': '1', 'Variant Price': '12' }),
        shopifyRecord({ Handle: 'vase', 'Option1 Value': 'Clear', 'Option2 Value': 'L', 'Image Src': 'https://cdn/v-2.jpg', 'Image Position': '2' }),
        shopifyRecord({ Handle: 'vase', 'Image Src': 'https://cdn/v-3.jpg', 'Image Position': '3' }),
        shopifyRecord({ Handle: 'plain-mug', Title: 'Plain Mug', 'Option1 Name': 'Title', 'Option1 Value': 'Default Title', Status: 'active' }),
      ].join('\n'),
    );
    const read = await readProducts(mapping(path));
    const vase = byId(read.products, 'vase');
    expect(vase.photos).toEqual(['https://cdn/v-1.jpg', 'https://cdn/v-2.jpg', 'https://cdn/v-3.jpg']);
    expect(vase.tags).toEqual(['decor', 'glass']);
    expect(vase.fields.Color).toBe('Clear, Smoke');
    expect(vase.fields.Size).toBe('S, L');
    // The first record's own cells stay as they are.
    expect(vase.fields['Option1 Value']).toBe('Clear');
    expect(vase.fields['Variant Price']).toBe('10');
    // Shopify's placeholder option of a product without variants does not hide its Title.
    expect(byId(read.products, 'plain-mug').fields.Title).toBe('Plain Mug');
    expect(read.fields).toEqual([...COLUMNS, 'Color', 'Size']);
  });

  it('names a record without a Handle and leaves it out', async () => {
    const path = await file('products.csv', [SHOPIFY_HEADER, shopifyRecord({ Handle: 'a', Title: 'A', Status: 'active' }), shopifyRecord({ Title: 'Orphan' })].join('\n'));
    const read = await readProducts(mapping(path));
    expect(read.products.map((p) => p.id)).toEqual(['a']);
    expect(read.problems.map(formatProblem)).toEqual([`${path}:3: Handle: is empty, so this record belongs to no product; left out`]);
  });

  it('says a feed without a Handle column is not a Shopify export', async () => {
    const path = await file('feed.tsv', 'id\ttitle\nA\tMug\n');
    await expect(readProducts(mapping(path))).rejects.toThrow(/has no "Handle" column, so it is not a Shopify product export \(found: id, title\); for another feed give format: merchant or plain/);
  });
});

describe('Merchant Center feeds', () => {
  it('reads one product per item: image_link then additional_image_link split on commas, custom labels as tags', async () => {
    const path = await file(
      'merchant.tsv',
      [
        'id\ttitle\tlink\timage_link\tadditional_image_link\tproduct_type\tbrand\tcustom_label_0\tcustom_label_2',
        'SKU-1\tLinen Throw\thttps://shop/p/1\thttps://img/1a.jpg\thttps://img/1b.jpg, https://img/1c.jpg,https://img/1a.jpg\tHome > Throws\tNorthloom\tsummer\tclearance',
        'SKU-2\tJute Basket\thttps://shop/p/2\thttps://img/2a.jpg\t\tHome > Baskets\tCasa\t\t',
      ].join('\n'),
    );
    const read = await readProducts(mapping(path, { format: 'merchant' }));
    expect(read.products.map((p) => [p.id, p.line, p.photos, p.tags])).toEqual([
      ['SKU-1', 2, ['https://img/1a.jpg', 'https://img/1b.jpg', 'https://img/1c.jpg'], ['summer', 'clearance']],
      ['SKU-2', 3, ['https://img/2a.jpg'], []],
    ]);
    expect(read.products[0]!.fields.product_type).toBe('Home > Throws');
  });

  it("reads Google's sheet-template spelling (\"image link\") as image_link", async () => {
    const path = await file('merchant.csv', 'id,title,image link,additional image link\nA,Mug,https://img/a.jpg,"https://img/b.jpg,https://img/c.jpg"\n');
    const read = await readProducts(mapping(path, { format: 'merchant' }));
    expect(read.products[0]!.photos).toEqual(['https://img/a.jpg', 'https://img/b.jpg', 'https://img/c.jpg']);
  });
});

describe('plain feeds', () => {
  it('needs an id template', async () => {
    const path = await file('pim.csv', 'sku;name\nS1;Lamp\n');
    const error = await mappingError(readProducts(mapping(path, { format: 'plain' })));
    expect(error.message).toBe(`${join(dir, 'job.yaml')}: id: a plain feed needs an id template naming its products, like "{{sku}}"`);
  });

  it('names products by the id template, photos from reference_images (paths against the feed folder, URLs as they are)', async () => {
    const path = await file('pim.csv', 'sku;name;reference_images;tags\nS1;Lamp;"refs/lamp.png; https://img/lamp-2.jpg";"lighting;brass"\n');
    const read = await readProducts(mapping(path, { format: 'plain', id: 'lamp-{{ sku }}' }));
    expect(read.products).toEqual([
      { id: 'lamp-S1', line: 2, fields: { sku: 'S1', name: 'Lamp', reference_images: 'refs/lamp.png; https://img/lamp-2.jpg', tags: 'lighting;brass' }, photos: [join(dir, 'refs/lamp.png'), 'https://img/lamp-2.jpg'], tags: ['lighting', 'brass'] },
    ]);
  });
});

describe('product ids', () => {
  it('makes ids file-safe: accents dropped, other characters one "-", no "..", no leading punctuation, no final .json', () => {
    expect(fileSafeId('Café Crème 250g')).toBe('Cafe-Creme-250g');
    expect(fileSafeId('SKU 12 / A')).toBe('SKU-12-A');
    expect(fileSafeId('..hidden..file')).toBe('hidden.file');
    expect(fileSafeId('(red) mug')).toBe('red-mug');
    expect(fileSafeId('mug.JSON')).toBe('mug-JSON');
    expect(fileSafeId('x'.repeat(200))).toHaveLength(80);
    expect(fileSafeId('***')).toBe('');
  });

  it('makes ids the prompt CSV reader accepts as they are', async () => {
    const raws = ['Café Crème 250g', 'SKU 12 / A', '..hidden..file', '(red) mug', 'mug.json', 'a'.repeat(200), 'Ünïcödé—dash', '0 leading', 'tab\there'];
    const ids = raws.map(fileSafeId);
    const path = await file('ids.csv', `id,prompt\n${ids.map((id) => `${id}--hero,a photo`).join('\n')}\n`);
    const problems: string[] = [];
    for await (const read of readRows(path, { defaults: { model: 'gemini-3-pro-image-preview' } })) if ('problem' in read) problems.push(formatProblem(read.problem));
    expect(problems).toEqual([]);
  });

  it('makes a feed id file-safe and refuses two products of one id, naming both lines', async () => {
    const path = await file('merchant.tsv', 'id\ttitle\nSKU 1/A\tMug\nB\tBowl\nsku-1-a\tOther mug\n');
    const error = await mappingError(readProducts(mapping(path, { format: 'merchant' })));
    expect(error.message).toBe(
      `${join(dir, 'job.yaml')}: id: lines 2 and 4 of ${path} both have the product id "sku-1-a" (from "SKU 1/A" and "sku-1-a"); the id template "{{id}}" must name each product once`,
    );
  });

  it('leaves out a product whose id comes out empty, naming its line', async () => {
    const path = await file('merchant.tsv', 'id\ttitle\nA\tMug\n\tNo id\n');
    const read = await readProducts(mapping(path, { format: 'merchant' }));
    expect(read.products.map((p) => p.id)).toEqual(['A']);
    expect(read.problems.map(formatProblem)).toEqual([`${path}:3: the id template "{{id}}" comes out empty for this product; left out`]);
  });
});

describe('where: filters', () => {
  it('keeps products meeting every condition: equals (regardless of case), one of a list, not empty', async () => {
    const all = await readProducts(mapping(SHOPIFY_EXAMPLE));
    const vendor = await readProducts(mapping(SHOPIFY_EXAMPLE, { where: { Vendor: 'wick theory' } }));
    expect(vendor.products.map((p) => p.id).sort()).toEqual(['soy-candle-fig', 'soy-candle-sea-salt', 'taper-candles-pair']);
    expect(vendor.excluded).toEqual({ status: 1, where: all.products.length - 3 });
    const types = await readProducts(mapping(SHOPIFY_EXAMPLE, { where: { Type: ['Lamps', 'Vases'], Vendor: 'Lumen & Co' } }));
    expect(types.products.map((p) => p.id).sort()).toEqual(['brass-reading-lamp', 'mushroom-table-lamp', 'rattan-pendant-lamp']);
    // An option gathered from the variants is a field like any other.
    const colored = await readProducts(mapping(SHOPIFY_EXAMPLE, { where: { Color: { not_empty: true }, Type: 'Mugs' } }));
    expect(colored.products.map((p) => p.id).sort()).toEqual(['espresso-cup-set', 'stoneware-mug-speckled']);
  });

  it('compares numbers as YAML reads them with the cell text', async () => {
    const path = await file('merchant.csv', 'id,pack\nA,4\nB,6\n');
    const read = await readProducts(mapping(path, { format: 'merchant', where: { pack: [4] } }));
    expect(read.products.map((p) => p.id)).toEqual(['A']);
  });

  it('refuses a filter on a column the feed lacks, naming the definition file and the columns', async () => {
    const path = await file('merchant.csv', 'id,title,brand\nA,Mug,X\n');
    const error = await mappingError(readProducts(mapping(path, { format: 'merchant', where: { vendor: 'X' } })));
    expect(error.message).toBe(`${join(dir, 'job.yaml')}: where: names the column "vendor", which the feed ${path} lacks; its columns: id, title, brand`);
  });
});
