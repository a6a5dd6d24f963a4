/**
 * The inbox check's contract: one signed test message sent via a server IP to a seed mailbox at a
 * real receiver (Gmail, Microsoft 365, Yahoo, the operator's own), found again over IMAP — where
 * it landed (inbox, spam, another folder, or nowhere by the deadline), how long it took, what the
 * receiver's own Authentication-Results said and which IP the receiver saw deliver it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, obj } from '../settings.js';
import { defineCheck, failedFields, Label, LABEL_MAX, resultSchema, Seconds, Side, type FailedRun } from './common.js';
import { Verdict } from './roundtrip.js';

/** Where a message ended up: a folder class, or `lost` (not found by the deadline). */
export const PLACEMENTS = ['inbox', 'spam', 'other', 'lost'] as const;
export const Placement = Type.Union(PLACEMENTS.map((p) => Type.Literal(p)));
export type Placement = Static<typeof Placement>;

/** The receiver verdicts read from its Authentication-Results (`none`: the receiver gave none). */
export const INBOX_AUTH_METHODS = ['spf', 'dkim', 'dmarc', 'arc'] as const;

export const InboxResult = resultSchema(
  'inbox',
  {
    receiver: Label({ description: 'The seed mailbox’s receiver name (gmail, m365, yahoo, own…).' }),
    viaIp: Label(),
    side: Side,
    messageId: Type.String({ maxLength: LABEL_MAX }),
    placement: Type.Optional(Placement),
    folder: Type.Optional(Type.String({ maxLength: LABEL_MAX, description: 'The IMAP folder the message was found in.' })),
    latencySeconds: Type.Optional(Seconds('Receiver’s arrival time (INTERNALDATE) minus send time.')),
    deliveringIp: Type.Optional(Type.String({ maxLength: 64, description: 'The client IP in the receiver’s own Received header.' })),
    verdicts: Type.Optional(Type.Object({ spf: Verdict, dkim: Verdict, dmarc: Verdict, arc: Verdict }, { additionalProperties: false })),
  },
  'One signed test message sent via a server IP to a seed mailbox at a receiver and looked up there over IMAP.',
);
export type InboxResult = Static<typeof InboxResult>;

export interface InboxTarget {
  receiver: string;
  ip: string;
  side: Side;
  port: number;
}

const failedInbox = (t: { receiver: string; ip: string; side: Side }, run: FailedRun): InboxResult => ({
  type: 'inbox',
  ...failedFields(run),
  receiver: t.receiver,
  viaIp: t.ip,
  side: t.side,
  messageId: '',
});

const EnvName = (description: string) => Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description, errorMessage: 'must be an environment variable name' });

/** One seed mailbox at a receiver: where the inbox check sends its test message and looks for it over IMAP. */
export const Mailbox = Type.Object(
  {
    /** The receiver's name, the `receiver` label: gmail, m365, yahoo, own… Unique per plan. */
    receiver: Type.String({
      pattern: '^[a-z0-9][a-z0-9_.-]{0,31}$',
      errorMessage: 'must be a receiver name such as gmail, m365, yahoo or own (lower case, at most 32)',
    }),
    /** The seed mailbox's address (the recipient of the test messages). */
    address: Type.String({ format: 'email-ish', errorMessage: 'must be an address such as seed@gmail.com' }),
    imap: Type.Object(
      {
        /** IMAP server, such as imap.gmail.com, outlook.office365.com, imap.mail.yahoo.com. */
        host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:_-]+$', errorMessage: 'must be a host name or IP such as imap.gmail.com' }),
        /** Default 993 (implicit TLS); 143 with tls: starttls or none. */
        port: Type.Integer({ minimum: 1, maximum: 65535, default: 993, errorMessage: 'must be a port from 1 to 65535' }),
        /** `implicit` TLS on connect (993), `starttls`, or `none` (loopback tests only). Default implicit. */
        tls: Type.Union([Type.Literal('implicit'), Type.Literal('starttls'), Type.Literal('none')], {
          default: 'implicit',
          errorMessage: 'must be one of implicit, starttls, none',
        }),
        /** The login name. */
        user: Type.String({ minLength: 1, maxLength: 256 }),
        /** Environment variable holding the password (an app password at Gmail, Yahoo). */
        password_env: Type.Optional(EnvName('Environment variable holding the IMAP password.')),
        /** Environment variable holding an OAuth2 access token (XOAUTH2, Microsoft 365 and Gmail). */
        token_env: Type.Optional(EnvName('Environment variable holding an OAuth2 access token.')),
        /** PEM file of extra CAs the IMAP certificate may chain to. Default: the system CAs only. */
        ca_file: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false },
    ),
    /** Folder names, where the receiver does not flag them with special-use attributes. */
    folders: obj(
      {
        /** The inbox. Default INBOX. */
        inbox: Type.String({ minLength: 1, maxLength: 256, default: 'INBOX' }),
        /** Folders counting as spam besides any flagged \Junk (such as Bulk, Junk E-mail). Default none. */
        spam: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { default: [], maxItems: 8 }),
      },
      'Folder names of the seed mailbox.',
    ),
  },
  { additionalProperties: false },
);

/** Its settings: `probes.inbox`; without that section the check does not run. */
export const InboxSettings = Type.Object(
  {
    /** Seed mailboxes at the receivers to watch. */
    mailboxes: Type.Array(Mailbox, { minItems: 1, maxItems: 16 }),
    /** A message not found by then counts as lost. Default 10m. */
    deadline: Duration('10m', 'A message not found in the mailbox by then counts as lost.'),
    /** One message per mailbox and server IP at most this often (real receivers judge volume). Default 1h. */
    every: Duration('1h', 'Send at most one message per mailbox and server IP this often.', '7d'),
    /** How often the mailbox is searched while waiting. Default 15s. */
    poll: Duration('15s', 'How often the mailbox is searched while waiting.', '5m'),
    /** Envelope sender and From (its domain is what SPF/DMARC judge). Default: probes.roundtrip.from, else probes.smtp.from. */
    from: Type.Optional(Type.String({ format: 'email-ish', errorMessage: 'must be an address such as mailprobe@company.com' })),
    /** Environment variable holding the HMAC secret that signs test messages. Default: probes.roundtrip.secret_env, else MAILPROBE_RT_SECRET. */
    secret_env: Type.Optional(EnvName('Environment variable holding the HMAC secret.')),
  },
  { additionalProperties: false },
);

export const inboxDef = defineCheck({
  type: 'inbox',
  result: InboxResult,
  settings: { probes: { inbox: Type.Optional(InboxSettings) } },
  failed: (target: InboxTarget, run) => [failedInbox(target, run)],
  failedLike: (r, run) => failedInbox({ receiver: r.receiver, ip: r.viaIp, side: r.side }, run),
  samples(r, ops) {
    const o = ops.at('receiver', r.receiver).at('via_ip', r.viaIp).at('side', r.side);
    const found = r.placement !== undefined && r.placement !== 'lost';
    if (found && r.latencySeconds !== undefined) o.observe('inboxDuration', r.latencySeconds);
    // lost: sent, not found by the deadline; failed: not sent, or the mailbox could not be read.
    o.at('result', r.placement ?? 'failed').inc('inboxes');
    if (r.verdicts) for (const [method, verdict] of Object.entries(r.verdicts)) o.at('method', method).oneOf('inboxAuth', verdict);
  },
});
