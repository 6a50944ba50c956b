import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAuthorization } from '../helpers/sign-in.ts';
import { CookieClient } from '../helpers/browser-client.ts';
import { databaseKind, openOwnDatabase, uniqueEmail } from '../helpers/db.ts';
import { api, authenticatorClock, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const REDIRECT_URI = 'http://127.0.0.1:5993/callback';

describe(`second factors in the sign-in (${databaseKind})`, () => {
  let t: TestSesame;
  let own: Awaited<ReturnType<typeof openOwnDatabase>>;
  let config: oidc.Configuration;
  let admin: string;
  /** Sesame's clock, which the tests move forward so each TOTP step is fresh. */
  const { advance, codeFor } = authenticatorClock(() => t);

  beforeAll(async () => {
    own = await openOwnDatabase();
    t = await startTestSesame({}, { db: own.db });
    admin = await managementToken(t);
    const app = await createTestApplication(t, admin, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await t?.close();
    await own?.close();
  });
  beforeEach(async () => {
    await settings({ mfa: { policy: 'off', totpOnlySignIn: false }, methods: { password: false } });
  });

  async function settings(body: Record<string, unknown>) {
    const response = await api(t, 'PUT', '/api/sign-in-exp', { token: admin, body });
    expect(response.status).toBe(200);
  }

  const start = (extra: Record<string, string> = {}, browser?: CookieClient) => startAuthorization(t, config, REDIRECT_URI, extra, browser);

  /** A one-time-token sign-in up to whatever page follows Continue. */
  async function signInWithToken(email: string, browser?: CookieClient, extra: Record<string, string> = {}) {
    const minted = await mintToken(t, admin, { email });
    const flow = await start({ one_time_token: minted.token, login_hint: email, ...extra }, browser);
    const next = await flow.browser.submitForm(flow.html, 'one-time-token');
    return { ...flow, next, page: await next.response.text() };
  }

  async function redeem(flow: { verifier: string; state: string }, url: URL) {
    expect(url.origin + url.pathname).toBe(REDIRECT_URI);
    return oidc.authorizationCodeGrant(config, url, { pkceCodeVerifier: flow.verifier, expectedState: flow.state });
  }

  /** Enrols an authenticator inside a sign-in (MFA required); answers the secret and the backup codes. */
  async function enrolDuringSignIn(email: string) {
    await settings({ mfa: { policy: 'required' } });
    const flow = await signInWithToken(email);
    expect(flow.page).toContain('Set up two-step verification');
    expect(flow.page).not.toContain('/mfa/skip'); // required: no way around it but back to the app
    const enroll = await flow.browser.submitForm(flow.page, '/mfa/enroll');
    const qrPage = await enroll.response.text();
    expect(qrPage).toMatch(/<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+" alt=/);
    const secret = /data-secret>([A-Z2-7 ]+)</.exec(qrPage)![1]!.replace(/ /g, '');
    expect(secret).toHaveLength(32); // 20 bytes in base32

    const wrong = await flow.browser.submitForm(qrPage, '/mfa/confirm', { code: codeFor(secret) === '000000' ? '111111' : '000000' });
    expect(wrong.response.status).toBe(400);
    const again = await wrong.response.text();
    expect(again).toContain(`data-secret>${secret.replace(/(.{4})/g, '$1 ').trim()}<`); // the same key, not a new one
    const confirmed = await flow.browser.submitForm(again, '/mfa/confirm', { code: codeFor(secret) });
    const codesPage = await confirmed.response.text();
    const backupCodes = [...codesPage.matchAll(/<li><code>([A-Z0-9-]+)<\/code><\/li>/g)].map((match) => match[1]!);
    expect(backupCodes).toHaveLength(10);
    const done = await flow.browser.submitForm(codesPage, '/mfa/continue');
    const tokens = await redeem(flow, done.url);
    return { secret, backupCodes, tokens, browser: flow.browser };
  }

  it('enrols inside the sign-in when MFA is required, and the tokens say two factors were used', async () => {
    const email = uniqueEmail('enrol');
    const { tokens } = await enrolDuringSignIn(email);
    const claims = tokens.claims()!;
    expect(claims.email).toBe(email);
    expect(claims.amr).toEqual(['email', 'otp', 'mfa']);
    expect(claims.acr).toBe('mfa');
  });

  it('asks a user with an authenticator after any first factor; a code works once; the session then signs in silently', async () => {
    const email = uniqueEmail('verify');
    const { secret } = await enrolDuringSignIn(email);
    await settings({ mfa: { policy: 'off' } });
    advance(60);

    const flow = await signInWithToken(email);
    expect(flow.page).toContain('Two-step verification');
    const wrong = await flow.browser.submitForm(flow.page, '/mfa', { code: codeFor(secret) === '123456' ? '654321' : '123456' });
    expect(wrong.response.status).toBe(400);
    const wrongPage = await wrong.response.text();
    expect(wrongPage).toContain('aria-describedby="code-error"');
    const code = codeFor(secret);
    const done = await flow.browser.submitForm(wrongPage, '/mfa', { code });
    expect((await redeem(flow, done.url)).claims()!.amr).toEqual(['email', 'otp', 'mfa']);

    // The same code again, in another sign-in within its time step: refused (replay).
    const replay = await signInWithToken(email);
    const replayed = await replay.browser.submitForm(replay.page, '/mfa', { code });
    expect(replayed.response.status).toBe(400);

    // The first browser's session has the second factor: prompt=none signs in without asking.
    const silent = await start({ prompt: 'none' }, flow.browser);
    const tokens = await redeem(silent, silent.landing.url);
    expect(decodeJwt(tokens.id_token!).amr).toEqual(['email', 'otp', 'mfa']);

    // A session with the first factor only is not enough for prompt=none.
    const halfway = await signInWithToken(email);
    const none = await start({ prompt: 'none' }, halfway.browser);
    expect(none.landing.url.searchParams.get('error')).toBe('interaction_required');
  });

  it('takes a backup code once and says how many are left', async () => {
    const email = uniqueEmail('backup');
    const { backupCodes } = await enrolDuringSignIn(email);
    await settings({ mfa: { policy: 'off' } });
    const flow = await signInWithToken(email);
    const used = await flow.browser.submitForm(flow.page, '/mfa', { backupCode: backupCodes[0]!.toLowerCase().replace(/-/g, ' ') });
    const page = await used.response.text();
    expect(page).toContain('You have 9 backup codes left');
    const continueTo = /<a class="button" href="([^"]+)"/.exec(page)![1]!.replace(/&amp;/g, '&');
    const done = await flow.browser.follow(continueTo);
    expect((await redeem(flow, done.url)).claims()!.acr).toBe('mfa');

    const again = await signInWithToken(email);
    const reused = await again.browser.submitForm(again.page, '/mfa', { backupCode: backupCodes[0]! });
    expect(reused.response.status).toBe(400);
  });

  it('locks the factor for the sign-in after five wrong codes', async () => {
    const email = uniqueEmail('lock');
    const { secret } = await enrolDuringSignIn(email);
    await settings({ mfa: { policy: 'off' } });
    advance(60);
    const flow = await signInWithToken(email);
    let page = flow.page;
    const wrong = codeFor(secret) === '000000' ? '111111' : '000000';
    let last: Response | undefined;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const result = await flow.browser.submitForm(page, '/mfa', { code: wrong });
      last = result.response;
      page = await result.response.text();
    }
    expect(last!.status).toBe(429);
    expect(page).toContain('FACTOR_LOCKED');
    // Even the right code is refused now in this sign-in.
    const api2 = await flow.browser.request('/api/experience/mfa', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: t.baseUrl },
      body: JSON.stringify({ code: codeFor(secret) }),
    });
    expect(api2.status).toBe(429);
    expect(await api2.json()).toMatchObject({ code: 'FACTOR_LOCKED' });
  });

  it('offers enrolment once when MFA is optional; skipping is remembered', async () => {
    await settings({ mfa: { policy: 'optional' } });
    const email = uniqueEmail('optional');
    const flow = await signInWithToken(email);
    expect(flow.page).toContain('Protect your account');
    const skipped = await flow.browser.submitForm(flow.page, '/mfa/skip');
    expect((await redeem(flow, skipped.url)).claims()!.amr).toEqual(['email']);
    const again = await signInWithToken(email);
    expect(again.next.url.origin + again.next.url.pathname).toBe(REDIRECT_URI);
  });

  it('steps up with acr_values=mfa inside an existing session', async () => {
    const email = uniqueEmail('stepup');
    const first = await signInWithToken(email);
    await redeem(first, first.next.url);
    const stepUp = await start({ acr_values: 'mfa' }, first.browser);
    expect(stepUp.html).toContain('Set up two-step verification');
  });

  it('max_age=0 asks for both factors again inside a session that had them', async () => {
    const email = uniqueEmail('max-age');
    const { secret, browser } = await enrolDuringSignIn(email);
    await settings({ mfa: { policy: 'off' } });
    advance(60);
    const again = await signInWithToken(email, browser, { max_age: '0' });
    expect(again.page).toContain('Two-step verification');
    const done = await again.browser.submitForm(again.page, '/mfa', { code: codeFor(secret) });
    const claims = (await redeem(again, done.url)).claims()!;
    expect(claims.acr).toBe('mfa');
    expect(typeof claims.auth_time).toBe('number');
  });

  it('signs in with email + authenticator code alone when TOTP-only sign-in is on; unknown addresses answer like wrong codes', async () => {
    const email = uniqueEmail('totp-only');
    const { secret } = await enrolDuringSignIn(email);
    await settings({ mfa: { policy: 'off', totpOnlySignIn: true } });
    advance(60);
    const flow = await start({});
    expect(flow.html).toContain('value="totp"');
    const form = await flow.browser.submitForm(flow.html, '/email', { email, method: 'totp' });
    const page = await form.response.text();
    const unknown = await flow.browser.submitForm(page, '/totp', { email: uniqueEmail('nobody'), code: codeFor(secret) });
    const wrong = await flow.browser.submitForm(page, '/totp', { email, code: codeFor(secret) === '000000' ? '111111' : '000000' });
    expect(unknown.response.status).toBe(400);
    expect(wrong.response.status).toBe(400);
    const message = (html: string) => /id="code-error"[^>]*>([^<]+)</.exec(html)?.[1];
    expect(message(await unknown.response.text())).toBe(message(await wrong.response.text()));
    const done = await flow.browser.submitForm(page, '/totp', { email, code: codeFor(secret) });
    expect((await redeem(flow, done.url)).claims()!.amr).toEqual(['otp']);
  });

  it('password + MFA over the JSON API: requiresTotp, then {code}', async () => {
    const email = uniqueEmail('pwd-mfa');
    const { secret } = await enrolDuringSignIn(email);
    const users = await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: admin });
    await api(t, 'PATCH', `/api/users/${users.body[0].id}/password`, { token: admin, body: { password: 'a strong password here' } });
    await settings({ mfa: { policy: 'off' }, methods: { password: true } });
    advance(60);
    const flow = await start({});
    const json = (path: string, body: unknown) =>
      flow.browser.request(`/api/experience${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: t.baseUrl },
        body: JSON.stringify(body),
      });
    const password = await json('/password', { email, password: 'a strong password here' });
    const answer = (await password.json()) as { redirectTo: string; requiresTotp: boolean };
    expect(answer.requiresTotp).toBe(true);
    const mfaStep = await flow.browser.follow(answer.redirectTo);
    expect(mfaStep.url.pathname).toMatch(/^\/interaction\//);
    const state = await flow.browser.request('/api/experience');
    expect(await state.json()).toMatchObject({ prompt: 'mfa', mfa: { mode: 'verify' } });
    const verified = await json('/mfa', { code: codeFor(secret) });
    const { redirectTo } = (await verified.json()) as { redirectTo: string };
    const done = await flow.browser.follow(redirectTo);
    expect((await redeem(flow, done.url)).claims()!.amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  describe('a second step after an email first factor', () => {
    const latestMailTo = (email: string) => t.sesame.outbox!.list().find((mail) => mail.to === email);
    const codeIn = (text: string) => /^\s*(\d{3}) (\d{3})\s*$/m.exec(text)!.slice(1).join('');

    it('email_otp: a one-time token, then a 5-minute code by mail; the JSON API answers requiresOtp', async () => {
      await settings({ mfa: { afterMagicLink: 'email_otp' } });
      try {
        const email = uniqueEmail('otp-after-link');
        const flow = await signInWithToken(email);
        expect(flow.next.url.pathname).toMatch(/\/code$/);
        expect(flow.page).toContain('We sent a 6-digit code');
        const mail = latestMailTo(email)!;
        expect(mail.text).toContain('5 minutes');
        const done = await flow.browser.submitForm(flow.page, '/code', { code: codeIn(mail.text) });
        expect((await redeem(flow, done.url)).claims()!.amr).toEqual(['email']); // the same mailbox twice is one factor

        const minted = await mintToken(t, admin, { email });
        const api2 = await start({ one_time_token: minted.token, login_hint: email });
        const answer = await api2.browser.request('/api/experience/one-time-token', {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin: t.baseUrl },
          body: '{}',
        });
        expect(await answer.json()).toMatchObject({ requiresOtp: true, magicLinkId: expect.any(String), otpExpiresIn: 300 });
      } finally {
        await settings({ mfa: { afterMagicLink: 'none' } });
      }
    });

    it('totp: an authenticator is set up (or asked for) after a link, but not after a password', async () => {
      await settings({ mfa: { afterMagicLink: 'totp' }, methods: { password: true } });
      try {
        const email = uniqueEmail('totp-after-link');
        const flow = await signInWithToken(email);
        expect(flow.page).toContain('Set up two-step verification');
        await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: uniqueEmail('unused') } });
        const pwdEmail = uniqueEmail('pwd-only');
        await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: pwdEmail, password: 'a fine password' } });
        const pwd = await start({});
        const form = await pwd.browser.submitForm(pwd.html, '/email', { email: pwdEmail, method: 'password' });
        const done = await pwd.browser.submitForm(await form.response.text(), '/password', { email: pwdEmail, password: 'a fine password' });
        expect(done.url.origin + done.url.pathname).toBe(REDIRECT_URI);
      } finally {
        await settings({ mfa: { afterMagicLink: 'none' }, methods: { password: false } });
      }
    });
  });

  describe('self-service (/api/my-account/mfa) and the Management API', () => {
    /** A user's access token for the my-account resource, from an ordinary sign-in. */
    async function accountToken(email: string) {
      const minted = await mintToken(t, admin, { email });
      const flow = await start({ one_time_token: minted.token, login_hint: email, scope: 'openid email account', resource: `${t.baseUrl}/api/my-account` });
      const done = await flow.browser.submitForm(flow.html, 'one-time-token');
      const tokens = await redeem(flow, done.url);
      const claims = decodeJwt(tokens.access_token);
      expect(claims.aud).toBe(`${t.baseUrl}/api/my-account`);
      return tokens.access_token;
    }
    const mine = (token: string, method: string, path: string, body?: unknown) => api(t, method, `/api/my-account${path}`, { token, body });

    it('enrols, confirms, renews backup codes and disables an authenticator with the user’s own token', async () => {
      const email = uniqueEmail('self');
      const token = await accountToken(email);
      expect((await mine(token, 'GET', '/mfa')).body).toEqual({ totp: false, backupCodesLeft: 0 });
      const enrolled = await mine(token, 'POST', '/mfa/totp/enroll');
      expect(enrolled.status).toBe(200);
      expect(enrolled.body.qrCodeUri).toMatch(/^otpauth:\/\/totp\/.+\?secret=[A-Z2-7]{32}&issuer=/);
      expect(enrolled.body.backupCodes).toHaveLength(10);
      expect((await mine(token, 'POST', '/mfa/totp/confirm', { code: '000000' === codeFor(enrolled.body.secret) ? '111111' : '000000' })).status).toBe(400);
      expect((await mine(token, 'POST', '/mfa/totp/confirm', { code: codeFor(enrolled.body.secret) })).body).toEqual({ enabled: true });
      expect((await mine(token, 'GET', '/mfa')).body).toEqual({ totp: true, backupCodesLeft: 10 });
      expect((await mine(token, 'POST', '/mfa/totp/enroll')).status).toBe(409);

      advance(60);
      const renewed = await mine(token, 'POST', '/mfa/backup-codes/regenerate', { code: codeFor(enrolled.body.secret) });
      expect(renewed.body.backupCodes).toHaveLength(10);
      expect((await mine(token, 'POST', '/mfa/totp/disable', { backupCode: enrolled.body.backupCodes[0] })).status).toBe(400); // the old ones died
      expect((await mine(token, 'POST', '/mfa/totp/disable', { backupCode: renewed.body.backupCodes[0] })).body).toEqual({ disabled: true });
      expect((await mine(token, 'GET', '/mfa')).body).toEqual({ totp: false, backupCodesLeft: 0 });
    });

    it('refuses other tokens: none, a Management API token, a forged one', async () => {
      expect((await api(t, 'GET', '/api/my-account/mfa')).status).toBe(401);
      expect((await api(t, 'GET', '/api/my-account/mfa', { token: admin })).status).toBe(401);
      expect((await api(t, 'GET', '/api/my-account/mfa', { token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' })).status).toBe(401);
    });

    it('lists and resets a user’s factors through the Management API', async () => {
      const email = uniqueEmail('reset');
      await enrolDuringSignIn(email);
      const users = await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: admin });
      const userId = users.body[0].id as string;
      const listed = await api(t, 'GET', `/api/users/${userId}/mfa-verifications`, { token: admin });
      expect(listed.body.map((v: { type: string }) => v.type)).toEqual(['Totp', 'BackupCode']);
      expect(listed.body[1].remainingCodes).toBe(10);
      expect((await api(t, 'DELETE', `/api/users/${userId}/mfa-verifications/${listed.body[0].id}`, { token: admin })).status).toBe(204);
      expect((await api(t, 'GET', `/api/users/${userId}/mfa-verifications`, { token: admin })).body).toEqual([]);
      expect((await api(t, 'DELETE', `/api/users/${userId}/mfa-verifications/${listed.body[0].id}`, { token: admin })).status).toBe(404);
      // Reset: the next sign-in (MFA off) needs no second factor.
      await settings({ mfa: { policy: 'off' } });
      const flow = await signInWithToken(email);
      expect(flow.next.url.origin + flow.next.url.pathname).toBe(REDIRECT_URI);
    });
  });
});
