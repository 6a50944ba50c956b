import { randomBytes } from 'node:crypto';
import { decodeJwt, type JWTPayload } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { translator } from '../../src/i18n/index.ts';
import { timeStep, totpCode } from '../../src/mfa/index.ts';
import { authorizationRequest, browserProfiles, clickToCallback as clickToCallbackOf, exchangeCode, failureOf, openAuthorization, type Flow } from '../helpers/browser-flow.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { startTestClient, type TestClient } from '../helpers/test-client.ts';
import { databaseKind, openOwnDatabase, uniqueEmail } from '../helpers/db.ts';
import { api, authenticatorClock, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { readSignInMail, startSmtpCapture, type SmtpCapture } from '../helpers/smtp.ts';

/**
 * The second factors (docs/mfa.md) in a real Chromium, from an app's
 * authorization request (code + PKCE) to its callback, the code exchanged and
 * the ID token's `amr`/`acr` checked: the five seed flows, enrolment with the
 * QR code's key, the optional policy, step-up, a wrong then a right code,
 * backup codes and the lockout. Mail goes to a real SMTP server. The settings
 * are global to the instance (a database of its own on PostgreSQL): each test
 * sets what it needs on top of the defaults reset before it.
 */

const en = translator('en');

describe(`second factors in Chromium (${databaseKind})`, () => {
  let t: TestSesame;
  let own: Awaited<ReturnType<typeof openOwnDatabase>>;
  let smtp: SmtpCapture;
  let browser: Browser;
  let client: TestClient;
  let app: { id: string; secret: string };
  let adminToken: string;
  const { newPage, closeAll } = browserProfiles(() => browser, { locale: 'en-US' });

  /** Sesame's clock, moved forward so each authenticator code is in a fresh time step. */
  const { now, advance, codeFor } = authenticatorClock(() => t);
  /** A 6-digit code the authenticator does not show in the accepted window (±1 step). */
  const wrongCodeFor = (secret: string) => {
    const step = timeStep(now());
    const valid = new Set([-2, -1, 0, 1, 2].map((delta) => totpCode(secret, step + delta)));
    for (let candidate = 123456; ; candidate = (candidate + 111_111) % 1_000_000) {
      const code = String(candidate).padStart(6, '0');
      if (!valid.has(code)) return code;
    }
  };

  beforeAll(async () => {
    browser = await launchChromium();
    smtp = await startSmtpCapture();
    own = await openOwnDatabase();
    t = await startTestSesame({ SMTP_URL: smtp.url }, { db: own.db });
    client = await startTestClient();
    adminToken = await managementToken(t);
    const created = await createTestApplication(t, adminToken, client.redirectUri);
    if (!created.secret) throw new Error('a Traditional application should come with a secret');
    app = { id: created.id, secret: created.secret };
  });
  beforeEach(async () => {
    // A fresh install's sign-in settings, MFA off; each test turns on what it needs.
    await setSettings({
      methods: { magicLink: true, emailCode: true, password: false },
      registration: false,
      passwordlessSignUp: false,
      autoContinueOneTimeToken: false,
      defaultLanguage: 'en',
      mfa: { policy: 'off', totpOnlySignIn: false, afterMagicLink: 'none' },
    });
  });
  afterEach(async () => {
    await closeAll();
  });
  afterAll(async () => {
    await browser?.close();
    await client?.close();
    await t?.close();
    await own?.close();
    await smtp?.close();
  });

  async function setSettings(patch: Record<string, unknown>) {
    const response = await api(t, 'PUT', '/api/sign-in-exp', { token: adminToken, body: patch });
    expect(response.status, response.text).toBe(200);
    return response.body;
  }

  async function createUser(body: { primaryEmail: string; password?: string }) {
    const response = await api(t, 'POST', '/api/users', { token: adminToken, body });
    expect(response.status, response.text).toBe(201);
    return response.body as { id: string; primaryEmail: string };
  }

  /**
   * A user with a confirmed authenticator and 10 backup codes, set up the way
   * the self-service API does it (the browser enrolment has a test of its own).
   */
  async function userWithAuthenticator(label: string, password?: string) {
    const email = uniqueEmail(label);
    const user = await createUser({ primaryEmail: email, ...(password ? { password } : {}) });
    const mfa = t.sesame.services.mfa;
    const { secret } = await mfa.startTotp(user.id, email);
    const { backupCodes } = await mfa.confirmTotp(user.id, codeFor(secret));
    expect(backupCodes).toHaveLength(10);
    // The confirming code's time step is spent: move on to a fresh one.
    advance(30);
    return { email, id: user.id, secret, backupCodes };
  }

  /** The authorization request an app sends (code + PKCE to the test client). */
  const authorize = (params: Record<string, string> = {}) => authorizationRequest(t.issuer, { clientId: app.id, redirectUri: client.redirectUri }, params);

  const start = (page: Page, flow: Flow) => openAuthorization(page, flow, t.baseUrl);
  const heading = async (page: Page) => (await page.locator('main h1').textContent())?.trim();
  const isCallback = (url: URL) => url.origin === client.origin && url.pathname === '/callback';

  /** Clicks and waits for the app's callback, which must be reached exactly once. */
  async function clickToCallback(page: Page, click: () => Promise<void>, flow: Flow) {
    const callbacks = client.count();
    const query = await clickToCallbackOf(page, click, { baseUrl: t.baseUrl, issuer: t.issuer, client }, flow);
    expect(client.count()).toBe(callbacks + 1);
    return query;
  }

  /** Clicks and waits until the browser is on another Sesame page (a form post answers on the same URL: wait for the load). */
  async function clickToPage(page: Page, click: () => Promise<void>) {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), click()]);
    expect(new URL(page.url()).origin).toBe(t.baseUrl);
  }

  /** The callback carries a code (no error) that the app exchanges for these ID-token claims. */
  async function signedIn(query: URLSearchParams, flow: Flow): Promise<JWTPayload> {
    expect(query.get('error'), query.get('error_description') ?? '').toBeNull();
    expect(query.get('code')).toBeTruthy();
    const body = await exchangeCode(t.issuer, { ...app, redirectUri: client.redirectUri }, query.get('code')!, flow.verifier);
    return decodeJwt(String(body.id_token));
  }

  /** The next mail to `email` after `since` mails were received. */
  const mailTo = (email: string, since: number) => smtp.waitFor((mail) => smtp.messages.indexOf(mail) >= since && mail.to === email);
  const mailsTo = (email: string) => smtp.messages.filter((mail) => mail.to === email).length;

  const continueButton = (page: Page) => page.getByRole('button', { name: en('common.continue'), exact: true });

  /**
   * The magic-link first factor in one browser: the email on the start page,
   * "Email me a sign-in link", the mailed link opened in the same browser,
   * "Continue as EMAIL" shown; answers before Continue is clicked.
   */
  async function openMagicLink(page: Page, email: string, flow: Flow) {
    await start(page, flow);
    const since = smtp.messages.length;
    await page.getByLabel(en('common.email')).fill(email);
    await page.getByRole('button', { name: en('signIn.sendLink'), exact: true }).click();
    await page.waitForURL((current) => current.pathname.endsWith('/code'));
    const link = readSignInMail(await mailTo(email, since)).link;
    expect(link).toMatch(new RegExp(`^${t.baseUrl}/sign-in/link\\?token=`));
    await page.goto(link!);
    expect(new URL(page.url()).pathname).toBe('/sign-in/link');
    await expect(page.locator('p:has-text("Continue as") .email').textContent()).resolves.toBe(email);
  }

  /** A one-time-token first factor: the app's request carries the token, the user clicks Continue; answers the next page's URL. */
  async function continueWithOneTimeToken(page: Page, email: string, flow: Flow) {
    await start(page, flow);
    await expect(page.locator('p:has-text("Continue as") .email').textContent()).resolves.toBe(email);
    await clickToPage(page, () => continueButton(page).click());
    return new URL(page.url());
  }
  async function oneTimeTokenFlow(email: string, extra: Record<string, string> = {}) {
    const minted = await mintToken(t, adminToken, { email });
    return authorize({ one_time_token: minted.token, login_hint: email, ...extra });
  }

  /** Types an authenticator code on the verify page and presses Verify. */
  async function typeAuthenticatorCode(page: Page, code: string) {
    await page.getByLabel(en('mfa.code'), { exact: true }).fill(code);
    await page.getByRole('button', { name: en('mfa.verify'), exact: true }).click();
  }

  /** The code field's state on the verify (or set-up) page: invalid or not, and the error tied to it. */
  async function codeFieldState(page: Page) {
    const field = page.getByLabel(en('mfa.code'), { exact: true });
    const describedBy = (await field.getAttribute('aria-describedby')) ?? '';
    const errorId = describedBy.split(' ').find((id) => id.endsWith('-error'));
    return {
      invalid: await field.getAttribute('aria-invalid'),
      error: errorId ? (await page.locator(`#${errorId}`).textContent())?.trim() : undefined,
      errorVisible: errorId ? await page.locator(`#${errorId}`).isVisible() : false,
      value: await field.inputValue(),
    };
  }

  describe('the five seed flows', () => {
    it('(a) magic link only (MFA off, no authenticator): amr ["email"], no second step', async () => {
      const email = uniqueEmail('link-only');
      await createUser({ primaryEmail: email });
      const page = await newPage();
      const flow = authorize({ login_hint: email });
      await openMagicLink(page, email, flow);
      const claims = await signedIn(await clickToCallback(page, () => continueButton(page).click(), flow), flow);
      expect(claims.email).toBe(email);
      expect(claims.amr).toEqual(['email']);
      expect(claims.acr).not.toBe('mfa');
    });

    it('(b) link + email OTP: after the link a second mail with a code valid 5 minutes; typing it signs in, amr stays ["email"]', async () => {
      await setSettings({ mfa: { afterMagicLink: 'email_otp' } });
      const email = uniqueEmail('link-otp');
      await createUser({ primaryEmail: email });
      const page = await newPage();
      const flow = authorize({ login_hint: email });
      await openMagicLink(page, email, flow);
      const callbacks = client.count();
      const since = smtp.messages.length;
      await clickToPage(page, () => continueButton(page).click());
      // Not signed in yet: the code page, and a second mail with the code.
      expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[^/]+\/code$/);
      expect(client.count()).toBe(callbacks);
      await expect(heading(page)).resolves.toBe(en('sent.title'));
      expect(await page.locator('main').innerText()).toContain(en('sent.code', { email }));
      // The page tells how long the code works: 5 minutes, like the mail (soft: the rest of the flow is still checked).
      expect.soft((await page.locator('#code-hint').textContent())?.trim()).toBe(en('sent.expires', { minutes: 5 }));
      const mail = await mailTo(email, since);
      expect(mail.text).toContain('5 minutes');
      const { code, link } = readSignInMail(mail);
      expect(code).toMatch(/^\d{6}$/);
      expect(link).toBeUndefined(); // a code, not another link
      // Still good after four and a half minutes (the next test: not after five).
      advance(270);

      const claims = await signedIn(await clickToCallback(page, async () => {
        await page.getByLabel(en('common.code')).fill(code!);
        await page.getByRole('button', { name: en('sent.verify'), exact: true }).click();
      }, flow), flow);
      expect(claims.email).toBe(email);
      expect(claims.amr).toEqual(['email']); // the same mailbox twice is one factor
      expect(claims.acr).not.toBe('mfa');
    });

    it('(b) link + email OTP: the second code no longer works after 5 minutes', async () => {
      await setSettings({ mfa: { afterMagicLink: 'email_otp' } });
      const email = uniqueEmail('link-otp-late');
      await createUser({ primaryEmail: email });
      const page = await newPage();
      const flow = authorize({ login_hint: email });
      await openMagicLink(page, email, flow);
      const since = smtp.messages.length;
      await clickToPage(page, () => continueButton(page).click());
      const { code } = readSignInMail(await mailTo(email, since));
      advance(5 * 60 + 5);
      const callbacks = client.count();
      await clickToPage(page, async () => {
        await page.getByLabel(en('common.code')).fill(code!);
        await page.getByRole('button', { name: en('sent.verify'), exact: true }).click();
      });
      expect(client.count()).toBe(callbacks);
      await expect(page.getByRole('alert').first().textContent()).resolves.toBe(en('error.OTP_EXPIRED'));
    });

    it('(c) link + TOTP: the authenticator code page after the link; amr ["email","otp","mfa"], acr "mfa"', async () => {
      await setSettings({ mfa: { afterMagicLink: 'totp' } });
      const user = await userWithAuthenticator('link-totp');
      const page = await newPage();
      const flow = authorize({ login_hint: user.email });
      await openMagicLink(page, user.email, flow);
      const callbacks = client.count();
      await clickToPage(page, () => continueButton(page).click());
      expect(client.count()).toBe(callbacks);
      await expect(heading(page)).resolves.toBe(en('mfa.title'));
      expect(await page.locator('main').innerText()).toContain(en('mfa.intro', { app: 'Test app' }));
      const claims = await signedIn(await clickToCallback(page, () => typeAuthenticatorCode(page, codeFor(user.secret)), flow), flow);
      expect(claims.email).toBe(user.email);
      expect(claims.amr).toEqual(['email', 'otp', 'mfa']);
      expect(claims.acr).toBe('mfa');

      // With afterMagicLink "totp", a user without an authenticator sets one up after the link (no "Not now").
      const newcomer = uniqueEmail('link-totp-new');
      await createUser({ primaryEmail: newcomer });
      const other = await newPage();
      await openMagicLink(other, newcomer, authorize({ login_hint: newcomer }));
      await clickToPage(other, () => continueButton(other).click());
      await expect(heading(other)).resolves.toBe(en('mfa.enrollTitle'));
      expect(await other.getByRole('button', { name: en('mfa.skip') }).count()).toBe(0);
    });

    it('(d) TOTP-only sign-in: "Sign in with an authenticator app", email + code on one page, no mail; amr ["otp"]', async () => {
      const user = await userWithAuthenticator('totp-only');
      const page = await newPage();
      const flow = authorize();
      await start(page, flow);
      // Off by default: no such button.
      expect(await page.getByRole('button', { name: en('signIn.useTotp') }).count()).toBe(0);

      await setSettings({ mfa: { totpOnlySignIn: true } });
      const mailsBefore = smtp.messages.length;
      await start(page, flow);
      await page.getByLabel(en('common.email')).fill(user.email);
      await clickToPage(page, () => page.getByRole('button', { name: en('signIn.useTotp'), exact: true }).click());
      await expect(heading(page)).resolves.toBe(en('totp.title'));
      // Email and code on the same page (the email kept from the start page).
      await expect(page.getByLabel(en('common.email')).inputValue()).resolves.toBe(user.email);
      await expect(page.getByLabel(en('mfa.code'), { exact: true }).isVisible()).resolves.toBe(true);
      expect(await page.locator('main form input:not([type=hidden])').count()).toBe(2);

      // An unknown address answers exactly like a wrong code.
      await page.getByLabel(en('common.email')).fill(uniqueEmail('nobody'));
      await page.getByLabel(en('mfa.code'), { exact: true }).fill(codeFor(user.secret));
      await clickToPage(page, () => page.getByRole('button', { name: en('totp.submit'), exact: true }).click());
      const unknown = await codeFieldState(page);
      await page.getByLabel(en('common.email')).fill(user.email);
      await page.getByLabel(en('mfa.code'), { exact: true }).fill(wrongCodeFor(user.secret));
      await clickToPage(page, () => page.getByRole('button', { name: en('totp.submit'), exact: true }).click());
      const wrong = await codeFieldState(page);
      expect(wrong).toMatchObject({ invalid: 'true', error: en('error.TOTP_INVALID'), errorVisible: true });
      expect({ ...unknown, value: '' }).toEqual({ ...wrong, value: '' });

      const claims = await signedIn(await clickToCallback(page, async () => {
        await page.getByLabel(en('common.email')).fill(user.email);
        await page.getByLabel(en('mfa.code'), { exact: true }).fill(codeFor(user.secret));
        await page.getByRole('button', { name: en('totp.submit'), exact: true }).click();
      }, flow), flow);
      expect(claims.email).toBe(user.email);
      expect(claims.amr).toEqual(['otp']); // one factor
      expect(claims.acr).not.toBe('mfa');
      // No mail at all during this sign-in.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(smtp.messages.length).toBe(mailsBefore);
      expect(mailsTo(user.email)).toBe(0);
    });

    it('(e) password + MFA: the password, then the authenticator code; amr ["pwd","otp","mfa"], acr "mfa"', async () => {
      await setSettings({ methods: { password: true } });
      const password = `Correct-horse-${randomBytes(4).toString('hex')}`;
      const user = await userWithAuthenticator('pwd-mfa', password);
      const page = await newPage();
      const flow = authorize();
      await start(page, flow);
      await page.getByLabel(en('common.email')).fill(user.email);
      await clickToPage(page, () => page.getByRole('button', { name: en('signIn.usePassword'), exact: true }).click());
      await page.getByLabel(en('common.password')).fill(password);
      const callbacks = client.count();
      await clickToPage(page, () => page.getByRole('button', { name: en('password.submit'), exact: true }).click());
      expect(client.count()).toBe(callbacks);
      await expect(heading(page)).resolves.toBe(en('mfa.title'));
      const claims = await signedIn(await clickToCallback(page, () => typeAuthenticatorCode(page, codeFor(user.secret)), flow), flow);
      expect(claims.email).toBe(user.email);
      expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
      expect(claims.acr).toBe('mfa');
      expect(mailsTo(user.email)).toBe(0);
    });
  });

  /** On the set-up intro page: "Set up an authenticator app", the QR code and key, a code from the key, the backup codes. */
  async function enrolInBrowser(page: Page) {
    await clickToPage(page, () => page.getByRole('button', { name: en('mfa.enrollStart'), exact: true }).click());
    await expect(heading(page)).resolves.toBe(en('mfa.enrollTitle'));
    const qr = page.getByRole('img', { name: en('mfa.qrAlt'), exact: true });
    await expect(qr.isVisible()).resolves.toBe(true);
    expect(await qr.getAttribute('src')).toMatch(/^data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+$/);
    // The browser decoded it into a real picture.
    const size = await qr.evaluate((img: HTMLImageElement) => ({ complete: img.complete, width: img.naturalWidth, shown: img.getBoundingClientRect().width }));
    expect(size.complete).toBe(true);
    expect(size.width).toBeGreaterThan(0);
    expect(size.shown).toBeGreaterThanOrEqual(100);
    const svg = Buffer.from((await qr.getAttribute('src'))!.split(',')[1]!, 'base64').toString('utf8');
    expect(svg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);

    const shownKey = page.locator('[data-secret]');
    await expect(shownKey.isVisible()).resolves.toBe(true);
    const secret = (await shownKey.textContent())!.replace(/\s/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 20 bytes in base32

    await page.getByLabel(en('mfa.code'), { exact: true }).fill(codeFor(secret));
    await clickToPage(page, () => page.getByRole('button', { name: en('mfa.confirm'), exact: true }).click());
    await expect(heading(page)).resolves.toBe(en('mfa.backupTitle'));
    const backupCodes = (await page.locator('ul.backup-codes li').allTextContents()).map((code) => code.trim());
    expect(backupCodes).toHaveLength(10);
    expect(new Set(backupCodes).size).toBe(10);
    for (const code of backupCodes) expect(code.replace(/-/g, '').length).toBeGreaterThanOrEqual(10);
    return { secret, backupCodes };
  }

  it('enrolment when MFA is required: set-up page, the QR code and key, a code from the key, 10 backup codes, then the app', async () => {
    await setSettings({ mfa: { policy: 'required' } });
    const email = uniqueEmail('enrol');
    const page = await newPage();
    const flow = await oneTimeTokenFlow(email);
    const callbacks = client.count();
    await continueWithOneTimeToken(page, email, flow);
    expect(client.count()).toBe(callbacks);
    await expect(heading(page)).resolves.toBe(en('mfa.enrollTitle'));
    expect(await page.locator('main').innerText()).toContain(en('mfa.enrollRequired', { app: 'Test app' }));
    // Required: no "Not now", only back to the app.
    expect(await page.getByRole('button', { name: en('mfa.skip') }).count()).toBe(0);
    await expect(page.getByRole('button', { name: en('common.back'), exact: true }).isVisible()).resolves.toBe(true);

    const { secret } = await enrolInBrowser(page);
    expect(client.count()).toBe(callbacks);
    const claims = await signedIn(await clickToCallback(page, () => page.getByRole('button', { name: en('mfa.backupSaved'), exact: true }).click(), flow), flow);
    expect(claims.email).toBe(email);
    expect(claims.amr).toEqual(['email', 'otp', 'mfa']);
    expect(claims.acr).toBe('mfa');

    // The key shown is the one Sesame checks: the next sign-in asks for (and takes) a code from it.
    await setSettings({ mfa: { policy: 'off' } });
    advance(30);
    const next = await newPage();
    const again = await oneTimeTokenFlow(email);
    await continueWithOneTimeToken(next, email, again);
    await expect(heading(next)).resolves.toBe(en('mfa.title'));
    const second = await signedIn(await clickToCallback(next, () => typeAuthenticatorCode(next, codeFor(secret)), again), again);
    expect(second.amr).toEqual(['email', 'otp', 'mfa']);
  });

  it('optional policy: set-up offered once, "Not now" goes on to the app; the next sign-in does not ask again', async () => {
    await setSettings({ mfa: { policy: 'optional' } });
    const email = uniqueEmail('optional');
    const page = await newPage();
    const flow = await oneTimeTokenFlow(email);
    await continueWithOneTimeToken(page, email, flow);
    await expect(heading(page)).resolves.toBe(en('mfa.enrollTitle'));
    expect(await page.locator('main').innerText()).toContain(en('mfa.enrollOffer'));
    const claims = await signedIn(await clickToCallback(page, () => page.getByRole('button', { name: en('mfa.skip'), exact: true }).click(), flow), flow);
    expect(claims.amr).toEqual(['email']);
    expect(claims.acr).not.toBe('mfa');

    // Another browser, another sign-in: straight to the app (clickToCallback fails on any page in between).
    const later = await newPage();
    const again = await oneTimeTokenFlow(email);
    await start(later, again);
    const second = await signedIn(await clickToCallback(later, () => continueButton(later).click(), again), again);
    expect(second.amr).toEqual(['email']);
  });

  it('step-up: signed in with one factor, acr_values=mfa in the same browser brings the MFA step; afterwards acr "mfa"', async () => {
    const email = uniqueEmail('stepup');
    const page = await newPage();
    const first = await oneTimeTokenFlow(email);
    await start(page, first);
    const plain = await signedIn(await clickToCallback(page, () => continueButton(page).click(), first), first);
    expect(plain.amr).toEqual(['email']);
    expect(plain.acr).not.toBe('mfa');

    // The same session without acr_values: silent, no second step.
    const silent = authorize({ prompt: 'none' });
    await page.goto(silent.url);
    await page.waitForURL(isCallback);
    expect((await signedIn(client.takeCallback(), silent)).amr).toEqual(['email']);

    // Step-up: the MFA step appears inside the session (set-up, as this user has no authenticator).
    const stepUp = authorize({ acr_values: 'mfa' });
    await start(page, stepUp);
    await expect(heading(page)).resolves.toBe(en('mfa.enrollTitle'));
    expect(await page.getByText('Continue as').count()).toBe(0); // no first factor asked again
    await enrolInBrowser(page);
    const claims = await signedIn(await clickToCallback(page, () => page.getByRole('button', { name: en('mfa.backupSaved'), exact: true }).click(), stepUp), stepUp);
    expect(claims.email).toBe(email);
    expect(claims.amr).toEqual(['email', 'otp', 'mfa']);
    expect(claims.acr).toBe('mfa');
  });

  it('a wrong authenticator code, then the right one, in the same sign-in: no new link or token needed', async () => {
    const user = await userWithAuthenticator('wrong-right');
    const page = await newPage();
    const flow = await oneTimeTokenFlow(user.email);
    const mfaPage = await continueWithOneTimeToken(page, user.email, flow);
    await expect(heading(page)).resolves.toBe(en('mfa.title'));
    const callbacks = client.count();
    const mails = smtp.messages.length;

    await expect(codeFieldState(page)).resolves.toMatchObject({ invalid: null, error: undefined });
    await clickToPage(page, () => typeAuthenticatorCode(page, wrongCodeFor(user.secret)));
    await expect(heading(page)).resolves.toBe(en('mfa.title'));
    await expect(codeFieldState(page)).resolves.toMatchObject({ invalid: 'true', error: en('error.TOTP_INVALID'), errorVisible: true });
    expect(client.count()).toBe(callbacks);

    // Going back to the step (a reload of the interaction) still shows it: the token's sign-in is not lost.
    await page.goto(mfaPage.href);
    await expect(heading(page)).resolves.toBe(en('mfa.title'));

    // Typed the way authenticator apps show it ("123 456").
    const right = codeFor(user.secret);
    const claims = await signedIn(await clickToCallback(page, () => typeAuthenticatorCode(page, `${right.slice(0, 3)} ${right.slice(3)}`), flow), flow);
    expect(claims.email).toBe(user.email);
    expect(claims.amr).toEqual(['email', 'otp', 'mfa']);
    expect(claims.acr).toBe('mfa');
    expect(smtp.messages.length).toBe(mails);
  });

  it('a backup code: the page says 9 are left, Continue goes to the app; the same code does not work twice', async () => {
    const user = await userWithAuthenticator('backup');
    const page = await newPage();
    const flow = await oneTimeTokenFlow(user.email);
    await continueWithOneTimeToken(page, user.email, flow);
    await expect(heading(page)).resolves.toBe(en('mfa.title'));
    // Typed loosely: lower case, spaces for dashes.
    await page.getByLabel(en('mfa.backupCode'), { exact: true }).fill(user.backupCodes[0]!.toLowerCase().replace(/-/g, ' '));
    const callbacks = client.count();
    await clickToPage(page, () => page.getByRole('button', { name: en('mfa.useBackupSubmit'), exact: true }).click());
    expect(client.count()).toBe(callbacks);
    await expect(heading(page)).resolves.toBe(en('mfa.backupUsedTitle'));
    await expect(page.getByRole('status').textContent()).resolves.toBe(en('mfa.backupUsed', { count: 9 }));
    expect(en('mfa.backupUsed', { count: 9 })).toContain('9');
    const claims = await signedIn(await clickToCallback(page, () => page.getByRole('link', { name: en('common.continue'), exact: true }).click(), flow), flow);
    expect(claims.amr).toEqual(['email', 'otp', 'mfa']);
    expect(claims.acr).toBe('mfa');

    const other = await newPage();
    const again = await oneTimeTokenFlow(user.email);
    await continueWithOneTimeToken(other, user.email, again);
    await other.getByLabel(en('mfa.backupCode'), { exact: true }).fill(user.backupCodes[0]!);
    await clickToPage(other, () => other.getByRole('button', { name: en('mfa.useBackupSubmit'), exact: true }).click());
    await expect(heading(other)).resolves.toBe(en('mfa.title'));
    const field = other.getByLabel(en('mfa.backupCode'), { exact: true });
    await expect(field.getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(other.locator('#backup-code-error').textContent()).resolves.toBe(en('error.TOTP_INVALID'));
  });

  it('lockout: five wrong codes show "Too many wrong codes"; even the right code is refused; "Back to the app" returns access_denied', async () => {
    const user = await userWithAuthenticator('lockout');
    const page = await newPage();
    const flow = await oneTimeTokenFlow(user.email);
    const mfaPage = await continueWithOneTimeToken(page, user.email, flow);
    await expect(heading(page)).resolves.toBe(en('mfa.title'));
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      await clickToPage(page, () => typeAuthenticatorCode(page, wrongCodeFor(user.secret)));
      await expect(codeFieldState(page), `wrong code ${attempt}`).resolves.toMatchObject({ invalid: 'true', error: en('error.TOTP_INVALID') });
    }
    await clickToPage(page, () => typeAuthenticatorCode(page, wrongCodeFor(user.secret)));
    expect(await failureOf(page)).toEqual({ title: en('error.FACTOR_LOCKED.title'), code: 'FACTOR_LOCKED' });
    await expect(heading(page)).resolves.toBe('Too many wrong codes');
    await expect(page.getByRole('alert').first().textContent()).resolves.toBe(en('error.FACTOR_LOCKED'));
    expect(await page.getByLabel(en('mfa.code'), { exact: true }).count()).toBe(0);

    // Back at the step, the right code is refused too in this sign-in.
    const callbacks = client.count();
    await page.goto(mfaPage.href);
    await clickToPage(page, () => typeAuthenticatorCode(page, codeFor(user.secret)));
    expect(await failureOf(page)).toEqual({ title: en('error.FACTOR_LOCKED.title'), code: 'FACTOR_LOCKED' });
    expect(client.count()).toBe(callbacks);

    const back = page.getByRole('button', { name: en('common.back'), exact: true });
    await expect(back.isVisible()).resolves.toBe(true);
    const query = await clickToCallback(page, () => back.click(), flow);
    expect(query.get('error')).toBe('access_denied');
    expect(query.get('code')).toBeNull();
  });
});
