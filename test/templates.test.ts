import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FeedMappingError, readProducts } from '../src/rows/feeds/products.js';
import { fieldLookup, missingColumns, parseTemplate, renderTemplate, templateColumns, TemplateError } from '../src/rows/template.js';

function render(source: string, fields: Record<string, string>): string {
  return renderTemplate(parseTemplate('prompt', source), fieldLookup(fields));
}

function syntaxError(source: string): string {
  try {
    parseTemplate('shots[1].prompt', source);
  } catch (error) {
    expect(error).toBeInstanceOf(TemplateError);
    return (error as Error).message;
  }
  throw new Error(`"${source}" was read`);
}

describe('templates', () => {
  it('puts in column values, trimmed, with whitespace inside the braces ignored', () => {
    const fields = { Title: ' Speckled Mug ', 'Option1 Value': 'Oat', Vendor: 'Fern & Kiln' };
    expect(render('Studio photo of {{Title}} in {{ Option1 Value }}, {{Vendor  }}, on pure white', fields)).toBe('Studio photo of Speckled Mug in Oat, Fern & Kiln, on pure white');
  });

  it('finds columns regardless of case, as feeds write them differently', () => {
    expect(render('{{title}} by {{VENDOR}}', { Title: 'Mug', Vendor: 'Acme' })).toBe('Mug by Acme');
  });

  it('uses the default for an empty or blank value, and only then', () => {
    const template = 'A {{Color | default: "natural"}} vase';
    expect(render(template, { Color: '' })).toBe('A natural vase');
    expect(render(template, { Color: '   ' })).toBe('A natural vase');
    expect(render(template, { Color: 'blue' })).toBe('A blue vase');
    expect(render("{{ Color|default:'warm grey' }}", { Color: '' })).toBe('warm grey');
    expect(render('{{Color | default: "say \\"hi\\""}}', { Color: '' })).toBe('say "hi"');
    expect(render('[{{Color | default: ""}}]', { Color: '' })).toBe('[]');
  });

  it('leaves an empty value without a default empty', () => {
    expect(render('{{Title}}', { Title: '' })).toBe('');
  });

  it('keeps text without placeholders, and single braces, as written', () => {
    expect(render('A {plain} prompt }} here', {})).toBe('A {plain} prompt }} here');
  });

  it('lists the columns a template names, each once', () => {
    expect(templateColumns(parseTemplate('prompt', '{{Title}} {{ Color | default: "x" }} {{title}} {{Title}}'))).toEqual(['Title', 'Color', 'title']);
    expect(missingColumns(parseTemplate('prompt', '{{Title}} {{Colour}}'), ['title', 'Color'])).toEqual(['Colour']);
  });

  it('refuses what is not a template, naming which one', () => {
    expect(syntaxError('Photo of {{Title')).toBe('shots[1].prompt: "{{" at "{{Title" is never closed with "}}"');
    expect(syntaxError('{{ }}')).toBe('shots[1].prompt: {{ }} names no column');
    expect(syntaxError('{{Title | upcase}}')).toBe('shots[1].prompt: {{Title | upcase}}: the only filter is default, written | default: "value"');
    expect(syntaxError('{{Title | default: natural}}')).toMatch(/the only filter is default/);
    expect(syntaxError('{{Title | default: "a" | default: "b"}}')).toMatch(/the only filter is default/);
  });
});

describe('templates against a feed', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokenhot-templates-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a template naming a column the feed lacks: the definition file, the template, the column and the feed columns, all at once', async () => {
    const feed = join(dir, 'merchant.tsv');
    await writeFile(feed, 'id\ttitle\tbrand\nA\tMug\tAcme\n');
    const definition = join(dir, 'nightly.yaml');
    const error = await readProducts({ definitionFile: definition, feed, format: 'merchant', id: '{{sku}}' }, [
      { name: 'prompt', source: 'Photo of {{title}} by {{brand}}' },
      { name: 'shots[2].prompt', source: '{{title}} in {{color}}, {{Pattern | default: "plain"}}' },
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FeedMappingError);
    expect((error as Error).message).toBe(
      [
        `${definition}: id: "{{sku}}" names the column "sku", which the feed ${feed} lacks; its columns: id, title, brand`,
        `${definition}: shots[2].prompt: "{{title}} in {{color}}, {{Pattern | default: "plain"}}" names the column "color", which the feed ${feed} lacks; its columns: id, title, brand`,
        `${definition}: shots[2].prompt: "{{title}} in {{color}}, {{Pattern | default: "plain"}}" names the column "Pattern", which the feed ${feed} lacks; its columns: id, title, brand`,
      ].join('\n'),
    );
  });

  it('refuses a template that cannot be read before the feed is looked at', async () => {
    const definition = join(dir, 'nightly.yaml');
    const error = await readProducts({ definitionFile: definition, feed: join(dir, 'not-there.csv'), format: 'merchant' }, [{ name: 'prompt', source: '{{title' }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FeedMappingError);
    expect((error as Error).message).toBe(`${definition}: prompt: "{{" at "{{title" is never closed with "}}"`);
  });
});
