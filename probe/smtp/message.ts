/**
 * The small marked test messages the probe sends (smtp data mode and the round trip).
 */
import { hostname } from 'node:os';

export interface TestMessage {
  from: string;
  to: string;
  subject: string;
  /** Local part of the Message-ID. */
  id: string;
  /** Extra header lines, `Name: value`. */
  headers?: readonly string[];
  body: string;
  date?: Date;
}

/** RFC 5322 text with CRLF line ends. */
export function composeMessage(m: TestMessage): string {
  const domain = m.from.slice(m.from.lastIndexOf('@') + 1) || 'mailprobe.invalid';
  const lines = [
    `From: <${m.from}>`,
    `To: <${m.to}>`,
    `Subject: ${m.subject}`,
    `Date: ${(m.date ?? new Date()).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${m.id}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Auto-Submitted: auto-generated',
    'X-Mailprobe: synthetic monitoring message, please ignore',
    ...(m.headers ?? []),
    '',
    m.body,
    '',
  ];
  return lines.join('\r\n');
}

/** The EHLO name when the plan names none. */
export function defaultHelo(): string {
  const h = hostname();
  return /^[A-Za-z0-9.-]+$/.test(h) && h.includes('.') ? h : `${h.replace(/[^A-Za-z0-9-]/g, '-') || 'mailprobe'}.invalid`;
}
