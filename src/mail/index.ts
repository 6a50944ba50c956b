import type { Logger } from '../logger.ts';

/** One mail, always with a plain-text and an HTML body. */
export type MailMessage = { to: string; subject: string; text: string; html: string };

export type Mailer = { send(message: MailMessage): Promise<void> };

export type StoredMail = MailMessage & { id: string; from: string; sentAt: Date };

/** Dev-only in-memory outbox, shown at /dev/outbox when no SMTP_URL is set. */
export type DevOutbox = { add(mail: StoredMail): void; list(): StoredMail[] };

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

/** STUB (being implemented): nodemailer over SMTP_URL, or the dev outbox. */
export function createMailer(options: { smtpUrl?: string; from: string; logger: Logger; outbox?: DevOutbox }): Mailer {
  return {
    async send(message) {
      options.outbox?.add({ ...message, id: String(Date.now()), from: options.from, sentAt: new Date() });
    },
  };
}
