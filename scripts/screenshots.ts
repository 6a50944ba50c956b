/**
 * Refreshes docs/screenshots/: starts a throwaway Sesame (embedded in-memory
 * database, mail caught by a local SMTP capture), walks the hosted sign-in
 * pages in the system Chromium and saves a PNG of each.
 *
 *   npm run screenshots
 *
 * Needs Debian's chromium (or CHROMIUM_PATH); browsers are never downloaded.
 * Look at the pictures afterwards: that is what they are for.
 */
import { timeStep, totpCode } from '../src/mfa/index.ts';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { loadConfig } from '../src/config.ts';
import { createDatabase } from '../src/db/index.ts';
import { translator } from '../src/i18n/index.ts';
import { createSesame } from '../src/main.ts';
import { launchChromium } from '../tests/helpers/chromium.ts';
import { readSignInMail, startSmtpCapture, type CapturedMail, type SmtpCapture } from '../tests/helpers/smtp.ts';
import { startTestClient } from '../tests/helpers/test-client.ts';

const outDir = new URL('../docs/screenshots/', import.meta.url).pathname;
const en = translator('en');
const APP_NAME = 'Acme Notes';
const PARTNER_NAME = 'Calendar Sync';

async function freePort(): Promise<number> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Without a Japanese font, Chromium draws the Japanese page as empty boxes. */
function warnWithoutJapaneseFont(): void {
  let fonts = '';
  try {
    fonts = execFileSync('fc-list', [':lang=ja'], { encoding: 'utf8' });
  } catch {
    // No fontconfig: nothing to check with.
  }
  if (!fonts.trim()) {
    console.warn('warning: no Japanese font found (fc-list :lang=ja): start-ja.png will show boxes. apt-get install fonts-ipafont-gothic (or fonts-noto-cjk).');
  }
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  warnWithoutJapaneseFont();
  const smtp: SmtpCapture = await startSmtpCapture();
  const callback = await startTestClient();
  const port = await freePort();
  const baseUrl = `http://localhost:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'sesame-screenshots-'));
  const m2m = { id: 'screenshots-m2m', secret: randomBytes(32).toString('base64url') };
  const config = loadConfig({
    PORT: String(port),
    BASE_URL: baseUrl,
    DATA_DIR: dataDir,
    SESAME_SECRET: randomBytes(32).toString('base64url'),
    SESAME_BOOTSTRAP_CLIENT_ID: m2m.id,
    SESAME_BOOTSTRAP_CLIENT_SECRET: m2m.secret,
    SMTP_URL: smtp.url,
    LOG_LEVEL: 'silent',
  });
  // In memory: every run starts from an empty database.
  const db = createDatabase({ kind: 'embedded' });
  let offsetMs = 0;
  const sesame = await createSesame({ config, db, clock: () => new Date(Date.now() + offsetMs) });
  await sesame.listen(port, '127.0.0.1');
  let browser: Browser | undefined;
  const written: string[] = [];

  try {
    browser = await launchChromium();

    // --- Management API: a token, two applications, a few users --------------------------------
    const tokenResponse = await fetch(`${config.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${m2m.id}:${m2m.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${baseUrl}/api`, scope: 'all' }),
    });
    const { access_token: adminToken } = (await tokenResponse.json()) as { access_token: string };
    const management = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${baseUrl}/api${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    };
    const settings = (patch: Record<string, unknown>) => management('PUT', '/sign-in-exp', patch);
    const defaults = {
      methods: { magicLink: true, emailCode: true, password: false },
      registration: false,
      passwordlessSignUp: false,
      autoContinueOneTimeToken: false,
      mfa: { policy: 'off', totpOnlySignIn: false, afterMagicLink: 'none' },
    };

    const app = await management('POST', '/applications', {
      name: APP_NAME,
      type: 'Traditional',
      oidcClientMetadata: { redirectUris: [callback.redirectUri] },
    });
    const partner = await management('POST', '/applications', {
      name: PARTNER_NAME,
      type: 'Traditional',
      isThirdParty: true,
      oidcClientMetadata: { redirectUris: [callback.redirectUri] },
    });
    const ada = 'ada.lovelace@example.com';
    const grace = 'grace.hopper@example.com';
    await management('POST', '/users', { primaryEmail: ada, password: 'Analytical-Engine-1843' });
    await management('POST', '/users', { primaryEmail: grace });
    // A long address: does the narrow "check your inbox" page wrap it?
    const longAddress = 'someone.with.a.rather.long.address@subdomain.example.com';
    await management('POST', '/users', { primaryEmail: longAddress });
    const mint = (email: string) => management('POST', '/one-time-tokens', { email }) as Promise<{ id: string; token: string }>;

    const authorize = (params: Record<string, string> = {}, clientId: string = app.id) => {
      const url = new URL(`${config.issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: callback.redirectUri,
        response_type: 'code',
        scope: 'openid email profile',
        state: randomBytes(8).toString('hex'),
        code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
        code_challenge_method: 'S256',
        ...params,
      }).toString();
      return url.toString();
    };

    const newPage = async (options: BrowserContextOptions = {}) => {
      const context = await browser!.newContext({ viewport: { width: 800, height: 760 }, locale: 'en-US', colorScheme: 'light', ...options });
      context.setDefaultTimeout(15_000);
      return context.newPage();
    };
    const start = async (page: Page, url: string) => {
      await page.goto(url);
      await page.waitForURL((current) => current.origin === baseUrl && current.pathname.startsWith('/interaction/'));
    };
    const shot = async (page: Page, name: string) => {
      await page.waitForLoadState('networkidle');
      // Screenshots show the page as a person first sees it: no focus ring from autofocus.
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      const path = join(outDir, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      const width = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
      written.push(`${name}.png${width.scroll > width.client ? `  (horizontal overflow: ${width.scroll}px > ${width.client}px)` : ''}`);
    };
    const mailTo = (email: string, since: number) => smtp.waitFor((mail) => smtp.messages.indexOf(mail) >= since && mail.to === email);
    const requestLink = async (page: Page, email: string) => {
      const since = smtp.messages.length;
      await page.getByLabel(en('common.email')).fill(email);
      await page.getByRole('button', { name: en('signIn.sendLink'), exact: true }).click();
      await page.waitForURL((current) => current.pathname.endsWith('/code'));
      const mail = await mailTo(email, since);
      const { link, code } = readSignInMail(mail);
      if (!code) throw new Error(`no code in the mail:\n${mail.text}`);
      return { link, code, mail };
    };
    /** A mail's HTML part as a mail client would show it (no network). */
    const mailShot = async (mail: CapturedMail, name: string) => {
      const page = await newPage({ viewport: { width: 700, height: 600 } });
      await page.route('**/*', (route) => route.abort());
      await page.setContent(mail.html);
      await shot(page, name);
    };

    await settings(defaults);

    // --- Start page, check your inbox, the link in the same and in another browser --------------
    {
      const page = await newPage();
      await start(page, authorize({ login_hint: ada }));
      await page.getByLabel(en('common.email')).fill('');
      await shot(page, 'start');
      const mail = await requestLink(page, ada);
      await shot(page, 'check-your-inbox');
      await mailShot(mail.mail, 'mail-magic-link');
      await page.goto(mail.link!);
      await shot(page, 'link-continue-as');
      const other = await newPage();
      await other.goto(mail.link!);
      await shot(other, 'link-other-browser');

      // A wrong code on the same page.
      await page.goBack();
      await page.getByLabel(en('common.code')).fill(String((Number(mail.code) + 1) % 1_000_000).padStart(6, '0'));
      await page.getByRole('button', { name: en('sent.verify'), exact: true }).click();
      await page.locator('[aria-invalid=true]').waitFor();
      await shot(page, 'code-error');

      // The right code signs in; the link, opened again afterwards, is used.
      await page.getByLabel(en('common.code')).fill(mail.code);
      await page.getByRole('button', { name: en('sent.verify'), exact: true }).click();
      await page.waitForURL((current) => current.origin === callback.origin);
      await page.goto(mail.link!);
      await shot(page, 'used-link');

      // Signed in: the logout confirmation.
      await page.goto(`${config.issuer}/session/end`);
      await page.getByRole('heading').waitFor();
      await shot(page, 'logout');
    }

    // --- Password and registration -----------------------------------------------------------
    await settings({ methods: { password: true }, registration: true });
    {
      const page = await newPage();
      await start(page, authorize());
      await shot(page, 'start-all-methods');
      await page.getByLabel(en('common.email')).fill(ada);
      await page.getByRole('button', { name: en('signIn.usePassword'), exact: true }).click();
      await page.getByLabel(en('common.password')).fill('not-my-password');
      await page.getByRole('button', { name: en('password.submit'), exact: true }).click();
      await page.getByRole('alert').waitFor();
      await shot(page, 'password');

      const register = await newPage();
      await start(register, authorize({ first_screen: 'register' }));
      await register.getByLabel(en('common.email')).fill('new.person@example.com');
      await register.getByLabel(en('common.password')).fill('password123');
      await register.getByRole('button', { name: en('register.submit'), exact: true }).click();
      await register.locator('#password-error').waitFor();
      await shot(register, 'register-error');
    }
    await settings(defaults);

    // --- One-time token, account switch, consent --------------------------------------------
    {
      const page = await newPage();
      const forAda = await mint(ada);
      await start(page, authorize({ one_time_token: forAda.token, login_hint: ada }));
      await shot(page, 'one-time-token-continue-as');
      await page.getByRole('button', { name: en('common.continue'), exact: true }).click();
      await page.waitForURL((current) => current.origin === callback.origin);

      const forGrace = await mint(grace);
      await start(page, authorize({ one_time_token: forGrace.token, login_hint: grace }));
      await page.getByRole('heading', { name: en('token.switchTitle') }).waitFor();
      await shot(page, 'account-switch');

      const consent = await newPage();
      const forConsent = await mint(ada);
      await start(consent, authorize({ one_time_token: forConsent.token, login_hint: ada }, partner.id));
      await consent.getByRole('button', { name: en('common.continue'), exact: true }).click();
      await consent.getByRole('heading', { name: en('consent.title', { app: PARTNER_NAME }) }).waitFor();
      await shot(consent, 'consent');
    }

    // --- Second factors: set-up inside the sign-in, backup codes, the verify step ------------
    await settings({ mfa: { policy: 'required' } });
    {
      const lin = 'lin.chen@example.com';
      const page = await newPage();
      await start(page, authorize({ one_time_token: (await mint(lin)).token, login_hint: lin }));
      await page.getByRole('button', { name: en('common.continue'), exact: true }).click();
      await page.getByRole('heading', { name: en('mfa.enrollTitle') }).waitFor();
      await shot(page, 'mfa-enroll-intro');
      await page.getByRole('button', { name: en('mfa.enrollStart'), exact: true }).click();
      await page.locator('[data-secret]').waitFor();
      await shot(page, 'mfa-enroll-qr');
      const secret = ((await page.locator('[data-secret]').textContent()) ?? '').replace(/\s/g, '');
      await page.getByLabel(en('mfa.code')).fill(totpCode(secret, timeStep(new Date())));
      await page.getByRole('button', { name: en('mfa.confirm'), exact: true }).click();
      await page.getByRole('heading', { name: en('mfa.backupTitle') }).waitFor();
      await shot(page, 'mfa-backup-codes');
      await page.getByRole('button', { name: en('mfa.backupSaved'), exact: true }).click();
      await page.waitForURL((current) => current.origin === callback.origin);

      await settings({ mfa: { policy: 'off' } });
      const again = await newPage();
      await start(again, authorize({ one_time_token: (await mint(lin)).token, login_hint: lin }));
      await again.getByRole('button', { name: en('common.continue'), exact: true }).click();
      await again.getByRole('heading', { name: en('mfa.title') }).waitFor();
      await shot(again, 'mfa-verify');
    }
    await settings(defaults);

    // --- An expired link --------------------------------------------------------------------
    {
      const page = await newPage();
      await start(page, authorize());
      const mail = await requestLink(page, grace);
      offsetMs += 11 * 60 * 1000;
      await page.goto(mail.link!);
      await page.getByRole('button', { name: en('error.getNewLink') }).waitFor();
      await shot(page, 'expired-link');
      offsetMs = 0;
    }

    // --- Languages, narrow screens, dark mode -----------------------------------------------
    {
      const german = await newPage();
      await start(german, authorize({ ui_locales: 'de' }));
      await shot(german, 'start-de');
      const since = smtp.messages.length;
      await german.getByLabel(translator('de')('common.email')).fill(ada);
      await german.getByRole('button', { name: translator('de')('signIn.sendCode'), exact: true }).click();
      await german.waitForURL((current) => current.pathname.endsWith('/code'));
      await mailShot(await mailTo(ada, since), 'mail-code-de');
      const japanese = await newPage({ locale: 'ja-JP' });
      await start(japanese, authorize());
      await shot(japanese, 'start-ja');

      const narrow = await newPage({ viewport: { width: 320, height: 640 } });
      await start(narrow, authorize());
      await shot(narrow, 'start-320');
      await requestLink(narrow, longAddress);
      await shot(narrow, 'check-your-inbox-320');

      const dark = await newPage({ colorScheme: 'dark' });
      await start(dark, authorize());
      await dark.getByLabel(en('common.email')).fill('not an email');
      await dark.getByRole('button', { name: en('signIn.sendLink'), exact: true }).click();
      await dark.locator('[aria-invalid=true]').waitFor();
      await shot(dark, 'start-dark-error');
    }

    console.log(`Wrote ${written.length} screenshots to ${outDir}:\n  ${written.join('\n  ')}`);
  } finally {
    await browser?.close();
    await sesame.close({ drainMs: 1000 });
    await db.destroy();
    await callback.close();
    await smtp.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
