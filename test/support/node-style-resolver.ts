/**
 * A `dns.promises.resolve`-shaped function over the probe's DNS client, for tests that hand it to
 * mailauth (its `resolver` option) so mailauth and the probe read the same served records (the
 * SPF differential test). The probe itself evaluates SPF with its own client (probe/auth/).
 */
import { QTYPE, recordsOf, type DnsClient, type DnsResponse, type QType } from '../../probe/dns/client.js';
import { DnsError } from '../../probe/dns/errors.js';

/**
 * For mailauth's `resolver` option:
 * A/AAAA/PTR/NS/CNAME → string[], MX → {exchange, priority}[], TXT → string[][]; errors carry
 * node's codes (ENOTFOUND, ENODATA, ESERVFAIL, EREFUSED, ETIMEOUT).
 */
export function nodeStyleResolver(client: DnsClient, opts: { signal?: AbortSignal; timeoutMs?: number } = {}) {
  return async (name: string, rrtype = 'A'): Promise<unknown[]> => {
    const type = rrtype.toUpperCase() as QType;
    if (!(type in QTYPE)) throw Object.assign(new Error(`unsupported record type ${rrtype}`), { code: 'ENOTIMP' });
    let r: DnsResponse;
    try {
      r = await client.query(name, type, { signal: opts.signal, timeoutMs: opts.timeoutMs });
    } catch (e) {
      const code = e instanceof DnsError && e.errorClass === 'timeout' ? 'ETIMEOUT' : 'ECONNREFUSED';
      throw Object.assign(new Error(`${rrtype} ${name}: ${(e as Error).message}`), { code, hostname: name });
    }
    const fail = (code: string) => Object.assign(new Error(`query${rrtype} ${code} ${name}`), { code, hostname: name });
    if (r.rcode === 3) throw fail('ENOTFOUND');
    if (r.rcode === 2) throw fail('ESERVFAIL');
    if (r.rcode === 5) throw fail('EREFUSED');
    if (r.rcode !== 0) throw fail('EBADRESP');
    const recs = recordsOf(r, type);
    if (recs.length === 0) throw fail('ENODATA');
    if (type === 'MX') return recs.map((m) => ({ exchange: m.value, priority: m.priority ?? 0 }));
    if (type === 'TXT') return recs.map((t) => t.strings ?? [t.value]);
    return recs.map((x) => x.value);
  };
}
