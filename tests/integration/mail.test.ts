import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevOutbox, createMailer, MailError, type MailMessage } from '../../src/mail/index.ts';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.ts';

/** A pino logger writing JSON lines into memory. */
function memoryLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug', base: undefined }, { write: (line: string) => void lines.push(line) });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const secretLink = 'https://sesame.test/oidc/auth?one_time_token=SECRET-TOKEN-123&login_hint=ada%40example.com';

function message(overrides: Partial<MailMessage> = {}): MailMessage {
  return {
    to: 'ada@example.com',
    subject: 'Your sign-in link',
    text: `Sign in: ${secretLink}\nCode: 482913`,
    html: `<p>Sign in: <a href="${secretLink}">here</a></p><p>Code: 482913</p>`,
    ...overrides,
  };
}

describe('mail over SMTP', () => {
  let capture: SmtpCapture;
  beforeAll(async () => {
    capture = await startSmtpCapture();
  });
  afterAll(async () => {
    await capture.close();
  });

  it('delivers a multipart mail with the configured sender, recipient, subject and both bodies', async () => {
    const { logger } = memoryLogger();
    const mailer = createMailer({ smtpUrl: capture.url, from: 'Sesame <no-reply@sesame.test>', logger });
    await mailer.send(message({ to: 'grace@example.com', subject: 'Welcome, Grace' }));

    const mail = await capture.waitFor((received) => received.to === 'grace@example.com');
    expect(mail.from).toBe('no-reply@sesame.test');
    expect(mail.parsed.from?.value[0]?.name).toBe('Sesame');
    expect(mail.envelope).toEqual({ from: 'no-reply@sesame.test', to: ['grace@example.com'] });
    expect(mail.subject).toBe('Welcome, Grace');
    expect(mail.text).toContain(secretLink);
    expect(mail.html).toContain('<a href="https://sesame.test/oidc/auth?one_time_token=SECRET-TOKEN-123');
    expect(mail.parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/alternative' });
  });

  it('authenticates with the credentials in the SMTP URL', async () => {
    const { logger } = memoryLogger();
    const url = capture.url.replace('smtp://', 'smtp://mailer-user:mailer-password@');
    const mailer = createMailer({ smtpUrl: url, from: 'no-reply@sesame.test', logger });
    await mailer.send(message({ to: 'linus@example.com' }));

    const mail = await capture.waitFor((received) => received.to === 'linus@example.com');
    expect(mail.user).toBe('mailer-user');
  });

  it('fails with a MailError that reveals neither the body, the recipient nor the SMTP credentials', async () => {
    const { logger, lines, records } = memoryLogger();
    const mailer = createMailer({
      smtpUrl: `smtp://mailer-user:hunter2-password@127.0.0.1:${await closedPort()}`,
      from: 'no-reply@sesame.test',
      logger,
    });

    const error = await mailer.send(message()).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(MailError);
    const { message: text, code } = error as MailError;
    expect(text).toMatch(/^Mail could not be sent: the SMTP server could not be reached/);
    expect(['ESOCKET', 'ECONNECTION']).toContain(code);
    for (const secret of ['SECRET-TOKEN-123', '482913', 'Sign in', 'ada@', 'hunter2', 'mailer-user']) {
      expect(text).not.toContain(secret);
      expect(lines.join('')).not.toContain(secret);
    }
    expect(records()).toContainEqual(
      expect.objectContaining({ level: 50, msg: 'mail could not be sent', recipientDomain: 'example.com' }),
    );
  });
});

describe('mail without SMTP_URL', () => {
  it('is kept in the dev outbox and logged by subject and recipient, never by body', async () => {
    const { logger, lines, records } = memoryLogger();
    const outbox = createDevOutbox();
    const mailer = createMailer({ from: 'Sesame <no-reply@localhost>', logger, outbox });
    await mailer.send(message());

    const [kept, ...others] = outbox.list();
    expect(others).toEqual([]);
    expect(kept).toMatchObject({ ...message(), from: 'Sesame <no-reply@localhost>' });
    expect(kept!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(kept!.sentAt).toBeInstanceOf(Date);

    expect(records()).toEqual([
      expect.objectContaining({ level: 30, msg: 'mail kept in the dev outbox', to: 'ada@example.com', subject: 'Your sign-in link' }),
    ]);
    for (const secret of ['SECRET-TOKEN-123', '482913', 'Sign in:']) expect(lines.join('')).not.toContain(secret);
  });

  it('keeps the newest mail first', async () => {
    const outbox = createDevOutbox();
    const mailer = createMailer({ from: 'no-reply@localhost', logger: memoryLogger().logger, outbox });
    await mailer.send(message({ subject: 'first' }));
    await mailer.send(message({ subject: 'second' }));
    expect(outbox.list().map((mail) => mail.subject)).toEqual(['second', 'first']);
  });

  it('fails loudly, never silently, when there is no outbox either (production without SMTP_URL)', async () => {
    const { logger, lines, records } = memoryLogger();
    const sending = createMailer({ from: 'no-reply@localhost', logger }).send(message());
    await expect(sending).rejects.toBeInstanceOf(MailError);
    await expect(sending).rejects.toMatchObject({ code: 'ENOCONFIG' });
    expect(records()).toEqual([
      expect.objectContaining({ level: 50, msg: 'mail not sent: SMTP_URL is not set', recipientDomain: 'example.com' }),
    ]);
    expect(lines.join('')).not.toContain('SECRET-TOKEN-123');
  });
});
