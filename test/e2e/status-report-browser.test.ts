/**
 * The status page and the cutover report as a person sees them: one lab cutover (compressed to
 * 60 s) with a real Prometheus, Debian's Chromium (driven by playwright-core) reloading the
 * collector's page throughout, then the report made by `mailprobe report` from that Prometheus
 * and opened from disk. Content is read through the DOM; both pass html-validate and axe-core.
 * Screenshots are kept under .tmp/artifacts/ (gitignored).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, type LabBrowser } from '../../lab/browser.js';
import { LAB_NEW_IP, LAB_OLD_IP, MTA_LOG_ID, startLabCutover, type LabCutover } from '../../lab/cutover.js';
import { gatherReport } from '../../report/gather.js';
import { PromClient, ReportError } from '../../report/prometheus.js';
import { accessibilityProblems, htmlProblems } from '../support/page-checks.js';

const root = resolve(import.meta.dirname, '../..');
const ARTIFACTS = join(root, '.tmp/artifacts');

interface Seen {
  at: number;
  phase: string;
  safeToSwitch: string;
  safeToTurnOff: string;
  oldDelivery: string;
  newReady: string;
  /** The conditions still open for the switch, as shown. */
  open: string;
  /** Whether the "inside the cutover window" condition shows as met. */
  inWindow: string;
  oldEvidence: string;
}

/** Opens the page; its own meta refresh may interrupt a navigation, which is then retried. */
async function open(page: Page, url: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const r = await page.goto(url);
      assert.equal(r?.status(), 200);
      return;
    } catch (e) {
      if (i >= 3 || !/interrupted by another navigation/.test((e as Error).message)) throw e;
    }
  }
}

/** What the page shows, read through the DOM. */
async function read(page: Page, lab: LabCutover): Promise<Seen> {
  return {
    at: (Date.now() - lab.startedAt) / 1000,
    phase: (await page.getAttribute('#phase', 'data-phase')) ?? '',
    safeToSwitch: (await page.getAttribute('#safe-to-switch', 'data-safe')) ?? '',
    safeToTurnOff: (await page.getAttribute('#safe-to-turn-off', 'data-safe')) ?? '',
    oldDelivery: (await page.getAttribute(`table[data-server-ip="${LAB_OLD_IP}"] tr[data-check="delivery"]`, 'data-verdict')) ?? '',
    newReady: (await page.getAttribute(`table[data-server-ip="${LAB_NEW_IP}"] tr[data-check="ptr"]`, 'data-verdict')) ?? '',
    open: ((await page.textContent('#safe-to-switch')) ?? '').replace(/\s+/g, ' ').slice(0, 400),
    inWindow: (await page.locator('#safe-to-switch details li', { hasText: 'inside the cutover window' }).getAttribute('data-met')) ?? '',
    oldEvidence: (await page.textContent(`table[data-server-ip="${LAB_OLD_IP}"] tr[data-check="delivery"]`)) ?? '',
  };
}

describe('status page and report in a browser, during and after a lab cutover', () => {
  let lab: LabCutover;
  let browser: LabBrowser;
  const seen: Seen[] = [];
  let pageHtml = '';
  let midScreenshot = false;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    [lab, browser] = await Promise.all([startLabCutover({ durationMs: 60_000, collectorListen: '127.0.0.1:0', prometheus: true }), launchBrowser()]);
    const page = await browser.context.newPage();
    // Reload as the meta refresh would, faster, until the end of the timeline.
    let done = false;
    void lab.done.then(() => (done = true));
    while (!done) {
      await open(page, `${lab.collectorUrl}/`);
      const s = await read(page, lab);
      seen.push(s);
      if (!midScreenshot && (s.phase === 'switched' || s.phase === 'propagated')) {
        midScreenshot = true;
        await page.screenshot({ path: join(ARTIFACTS, 'status-page-switched.png'), fullPage: true });
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
    pageHtml = await (await fetch(`${lab.collectorUrl}/`)).text();
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-end.png'), fullPage: true });
    await page.close();
  });
  after(async () => {
    await browser?.close();
    await lab?.stop();
  });

  it('the page follows the cutover: phase, the conditions of the decisions and readiness verdicts change as the lab moves', () => {
    const phases = seen.map((s) => s.phase);
    const at = (label: string) => (lab.steps.find((s) => s.label.startsWith(label))!.at - lab.startedAt) / 1000;
    const [windowOpens, switchAt, oldOffAt, windowCloses] = [
      at('cutover window opens'),
      at('A record switched'),
      at('old server turned off'),
      at('cutover window closes'),
    ];
    const trace = seen
      .map(
        (s) =>
          `${s.at.toFixed(0)} ${s.phase} switch=${s.safeToSwitch} in-window=${s.inWindow} off=${s.safeToTurnOff} old-delivery=${s.oldDelivery} new-ptr=${s.newReady}`,
      )
      .join('\n');
    assert.ok(seen.length >= 5, trace);
    assert.ok(['before-window', 'ttl-lowered'].includes(phases[0]!), trace);
    assert.ok(phases.includes('switched') || phases.includes('propagated'), trace);
    assert.equal(phases.at(-1), 'after-window', trace);
    // Phases move forward only.
    const order = ['before-window', 'ttl-lowered', 'window-open', 'switched', 'propagated', 'after-window'];
    for (let i = 1; i < phases.length; i++) assert.ok(order.indexOf(phases[i]!) >= order.indexOf(phases[i - 1]!), `phase went back:\n${trace}`);
    // "Safe to switch" names the window as open only inside it (1 s slack for the page's cache).
    for (const s of seen) {
      if (s.at < windowOpens - 1 || s.at > windowCloses + 1) assert.equal(s.inWindow, 'false', trace);
      if (s.at > windowOpens + 1 && s.at < windowCloses - 1) assert.equal(s.inWindow, 'true', trace);
    }
    assert.ok(
      seen.some((s) => s.at > windowOpens + 1 && s.at < windowCloses - 1),
      `no look inside the window:\n${trace}`,
    );
    // Neither decision is "yes" before the window; turning the old server off never before the switch.
    assert.ok(
      seen.filter((s) => s.at < windowOpens - 1).every((s) => s.safeToSwitch === 'false'),
      trace,
    );
    assert.ok(
      seen.filter((s) => s.at < switchAt).every((s) => s.safeToTurnOff === 'false'),
      trace,
    );
    // The new IP's PTR (the mail host) counts as ready although it confirms only once served.
    assert.ok(
      seen.some((s) => s.at < switchAt && s.newReady === 'pass'),
      trace,
    );
    // The old server, turned off, fails its delivery line with the refused connections.
    const last = seen.at(-1)!;
    assert.ok(last.at > oldOffAt + 8, trace);
    assert.equal(last.oldDelivery, 'fail', trace);
    assert.match(last.oldEvidence, /connect_refused/, trace);
  });

  it('the page names every resolver per region, the TTL violator, and a row per IP and region', async () => {
    const page = await browser.context.newPage();
    await open(page, `${lab.collectorUrl}/`);
    const d = lab.dns.resolvers;
    const rows = async (region: string) =>
      page.$$eval(`table[data-region="${region}"] tr[data-resolver]`, (trs) => trs.map((tr) => tr.getAttribute('data-resolver')).sort());
    assert.deepEqual(await rows('eu'), [d.honest.address, d.clamp.address].sort());
    assert.deepEqual(await rows('us'), [d.honest.address, d.ignore.address, d.stale.address].sort());
    assert.deepEqual(await rows('ap'), [d.honest.address, d.ignore.address, d.clamp.address, d.stale.address].sort());
    const usText = await page.textContent('#resolvers-us + p');
    // The lab names its resolvers: the page shows the name with the address.
    assert.match(usText ?? '', new RegExp(`Violators: ignores TTL \\(${d.ignore.address.replace(/\./g, '\\.')}\\) \\(\\d+ s past the TTL\\)`));
    assert.equal(await page.textContent(`table[data-region="eu"] tr[data-resolver="${d.honest.address}"] td`), `honest (${d.honest.address})`);
    const delivery = await page.$$eval('#sessions tr[data-ip]', (trs) =>
      trs.map((tr) => `${tr.getAttribute('data-ip')}/${tr.getAttribute('data-region')}/${tr.children[0]?.textContent}`).sort(),
    );
    assert.deepEqual(delivery, ['ap', 'eu', 'us'].flatMap((r) => [`${LAB_OLD_IP}/${r}/provider-a`, `${LAB_NEW_IP}/${r}/provider-b`]).sort());
    const probes = await page.$$eval('#probes tr[data-probe]', (trs) => trs.map((tr) => tr.getAttribute('data-probe')));
    // The old MTA's log follower pushes like a probe and is listed with them.
    assert.deepEqual(probes, ['lab-ap', 'lab-eu', MTA_LOG_ID, 'lab-us']);
    assert.deepEqual(await htmlProblems(pageHtml), []);
    await page.close();
    // axe runs on the same markup without the meta refresh, which would reload the page under it
    // (the page reloads itself on purpose, collector.status.refresh, which axe's meta-refresh flags).
    const still = await browser.context.newPage();
    await still.setContent(pageHtml.replace(/<meta http-equiv="refresh"[^>]*>/, ''));
    assert.deepEqual(await accessibilityProblems(still), []);
    await still.close();
  });

  it('mailprobe report writes a report the browser shows with the timeline, every resolver, the IPs and the alerts', async () => {
    const from = new Date(lab.startedAt).toISOString();
    await lab.prometheus!.waitForScrapes(2);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(root, 'cli/main.ts'), 'report', '--prometheus', lab.prometheus!.url, '--from', from, '--to', 'now', '--out', ARTIFACTS],
      {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /cutover-report\.html\n.*cutover-report\.md\n/);
    const htmlFile = join(ARTIFACTS, 'cutover-report.html');
    const html = readFileSync(htmlFile, 'utf8');
    assert.doesNotMatch(html, /<script|\b(src|href)="(https?:)?\/\//, 'no script, no external asset');

    const page = await browser.context.newPage();
    await page.goto(`file://${htmlFile}`);
    const timeline = (await page.textContent('#timeline')) ?? '';
    assert.match(timeline, /A record switched to the new IP/);
    assert.match(timeline, /cutover window opens/);
    const d = lab.dns.resolvers;
    const resolverRows = await page.$$eval('#resolvers tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '')));
    assert.equal(resolverRows.length, 9, 'eu 2 + us 3 + ap 4 resolvers');
    const ignoring = resolverRows.filter((row) => row[1] === `ignores TTL (${d.ignore.address})`);
    assert.deepEqual(
      ignoring.map((row) => [row[0], row[4]]),
      [
        ['ap', 'no'],
        ['us', 'no'],
      ],
    );
    const honest = resolverRows.filter((row) => row[1] === `honest (${d.honest.address})`);
    assert.deepEqual(
      honest.map((row) => row[4]),
      ['yes', 'yes', 'yes'],
    );
    const latency = await page.$$eval('#latency tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '')));
    assert.deepEqual(
      latency.map((row) => `${row[0]}/${row[1]}/${row[2]}`),
      [
        `${LAB_OLD_IP}/old/before`,
        `${LAB_OLD_IP}/old/during`,
        `${LAB_OLD_IP}/old/after`,
        `${LAB_NEW_IP}/new/before`,
        `${LAB_NEW_IP}/new/during`,
        `${LAB_NEW_IP}/new/after`,
      ],
    );
    for (const ip of [LAB_OLD_IP, LAB_NEW_IP]) {
      const sessions = latency.filter((row) => row[0] === ip).reduce((n, row) => n + Number(row[6]), 0);
      assert.ok(sessions >= 6, `${ip}: ${sessions} SMTP sessions over the periods`);
    }
    // The old server, turned off, refused connections; the new one never did.
    const smtpFailures = await page.$$eval('#smtp-failures tbody tr', (trs) =>
      trs.map((tr) => `${tr.children[0]?.textContent} ${tr.children[1]?.textContent}`),
    );
    assert.ok(smtpFailures.includes(`${LAB_OLD_IP} connect_refused`), smtpFailures.join('; '));
    assert.ok(!smtpFailures.includes(`${LAB_NEW_IP} connect_refused`), smtpFailures.join('; '));
    assert.match((await page.textContent('#failures')) ?? '', /smtp\s*connect_refused/);
    assert.match((await page.textContent('#alerts')) ?? '', /MailprobeResolverIgnoringTTL/);
    assert.equal(await page.locator('svg').count(), 3);
    await page.screenshot({ path: join(ARTIFACTS, 'cutover-report.png'), fullPage: true });
    assert.deepEqual(await htmlProblems(html), []);
    assert.deepEqual(await accessibilityProblems(page), []);
    await page.close();
    const md = readFileSync(join(ARTIFACTS, 'cutover-report.md'), 'utf8');
    assert.match(md, /^# Cutover report for mail\.company\.test/m);
    assert.match(md, new RegExp(`\\| us \\| ignores TTL \\(${d.ignore.address.replace(/\./g, '\\.')}\\) \\| [^|]+ \\| \\d+ s \\| no \\|`));
  });

  it('a range without mailprobe series is a clear error, not an empty report', async () => {
    const from = lab.startedAt / 1000 - 7200;
    await assert.rejects(
      gatherReport(new PromClient(lab.prometheus!.url), { url: lab.prometheus!.url, from, to: from + 600 }),
      (e: unknown) =>
        e instanceof ReportError && /no mailprobe_dns_answer_side series between .* is it the Prometheus that scrapes the mailprobe collector/.test(e.message),
    );
  });
});
