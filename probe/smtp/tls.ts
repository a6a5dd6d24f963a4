/**
 * TLS helpers of the SMTP side: what the server presented and whether it verifies for the mail
 * host. The probe connects with rejectUnauthorized false so that a certificate for the wrong
 * name still lets it record the names; verification is decided here instead.
 */
import { checkServerIdentity, type DetailedPeerCertificate, type PeerCertificate, type TLSSocket } from 'node:tls';

export interface TlsInfo {
  version: string;
  certNames: string[];
  /** Unix seconds. */
  certExpiry: number;
  verified: boolean;
  /** Why it does not verify (chain or name). */
  verifyError?: string;
  /** The presented chain as DER, leaf first (completed by the trusted CAs), for DANE matching. */
  chain: Buffer[];
}

function certNames(cert: PeerCertificate): string[] {
  const names = new Set<string>();
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m?.[1]) names.add(m[1].trim());
  }
  const cn = cert.subject?.CN;
  if (typeof cn === 'string' && cn) names.add(cn);
  return [...names].slice(0, 64);
}

/** DER of the leaf and each issuer above it (a self-signed root ends the walk). */
function chainOf(cert: DetailedPeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  for (let c: DetailedPeerCertificate | undefined = cert; c?.raw && out.length < 10; c = c.issuerCertificate) {
    out.push(c.raw);
    if (c.issuerCertificate === c) break;
  }
  return out;
}

/** Reads version and certificate of a TLS socket and verifies chain + name for `servername`. */
export function tlsInfo(socket: TLSSocket, servername: string): TlsInfo {
  const cert = socket.getPeerCertificate(true);
  const version = socket.getProtocol() ?? 'unknown';
  if (!cert || Object.keys(cert).length === 0) return { version, certNames: [], certExpiry: 0, verified: false, verifyError: 'no certificate', chain: [] };
  const nameError = checkServerIdentity(servername, cert);
  const chainError = socket.authorized ? undefined : String(socket.authorizationError ?? 'unauthorized');
  const verifyError = nameError ? nameError.message : chainError;
  const expiry = Math.floor(Date.parse(cert.valid_to) / 1000);
  return {
    version,
    certNames: certNames(cert),
    certExpiry: Number.isFinite(expiry) ? expiry : 0,
    verified: !nameError && socket.authorized,
    ...(verifyError ? { verifyError: verifyError.slice(0, 300) } : {}),
    chain: chainOf(cert),
  };
}
