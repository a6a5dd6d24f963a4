/**
 * Makes the cutover report for a range and writes it as `cutover-report.html` and
 * `cutover-report.md` into a directory; used by `mailprobe report` and by the lab.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gatherReport, type ReportData } from './gather.js';
import { PromClient } from './prometheus.js';
import { renderReportHtml, renderReportMarkdown } from './render.js';

export interface WrittenReport {
  html: string;
  markdown: string;
  data: ReportData;
}

export async function writeReport(opts: {
  prometheus: string;
  from: number;
  to: number;
  outDir: string;
  headers?: Record<string, string>;
}): Promise<WrittenReport> {
  const data = await gatherReport(new PromClient(opts.prometheus, opts.headers ? { headers: opts.headers } : {}), {
    url: opts.prometheus,
    from: opts.from,
    to: opts.to,
  });
  const dir = resolve(opts.outDir);
  mkdirSync(dir, { recursive: true });
  const html = join(dir, 'cutover-report.html');
  const markdown = join(dir, 'cutover-report.md');
  writeFileSync(html, renderReportHtml(data));
  writeFileSync(markdown, renderReportMarkdown(data));
  return { html, markdown, data };
}
