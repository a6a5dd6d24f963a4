/**
 * DANE (RFC 6698/7671) matching of the certificate a server IP presented against the TLSA
 * records published for the mail host: whether a DANE-validating sender would accept this
 * server. Usages 3 (DANE-EE) and 1 (PKIX-EE, counted only if the chain verifies) match the leaf;
 * 2 (DANE-TA) and 0 (PKIX-TA, only if the chain verifies) match a certificate above the leaf in
 * the chain the probe saw (what the server sent, completed by the trusted CAs). Selector 0 is the
 * whole certificate, 1 its SubjectPublicKeyInfo; matching type 0 exact, 1 SHA-256, 2 SHA-512.
 */
// Built-ins not as ESM imports, whose namespaces load modules a probe never uses (docs/architecture.md).
const { createHash, X509Certificate } = process.getBuiltinModule('node:crypto');

export interface TlsaRecord {
  usage: number;
  selector: number;
  mtype: number;
  data: Buffer;
}

/** A TLSA RDATA in hex (as the DNS client gives it) → record, or undefined if too short. */
export function parseTlsa(hex: string): TlsaRecord | undefined {
  const raw = Buffer.from(hex, 'hex');
  if (raw.length < 4 || hex.length !== raw.length * 2) return undefined;
  return { usage: raw.readUInt8(0), selector: raw.readUInt8(1), mtype: raw.readUInt8(2), data: raw.subarray(3) };
}

/** `3 1 1 <hex>` → record (for plans, tests and the lab zone). */
export function tlsaFromText(s: string): TlsaRecord | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+([0-9a-fA-F]+)\s*$/.exec(s);
  if (!m) return undefined;
  return { usage: Number(m[1]), selector: Number(m[2]), mtype: Number(m[3]), data: Buffer.from(m[4] ?? '', 'hex') };
}

function selected(der: Buffer, selector: number): Buffer | undefined {
  if (selector === 0) return der;
  if (selector === 1) return new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  return undefined;
}

function digest(b: Buffer, mtype: number): Buffer | undefined {
  if (mtype === 0) return b;
  if (mtype === 1) return createHash('sha256').update(b).digest();
  if (mtype === 2) return createHash('sha512').update(b).digest();
  return undefined;
}

/** Whether one record matches one certificate (DER). */
export function certMatches(rec: TlsaRecord, der: Buffer): boolean {
  const sel = selected(der, rec.selector);
  const d = sel && digest(sel, rec.mtype);
  return !!d && d.equals(rec.data);
}

/**
 * Whether any record matches the chain (DER, leaf first). `pkixValid`: the chain verifies for the
 * mail host (needed by usages 0 and 1). Records of unknown usage, selector or type never match.
 */
export function tlsaMatch(records: readonly TlsaRecord[], chain: readonly Buffer[], pkixValid: boolean): boolean {
  const [leaf, ...above] = chain;
  if (!leaf) return false;
  return records.some((r) => {
    switch (r.usage) {
      case 3:
        return certMatches(r, leaf);
      case 1:
        return pkixValid && certMatches(r, leaf);
      case 2:
        return above.some((c) => certMatches(r, c));
      case 0:
        return pkixValid && above.some((c) => certMatches(r, c));
      default:
        return false;
    }
  });
}
