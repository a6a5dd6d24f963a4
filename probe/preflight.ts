/**
 * The preflight (`mailprobe preflight`): proves a plan from the host a probe will run on, before
 * the window, one line per item: secrets present, files usable, each collector reachable and
 * accepting this probe's token (a dry run that applies nothing) with the clock offset to it,
 * each resolver and authoritative server answering a real query for the mail host, each server
 * IP's SMTP port greeting (banner read, QUIT, no mail sent), the sink reachable or bindable.
 */
import { randomUUID } from 'node:crypto';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { request } from 'undici';
import { checkPlanFile, planFiles } from '../config/files.js';
import type { PlanConfig } from '../config/schema.js';
import { parseListen } from '../config/specs.js';
import { RESULTS_PATH, type Batch, type PushReply } from '../protocol/wire.js';
import { authoritativeServers, dnsCheckSettings } from './checks/dns.js';
import { createClient, serverClient } from './dns/client.js';

export interface PreflightItem {
  ok: boolean;
  /** What was checked, e.g. `collector http://…` or `smtp 192.0.2.1:25`. */
  item: string;
  /** What was found (ok) or why it failed. */
  detail: string;
}

export interface PreflightOptions {
  plan: PlanConfig;
  id: string;
  region: string;
  version: string;
  env?: NodeJS.ProcessEnv;
  /** Largest clock offset to a collector that passes, ms. Default 1000. */
  maxClockOffsetMs?: number;
}

const ms = (n: number) => `${Math.round(n)} ms`;
const reason = (e: unknown) => (e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? String(e);

function secrets(plan: PlanConfig, env: NodeJS.ProcessEnv): PreflightItem[] {
  const named: [string, string][] = [];
  if (plan.probes.push.collectors.length > 0) named.push([plan.probes.push.token_env, 'probes.push.token_env']);
  if (plan.probes.roundtrip) named.push([plan.probes.roundtrip.secret_env, 'probes.roundtrip.secret_env']);
  if (plan.probes.smtp.auth) named.push([plan.probes.smtp.auth.pass_env, 'probes.smtp.auth.pass_env']);
  return named.map(([name, field]) => ({
    ok: Boolean(env[name]),
    item: `secret ${name}`,
    detail: env[name] ? `set (${field})` : `not set: export ${name} (named by ${field})`,
  }));
}

async function collector(url: string, o: PreflightOptions, token: string): Promise<PreflightItem> {
  const item = `collector ${url}`;
  const batch: Batch = {
    probe: { id: o.id, region: o.region, version: o.version },
    batch: { id: `preflight-${randomUUID()}`, seq: 0, createdAt: Date.now() },
    results: [],
  };
  const t0 = Date.now();
  try {
    const r = await request(`${url.replace(/\/$/, '')}${RESULTS_PATH}?dry_run=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(batch),
      headersTimeout: o.plan.probes.push.request_timeout,
      bodyTimeout: o.plan.probes.push.request_timeout,
    });
    const t1 = Date.now();
    const body = (await r.body.json().catch(() => ({}))) as Partial<PushReply> & { error?: string; message?: string };
    if (r.statusCode !== 200 || body.status !== 'dry_run' || typeof body.serverTime !== 'number') {
      return {
        ok: false,
        item,
        detail: `HTTP ${r.statusCode}${body.error ? ` ${body.error}: ${body.message ?? ''}` : body.status ? ` status ${body.status} (a collector without dry runs?)` : ''}`,
      };
    }
    // The collector read its clock between t0 and t1: offset ± half the round trip.
    const offset = body.serverTime - (t0 + t1) / 2;
    const accuracy = (t1 - t0) / 2;
    const max = o.maxClockOffsetMs ?? 1000;
    const clock = `clock offset ${offset >= 0 ? '+' : ''}${ms(offset)} ±${ms(Math.max(1, accuracy))}`;
    if (Math.abs(offset) - accuracy > max)
      return { ok: false, item, detail: `accepts the token of ${o.id}, but ${clock} (more than ${ms(max)}: fix NTP on this host or the collector)` };
    return { ok: true, item, detail: `accepts the token of ${o.id} in region ${o.region} (dry run), ${clock}` };
  } catch (e) {
    return { ok: false, item, detail: `unreachable: ${reason(e)}` };
  }
}

/** Reads one SMTP reply (multi-line aware); resolves with its text. */
function reply(sock: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', onErr);
      sock.off('close', onClose);
      if (err) reject(err);
      else resolve(buf.trimEnd());
    };
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const lines = buf.split('\r\n');
      if (lines.some((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l))) done();
    };
    const onErr = (e: Error) => done(e);
    const onClose = () => done(new Error('connection closed'));
    const timer = setTimeout(() => done(new Error(`no reply within ${ms(timeoutMs)}`)), timeoutMs);
    sock.on('data', onData);
    sock.on('error', onErr);
    sock.on('close', onClose);
  });
}

async function smtp(plan: PlanConfig, ip: string, port: number): Promise<PreflightItem> {
  const s = plan.probes.smtp;
  const item = `smtp ${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
  const t0 = performance.now();
  let sock: Socket | undefined;
  try {
    sock = await new Promise<Socket>((resolve, reject) => {
      const c: Socket =
        s.tls === 'implicit'
          ? tlsConnect({ host: ip, port, servername: plan.cutover.mail_host, rejectUnauthorized: false }, () => resolve(c))
          : tcpConnect({ host: ip, port }, () => resolve(c));
      c.setTimeout(s.connect_timeout, () => c.destroy(new Error(`connect timeout after ${ms(s.connect_timeout)}`)));
      c.once('error', reject);
    });
    sock.setTimeout(0);
    const banner = await reply(sock, s.banner_timeout);
    const connected = performance.now() - t0;
    if (!banner.startsWith('220')) return { ok: false, item, detail: `greeting is not 220: ${banner.split('\r\n')[0]?.slice(0, 200)}` };
    sock.write('QUIT\r\n');
    const bye = await reply(sock, s.banner_timeout).catch((e: unknown) => `(${reason(e)})`);
    return { ok: true, item, detail: `banner "${banner.split('\r\n')[0]?.slice(0, 120)}" after ${ms(connected)}; QUIT: ${bye.split('\r\n')[0]?.slice(0, 60)}` };
  } catch (e) {
    return { ok: false, item, detail: reason(e) };
  } finally {
    sock?.destroy();
  }
}

async function sink(plan: PlanConfig): Promise<PreflightItem | undefined> {
  const rt = plan.probes.roundtrip;
  if (!rt) return undefined;
  if (rt.sink.url) {
    const item = `sink ${rt.sink.url}`;
    try {
      const r = await request(rt.sink.url, { method: 'GET', headersTimeout: plan.probes.timeout, bodyTimeout: plan.probes.timeout });
      await r.body.dump();
      return r.statusCode < 500 ? { ok: true, item, detail: `answers (HTTP ${r.statusCode})` } : { ok: false, item, detail: `HTTP ${r.statusCode}` };
    } catch (e) {
      return { ok: false, item, detail: `unreachable: ${reason(e)}` };
    }
  }
  const item = `sink listen ${rt.sink.listen}`;
  const { host, port } = parseListen(rt.sink.listen);
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e) => resolve({ ok: false, item, detail: `cannot bind: ${reason(e)}` }));
    srv.listen({ host, port }, () => srv.close(() => resolve({ ok: true, item, detail: 'bindable' })));
  });
}

/** Runs every item; the lines in a stable order (secrets, files, collectors, DNS, SMTP, sink). */
export async function runPreflight(o: PreflightOptions): Promise<PreflightItem[]> {
  const { plan } = o;
  const env = o.env ?? process.env;
  const out: PreflightItem[] = [...secrets(plan, env)];
  for (const f of planFiles(plan)) {
    const r = checkPlanFile(f);
    out.push({ ok: r.problem === null, item: `file ${f.field}`, detail: r.problem ?? `${f.path}: ${r.what}` });
  }
  const token = env[plan.probes.push.token_env] ?? '';
  const s = dnsCheckSettings(plan);
  const host = plan.cutover.mail_host;
  const dns = plan.probes.resolvers.map(async (spec): Promise<PreflightItem> => {
    const item = `resolver ${spec.name ? `${spec.name} (${spec.label})` : spec.label}`;
    try {
      const r = await createClient(spec, { timeoutMs: s.queryTimeoutMs, ednsPayload: s.ednsPayload }).query(host, 'A');
      return {
        ok: r.rcode === 0,
        item,
        detail: `${r.rcodeName} for ${host} A: ${r.answers.map((a) => a.value).join(', ') || 'no address'} in ${ms(r.durationMs)}`,
      };
    } catch (e) {
      return { ok: false, item, detail: `${host} A: ${reason(e)}` };
    }
  });
  const auth = (async (): Promise<PreflightItem[]> => {
    let servers: Awaited<ReturnType<typeof authoritativeServers>>;
    try {
      servers = await authoritativeServers(s.authoritative, s);
    } catch (e) {
      return [{ ok: false, item: 'authoritative servers', detail: reason(e) }];
    }
    const asked = servers.map(async (sv): Promise<PreflightItem> => {
      if (!('server' in sv)) return { ok: false, item: sv.label, detail: `cannot be asked: ${sv.failure.message}` };
      try {
        const r = await serverClient(sv.server, sv.label, { timeoutMs: s.queryTimeoutMs }).query(host, 'A', { recursive: false });
        const ok = r.rcode === 0 && r.aa;
        return {
          ok,
          item: sv.label,
          detail: `${r.rcodeName}${r.aa ? ' authoritative' : ' NOT authoritative (aa=0)'} for ${host} A: ${r.answers.map((a) => a.value).join(', ') || 'no address'} in ${ms(r.durationMs)}`,
        };
      } catch (e) {
        return { ok: false, item: sv.label, detail: `${host} A: ${reason(e)}` };
      }
    });
    return Promise.all(asked);
  })();
  const collectors = plan.probes.push.collectors.map((url) =>
    token ? collector(url, o, token) : Promise.resolve({ ok: false, item: `collector ${url}`, detail: `not tried: no token in ${plan.probes.push.token_env}` }),
  );
  const smtps = plan.cutover.servers.map((sv) => smtp(plan, sv.ip, sv.port ?? plan.probes.smtp.port));
  out.push(...(await Promise.all(collectors)), ...(await Promise.all(dns)), ...(await auth), ...(await Promise.all(smtps)));
  const sk = await sink(plan);
  if (sk) out.push(sk);
  return out;
}

/** `ok   item: detail` / `FAIL item: detail`. */
export function formatItem(i: PreflightItem): string {
  return `${i.ok ? 'ok  ' : 'FAIL'} ${i.item}: ${i.detail}`;
}
