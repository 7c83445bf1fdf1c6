/**
 * Headless Chromium driven by playwright-core, never a browser downloaded at run time: the one
 * inside the @sparticuz/chromium devDependency, or the one TOKENHOT_TEST_CHROMIUM names (say
 * Debian's /usr/bin/chromium).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { ROOT } from '../helpers/root.js';
import { bundledChromium, type BundledChromium } from './bundled-chromium.js';

/** Where screenshots go (git-ignored). */
export const RESULTS = join(ROOT, 'test-results');

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** The browser to launch: TOKENHOT_TEST_CHROMIUM when set, else the bundled one. */
export async function testChromium(): Promise<BundledChromium> {
  const own = process.env.TOKENHOT_TEST_CHROMIUM;
  if (!own) return bundledChromium();
  if (!existsSync(own)) throw new Error(`TOKENHOT_TEST_CHROMIUM=${own}: no such file (unset it to use the Chromium of the @sparticuz/chromium devDependency)`);
  return { executablePath: own, env: {} };
}

export async function launchChromium(): Promise<Browser> {
  const browser = await testChromium();
  await mkdir(RESULTS, { recursive: true });
  // A fresh profile each run; the flags keep Chromium off the (closed) network.
  const userDataDir = await mkdtemp(join(tmpdir(), 'thb-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: browser.executablePath,
    env: { ...process.env, ...browser.env },
    headless: true,
    chromiumSandbox: false,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-domain-reliability', '--no-pings'],
    viewport: { width: 1280, height: 900 },
  });
  // Nothing may leave this machine (Bull Board's page asks for web fonts, say): refused at once
  // rather than left to time out on a closed network.
  await context.route(/^(?!(?:https?:\/\/(?:127\.0\.0\.1|localhost|\[::1\])[:/])|file:|data:)/, (route) => route.abort());
  return {
    context,
    async close() {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
