/**
 * The browser tests' own Chromium, from the @sparticuz/chromium devDependency: test files that
 * unpack it at the same moment all get a complete browser, a failed or killed unpacking is never
 * taken for one, and the browser runs here as unpacked, drawing text with its own font.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundledChromium, type Unpacker } from './bundled-chromium.js';
import { launchChromium } from './chromium.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function cacheDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'thb-chromium-cache-'));
  dirs.push(dir);
  return dir;
}

/** Writes the binary in two halves with a pause between, as a slow unpacking would. */
const slowUnpacker: Unpacker = async (staging) => {
  await writeFile(join(staging, 'chromium'), 'first half');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await writeFile(join(staging, 'chromium'), 'first half, second half');
};

describe('bundled Chromium', () => {
  it('gives every caller racing to unpack it the same complete folder, and leaves no staging', async () => {
    const cache = await cacheDir();
    const found = await Promise.all([bundledChromium(cache, slowUnpacker), bundledChromium(cache, slowUnpacker), bundledChromium(cache, slowUnpacker)]);
    expect(new Set(found.map((browser) => browser.executablePath)).size).toBe(1);
    const [version] = await readdir(cache);
    expect(await readdir(cache)).toEqual([version]);
    expect(found[0]!.executablePath).toBe(join(cache, version!, 'chromium'));
    expect(found[0]!.env.LD_LIBRARY_PATH!.split(':')[0]).toBe(join(cache, version!, 'al2023', 'lib'));
  });

  it('never takes a failed or abandoned unpacking for a browser', async () => {
    const cache = await cacheDir();
    // A run killed while unpacking, two hours ago.
    const abandoned = join(cache, '.unpacking-killed');
    await mkdir(abandoned);
    await writeFile(join(abandoned, 'chromium'), 'half');
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    await utimes(abandoned, twoHoursAgo, twoHoursAgo);

    const failing: Unpacker = async (staging) => {
      await writeFile(join(staging, 'chromium'), 'half');
      throw new Error('disk full');
    };
    await expect(bundledChromium(cache, failing)).rejects.toThrow('disk full');
    expect(await readdir(cache)).toEqual([]);

    const browser = await bundledChromium(cache, slowUnpacker);
    expect(existsSync(browser.executablePath)).toBe(true);
  });

  it('launches as unpacked, and draws text with its bundled font', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.setContent('<p id="text" style="font: 20px \'Open Sans\', monospace">Tokenhot batch</p>');
      // The faces Chromium really drew the text with: a bare machine has no fonts of its own.
      const cdp = await browser.context.newCDPSession(page);
      await cdp.send('DOM.enable');
      await cdp.send('CSS.enable');
      const { root } = await cdp.send('DOM.getDocument');
      const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '#text' });
      const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
      expect(fonts.reduce((glyphs, font) => glyphs + font.glyphCount, 0)).toBe('Tokenhot batch'.length);
      if (!process.env.TOKENHOT_TEST_CHROMIUM) expect(fonts.map((font) => font.familyName)).toEqual(['Open Sans']);
    } finally {
      await browser.close();
    }
  });
});
