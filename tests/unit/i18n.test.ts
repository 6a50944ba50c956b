import { describe, expect, it } from 'vitest';
import { de } from '../../src/i18n/de.ts';
import { en } from '../../src/i18n/en.ts';
import { negotiateLanguage, translator } from '../../src/i18n/index.ts';
import { ja } from '../../src/i18n/ja.ts';
import { renderSignInMail } from '../../src/mail/sign-in.ts';
import { rich } from '../../packages/experience/src/pages.ts';
import { assertPasswordPolicy } from '../../src/signin/password.ts';
import { AppError } from '../../src/errors.ts';

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort();

describe('message catalogs', () => {
  it.each([
    ['de', de],
    ['ja', ja],
  ])('%s has every English key, nothing else, and the same placeholders', (_name, catalog) => {
    expect(Object.keys(catalog).sort()).toEqual(Object.keys(en).sort());
    for (const key of Object.keys(en) as Array<keyof typeof en>) {
      expect(placeholders(catalog[key]), key).toEqual(placeholders(en[key]));
      expect(catalog[key].trim(), key).not.toBe('');
    }
  });

  it('fills placeholders and leaves unknown ones as written', () => {
    const t = translator('en');
    expect(t('signIn.title', { app: 'Acme' })).toBe('Sign in to Acme');
    expect(t('signIn.title')).toBe('Sign in to {app}');
    expect(translator('de')('signIn.title', { app: 'Acme' })).not.toBe('Sign in to Acme');
  });
});

describe('choosing the language', () => {
  it('prefers ui_locales, then Accept-Language by weight, then the default', () => {
    expect(negotiateLanguage({ uiLocales: 'fr de-CH', acceptLanguage: 'ja', fallback: 'en' })).toBe('de');
    expect(negotiateLanguage({ acceptLanguage: 'fr;q=1, ja;q=0.5, de;q=0.8', fallback: 'en' })).toBe('de');
    expect(negotiateLanguage({ acceptLanguage: 'ja-JP,ja;q=0.9', fallback: 'en' })).toBe('ja');
    expect(negotiateLanguage({ acceptLanguage: 'de;q=0, fr', fallback: 'ja' })).toBe('ja');
    expect(negotiateLanguage({ uiLocales: 'xx', acceptLanguage: '', fallback: 'de' })).toBe('de');
  });
});

describe('rich messages', () => {
  it('escapes the template and the values, and marks up emails, references and codes', () => {
    const t = translator('en');
    const out = rich(t, 'token.switchIntro', { current: '<a>@x.test', next: 'b@x.test' }).value;
    expect(out).toBe('You are signed in as <span class="email">&lt;a&gt;@x.test</span>. This link signs you in as <span class="email">b@x.test</span>.');
    expect(rich(t, 'common.errorCode', { code: 'TOKEN_EXPIRED' }).value).toBe('Error code: <code>TOKEN_EXPIRED</code>');
  });
});

describe('sign-in mails', () => {
  const base = { appName: 'Acme', productName: 'Sesame', accent: '#3b5bdb', email: 'ada@example.com', code: '123456', reference: 'K7Q-4FD', expiresInSeconds: 600 };

  it.each(['en', 'de', 'ja'] as const)('a magic-link mail in %s carries the link, the code and the reference, in both bodies', (language) => {
    const mail = renderSignInMail({ ...base, purpose: 'magic_link', language, link: 'https://id.example/sign-in/link?token=abc' });
    for (const body of [mail.text, mail.html]) {
      expect(body).toContain('https://id.example/sign-in/link?token=abc');
      expect(body).toContain('123 456');
      expect(body).toContain('K7Q-4FD');
    }
    expect(mail.html).toContain(`<html lang="${language}"`);
    expect(mail.subject).not.toContain('123');
  });

  it('never puts the code in the subject (mail subjects are logged)', () => {
    for (const purpose of ['email_code', 'register'] as const) {
      const mail = renderSignInMail({ ...base, purpose, language: 'en' });
      expect(mail.subject).not.toMatch(/\d{3}/);
      expect(mail.text).toContain('123 456');
      expect(mail.text).not.toContain('/sign-in/link');
    }
  });
});

describe('password policy', () => {
  const reason = (password: string, email?: string) => {
    try {
      assertPasswordPolicy(password, email);
      return undefined;
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      return (error as AppError).details?.reason;
    }
  };

  it('wants 8 characters or more, not a common password, not the email', () => {
    expect(reason('short')).toBe('too_short');
    expect(reason('Password123')).toBe('too_common');
    expect(reason('aaaaaaaaaaaa')).toBe('too_common');
    expect(reason('ada@example.com', 'ada@example.com')).toBe('same_as_email');
    expect(reason('x'.repeat(300))).toBe('too_long');
    expect(reason('correct horse battery')).toBeUndefined();
  });
});
