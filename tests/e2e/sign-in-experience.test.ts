import * as oidc from 'openid-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CookieClient, findForm } from '../helpers/browser-client.ts';
import { databaseKind, openOwnDatabase, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { startAuthorization, throughSessionSwitch } from '../helpers/sign-in.ts';
import { de } from '../../src/i18n/de.ts';
import { ja } from '../../src/i18n/ja.ts';
import { readSignInMail, startSmtpCapture, type SmtpCapture } from '../helpers/smtp.ts';

const REDIRECT_URI = 'http://127.0.0.1:5999/callback';
const defaults = {
  methods: { magicLink: true, emailCode: true, password: false },
  registration: false,
  passwordlessSignUp: false,
  linkLifetimeSeconds: 600,
  autoContinueOneTimeToken: false,
  branding: { name: 'Sesame', logoUrl: null, primaryColor: '#3b5bdb' },
  defaultLanguage: 'en',
  mfa: { policy: 'off', totpOnlySignIn: false },
};


/** The page's reference label. */
const referenceOn = (html: string) => /data-reference>([A-Z2-9]{3}-[A-Z2-9]{3})</.exec(html)?.[1];

describe(`the sign-in experience over HTTP (${databaseKind})`, () => {
  let t: TestSesame;
  let smtp: SmtpCapture;
  let config: oidc.Configuration;
  let adminToken: string;
  let own: Awaited<ReturnType<typeof openOwnDatabase>>;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    // The settings are global to an installation: this file has its own database.
    own = await openOwnDatabase();
    t = await startTestSesame({ SMTP_URL: smtp.url, EMAIL_FROM: 'Sesame <no-reply@example.test>' }, { db: own.db });
    adminToken = await managementToken(t);
    const app = await createTestApplication(t, adminToken, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await t?.close();
    await own?.close();
    await smtp?.close();
  });
  beforeEach(async () => {
    const reset = await api(t, 'PUT', '/api/sign-in-exp', { token: adminToken, body: defaults });
    expect(reset.status).toBe(200);
  });

  const setSettings = async (body: Record<string, unknown>) => {
    const response = await api(t, 'PUT', '/api/sign-in-exp', { token: adminToken, body });
    expect(response.status).toBe(200);
    return response.body;
  };

  /** An app sends the browser to /oidc/auth; answers the hosted start page. */
  const start = (extra: Record<string, string> = {}, browser?: CookieClient) => startAuthorization(t, config, REDIRECT_URI, extra, browser);

  /** Follows a finished step to the app's callback and redeems the code there. */
  async function redeem(flow: Awaited<ReturnType<typeof start>>, done: { url: URL }) {
    expect(done.url.origin).toBe(new URL(REDIRECT_URI).origin);
    return oidc.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: flow.verifier, expectedState: flow.state });
  }

  const mailTo = (email: string, after = 0) => smtp.waitFor((mail) => mail.to.includes(email) && smtp.messages.indexOf(mail) >= after);

  async function createUser(body: Record<string, unknown>) {
    const response = await api(t, 'POST', '/api/users', { token: adminToken, body });
    expect(response.status).toBe(201);
    return response.body as { id: string };
  }

  /** The JSON Experience API, from the browser that holds the interaction cookie. */
  const experience = (browser: CookieClient, path: string, body?: unknown, method = 'POST') =>
    browser.request(`/api/experience${path}`, {
      method,
      headers: { 'content-type': 'application/json', origin: t.baseUrl },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  describe('magic links', () => {
    it('mails a link and a code with the reference the page shows, and the link signs in only from this browser, on POST', async () => {
      const email = uniqueEmail('link');
      await createUser({ primaryEmail: email });
      const flow = await start({ login_hint: email });
      expect(flow.html).toContain(`value="${email}"`);
      const before = smtp.messages.length;
      const sent = await flow.browser.submitForm(flow.html, '/email', { email, method: 'magic_link' });
      expect(sent.url.pathname).toBe(`/interaction/${flow.uid}/code`);
      const inbox = await sent.response.text();
      const mail = readSignInMail(await mailTo(email, before));
      expect(mail.link).toBeDefined();
      expect(mail.code).toMatch(/^\d{6}$/);
      expect(mail.reference).toBe(referenceOn(inbox));

      // Scanners: GET and HEAD, with and without following redirects, never sign in or consume.
      const scanner = new CookieClient(t.baseUrl);
      for (const method of ['GET', 'HEAD']) {
        const plain = await fetch(mail.link!, { method, redirect: 'manual' });
        expect(plain.status).toBe(200);
        await scanner.follow(mail.link!, { method });
        await flow.browser.request(new URL(mail.link!).pathname + new URL(mail.link!).search, { method });
      }
      const landing = await flow.browser.follow(mail.link!);
      const page = await landing.response.text();
      expect(page).toContain(`Continue as <span class="email">${email}</span>`);

      // The Continue POST signs in; the app gets a code and `amr` says email.
      const done = await flow.browser.submitForm(page, '/sign-in/link');
      const tokens = await redeem(flow, done);
      expect(tokens.claims()).toMatchObject({ email, amr: ['email'] });

      // Used now: it says so, and offers a fresh link to the same address.
      const again = await new CookieClient(t.baseUrl).follow(mail.link!);
      const used = await again.response.text();
      expect(again.response.status).toBe(410);
      expect(used).toContain('TOKEN_ALREADY_USED');
      expect(used).not.toContain(email); // the interaction is over: no resend, nothing about the address
    });

    it('opened in another browser, explains where to type the code; the code signs in where it started', async () => {
      const email = uniqueEmail('elsewhere');
      await createUser({ primaryEmail: email });
      const flow = await start();
      const before = smtp.messages.length;
      await flow.browser.submitForm(flow.html, '/email', { email, method: 'magic_link' });
      const mail = readSignInMail(await mailTo(email, before));
      const other = new CookieClient(t.baseUrl);
      const elsewhere = await other.follow(mail.link!);
      const page = await elsewhere.response.text();
      expect(elsewhere.response.status).toBe(200);
      expect(page).toContain('started in another browser');
      expect(referenceOn(page)).toBe(mail.reference);
      expect(page).not.toContain('action="/sign-in/link"');
      // A forged POST from the other browser cannot use it either.
      const forged = await other.postForm('/sign-in/link', { token: new URL(mail.link!).searchParams.get('token')! });
      expect(forged.response.status).toBe(400);

      const inbox = await flow.browser.follow(`/interaction/${flow.uid}/code`);
      const done = await flow.browser.submitForm(await inbox.response.text(), '/code', { code: `${mail.code!.slice(0, 3)} ${mail.code!.slice(3)}` });
      expect((await redeem(flow, done)).claims()!.email).toBe(email);
    });

    it('started again in the same browser while waiting: the old link offers a new one for the sign-in open here', async () => {
      const email = uniqueEmail('restarted');
      await createUser({ primaryEmail: email });
      const first = await start();
      let count = smtp.messages.length;
      await first.browser.submitForm(first.html, '/email', { email, method: 'magic_link' });
      const old = readSignInMail(await mailTo(email, count));
      // The app's sign-in button again, in the same browser: a second interaction takes the cookie.
      const second = await start({}, first.browser);
      expect(second.uid).not.toBe(first.uid);
      const landing = await second.browser.follow(old.link!);
      const page = await landing.response.text();
      expect(page).toContain('Send a new link for this browser');
      count = smtp.messages.length;
      const resent = await second.browser.submitForm(page, '/sign-in/link/resend');
      expect(resent.response.status).toBe(200);
      const fresh = readSignInMail(await mailTo(email, count));
      const here = await second.browser.follow(fresh.link!);
      const done = await second.browser.submitForm(await here.response.text(), '/sign-in/link');
      expect((await redeem(second, done)).claims()!.email).toBe(email);
    });

    it('answers identically for known and unknown addresses, and mails only the known one', async () => {
      const known = uniqueEmail('known');
      const unknown = uniqueEmail('unknown');
      await createUser({ primaryEmail: known });
      const answers = [];
      for (const email of [known, unknown]) {
        const flow = await start();
        const response = await experience(flow.browser, '/magic-link', { email });
        answers.push({ status: response.status, body: (await response.json()) as Record<string, unknown>, headers: [...(response.headers as unknown as Map<string, string>).keys()].filter((name) => name !== 'date').sort() });
      }
      const [a, b] = answers;
      expect(a!.status).toBe(200);
      expect(b!.status).toBe(a!.status);
      expect(b!.headers).toEqual(a!.headers);
      expect(Object.keys(b!.body).sort()).toEqual(Object.keys(a!.body).sort());
      expect(a!.body).toMatchObject({ message: 'Magic link sent', expiresIn: 600 });
      expect(b!.body).toMatchObject({ message: 'Magic link sent', expiresIn: 600 });
      await mailTo(known);
      // The known address's mail has arrived; none went to the unknown one.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(smtp.messages.some((mail) => mail.to.includes(unknown))).toBe(false);
    });

    it('supersedes an address’s earlier link when a new one is sent, and offers a fresh one in one click', async () => {
      const email = uniqueEmail('newer');
      await createUser({ primaryEmail: email });
      const flow = await start();
      let count = smtp.messages.length;
      await flow.browser.submitForm(flow.html, '/email', { email, method: 'magic_link' });
      const first = readSignInMail(await mailTo(email, count));
      count = smtp.messages.length;
      const inbox = await flow.browser.follow(`/interaction/${flow.uid}/code`);
      await flow.browser.submitForm(await inbox.response.text(), '/resend');
      const second = readSignInMail(await mailTo(email, count));
      expect(second.reference).not.toBe(first.reference);

      const stale = await flow.browser.follow(first.link!);
      const page = await stale.response.text();
      expect(stale.response.status).toBe(410);
      expect(page).toContain('TOKEN_SUPERSEDED');
      // The old code is dead as well: the interaction's newest mail is what counts.
      count = smtp.messages.length;
      const fresh = await flow.browser.submitForm(page, '/sign-in/link/resend');
      expect(fresh.response.status).toBe(200);
      const third = readSignInMail(await mailTo(email, count));
      expect(await fresh.response.text()).toContain(third.reference!);
      const landing = await flow.browser.follow(third.link!);
      const done = await flow.browser.submitForm(await landing.response.text(), '/sign-in/link');
      expect((await redeem(flow, done)).claims()!.email).toBe(email);
    });

    it('refuses an expired link with TOKEN_EXPIRED and a way to a fresh one', async () => {
      const email = uniqueEmail('late');
      await createUser({ primaryEmail: email });
      const flow = await start();
      const count = smtp.messages.length;
      await flow.browser.submitForm(flow.html, '/email', { email, method: 'magic_link' });
      const mail = readSignInMail(await mailTo(email, count));
      t.advanceClock(601);
      try {
        const landing = await flow.browser.follow(mail.link!);
        const page = await landing.response.text();
        expect(landing.response.status).toBe(410);
        expect(page).toContain('TOKEN_EXPIRED');
        expect(findForm(page, '/sign-in/link/resend').hidden.token).toBe(new URL(mail.link!).searchParams.get('token'));
      } finally {
        t.advanceClock(-601);
      }
    });
  });

  describe('codes', () => {
    it('email code only: a code mail without a link; five wrong codes lock it; a new mail works', async () => {
      await setSettings({ methods: { magicLink: false } });
      const email = uniqueEmail('code');
      await createUser({ primaryEmail: email });
      const flow = await start();
      expect(flow.html).not.toContain('value="magic_link"');
      let count = smtp.messages.length;
      const sent = await flow.browser.submitForm(flow.html, '/email', { email, method: 'email_code' });
      const mail = readSignInMail(await mailTo(email, count));
      expect(mail.link).toBeUndefined();
      expect(mail.code).toMatch(/^\d{6}$/);
      let page = await sent.response.text();
      const wrong = mail.code === '000000' ? '111111' : '000000';
      for (let attempt = 1; attempt <= 5; attempt += 1) {
        const result = await flow.browser.submitForm(page, '/code', { code: wrong });
        page = await result.response.text();
        if (attempt < 5) {
          expect(result.response.status).toBe(400);
          expect(page).toContain('aria-invalid="true"');
          expect(page).toContain('aria-describedby="code-error');
        } else {
          expect(result.response.status).toBe(410);
          expect(page).toContain('Too many wrong codes');
        }
      }
      const locked = await flow.browser.submitForm(page, '/code', { code: mail.code! });
      expect(locked.response.status).toBe(410);
      count = smtp.messages.length;
      await flow.browser.submitForm(await locked.response.text(), '/resend');
      const next = readSignInMail(await mailTo(email, count));
      const inbox = await flow.browser.follow(`/interaction/${flow.uid}/code`);
      const done = await flow.browser.submitForm(await inbox.response.text(), '/code', { code: next.code! });
      expect((await redeem(flow, done)).claims()!.email).toBe(email);
    });

    it('the JSON API: email-code then code answers {redirectTo}; errors carry the seeds’ codes', async () => {
      const email = uniqueEmail('api');
      await createUser({ primaryEmail: email });
      const flow = await start();
      const invalid = await experience(flow.browser, '/email-code', { email: 'not-an-email' });
      expect(invalid.status).toBe(400);
      expect(await invalid.json()).toMatchObject({ code: 'EMAIL_INVALID' });
      const count = smtp.messages.length;
      const sent = await experience(flow.browser, '/email-code', { email });
      expect(sent.status).toBe(200);
      const mail = readSignInMail(await mailTo(email, count));
      const state = await experience(flow.browser, '', undefined, 'GET');
      expect(await state.json()).toMatchObject({ uid: flow.uid, pending: { email, purpose: 'email_code', reference: mail.reference } });
      const wrong = await experience(flow.browser, '/code', { code: mail.code === '123456' ? '654321' : '123456' });
      expect(wrong.status).toBe(400);
      expect(await wrong.json()).toMatchObject({ code: 'OTP_INVALID', attemptsLeft: 4 });
      const right = await experience(flow.browser, '/code', { code: mail.code });
      expect(right.status).toBe(200);
      const { redirectTo } = (await right.json()) as { redirectTo: string };
      const done = await flow.browser.follow(redirectTo);
      expect((await redeem(flow, done)).claims()!.email).toBe(email);
    });

    it('signs up an unknown address only when passwordless sign-up is on', async () => {
      await setSettings({ passwordlessSignUp: true });
      const email = uniqueEmail('newcomer');
      const flow = await start();
      const count = smtp.messages.length;
      await flow.browser.submitForm(flow.html, '/email', { email, method: 'email_code' });
      const mail = readSignInMail(await mailTo(email, count));
      const inbox = await flow.browser.follow(`/interaction/${flow.uid}/code`);
      const done = await flow.browser.submitForm(await inbox.response.text(), '/code', { code: mail.code! });
      expect((await redeem(flow, done)).claims()).toMatchObject({ email, email_verified: true });
      const users = await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: adminToken });
      expect(users.body).toHaveLength(1);
    });
  });

  describe('passwords', () => {
    it('signs in with a password; unknown address, no password and wrong password answer the same', async () => {
      await setSettings({ methods: { password: true } });
      const email = uniqueEmail('pwd');
      const linkOnly = uniqueEmail('nopwd');
      await createUser({ primaryEmail: email, password: 'correct horse battery' });
      await createUser({ primaryEmail: linkOnly });
      const bodies = [];
      for (const [address, password] of [
        [email, 'wrong password!'],
        [uniqueEmail('ghost'), 'wrong password!'],
        [linkOnly, 'wrong password!'],
      ] as const) {
        const flow = await start();
        const response = await experience(flow.browser, '/password', { email: address, password });
        bodies.push({ status: response.status, body: await response.json() });
      }
      expect(bodies[0]).toEqual({ status: 401, body: { code: 'INVALID_CREDENTIALS', message: expect.any(String) } });
      expect(bodies[1]).toEqual(bodies[0]);
      expect(bodies[2]).toEqual(bodies[0]);

      // The hosted page: the method button leads to the password form, which signs in.
      const flow = await start();
      const form = await flow.browser.submitForm(flow.html, '/email', { email, method: 'password' });
      const done = await flow.browser.submitForm(await form.response.text(), '/password', { email, password: 'correct horse battery' });
      expect((await redeem(flow, done)).claims()).toMatchObject({ email, amr: ['pwd'] });
    });

    it('refuses passwords when the method is off', async () => {
      const flow = await start();
      expect(flow.html).not.toContain('value="password"');
      const response = await experience(flow.browser, '/password', { email: uniqueEmail(), password: 'whatever123' });
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ code: 'SIGN_IN_METHOD_DISABLED' });
    });

    it('registers with a strong password after the mailbox is proven; first_screen=register opens the form', async () => {
      await setSettings({ methods: { password: true }, registration: true });
      const email = uniqueEmail('register');
      const flow = await start({ first_screen: 'register' });
      expect(flow.html).toContain('autocomplete="new-password"');
      const weak = await flow.browser.submitForm(flow.html, '/register', { email, password: 'password123' });
      expect(weak.response.status).toBe(400);
      const weakPage = await weak.response.text();
      expect(weakPage).toContain('aria-describedby="password-error');
      const count = smtp.messages.length;
      const sent = await flow.browser.submitForm(weakPage, '/register', { email, password: 'a long and unusual one' });
      expect(sent.url.pathname).toBe(`/interaction/${flow.uid}/code`);
      const mail = readSignInMail(await mailTo(email, count));
      const done = await flow.browser.submitForm(await sent.response.text(), '/code', { code: mail.code! });
      expect((await redeem(flow, done)).claims()!.email).toBe(email);

      const again = await start();
      const signedIn = await experience(again.browser, '/password', { email, password: 'a long and unusual one' });
      expect(signedIn.status).toBe(200);
    });

    it('does not touch an existing account’s password when someone registers its address', async () => {
      await setSettings({ methods: { password: true }, registration: true });
      const email = uniqueEmail('taken');
      await createUser({ primaryEmail: email, password: 'the original one' });
      const flow = await start();
      const count = smtp.messages.length;
      const sent = await experience(flow.browser, '/register', { email, password: 'an attacker choice' });
      expect(sent.status).toBe(200);
      const mail = await mailTo(email, count);
      expect(mail.text).toContain('You already have an account');
      const later = await start();
      expect((await experience(later.browser, '/password', { email, password: 'an attacker choice' })).status).toBe(401);
      expect((await experience(later.browser, '/password', { email, password: 'the original one' })).status).toBe(200);
    });
  });

  describe('one-time tokens and account switching', () => {
    async function signInWithToken(email: string, browser = new CookieClient(t.baseUrl), extra: Record<string, string> = {}) {
      const minted = await mintToken(t, adminToken, { email });
      const flow = await start({ one_time_token: minted.token, login_hint: email, ...extra }, browser);
      return { flow, minted };
    }

    it('offers to keep the current account (token unused) or to switch; prompt=login does not ask', async () => {
      const first = uniqueEmail('first');
      const second = uniqueEmail('second');
      const a = await signInWithToken(first);
      const doneA = await a.flow.browser.submitForm(a.flow.html, 'one-time-token');
      await redeem(a.flow, doneA);

      const b = await signInWithToken(second, a.flow.browser);
      expect(b.flow.html).toContain('Switch accounts?');
      const kept = await b.flow.browser.submitForm(b.flow.html, '/keep');
      expect((await redeem(b.flow, kept)).claims()!.email).toBe(first);
      expect((await api(t, 'GET', `/api/one-time-tokens/${b.minted.id}`, { token: adminToken })).body.status).toBe('active');

      const c = await start({ one_time_token: b.minted.token, login_hint: second }, a.flow.browser);
      const switched = await throughSessionSwitch(c.browser, await c.browser.submitForm(c.html, 'one-time-token'), t.baseUrl);
      expect((await redeem(c, switched)).claims()!.email).toBe(second);

      const d = await signInWithToken(first, a.flow.browser, { prompt: 'login' });
      expect(d.flow.html).not.toContain('Switch accounts?');
      expect(d.flow.html).toContain(`Continue as <span class="email">${first}</span>`);
    });

    it('marks the landing for auto-continue when the settings ask, and offers a fresh link for a dead token', async () => {
      await setSettings({ autoContinueOneTimeToken: true });
      const email = uniqueEmail('auto');
      const { flow } = await signInWithToken(email);
      expect(flow.html).toContain('data-auto-submit');
      expect(flow.html).toContain('<script src="/static/experience.js" defer></script>');
      await redeem(flow, await flow.browser.submitForm(flow.html, 'one-time-token'));

      const minted = await mintToken(t, adminToken, { email });
      await api(t, 'DELETE', `/api/one-time-tokens/${minted.id}`, { token: adminToken });
      const dead = await start({ one_time_token: minted.token, login_hint: email });
      const failed = await dead.browser.submitForm(dead.html, 'one-time-token');
      const page = await failed.response.text();
      expect(failed.response.status).toBe(410);
      const count = smtp.messages.length;
      const fresh = await dead.browser.submitForm(page, '/new-link');
      expect(fresh.url.pathname).toBe(`/interaction/${dead.uid}/code`);
      expect(readSignInMail(await mailTo(email, count)).link).toBeDefined();
    });
  });

  describe('third-party applications', () => {
    it('asks for consent, listing the scopes; deny returns access_denied, allow returns a code', async () => {
      const created = await api(t, 'POST', '/api/applications', {
        token: adminToken,
        body: { name: 'Partner app', type: 'Traditional', isThirdParty: true, oidcClientMetadata: { redirectUris: [REDIRECT_URI] } },
      });
      expect(created.status).toBe(201);
      expect(created.body.isThirdParty).toBe(true);
      const partner = await oidc.discovery(new URL(t.issuer), created.body.id, created.body.secret, undefined, { execute: [oidc.allowInsecureRequests] });
      const email = uniqueEmail('consent');
      for (const decision of ['deny', 'accept'] as const) {
        const minted = await mintToken(t, adminToken, { email });
        const verifier = oidc.randomPKCECodeVerifier();
        const url = oidc.buildAuthorizationUrl(partner, {
          redirect_uri: REDIRECT_URI,
          scope: 'openid email profile',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state: decision,
          one_time_token: minted.token,
          login_hint: email,
        });
        const browser = new CookieClient(t.baseUrl);
        const landing = await browser.follow(url.toString());
        const signedIn = await browser.submitForm(await landing.response.text(), 'one-time-token');
        const consent = await signedIn.response.text();
        expect(consent).toContain('Partner app wants to access your account');
        expect(consent).toContain('Your email address');
        expect(consent).toContain('Your name and profile');
        const done = await browser.submitForm(consent, '/consent', { decision });
        expect(done.url.origin).toBe(new URL(REDIRECT_URI).origin);
        if (decision === 'deny') {
          expect(done.url.searchParams.get('error')).toBe('access_denied');
        } else {
          const tokens = await oidc.authorizationCodeGrant(partner, done.url, { pkceCodeVerifier: verifier, expectedState: 'accept' });
          expect(tokens.claims()!.email).toBe(email);
        }
      }
    });
  });

  describe('mail failures', () => {
    it('reports a mail that could not be sent as a retryable error, and the earlier link keeps working', async () => {
      const email = uniqueEmail('smtpdown');
      await createUser({ primaryEmail: email });
      const flow = await start();
      const count = smtp.messages.length;
      await flow.browser.submitForm(flow.html, '/email', { email, method: 'magic_link' });
      const earlier = readSignInMail(await mailTo(email, count));
      // A second instance on the same database whose mail server is down.
      const down = await startTestSesame({ SMTP_URL: 'smtp://127.0.0.1:9' }, { db: own.db, baseUrl: t.baseUrl });
      try {
        const browser = flow.browser.atOrigin(down.listenUrl);
        const inbox = await browser.follow(`/interaction/${flow.uid}/code`);
        const form = findForm(await inbox.response.text(), '/resend');
        const failed = await browser.request(form.action, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
          body: new URLSearchParams(form.hidden),
        });
        expect(failed.status).toBe(502);
        expect(await failed.text()).toContain('could not be sent');
        const json = await browser.request('/api/experience/resend', { method: 'POST', headers: { origin: t.baseUrl } });
        expect(json.status).toBe(502);
        expect(await json.json()).toMatchObject({ code: 'MAIL_NOT_SENT' });
      } finally {
        await down.close();
      }
      const landing = await flow.browser.follow(earlier.link!);
      const done = await flow.browser.submitForm(await landing.response.text(), '/sign-in/link');
      expect((await redeem(flow, done)).claims()!.email).toBe(email);
    });
  });

  describe('pages', () => {
    it('speaks German for ui_locales=de, Japanese for Accept-Language ja, and mails in the page’s language', async () => {
      const german = await start({ ui_locales: 'de' });
      expect(german.html).toContain('<html lang="de">');
      const japanese = new CookieClient(t.baseUrl).withHeaders({ 'accept-language': 'ja-JP,ja;q=0.9,en;q=0.5' });
      const ja = await start({}, japanese);
      expect(ja.html).toContain('<html lang="ja">');
      expect(ja.html).not.toEqual(german.html);

      const email = uniqueEmail('deutsch');
      await createUser({ primaryEmail: email });
      const count = smtp.messages.length;
      await german.browser.submitForm(german.html, '/email', { email, method: 'magic_link' });
      const mail = await mailTo(email, count);
      expect(mail.html).toContain('<html lang="de"');
      expect(mail.subject).not.toBe('Sign in to Test app');
    });

    it('localizes the provider’s own pages: the logout confirmation and error pages with a way back to the app', async () => {
      const email = uniqueEmail('bye');
      const minted = await mintToken(t, adminToken, { email });
      const flow = await start({ one_time_token: minted.token, login_hint: email });
      await redeem(flow, await flow.browser.submitForm(flow.html, 'one-time-token'));
      const logout = await flow.browser.withHeaders({ 'accept-language': 'de-DE,de;q=0.9' }).request('/oidc/session/end');
      const logoutPage = await logout.text();
      expect(logoutPage).toContain('<html lang="de">');
      expect(logoutPage).toContain(`<h1>${de['logout.title']}</h1>`);
      // Confirmed (in an English-speaking browser now): the "signed out" page keeps the confirmation's language.
      const confirm = findForm(logoutPage, '/session/end/confirm');
      const done = await flow.browser.withHeaders({ 'accept-language': 'en' }).follow(confirm.action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
        body: new URLSearchParams({ ...confirm.hidden, logout: 'yes' }),
      });
      const signedOut = await done.response.text();
      expect(signedOut).toContain('<html lang="de">');
      expect(signedOut).toContain(de['logout.doneTitle']);

      // An unregistered redirect URI cannot be redirected to: the page explains and links to the app's own origin.
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: 'https://evil.example/cb', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const error = await fetch(url.toString().replace(t.baseUrl, t.listenUrl), { headers: { 'accept-language': 'ja' } });
      const errorPage = await error.text();
      expect(error.status).toBe(400);
      expect(errorPage).toContain('<html lang="ja">');
      expect(errorPage).toContain(ja['error.title']);
      expect(errorPage).toContain(`<a class="button" href="${new URL(REDIRECT_URI).origin}/">${ja['common.back']}</a>`);
      expect(errorPage).not.toContain('evil.example');
    });

    it('sends the security headers and CSRF tokens; refuses a form without its token', async () => {
      const flow = await start();
      const headers = flow.landing.response.headers;
      expect(headers.get('cache-control')).toBe('no-store');
      expect(headers.get('referrer-policy')).toBe('no-referrer');
      const csp = headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(findForm(flow.html, '/email').hidden.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const forged = await flow.browser.postForm(`/interaction/${flow.uid}/email`, { email: uniqueEmail(), method: 'magic_link', csrf: 'x'.repeat(43) });
      expect(forged.response.status).toBe(403);
    });

    it('validates the settings and applies branding', async () => {
      const bad = await api(t, 'PUT', '/api/sign-in-exp', { token: adminToken, body: { branding: { primaryColor: 'red' } } });
      expect(bad.status).toBe(400);
      const insecureLogo = await api(t, 'PUT', '/api/sign-in-exp', { token: adminToken, body: { branding: { logoUrl: 'http://example.test/logo.png' } } });
      expect(insecureLogo.status).toBe(400);
      const updated = await setSettings({ branding: { name: 'Acme', primaryColor: '#aa3300', logoUrl: 'https://cdn.example.test/logo.png' } });
      expect(updated).toMatchObject({ ...defaults, branding: { name: 'Acme', primaryColor: '#aa3300', logoUrl: 'https://cdn.example.test/logo.png' } });
      const flow = await start();
      expect(flow.html).toContain('<link rel="stylesheet" href="/static/theme.css?accent=aa3300">');
      expect(flow.html).toContain('<img src="https://cdn.example.test/logo.png" alt="Acme"');
      expect(flow.landing.response.headers.get('content-security-policy')).toContain("img-src 'self' data: https://cdn.example.test;");
      const theme = await fetch(`${t.listenUrl}/static/theme.css?accent=aa3300`);
      expect(await theme.text()).toContain('--accent: #aa3300');
      expect((await fetch(`${t.listenUrl}/static/theme.css?accent=red;}body{`)).status).toBe(404);
    });
  });
});
