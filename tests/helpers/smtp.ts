import type { AddressInfo } from 'node:net';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A mail as the SMTP capture received it. */
export type CapturedMail = {
  /** Sender address of the From header, e.g. `no-reply@example.com`. */
  from: string;
  /** Recipient addresses of the To header, comma-separated. */
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The SMTP envelope (MAIL FROM / RCPT TO). */
  envelope: { from: string; to: string[] };
  /** The user name the client authenticated with, if it did. */
  user: string | undefined;
  parsed: ParsedMail;
};

export type SmtpCapture = {
  /** `smtp://127.0.0.1:PORT`, ready for SMTP_URL. */
  url: string;
  /** Every mail received so far, oldest first. */
  messages: CapturedMail[];
  /** The first mail (already received or arriving later) matching `predicate`. */
  waitFor(predicate?: (mail: CapturedMail) => boolean, timeoutMs?: number): Promise<CapturedMail>;
  close(): Promise<void>;
};

/** A real SMTP server on a random loopback port that keeps what it receives. Accepts any credentials. */
export async function startSmtpCapture(options: { /** Answer each mail this much later (a slow mail server). */ delayMs?: number } = {}): Promise<SmtpCapture> {
  const messages: CapturedMail[] = [];
  const waiters = new Set<(mail: CapturedMail) => void>();

  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          const mail: CapturedMail = {
            from: addresses(parsed.from),
            to: addresses(parsed.to),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            envelope: {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((recipient) => recipient.address),
            },
            user: typeof session.user === 'string' ? session.user : undefined,
            parsed,
          };
          messages.push(mail);
          for (const waiter of waiters) waiter(mail);
          if (options.delayMs) setTimeout(() => callback(), options.delayMs);
          else callback();
        })
        .catch((error: Error) => callback(error));
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;

  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    waitFor(predicate = () => true, timeoutMs = 10_000) {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<CapturedMail>((resolve, reject) => {
        const waiter = (mail: CapturedMail) => {
          if (!predicate(mail)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(mail);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching mail arrived within ${timeoutMs} ms (${messages.length} received)`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function addresses(field: AddressObject | AddressObject[] | undefined): string {
  const objects = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return objects
    .flatMap((object) => object.value)
    .map((entry) => entry.address ?? '')
    .filter(Boolean)
    .join(', ');
}

/**
 * What a self-serve sign-in mail carries, read from its plain-text part: the
 * link (magic links only), the 6-digit code as printed ("123 456"), and the
 * reference label of the footer (after the "--" line).
 */
export function readSignInMail(mail: Pick<CapturedMail, 'text'>) {
  const link = /https?:\/\/\S+\/sign-in\/link\?token=[A-Za-z0-9_%-]+/.exec(mail.text)?.[0];
  const code = /^\s*(\d{3}) (\d{3})\s*$/m.exec(mail.text);
  const footer = mail.text.slice(mail.text.lastIndexOf('\n--\n'));
  const reference = /\b([A-Z2-9]{3}-[A-Z2-9]{3})\b/.exec(footer)?.[1];
  return { link, code: code ? `${code[1]}${code[2]}` : undefined, reference };
}
