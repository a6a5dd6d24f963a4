/**
 * Checks a page must pass as a person's browser sees it: html-validate's recommended rules on
 * the markup, and axe-core's accessibility rules run inside the real page (both offline).
 */
import axe from 'axe-core';
import { HtmlValidate } from 'html-validate';
import type { Page } from 'playwright-core';

// meta-refresh: the status page reloads itself on purpose (a page on a wall during the window);
// the rule only allows instant redirects.
const validator = new HtmlValidate({ extends: ['html-validate:recommended'], rules: { 'meta-refresh': 'off' } });

/** html-validate's messages as `line:col rule: message`; empty when valid. */
export async function htmlProblems(html: string): Promise<string[]> {
  const report = await validator.validateString(html);
  return report.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`));
}

/** axe-core's violations on the page as `rule (impact): target…`; empty when none. `skip`: rule ids not to run. */
export async function accessibilityProblems(page: Page, skip: readonly string[] = []): Promise<string[]> {
  const run = async () => {
    await page.evaluate(axe.source);
    // Runs in the page (lib "dom" is not in this project's types, hence globalThis).
    return page.evaluate(
      (off) =>
        (globalThis as unknown as { axe: typeof axe }).axe.run({
          resultTypes: ['violations'],
          rules: Object.fromEntries(off.map((id) => [id, { enabled: false }])),
        }),
      [...skip],
    );
  };
  const result = await run();
  return result.violations.map(
    (v) =>
      `${v.id} (${v.impact ?? '?'}): ${v.help} — ${v.nodes
        .slice(0, 3)
        .map((n) => n.target.join(' '))
        .join('; ')}`,
  );
}
