/**
 * The gallery of a batch in a bucket (`--out s3://bucket/prefix`), on a real S3-compatible server
 * (s3rver in its own process) against a mock-server process: the page, written to a local file,
 * lists every row, links each image by a presigned GET URL of its object, and fetching a link
 * (no credentials, as a browser would) returns exactly the bytes the mock sent.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from './helpers/cli-in-process.js';
import { startMockProcess, type MockProcess } from './helpers/processes.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

const KEY = 'sk-s3-gallery-7c1d09';
const BUCKET = 'thb-gallery';
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Every `<img>` of the page as its row, file and link (attribute values unescaped). */
function imageLinks(html: string): { row: string; file: string; src: string }[] {
  const unescape = (value: string): string => value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  return [...html.matchAll(/<img class="full" src="([^"]+)" loading="lazy" decoding="async" alt="image ([^"]+) of row ([^"]+)"/g)].map((match) => ({ src: unescape(match[1]!), file: match[2]!, row: match[3]! }));
}

/** The SigV4 signature s3rver's credentials give a GET of `key` with the expiry and time of `url`. */
async function signatureFor(s3: S3Server, key: string, url: URL): Promise<string | null> {
  const signingDate = new Date(url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  try {
    const signed = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: Number(url.searchParams.get('X-Amz-Expires')), signingDate });
    return new URL(signed).searchParams.get('X-Amz-Signature');
  } finally {
    client.destroy();
  }
}

describe('gallery of a batch in an S3-compatible bucket', () => {
  let mock: MockProcess;
  let s3: S3Server;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-s3-gallery-'));
    [mock, s3] = await Promise.all([startMockProcess(['--api-key', KEY, '--latency-ms', '10']), startS3Server([BUCKET])]);
  });
  afterAll(async () => {
    await Promise.all([mock?.stop(), s3?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every row; each image is a presigned link to its object that returns the bytes the mock sent', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => {
      let prompt = `a lamp on a desk, angle ${i}`;
      if (i === 1) prompt += ' [mock:blocked]';
      if (i === 3) prompt += ' [mock:two-images]';
      return { id: `l${i}`, prompt };
    });
    const csv = join(dir, 'lamps.csv');
    await writeFile(csv, ['id,prompt,model', ...rows.map((row) => `${row.id},"${row.prompt}",gemini-3-pro-image-preview`)].join('\n'));
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_SPOOL_DIR: join(dir, 'spool'), ...s3.env };
    const out = `s3://${BUCKET}/shop`;
    const run = await runInProcess(['run', csv, '--out', out, '--plain'], env);
    expect(run.stdout, run.stderr).toContain('4 done, 1 failed');

    const page = join(dir, 'page', 'lamps.html');
    const before = Date.now();
    const gallery = await runInProcess(['gallery', '--out', out, '--batch', 'lamps', '--page', page, '--link-hours', '2'], { ...s3.env, TOKENHOT_SPOOL_DIR: join(dir, 'spool-elsewhere') });
    expect(gallery.code, gallery.stderr).toBe(0);
    expect(gallery.stderr).toContain('5 rows (4 done, 1 failed), 5 images, 5 image links');
    const html = await readFile(page, 'utf8');

    // Every row has its card, the failed one with its reason; no thumbnail was made.
    for (const row of rows) expect(html).toContain(`id="row-${row.id}"`);
    expect(html).toContain('data-status="failed"');
    expect(html).not.toContain('data:image/webp');
    expect(html).toContain('No thumbnails are made');
    // The page's policy lets images come from the bucket's server only.
    expect(html).toContain(`img-src data: ${new URL(s3.endpoint).origin};`);

    // Each image of each done row: a presigned URL of exactly its object, valid for 2 hours.
    const links = imageLinks(html);
    const expected: string[] = [];
    for (const id of ['l0', 'l2', 'l3', 'l4']) {
      const sidecar = JSON.parse((await s3.read(BUCKET, `shop/lamps/${id}.json`)).toString()) as { images: { file: string }[] };
      for (const image of sidecar.images) expected.push(`${id}/${image.file}`);
    }
    expect(expected).toHaveLength(5);
    expect(links.map((link) => `${link.row}/${link.file}`).sort()).toEqual(expected.sort());
    const records = await mock.requests();
    for (const link of links) {
      const url = new URL(link.src);
      expect(`${url.origin}${url.pathname}`).toBe(`${s3.endpoint}/${BUCKET}/shop/lamps/${link.file}`);
      expect(url.searchParams.get('X-Amz-Expires')).toBe('7200');
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      const signedAt = url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z');
      expect(Math.abs(Date.parse(signedAt) - before)).toBeLessThan(60_000);

      // Fetched as a browser would, with no credentials: the exact bytes the mock sent for the row.
      const response = await fetch(link.src);
      expect(response.status, link.src).toBe(200);
      const bytes = Buffer.from(await response.arrayBuffer());
      const prompt = rows.find((row) => row.id === link.row)!.prompt;
      const sent = records.filter((record) => record.prompt === prompt && record.status === 200 && record.images.length > 0).at(-1)!;
      const index = /-2\.\w+$/.test(link.file) ? 1 : 0;
      expect(sha256(bytes), link.file).toBe(sent.images[index]!.sha256);
    }

    // s3rver serves an object whatever the signature, so the signature is checked here: the one
    // the bucket's credentials give for that key, expiry and signing time.
    for (const link of links) expect(await signatureFor(s3, `shop/lamps/${link.file}`, new URL(link.src))).toBe(new URL(link.src).searchParams.get('X-Amz-Signature'));
  });

  it('refuses what a bucket page cannot do, as bad usage (exit 2)', async () => {
    const out = `s3://${BUCKET}/shop`;
    const cases: [string[], RegExp][] = [
      [['--link-hours', '169'], /--link-hours: "169" is not a whole number from 1 to 168/],
      [['--thumb-width', '128'], /makes no thumbnails/],
      [['--output', join(dir, 'x.html')], /--page/],
    ];
    for (const [flags, message] of cases) {
      const result = await runInProcess(['gallery', '--out', out, '--batch', 'lamps', ...flags], s3.env);
      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    const missing = await runInProcess(['gallery', '--out', out, '--batch', 'nothing-here', '--page', join(dir, 'none.html')], s3.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`no sidecars under s3://${BUCKET}/shop/nothing-here/`);
    const local = await runInProcess(['gallery', '--out', dir, '--batch', 'lamps', '--link-hours', '2']);
    expect(local.code).toBe(2);
    expect(local.stderr).toContain('--link-hours is for an output in a bucket');
  });
});
