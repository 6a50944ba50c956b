import { translator, type Language } from '../i18n/index.ts';
import { layoutMail, type RenderedMail } from './templates.ts';

export type SignInMailInput = {
  purpose: 'magic_link' | 'email_code' | 'register';
  language: Language;
  appName: string;
  productName: string;
  accent: string;
  email: string;
  code: string;
  reference: string;
  expiresInSeconds: number;
  /** Magic links only. */
  link?: string;
  /** Registration for an address that already has an account: the code signs in, the password is not changed. */
  accountExists?: boolean;
};

/** "123 456": easier to read and type; pages accept it with or without the space. */
export const formatCode = (code: string) => `${code.slice(0, 3)} ${code.slice(3)}`;

const oneLine = (value: string) => value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();

/** The self-serve sign-in mails: a magic link with its code, a code alone, a registration code. */
export function renderSignInMail(input: SignInMailInput): RenderedMail {
  const t = translator(input.language);
  const app = oneLine(input.appName);
  const vars = { app, email: input.email, code: input.code, reference: input.reference, minutes: Math.round(input.expiresInSeconds / 60) };
  const footer = [t('mail.footer.expires', vars), t('mail.footer.ignore', vars)];
  const common = {
    footer,
    productName: oneLine(input.productName),
    lang: input.language,
    copyLinkLabel: t('mail.copyLink'),
    accent: input.accent,
  };
  const code = formatCode(input.code);
  if (input.purpose === 'magic_link') {
    if (!input.link) throw new TypeError('a magic-link mail needs its link');
    return {
      subject: oneLine(t('mail.link.subject', vars)),
      ...layoutMail({
        ...common,
        title: t('mail.link.title', vars),
        paragraphs: [t('mail.link.intro', vars)],
        action: { label: t('mail.link.action', vars), url: input.link },
        code: { intro: t('mail.link.codeIntro', vars), value: code },
      }),
    };
  }
  if (input.purpose === 'email_code') {
    return {
      subject: oneLine(t('mail.code.subject', vars)),
      ...layoutMail({ ...common, title: t('mail.code.title', vars), paragraphs: [], code: { intro: t('mail.code.intro', vars), value: code } }),
    };
  }
  return {
    subject: oneLine(t('mail.register.subject', vars)),
    ...layoutMail({
      ...common,
      title: t('mail.register.title', vars),
      paragraphs: input.accountExists ? [t('mail.register.exists', vars)] : [],
      code: { intro: t(input.accountExists ? 'mail.code.intro' : 'mail.register.intro', vars), value: code },
    }),
  };
}
