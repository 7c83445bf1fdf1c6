/**
 * Debian's Chromium driven by playwright-core: never a downloaded browser. Without
 * /usr/bin/chromium the browser tests fail, saying how to get it (CI installs it in .ci/run).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { ROOT } from '../helpers/processes.js';

export const CHROMIUM = process.env.TOKENHOT_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots go (git-ignored). */
export const RESULTS = join(ROOT, 'test-results');

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the browser tests need Debian's chromium (apt-get install -y chromium; .ci/run installs it). This file fails without it (CI must not pass silently without the browser tests).`);
  }
  await mkdir(RESULTS, { recursive: true });
  // A fresh profile each run; the flags keep Chromium off the (closed) network.
  const userDataDir = await mkdtemp(join(tmpdir(), 'thb-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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
