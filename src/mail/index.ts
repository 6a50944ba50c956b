import { randomUUID } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Logger } from '../logger.ts';

export { layoutMail, renderInvitationMail, type MailAction, type RenderedMail } from './templates.ts';

/** One mail, always with a plain-text and an HTML body. */
export type MailMessage = { to: string; subject: string; text: string; html: string };

export type Mailer = { send(message: MailMessage): Promise<void> };

export type StoredMail = MailMessage & { id: string; from: string; sentAt: Date };

/** Dev-only in-memory outbox, shown at /dev/outbox when no SMTP_URL is set. */
export type DevOutbox = { add(mail: StoredMail): void; list(): StoredMail[] };

/**
 * A mail could not be handed to the SMTP server. The message is safe to show
 * and to log: it names the kind of failure, never the SMTP URL (credentials),
 * the recipient or the body (sign-in links and codes).
 */
export class MailError extends Error {
  override name = 'MailError';
  /** nodemailer's error code, such as `ECONNECTION` or `EAUTH`, when known. */
  readonly code: string | undefined;
  /** The SMTP reply code, such as 550, when the server answered. */
  readonly responseCode: number | undefined;

  constructor(message: string, details: { code?: string; responseCode?: number } = {}) {
    super(message);
    this.code = details.code;
    this.responseCode = details.responseCode;
  }
}

export function createDevOutbox(): DevOutbox {
  const mails: StoredMail[] = [];
  return {
    add: (mail) => {
      mails.unshift(mail);
      mails.splice(100);
    },
    list: () => [...mails],
  };
}

export type MailerOptions = {
  /** `smtp://` or `smtps://` URL, credentials and nodemailer options included. Unset: dev outbox. */
  smtpUrl?: string;
  /** The From header, e.g. `Sesame <no-reply@example.com>`. */
  from: string;
  logger: Logger;
  /** Where mail goes without `smtpUrl` (development only). */
  outbox?: DevOutbox;
};

/** Sends over SMTP when `smtpUrl` is set; otherwise keeps the mail in the dev outbox. */
export function createMailer(options: MailerOptions): Mailer {
  return options.smtpUrl ? createSmtpMailer({ ...options, smtpUrl: options.smtpUrl }) : createOutboxMailer(options);
}

function createSmtpMailer({ smtpUrl, from, logger }: MailerOptions & { smtpUrl: string }): Mailer {
  // Shorter than nodemailer's defaults (2 min / 1 h): a request waiting on mail should fail, not hang.
  // Query parameters in SMTP_URL (e.g. ?connectionTimeout=30000) still take precedence.
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send(message) {
      const recipientDomain = domainOf(message.to);
      try {
        const { to, subject, text, html } = message;
        const info = await transport.sendMail({ from, to, subject, text, html });
        logger.info({ recipientDomain, messageId: info.messageId }, 'mail sent');
      } catch (error) {
        const failure = describeSmtpFailure(error);
        logger.error(
          { recipientDomain, code: failure.code, responseCode: failure.responseCode, command: failure.command },
          'mail could not be sent',
        );
        throw new MailError(failure.message, failure);
      }
    },
  };
}

function createOutboxMailer({ from, logger, outbox }: MailerOptions): Mailer {
  return {
    async send(message) {
      // Bodies hold sign-in links and codes: log who and what, never the body.
      if (outbox) {
        const { to, subject, text, html } = message;
        outbox.add({ to, subject, text, html, id: randomUUID(), from, sentAt: new Date() });
        logger.info({ to: message.to, subject: message.subject }, 'mail kept in the dev outbox');
      } else {
        // Nothing is lost silently: the caller learns that this mail did not go out.
        logger.error({ recipientDomain: domainOf(message.to), subject: message.subject }, 'mail not sent: SMTP_URL is not set');
        throw new MailError('Mail could not be sent: no mail server is configured (set SMTP_URL).', { code: 'ENOCONFIG' });
      }
    },
  };
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? 'unknown' : address.slice(at + 1).replace(/[>\s].*$/, '').toLowerCase();
}

const failureKinds: Record<string, string> = {
  ECONNECTION: 'the SMTP server could not be reached',
  ESOCKET: 'the SMTP server could not be reached',
  EDNS: 'the SMTP server could not be reached',
  ETIMEDOUT: 'the SMTP server did not answer in time',
  ETLS: 'the TLS handshake with the SMTP server failed',
  EAUTH: 'the SMTP server refused the credentials',
  ENOAUTH: 'the SMTP server refused the credentials',
  EENVELOPE: 'the SMTP server refused the sender or recipient',
  EMESSAGE: 'the SMTP server refused the message',
  EPROTOCOL: 'the SMTP server answered unexpectedly',
};

/**
 * Reduces a nodemailer error to what is safe to show: nodemailer's messages
 * can quote recipient addresses and server replies, so only codes are kept.
 */
function describeSmtpFailure(error: unknown): { message: string; code?: string; responseCode?: number; command?: string } {
  const details = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const code = typeof details.code === 'string' ? details.code : undefined;
  const responseCode = typeof details.responseCode === 'number' ? details.responseCode : undefined;
  const command = typeof details.command === 'string' ? details.command : undefined;
  const kind = (code && failureKinds[code]) ?? 'sending through the SMTP server failed';
  const reference = [code, responseCode].filter((part) => part !== undefined).join(' ');
  return {
    message: `Mail could not be sent: ${kind}${reference ? ` (${reference})` : ''}.`,
    ...(code !== undefined && { code }),
    ...(responseCode !== undefined && { responseCode }),
    ...(command !== undefined && { command }),
  };
}
