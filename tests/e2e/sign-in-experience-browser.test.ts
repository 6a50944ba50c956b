import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { translator } from '../../src/i18n/index.ts';
import { authorizationRequest, browserProfiles, clickToCallback as clickToCallbackOf, exchangeCode, failureOf, openAuthorization, type Flow } from '../helpers/browser-flow.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { startTestClient, type TestClient } from '../helpers/test-client.ts';
import { databaseKind, openOwnDatabase, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { readSignInMail, startSmtpCapture, type SmtpCapture } from '../helpers/smtp.ts';

/**
 * Every hosted sign-in flow in a real Chromium, from an app's authorization
 * request (code + PKCE) to its callback, with mail caught by a real SMTP
 * server. The settings are global to the instance: the tests run in order
 * and each sets what it needs.
 */

const en = translator('en');
const de = translator('de');
const ja = translator('ja');

/** Another 6-digit code than `code`. */
const wrongCode = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe(`the hosted sign-in experience in Chromium (${databaseKind})`, () => {
  let t: TestSesame;
  let own: Awaited<ReturnType<typeof openOwnDatabase>>;
  let smtp: SmtpCapture;
  let browser: Browser;
  let client: TestClient;
  let app: { id: string; secret: string };
  let adminToken: string;
  const { newPage, closeAll } = browserProfiles(() => browser, { locale: 'en-US' });

  beforeAll(async () => {
    // Launch first: a missing Chromium fails here with a clear message.
    browser = await launchChromium();
    smtp = await startSmtpCapture();
    // The sign-in settings are global to a database: on PostgreSQL this file gets one of its own.
    own = await openOwnDatabase();
    t = await startTestSesame({ SMTP_URL: smtp.url }, { db: own.db });
    client = await startTestClient();
    adminToken = await managementToken(t);
    const created = await createTestApplication(t, adminToken, client.redirectUri);
    if (!created.secret) throw new Error('a Traditional application should come with a secret');
    app = { id: created.id, secret: created.secret };
  });
  beforeEach(async () => {
    // The defaults of a fresh install; each test turns on what it needs.
    await setSettings({
      methods: { magicLink: true, emailCode: true, password: false },
      registration: false,
      passwordlessSignUp: false,
      autoContinueOneTimeToken: false,
      defaultLanguage: 'en',
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

  /** The authorization request an app sends (code + PKCE to the test client). */
  const authorize = (params: Record<string, string> = {}, clientId = app.id) =>
    authorizationRequest(t.issuer, { clientId, redirectUri: client.redirectUri }, params);

  const hosted = () => ({ baseUrl: t.baseUrl, issuer: t.issuer, client });
  const start = (page: Page, flow: Flow) => openAuthorization(page, flow, t.baseUrl);
  const isCallback = (url: URL) => url.origin === client.origin && url.pathname === '/callback';
  const clickToCallback = (page: Page, click: () => Promise<void>, flow?: Flow) => clickToCallbackOf(page, click, hosted(), flow);

  const exchange = async (code: string, flow: Flow, credentials = app) =>
    decodeJwt(String((await exchangeCode(t.issuer, { ...credentials, redirectUri: client.redirectUri }, code, flow.verifier)).id_token));

  /** The callback carries a code (no error) that the app exchanges for these ID-token claims. */
  async function signedIn(query: URLSearchParams, flow: Flow, credentials = app) {
    expect(query.get('error'), query.get('error_description') ?? '').toBeNull();
    expect(query.get('code')).toBeTruthy();
    return exchange(query.get('code')!, flow, credentials);
  }

  /** The next mail to `email` that arrives after `since` mails were received. */
  function mailTo(email: string, since: number) {
    return smtp.waitFor((mail) => smtp.messages.indexOf(mail) >= since && mail.to === email);
  }

  /** Types the email on the start page and presses the button named `button`; answers the mail. */
  async function requestMail(page: Page, email: string, button: string) {
    const since = smtp.messages.length;
    await page.getByLabel(en('common.email')).fill(email);
    await page.getByRole('button', { name: button, exact: true }).click();
    await page.waitForURL((current) => current.pathname.endsWith('/code'));
    return mailTo(email, since);
  }

  async function typeCode(page: Page, code: string) {
    await page.getByLabel(en('common.code')).fill(code);
    await page.getByRole('button', { name: en('sent.verify'), exact: true }).click();
  }

  /** Signs `email` in with a one-time token in this page's browser; answers the ID-token claims. */
  async function signInWithOneTimeToken(page: Page, email: string, extra: Record<string, string> = {}) {
    const minted = await mintToken(t, adminToken, { email });
    const flow = authorize({ one_time_token: minted.token, login_hint: email, ...extra });
    await start(page, flow);
    await expect(page.locator('p:has-text("Continue as") .email').textContent()).resolves.toBe(email);
    const query = await clickToCallback(page, () => page.getByRole('button', { name: en('common.continue'), exact: true }).click(), flow);
    return signedIn(query, flow);
  }

  it('magic link in the same browser: check your inbox, the mail with the same reference, Continue as EMAIL, amr email', async () => {
    const email = uniqueEmail('link');
    await createUser({ primaryEmail: email });
    const page = await newPage();
    const flow = authorize({ login_hint: email });
    await start(page, flow);
    await expect(page.locator('h1').textContent()).resolves.toBe(en('signIn.title', { app: 'Test app' }));
    await expect(page.getByLabel(en('common.email')).inputValue()).resolves.toBe(email);

    const mail = await requestMail(page, email, en('signIn.sendLink'));
    await expect(page.locator('h1').textContent()).resolves.toBe(en('sent.title'));
    const shown = (await page.locator('[data-reference]').first().textContent())?.trim();
    expect(shown).toMatch(/^[A-Z2-9]{3}-[A-Z2-9]{3}$/);
    expect(await page.locator('main').innerText()).toContain(email);

    const content = readSignInMail(mail);
    expect(mail.subject).toBe(en('mail.link.subject', { app: 'Test app' }));
    expect(content.reference).toBe(shown);
    expect(content.link).toMatch(new RegExp(`^${t.baseUrl}/sign-in/link\\?token=`));
    expect(content.code).toMatch(/^\d{6}$/);
    expect(mail.html).toContain(shown!);
    // The HTML part carries the same link and code.
    expect(mail.html).toContain(`href="${content.link}"`);
    expect(mail.html).toContain(`${content.code!.slice(0, 3)} ${content.code!.slice(3)}`);

    await page.goto(content.link!);
    expect(new URL(page.url()).pathname).toBe('/sign-in/link');
    await expect(page.locator('p:has-text("Continue as") .email').textContent()).resolves.toBe(email);
    const query = await clickToCallback(page, () => page.getByRole('button', { name: en('common.continue'), exact: true }).click(), flow);
    const claims = await signedIn(query, flow);
    expect(claims.email).toBe(email);
    expect(claims.amr).toEqual(['email']);
  });

  it('magic link opened in another browser: explains where to finish, shows the reference, does not sign in; the code finishes in the first', async () => {
    const email = uniqueEmail('elsewhere');
    await createUser({ primaryEmail: email });
    const pageA = await newPage();
    const flow = authorize();
    await start(pageA, flow);
    const mail = await requestMail(pageA, email, en('signIn.sendLink'));
    const content = readSignInMail(mail);
    const callbacks = client.count();

    const pageB = await newPage();
    await pageB.goto(content.link!);
    await expect(pageB.locator('h1').textContent()).resolves.toBe(en('link.otherBrowserTitle'));
    await expect(pageB.locator('[data-reference]').textContent()).resolves.toBe(content.reference);
    expect(await pageB.locator('main').innerText()).toContain('type the 6-digit code');
    // Nothing on the page signs in from here: no Continue, no form.
    expect(await pageB.getByRole('button', { name: en('common.continue') }).count()).toBe(0);
    expect(await pageB.locator('form').count()).toBe(0);
    await pageB.reload();
    expect(new URL(pageB.url()).pathname).toBe('/sign-in/link');
    expect(client.count()).toBe(callbacks);

    // A still shows the same reference, and the code from the mail finishes there.
    await expect(pageA.locator('[data-reference]').first().textContent()).resolves.toBe(content.reference);
    // Typed the way the mail prints it ("123 456").
    const query = await clickToCallback(pageA, () => typeCode(pageA, `${content.code!.slice(0, 3)} ${content.code!.slice(3)}`), flow);
    const claims = await signedIn(query, flow);
    expect(claims.email).toBe(email);
    expect(claims.amr).toEqual(['email']);
    // B never reached the app.
    expect(new URL(pageB.url()).origin).toBe(t.baseUrl);
  });

  it('email code only: no link in the mail, a wrong code is tied to the field, five lock, a new mail works', async () => {
    await setSettings({ methods: { magicLink: false, emailCode: true } });
    const email = uniqueEmail('code');
    await createUser({ primaryEmail: email });
    const page = await newPage();
    const flow = authorize();
    await start(page, flow);
    expect(await page.getByRole('button', { name: en('signIn.sendLink') }).count()).toBe(0);
    await expect(page.getByText(en('signIn.introCode')).isVisible()).resolves.toBe(true);

    const mail = await requestMail(page, email, en('signIn.sendCodeOnly'));
    expect(mail.subject).toBe(en('mail.code.subject', { app: 'Test app' }));
    const content = readSignInMail(mail);
    expect(content.code).toMatch(/^\d{6}$/);
    expect(mail.text).not.toContain('/sign-in/link');
    expect(mail.html).not.toContain('/sign-in/link');
    expect(content.reference).toBe((await page.locator('[data-reference]').first().textContent())?.trim());

    // A wrong code: the error sits on the field.
    await typeCode(page, wrongCode(content.code!));
    await page.waitForLoadState();
    const field = page.getByLabel(en('common.code'));
    await expect(field.getAttribute('aria-invalid')).resolves.toBe('true');
    const describedBy = (await field.getAttribute('aria-describedby')) ?? '';
    const errorId = describedBy.split(' ').find((id) => id.endsWith('-error'));
    expect(errorId).toBeTruthy();
    await expect(page.locator(`#${errorId}`).textContent()).resolves.toBe(en('error.OTP_INVALID'));
    await expect(page.locator(`#${errorId}`).isVisible()).resolves.toBe(true);

    // Up to the fourth wrong code the mail still works; the fifth locks it, and then even the right code is refused.
    for (let i = 0; i < 3; i += 1) {
      await typeCode(page, wrongCode(content.code!));
      await page.waitForLoadState();
    }
    await expect(page.locator(`#${errorId}`).textContent()).resolves.toBe(en('error.OTP_INVALID'));
    await typeCode(page, wrongCode(content.code!));
    await page.waitForLoadState();
    await expect(page.getByRole('alert').first().textContent()).resolves.toBe(en('error.OTP_LOCKED'));
    await typeCode(page, content.code!);
    await page.waitForLoadState();
    await expect(page.getByRole('alert').first().textContent()).resolves.toBe(en('error.OTP_LOCKED'));
    expect(new URL(page.url()).origin).toBe(t.baseUrl);

    // "Send a new mail": a new code and reference, and that code signs in.
    const since = smtp.messages.length;
    await page.getByRole('button', { name: en('sent.resend'), exact: true }).click();
    const fresh = readSignInMail(await mailTo(email, since));
    expect(fresh.reference).not.toBe(content.reference);
    await page.waitForURL((current) => current.pathname.endsWith('/code'));
    await expect(page.locator('[data-reference]').first().textContent()).resolves.toBe(fresh.reference);
    const query = await clickToCallback(page, () => typeCode(page, fresh.code!), flow);
    const claims = await signedIn(query, flow);
    expect(claims.email).toBe(email);
    expect(claims.amr).toEqual(['email']);
  });

  it('password: the same error for an unknown email and a wrong password, the right one signs in with amr pwd', async () => {
    await setSettings({ methods: { password: true } });
    const email = uniqueEmail('pwd');
    const password = `Correct-horse-${randomBytes(4).toString('hex')}`;
    await createUser({ primaryEmail: email, password });
    const page = await newPage();
    const flow = authorize();
    await start(page, flow);

    /** Submits the password form; answers the error shown and the field states. */
    async function attempt(address: string, secret: string) {
      await page.getByLabel(en('common.email')).fill(address);
      await page.getByLabel(en('common.password')).fill(secret);
      await page.getByRole('button', { name: en('password.submit'), exact: true }).click();
      await page.waitForLoadState();
      return {
        alert: (await page.getByRole('alert').allTextContents()).map((text) => text.trim()),
        title: await page.locator('h1').textContent(),
        emailInvalid: await page.getByLabel(en('common.email')).getAttribute('aria-invalid'),
        passwordInvalid: await page.getByLabel(en('common.password')).getAttribute('aria-invalid'),
      };
    }

    await page.getByLabel(en('common.email')).fill(email);
    await page.getByRole('button', { name: en('signIn.usePassword'), exact: true }).click();
    await expect(page.getByLabel(en('common.password')).isVisible()).resolves.toBe(true);
    await expect(page.getByLabel(en('common.email')).inputValue()).resolves.toBe(email);

    const wrong = await attempt(email, 'not-the-password-1');
    expect(wrong.alert).toEqual([en('error.INVALID_CREDENTIALS')]);
    const unknown = await attempt(uniqueEmail('nobody'), 'not-the-password-1');
    expect(unknown).toEqual(wrong);

    const query = await clickToCallback(page, async () => {
      await page.getByLabel(en('common.email')).fill(email);
      await page.getByLabel(en('common.password')).fill(password);
      await page.getByRole('button', { name: en('password.submit'), exact: true }).click();
    }, flow);
    const claims = await signedIn(query, flow);
    expect(claims.email).toBe(email);
    expect(claims.amr).toEqual(['pwd']);
  });

  it('registration: reached from the start page and with first_screen=register; a weak password is refused on its field; the code creates the account', async () => {
    await setSettings({ methods: { password: true }, registration: true });
    const email = uniqueEmail('newcomer');
    const password = `Fresh-${randomBytes(6).toString('hex')}`;

    // The start page links to registration.
    const linkPage = await newPage();
    await start(linkPage, authorize());
    await linkPage.getByRole('link', { name: en('signIn.register') }).click();
    await linkPage.waitForURL((current) => current.pathname.endsWith('/register'));
    await expect(linkPage.locator('h1').textContent()).resolves.toBe(en('register.title'));

    // The app can open on it.
    const page = await newPage();
    const flow = authorize({ first_screen: 'register' });
    await start(page, flow);
    await expect(page.locator('h1').textContent()).resolves.toBe(en('register.title'));

    const since = smtp.messages.length;
    await page.getByLabel(en('common.email')).fill(email);
    await page.getByLabel(en('common.password')).fill('password123');
    await page.getByRole('button', { name: en('register.submit'), exact: true }).click();
    await page.waitForLoadState();
    const passwordField = page.getByLabel(en('common.password'));
    await expect(passwordField.getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.locator('#password-error').textContent()).resolves.toBe(en('error.PASSWORD_TOO_WEAK'));
    expect((await passwordField.getAttribute('aria-describedby'))?.split(' ')).toContain('password-error');
    await expect(page.getByLabel(en('common.email')).getAttribute('aria-invalid')).resolves.toBeNull();
    expect(smtp.messages.slice(since).filter((mail) => mail.to === email)).toHaveLength(0);

    await passwordField.fill(password);
    await page.getByRole('button', { name: en('register.submit'), exact: true }).click();
    await page.waitForURL((current) => current.pathname.endsWith('/code'));
    const mail = await mailTo(email, since);
    expect(mail.subject).toBe(en('mail.register.subject', { app: 'Test app' }));
    // Not created before the mailbox is proven.
    const before = await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: adminToken });
    expect(before.body).toEqual([]);

    const query = await clickToCallback(page, () => typeCode(page, readSignInMail(mail).code!), flow);
    const claims = await signedIn(query, flow);
    expect(claims.email).toBe(email);

    const users = await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: adminToken });
    expect(users.status).toBe(200);
    expect(users.body).toHaveLength(1);
    expect(users.body[0]).toMatchObject({ id: claims.sub, primaryEmail: email });

    // The chosen password now signs in.
    const later = await newPage();
    const second = authorize();
    await start(later, second);
    await later.getByLabel(en('common.email')).fill(email);
    await later.getByRole('button', { name: en('signIn.usePassword'), exact: true }).click();
    await later.getByLabel(en('common.password')).fill(password);
    const again = await clickToCallback(later, () => later.getByRole('button', { name: en('password.submit'), exact: true }).click(), second);
    const secondClaims = await signedIn(again, second);
    expect(secondClaims.sub).toBe(claims.sub);
    expect(secondClaims.amr).toEqual(['pwd']);
  });

  it('account switch: keep the current account (the token stays active), then continue as the new one; prompt=login does not ask', async () => {
    const a = uniqueEmail('alice');
    const b = uniqueEmail('bob');
    const page = await newPage();
    const first = await signInWithOneTimeToken(page, a);
    expect(first.email).toBe(a);

    // A link for B in A's browser: the question.
    const forB = await mintToken(t, adminToken, { email: b });
    const keepFlow = authorize({ one_time_token: forB.token, login_hint: b });
    await start(page, keepFlow);
    await expect(page.locator('h1').textContent()).resolves.toBe(en('token.switchTitle'));
    expect(await page.locator('main').innerText()).toContain(`You are signed in as ${a}. This link signs you in as ${b}.`);
    const keep = await clickToCallback(page, () => page.getByRole('button', { name: `Keep ${a}`, exact: true }).click(), keepFlow);
    const kept = await signedIn(keep, keepFlow);
    expect(kept.email).toBe(a);
    expect(kept.sub).toBe(first.sub);
    const unused = await api(t, 'GET', `/api/one-time-tokens/${forB.id}`, { token: adminToken });
    expect(unused.body.status).toBe('active');

    // The same link again: this time switch.
    const switchFlow = authorize({ one_time_token: forB.token, login_hint: b });
    await start(page, switchFlow);
    await expect(page.locator('h1').textContent()).resolves.toBe(en('token.switchTitle'));
    const switched = await clickToCallback(page, () => page.getByRole('button', { name: `Continue as ${b}`, exact: true }).click(), switchFlow);
    const bClaims = await signedIn(switched, switchFlow);
    expect(bClaims.email).toBe(b);
    expect(bClaims.sub).not.toBe(first.sub);
    expect((await api(t, 'GET', `/api/one-time-tokens/${forB.id}`, { token: adminToken })).body.status).toBe('consumed');

    // prompt=login: A's browser, a token for B, no question.
    const c = uniqueEmail('carol');
    const other = await newPage();
    expect((await signInWithOneTimeToken(other, c)).email).toBe(c);
    const forced = await mintToken(t, adminToken, { email: b });
    const loginFlow = authorize({ one_time_token: forced.token, login_hint: b, prompt: 'login' });
    await start(other, loginFlow);
    await expect(other.locator('h1').textContent()).resolves.not.toBe(en('token.switchTitle'));
    expect(await other.getByRole('button', { name: `Keep ${c}` }).count()).toBe(0);
    expect(await other.locator('main').innerText()).not.toContain(c);
    await expect(other.locator('p:has-text("Continue as") .email').textContent()).resolves.toBe(b);
    const query = await clickToCallback(other, () => other.getByRole('button', { name: en('common.continue'), exact: true }).click(), loginFlow);
    expect((await signedIn(query, loginFlow)).email).toBe(b);
  });

  it('auto-continue: a one-time-token link signs in without a click, but never switches accounts without asking', async () => {
    await setSettings({ autoContinueOneTimeToken: true });
    const a = uniqueEmail('auto');
    const minted = await mintToken(t, adminToken, { email: a });
    const page = await newPage();
    const flow = authorize({ one_time_token: minted.token, login_hint: a });
    await page.goto(flow.url);
    await page.waitForURL(isCallback);
    const claims = await signedIn(client.takeCallback(), flow);
    expect(claims.email).toBe(a);

    // Signed in as A, a link for B: the question waits for an answer.
    const b = uniqueEmail('auto-other');
    const forB = await mintToken(t, adminToken, { email: b });
    const callbacks = client.count();
    await start(page, authorize({ one_time_token: forB.token, login_hint: b }));
    await page.waitForLoadState('networkidle');
    await expect(page.locator('h1').textContent()).resolves.toBe(en('token.switchTitle'));
    expect(client.count()).toBe(callbacks);
    expect((await api(t, 'GET', `/api/one-time-tokens/${forB.id}`, { token: adminToken })).body.status).toBe('active');
  });

  it('consent for a third-party application: the scopes in words, Deny answers access_denied, Allow a code', async () => {
    const created = await api(t, 'POST', '/api/applications', {
      token: adminToken,
      body: { name: 'Partner app', type: 'Traditional', isThirdParty: true, oidcClientMetadata: { redirectUris: [client.redirectUri] } },
    });
    expect(created.status, created.text).toBe(201);
    const partner = { id: created.body.id as string, secret: created.body.secret as string };
    const email = uniqueEmail('consent');
    const minted = await mintToken(t, adminToken, { email });
    const page = await newPage();

    const denied = authorize({ one_time_token: minted.token, login_hint: email, scope: 'openid email profile' }, partner.id);
    await start(page, denied);
    await page.getByRole('button', { name: en('common.continue'), exact: true }).click();
    await page.getByRole('heading', { name: en('consent.title', { app: 'Partner app' }) }).waitFor();
    expect(await page.locator('main').innerText()).toContain(`Signed in as ${email}.`);
    expect((await page.locator('ul.scopes li').allTextContents()).map((s) => s.trim())).toEqual([
      en('consent.scope.openid'),
      en('consent.scope.email'),
      en('consent.scope.profile'),
    ]);
    const refusal = await clickToCallback(page, () => page.getByRole('button', { name: en('consent.deny'), exact: true }).click(), denied);
    expect(refusal.get('error')).toBe('access_denied');
    expect(refusal.get('code')).toBeNull();

    // Signed in already: straight to the question; Allow.
    const allowed = authorize({ scope: 'openid email profile' }, partner.id);
    await start(page, allowed);
    await page.getByRole('heading', { name: en('consent.title', { app: 'Partner app' }) }).waitFor();
    const yes = await clickToCallback(page, () => page.getByRole('button', { name: en('consent.allow'), exact: true }).click(), allowed);
    const claims = await signedIn(yes, allowed, partner);
    expect(claims.email).toBe(email);
    expect(claims.aud).toBe(partner.id);
  });

  it('an expired link says so and sends a new one in one click; Back to the app answers access_denied', async () => {
    const email = uniqueEmail('expired');
    await createUser({ primaryEmail: email });
    const page = await newPage();
    const flow = authorize();
    await start(page, flow);
    const first = readSignInMail(await requestMail(page, email, en('signIn.sendLink')));

    t.advanceClock(601);
    try {
      await page.goto(first.link!);
      expect(await failureOf(page)).toEqual({ title: en('error.TOKEN_EXPIRED.title'), code: 'TOKEN_EXPIRED' });
      expect(await page.locator('main').innerText()).toContain(en('error.newLinkHint', { email }));

      const since = smtp.messages.length;
      await page.getByRole('button', { name: en('error.getNewLink'), exact: true }).click();
      await page.getByText(en('link.resent', { email })).waitFor();
      const fresh = readSignInMail(await mailTo(email, since));
      expect(fresh.link).toBeTruthy();
      expect(fresh.link).not.toBe(first.link);
      await expect(page.locator('[data-reference]').textContent()).resolves.toBe(fresh.reference);

      // The expired link again, and this time back to the app.
      await page.goto(first.link!);
      expect((await failureOf(page))?.code).toBe('TOKEN_SUPERSEDED');
      const back = await clickToCallback(page, () => page.getByRole('button', { name: en('common.back'), exact: true }).click(), flow);
      expect(back.get('error')).toBe('access_denied');
      expect(back.get('code')).toBeNull();
    } finally {
      t.advanceClock(-601);
    }
  });

  it('a used one-time token says so and sends a new link to the same address in one click', async () => {
    const email = uniqueEmail('reused');
    const minted = await mintToken(t, adminToken, { email });
    const firstFlow = authorize({ one_time_token: minted.token, login_hint: email });
    const firstPage = await newPage();
    await start(firstPage, firstFlow);
    await signedIn(await clickToCallback(firstPage, () => firstPage.getByRole('button', { name: en('common.continue'), exact: true }).click(), firstFlow), firstFlow);

    const page = await newPage();
    const flow = authorize({ one_time_token: minted.token, login_hint: email });
    await start(page, flow);
    await page.getByRole('button', { name: en('common.continue'), exact: true }).click();
    await page.locator('main.card p.code').waitFor();
    expect(await failureOf(page)).toEqual({ title: en('error.TOKEN_ALREADY_USED.title'), code: 'TOKEN_ALREADY_USED' });

    const since = smtp.messages.length;
    await page.getByRole('button', { name: en('error.getNewLink'), exact: true }).click();
    await page.waitForURL((current) => current.pathname.endsWith('/code'));
    const mail = readSignInMail(await mailTo(email, since));
    await expect(page.locator('[data-reference]').first().textContent()).resolves.toBe(mail.reference);
    // The fresh link finishes this sign-in.
    await page.goto(mail.link!);
    const query = await clickToCallback(page, () => page.getByRole('button', { name: en('common.continue'), exact: true }).click(), flow);
    expect((await signedIn(query, flow)).email).toBe(email);
  });

  // Known bug (see the report of 2026-11-27): once the sign-in finished, a used
  // self-serve link shows "This link was already used" with no button at all.
  // No dead ends: once the sign-in is over, no new link can be tied to it, but the page leads back to the app.
  it('a used magic link, opened again after the sign-in finished, leads back to the app', async () => {
    const email = uniqueEmail('used-link');
    await createUser({ primaryEmail: email });
    const page = await newPage();
    const flow = authorize();
    await start(page, flow);
    const content = readSignInMail(await requestMail(page, email, en('signIn.sendLink')));
    await page.goto(content.link!);
    await signedIn(await clickToCallback(page, () => page.getByRole('button', { name: en('common.continue'), exact: true }).click(), flow), flow);

    await page.goto(content.link!);
    expect(await failureOf(page)).toEqual({ title: en('error.TOKEN_ALREADY_USED.title'), code: 'TOKEN_ALREADY_USED' });
    const back = page.getByRole('link', { name: en('common.back'), exact: true });
    await expect(back.getAttribute('href')).resolves.toBe(`${client.origin}/`);
  });

  it('speaks German with ui_locales=de (page and mail) and Japanese for a ja-JP browser', async () => {
    const email = uniqueEmail('sprache');
    await createUser({ primaryEmail: email });
    expect(de('signIn.title', { app: 'Test app' })).not.toBe(en('signIn.title', { app: 'Test app' }));

    const page = await newPage();
    await start(page, authorize({ ui_locales: 'de' }));
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('de');
    await expect(page.locator('h1').textContent()).resolves.toBe(de('signIn.title', { app: 'Test app' }));
    const since = smtp.messages.length;
    await page.getByLabel(de('common.email')).fill(email);
    await page.getByRole('button', { name: de('signIn.sendLink'), exact: true }).click();
    await page.waitForURL((current) => current.pathname.endsWith('/code'));
    await expect(page.locator('h1').textContent()).resolves.toBe(de('sent.title'));
    const mail = await mailTo(email, since);
    expect(mail.subject).toBe(de('mail.link.subject', { app: 'Test app' }));
    expect(mail.text).toContain(de('mail.link.intro', { app: 'Test app', email }));
    expect(mail.html).toContain('lang="de"');
    // Its link, opened in an English browser elsewhere, still speaks the mail's language.
    const elsewhere = await newPage();
    await elsewhere.goto(readSignInMail(mail).link!);
    await expect(elsewhere.locator('html').getAttribute('lang')).resolves.toBe('de');
    await expect(elsewhere.locator('h1').textContent()).resolves.toBe(de('link.otherBrowserTitle'));

    const japanese = await newPage({ locale: 'ja-JP' });
    await start(japanese, authorize());
    await expect(japanese.locator('html').getAttribute('lang')).resolves.toBe('ja');
    await expect(japanese.locator('h1').textContent()).resolves.toBe(ja('signIn.title', { app: 'Test app' }));
    await expect(japanese.getByLabel(ja('common.email')).isVisible()).resolves.toBe(true);
  });

  it('accessibility basics: no horizontal scroll at 320 px, every input labelled, Tab from the email reaches the first button', async () => {
    await setSettings({ methods: { password: true }, registration: true });
    const page = await newPage({ viewport: { width: 320, height: 640 } });
    const flow = authorize();
    await start(page, flow);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(320);

    /** Each visible input is found by its label's text. */
    async function everyInputLabelled() {
      const ids = await page.locator('main input:not([type=hidden])').evaluateAll((inputs) => inputs.map((input) => input.id));
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) {
        expect(id).toBeTruthy();
        const label = (await page.locator(`label[for="${id}"]`).textContent())?.trim();
        expect(label, `a label for #${id}`).toBeTruthy();
        await expect(page.getByLabel(label!, { exact: true }).getAttribute('id')).resolves.toBe(id);
      }
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(320);
    }
    await everyInputLabelled();

    // The email field has the focus on arrival; Tab goes on to the first button.
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('email');
    await page.getByLabel(en('common.email')).focus();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => ({ tag: document.activeElement?.tagName, type: (document.activeElement as HTMLButtonElement | null)?.type, text: document.activeElement?.textContent }));
    expect(focused).toEqual({ tag: 'BUTTON', type: 'submit', text: en('signIn.sendLink') });

    // An invalid address: the error is tied to the field and announced.
    await page.getByLabel(en('common.email')).fill('not an email');
    await page.getByRole('button', { name: en('signIn.sendLink'), exact: true }).click();
    await page.locator('#email-error').waitFor();
    const email = page.getByLabel(en('common.email'));
    await expect(email.getAttribute('aria-invalid')).resolves.toBe('true');
    expect((await email.getAttribute('aria-describedby'))?.split(' ')).toContain('email-error');
    await expect(page.locator('#email-error').textContent()).resolves.toBe(en('error.EMAIL_INVALID'));
    await expect(page.locator('#email-error').getAttribute('role')).resolves.toBe('alert');
    await everyInputLabelled();

    // The other pages with inputs: password, registration, code.
    await page.getByLabel(en('common.email')).fill(uniqueEmail('nobody'));
    await page.getByRole('button', { name: en('signIn.usePassword'), exact: true }).click();
    await page.getByLabel(en('common.password')).waitFor();
    await everyInputLabelled();
    await page.goto(`${new URL(page.url()).origin}${new URL(page.url()).pathname.replace(/\/email$/, '/register')}`);
    await expect(page.locator('h1').textContent()).resolves.toBe(en('register.title'));
    await everyInputLabelled();
    await page.goto(page.url().replace(/\/register$/, ''));
    await page.getByLabel(en('common.email')).fill(uniqueEmail('nobody'));
    await page.getByRole('button', { name: en('signIn.sendLink'), exact: true }).click();
    await page.waitForURL((current) => current.pathname.endsWith('/code'));
    await everyInputLabelled();
  });
});
