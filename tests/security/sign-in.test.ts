import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timeStep, totpCode } from '../../src/mfa/index.ts';
import { CookieClient, findForm } from '../helpers/browser-client.ts';
import { databaseKind, openOwnDatabase, uniqueEmail } from '../helpers/db.ts';
import { startAuthorization } from '../helpers/sign-in.ts';
import { api, createTestApplication, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.ts';

const REDIRECT_URI = 'http://127.0.0.1:5991/callback';
/** The test's mail server answers this much later: a leak would show as this difference. */
const SMTP_DELAY_MS = 100;

describe(`sign-in experience attacks (${databaseKind})`, () => {
  let t: TestSesame;
  let own: Awaited<ReturnType<typeof openOwnDatabase>>;
  let smtp: SmtpCapture;
  let admin: string;
  let config: oidc.Configuration;

  beforeAll(async () => {
    smtp = await startSmtpCapture({ delayMs: SMTP_DELAY_MS });
    own = await openOwnDatabase();
    t = await startTestSesame({ SMTP_URL: smtp.url }, { db: own.db });
    admin = await managementToken(t);
    const app = await createTestApplication(t, admin, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
    await api(t, 'PUT', '/api/sign-in-exp', { token: admin, body: { methods: { password: true }, registration: true, mfa: { totpOnlySignIn: true } } });
  });
  afterAll(async () => {
    await t?.close();
    await own?.close();
    await smtp?.close();
  });

  const start = (extra: Record<string, string> = {}) => startAuthorization(t, config, REDIRECT_URI, extra);


  const json = (browser: CookieClient, path: string, body: unknown, headers: Record<string, string> = {}) =>
    browser.request(`/api/experience${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: t.baseUrl, ...headers },
      body: JSON.stringify(body),
    });

  it('login CSRF: every hosted form refuses a post without its CSRF token, with another one, or from another site', async () => {
    const flow = await start();
    const csrf = findForm(flow.html, '/email').hidden.csrf!;
    const other = await start();
    const otherCsrf = findForm(other.html, '/email').hidden.csrf!;
    expect(otherCsrf).not.toBe(csrf);
    const forms = ['email', 'code', 'resend', 'new-link', 'password', 'register', 'totp', 'mfa', 'mfa/enroll', 'mfa/confirm', 'mfa/continue', 'mfa/skip', 'one-time-token', 'keep', 'consent', 'abort'];
    for (const form of forms) {
      const path = `/interaction/${flow.uid}/${form}`;
      const post = (fields: Record<string, string>, origin = t.baseUrl) =>
        flow.browser.request(path, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin, accept: 'text/html' },
          body: new URLSearchParams({ email: uniqueEmail('csrf'), password: 'whatever123', code: '123456', ...fields }),
        });
      expect((await post({})).status, `${form} without a token`).toBe(403);
      expect((await post({ csrf: otherCsrf })).status, `${form} with another interaction's token`).toBe(403);
      expect((await post({ csrf }, 'https://evil.example')).status, `${form} from another site`).toBe(403);
    }
    // The link form: a cross-site post cannot use a link for the victim's browser either.
    const link = await flow.browser.request('/sign-in/link', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: new URLSearchParams({ token: 'x', csrf }),
    });
    expect(link.status).toBe(403);
    // Nothing was sent by any of it.
    expect(smtp.messages).toHaveLength(0);
  });

  it('enumeration by timing: a sign-in mail request for an unknown address takes as long as for a known one', async () => {
    const known = uniqueEmail('timing-known');
    await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: known } });
    const measure = async (email: string) => {
      const flow = await start();
      const started = performance.now();
      const response = await json(flow.browser, '/magic-link', { email });
      const elapsed = performance.now() - started;
      expect(response.status).toBe(200);
      return elapsed;
    };
    // Warm-up: the server learns how long its mail server takes.
    for (let i = 0; i < 3; i += 1) await measure(known);
    const knownTimes: number[] = [];
    const unknownTimes: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      knownTimes.push(await measure(known));
      unknownTimes.push(await measure(uniqueEmail('timing-unknown')));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    // Without the padding the unknown address answers about SMTP_DELAY_MS sooner.
    expect(Math.abs(median(knownTimes) - median(unknownTimes))).toBeLessThan(SMTP_DELAY_MS / 2);
  });

  it('parallel use of one backup code over HTTP: exactly one sign-in gets through', async () => {
    const email = uniqueEmail('backup-race');
    const user = await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: email, password: 'a long password here' } });
    expect(user.status).toBe(201);
    // Enrol through the TOTP set-up inside a sign-in (required policy), keep the codes.
    await api(t, 'PUT', '/api/sign-in-exp', { token: admin, body: { mfa: { policy: 'required' } } });
    const enrol = await start();
    const signedIn = await json(enrol.browser, '/password', { email, password: 'a long password here' });
    await enrol.browser.follow(((await signedIn.json()) as { redirectTo: string }).redirectTo);
    const setup = (await (await json(enrol.browser, '/mfa/enroll', {})).json()) as { secret: string };
    const confirmed = (await (await json(enrol.browser, '/mfa/confirm', { code: totpCode(setup.secret, timeStep(new Date())) })).json()) as { backupCodes: string[] };
    expect(confirmed.backupCodes).toHaveLength(10);
    await api(t, 'PUT', '/api/sign-in-exp', { token: admin, body: { mfa: { policy: 'off' } } });

    const attempts = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const flow = await start();
        const first = await json(flow.browser, '/password', { email, password: 'a long password here' });
        await flow.browser.follow(((await first.json()) as { redirectTo: string }).redirectTo);
        return flow;
      }),
    );
    const results = await Promise.all(attempts.map((flow) => json(flow.browser, '/mfa', { backupCode: confirmed.backupCodes[0] })));
    expect(results.filter((response) => response.status === 200)).toHaveLength(1);
    expect(results.filter((response) => response.status === 400)).toHaveLength(7);
  });

  it('every redirectTo the Experience API answers stays on Sesame', async () => {
    const email = uniqueEmail('redirects');
    await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: email, password: 'a long password here' } });
    const answers: string[] = [];
    for (const [path, body] of [
      ['/password', { email, password: 'a long password here' }],
      ['/abort', {}],
    ] as const) {
      const flow = await start({ state: 'https://evil.example/', redirect_uri: REDIRECT_URI });
      const response = await json(flow.browser, path, body);
      answers.push(((await response.json()) as { redirectTo: string }).redirectTo);
    }
    for (const redirectTo of answers) expect(new URL(redirectTo).origin).toBe(new URL(t.baseUrl).origin);
  });
});
