/**
 * `npm run screenshots`: regenerates the README's pictures of the status page and the cutover
 * report (docs/img/*.png) from a lab cutover, as Debian's Chromium shows them. Needs
 * `prometheus` and `chromium` installed (the test peers).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchBrowser } from '../lab/browser.js';
import { startLabCutover } from '../lab/cutover.js';
import { writeReport } from '../report/write.js';

const root = resolve(import.meta.dirname, '..');
const out = join(root, 'docs/img');

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  const lab = await startLabCutover({ durationMs: 60_000, collectorListen: '127.0.0.1:0', prometheus: true });
  const browser = await launchBrowser({ width: 1280, height: 1500 });
  const tmp = mkdtempSync(join(tmpdir(), 'mailprobe-screenshots-'));
  try {
    const page = await browser.context.newPage();
    // Mid-cutover: switched, with the TTL-ignoring resolver still on the old IP.
    const switched = lab.steps.find((s) => s.label.startsWith('A record switched'));
    const prometheus = lab.prometheus;
    if (!switched || !prometheus) throw new Error('the lab timeline has no "A record switched" step, or the lab runs without Prometheus');
    await new Promise((r) => setTimeout(r, Math.max(0, switched.at + 3000 - Date.now())));
    await page.goto(`${lab.collectorUrl}/`);
    await page.screenshot({ path: join(out, 'status-page.png') });
    process.stdout.write(`screenshots: ${join(out, 'status-page.png')} (phase: ${await page.getAttribute('#phase', 'data-phase')})\n`);
    await lab.done;
    await prometheus.waitForScrapes(2);
    const r = await writeReport({ prometheus: prometheus.url, from: lab.startedAt / 1000, to: Date.now() / 1000, outDir: tmp });
    await page.goto(`file://${r.html}`);
    await page.screenshot({ path: join(out, 'cutover-report.png') });
    process.stdout.write(`screenshots: ${join(out, 'cutover-report.png')}\n`);
  } finally {
    await browser.close();
    await lab.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`screenshots failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
