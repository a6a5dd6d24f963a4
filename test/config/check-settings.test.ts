/**
 * Each check type's settings live in its definition (protocol/checks/<type>.ts) and the plan is
 * composed from them: every field a definition declares is in the plan's schema at its section,
 * no field is claimed twice, and the compiler refuses a check registered in one place and missing
 * in another (the `@ts-expect-error` lines below fail `npm run typecheck` once they compile).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type, type TObject, type TProperties } from '@sinclair/typebox';
import { Plan } from '../../config/schema.js';
import { CHECK_DEFS, CHECK_TYPES, mergeSettings } from '../../protocol/checks/index.js';
import { defineCheck, SETTINGS_SECTIONS, type CheckSettings, type SettingsSection } from '../../protocol/checks/common.js';
import { DnsblResult } from '../../protocol/checks/dnsbl.js';
import { CHECKS } from '../../probe/checks/index.js';

/** The plan's object schema at a section path (`probes.dns` → Plan.probes.dns). */
function section(path: SettingsSection): TProperties {
  let node: TObject = Plan;
  for (const part of path.split('.')) node = node.properties[part] as TObject;
  return node.properties;
}

test("every field of every check's settings is in the plan at its section, as the definition wrote it", () => {
  let fields = 0;
  for (const type of CHECK_TYPES) {
    const settings: CheckSettings = CHECK_DEFS[type].settings;
    for (const where of SETTINGS_SECTIONS) {
      for (const [name, schema] of Object.entries(settings[where] ?? {})) {
        assert.deepStrictEqual(section(where)[name], schema, `${type}: ${where}.${name}`);
        fields++;
      }
    }
  }
  // dns 1, ttl 3, auth 4, dnsbl 1, smtp 1, roundtrip 1, inbox 1 (rdns has none of its own).
  assert.equal(fields, 12);
  assert.deepEqual(Object.keys(CHECK_DEFS.auth.settings.cutover), ['dkim_selectors', 'spf_domain']);
  assert.deepEqual(Object.keys(section('cutover')), ['domain', 'mail_host', 'servers', 'window', 'dkim_selectors', 'dnsbl', 'spf_domain']);
});

test('the checks add their fields by name, and a field claimed by two check types is refused', () => {
  const a = { type: 'a', settings: { probes: { zeta: Type.String(), alpha: Type.Integer() } } };
  const b = { type: 'b', settings: { probes: { mid: Type.Boolean() }, cutover: { other: Type.String() } } };
  assert.deepEqual(Object.keys(mergeSettings([a, b], 'probes')), ['alpha', 'mid', 'zeta']);
  assert.deepEqual(Object.keys(mergeSettings([a, b], 'probes.dns')), []);
  const c = { type: 'c', settings: { probes: { mid: Type.String() } } };
  assert.throws(() => mergeSettings([a, b, c], 'probes'), { message: 'probes.mid is claimed by the check types b and c' });
});

// ---- what the compiler refuses (checked by `npm run typecheck`) ----

// A probe-side registry without one of the check types.
const { roundtrip: _rt, ...withoutRoundtrip } = CHECKS;
// @ts-expect-error the registry of the probe must name every check type of CHECK_DEFS
const _incomplete: typeof CHECKS = withoutRoundtrip;
// A definition without settings (`{}` when it has none of its own).
// @ts-expect-error settings is part of every definition
const _noSettings = defineCheck({ type: 'x', result: DnsblResult, failed: () => [], failedLike: (r) => r, samples() {} });
void _incomplete;
void _noSettings;
