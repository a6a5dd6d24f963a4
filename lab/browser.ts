/**
 * Debian's Chromium (`/usr/bin/chromium`, package `chromium`) driven by playwright-core, for the
 * tests that look at the status page and the report as a person would and for
 * `npm run screenshots`. The installed browser is used; none is ever downloaded. Each launch
 * gets a fresh profile directory, removed on close.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.MAILPROBE_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

export interface LabBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(opts: { width?: number; height?: number; bypassCSP?: boolean } = {}): Promise<LabBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'mailprobe-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // playwright passes the fresh profile as --user-data-dir itself.
    args: [...CHROMIUM_ARGS],
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 },
    bypassCSP: opts.bypassCSP ?? false,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
