import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient } from '../helpers/browser-client.ts';
import { throughSessionSwitch } from '../helpers/sign-in.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const REDIRECT_URI = 'http://127.0.0.1:5999/callback';

describe(`signing in with a one-time token (${databaseKind})`, () => {
  let t: TestSesame;
  let config: oidc.Configuration;
  let adminToken: string;

  beforeAll(async () => {
    t = await startTestSesame();
    // A backend gets a Management API token the standard way.
    const m2m = await oidc.discovery(new URL(t.issuer), t.m2m.id, t.m2m.secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const grant = await oidc.clientCredentialsGrant(m2m, { resource: `${t.baseUrl}/api`, scope: 'all' });
    adminToken = grant.access_token;
    const app = await createTestApplication(t, adminToken, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Starts a sign-in as the app's landing page would: PKCE + one_time_token + login_hint. */
  async function startSignIn(token: string, loginHint: string, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email profile offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      one_time_token: token,
      login_hint: loginHint,
      ...extra,
    });
    const browser = new CookieClient(t.baseUrl);
    const landing = await browser.follow(url.toString());
    return { browser, landing, verifier, state, html: await landing.response.text() };
  }

  async function confirm(flow: Awaited<ReturnType<typeof startSignIn>>) {
    return flow.browser.submitForm(flow.html, 'one-time-token');
  }

  async function exchange(flow: Awaited<ReturnType<typeof startSignIn>>, callback: URL) {
    return oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
    });
  }

  it('signs a new user in end to end: ID token, userinfo and refresh carry the email', async () => {
    const email = uniqueEmail('invitee');
    const minted = await mintToken(t, adminToken, { email: email.toUpperCase() });
    expect(minted.email).toBe(email);
    expect(minted.token).toMatch(/^[A-Za-z0-9_-]{43,}$/);

    const flow = await startSignIn(minted.token, email);
    expect(flow.landing.url.pathname).toMatch(/^\/interaction\//);
    expect(flow.html).toContain(`Continue as <span class="email">${email}</span>`);
    expect(flow.landing.response.headers.get('cache-control')).toBe('no-store');
    expect(flow.landing.response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(flow.landing.response.headers.get('content-security-policy')).toContain("default-src 'none'");

    const done = await confirm(flow);
    expect(done.url.origin + done.url.pathname).toBe(REDIRECT_URI);
    const tokens = await exchange(flow, done.url);
    const claims = tokens.claims()!;
    expect(claims.email).toBe(email);
    expect(claims.email_verified).toBe(true);
    expect(claims.amr).toEqual(['email']);
    expect(claims.iss).toBe(t.issuer);

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ sub: claims.sub, email, email_verified: true });

    // Refresh works and rotates: the old refresh token is spent.
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    const record = await fetch(`${t.baseUrl}/api/one-time-tokens/${minted.id}`, { headers: { authorization: `Bearer ${adminToken}` } });
    const body = await record.json();
    expect(body.status).toBe('consumed');
    expect(body).not.toHaveProperty('token');
  });

  it('signs an existing user in as the same account the second time', async () => {
    const email = uniqueEmail('returning');
    const subs: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      const minted = await mintToken(t, adminToken, { email });
      const flow = await startSignIn(minted.token, email.toUpperCase());
      const done = await confirm(flow);
      subs.push((await exchange(flow, done.url)).claims()!.sub);
    }
    expect(subs[0]).toBe(subs[1]);
  });

  it('refuses a link used a second time with TOKEN_ALREADY_USED', async () => {
    const email = uniqueEmail();
    const minted = await mintToken(t, adminToken, { email });
    const first = await startSignIn(minted.token, email);
    expect((await confirm(first)).url.origin).toBe('http://127.0.0.1:5999');

    const second = await startSignIn(minted.token, email);
    const refused = await confirm(second);
    expect(refused.response.status).toBe(410);
    const page = await refused.response.text();
    expect(page).toContain('TOKEN_ALREADY_USED');
    expect(page).toContain('already used');
    // A way back to the app: the page's back form ends the sign-in with access_denied.
    const back = await second.browser.submitForm(page, 'abort');
    expect(back.url.origin + back.url.pathname).toBe(REDIRECT_URI);
    expect(back.url.searchParams.get('error')).toBe('access_denied');
  });

  it('refuses an expired link with TOKEN_EXPIRED', async () => {
    const email = uniqueEmail();
    const minted = await mintToken(t, adminToken, { email, expiresIn: 60 });
    const flow = await startSignIn(minted.token, email);
    t.advanceClock(61);
    try {
      const refused = await confirm(flow);
      expect(refused.response.status).toBe(410);
      expect(await refused.response.text()).toContain('TOKEN_EXPIRED');
    } finally {
      t.advanceClock(-61);
    }
    const record = await fetch(`${t.baseUrl}/api/one-time-tokens/${minted.id}`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect((await record.json()).status).toBe('active');
  });

  it('refuses a token presented with another email, without consuming it', async () => {
    const email = uniqueEmail('owner');
    const minted = await mintToken(t, adminToken, { email });
    const wrong = await startSignIn(minted.token, uniqueEmail('intruder'));
    const refused = await confirm(wrong);
    expect(refused.response.status).toBe(410);
    expect(await refused.response.text()).toContain('TOKEN_INVALID');

    const right = await startSignIn(minted.token, email);
    expect((await confirm(right)).url.origin).toBe('http://127.0.0.1:5999');
  });

  it('refuses an unknown token with TOKEN_INVALID and never answers 500', async () => {
    const flow = await startSignIn('not-a-real-token-at-all', uniqueEmail());
    const refused = await confirm(flow);
    expect(refused.response.status).toBe(410);
    expect(await refused.response.text()).toContain('TOKEN_INVALID');
  });

  it('does not consume the token when a mail scanner GETs or HEADs the link', async () => {
    const email = uniqueEmail('scanned');
    const minted = await mintToken(t, adminToken, { email });
    // The scanner follows the whole link, twice, with GET and HEAD.
    const scanner = await startSignIn(minted.token, email);
    await scanner.browser.request(scanner.landing.url.toString(), { method: 'HEAD' });
    await scanner.browser.request(scanner.landing.url.toString());
    const record = await fetch(`${t.baseUrl}/api/one-time-tokens/${minted.id}`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect((await record.json()).status).toBe('active');

    const person = await startSignIn(minted.token, email);
    const done = await confirm(person);
    expect((await exchange(person, done.url)).claims()!.email).toBe(email);
  });

  it('lets exactly one of 20 parallel confirmations of one token sign in', async () => {
    const email = uniqueEmail('race');
    const minted = await mintToken(t, adminToken, { email });
    const flows = await Promise.all(Array.from({ length: 20 }, () => startSignIn(minted.token, email)));
    const results = await Promise.all(flows.map((flow) => confirm(flow)));
    const signedIn = results.filter((r) => r.url.origin === 'http://127.0.0.1:5999');
    const refused = results.filter((r) => r.response.status === 410);
    expect(signedIn).toHaveLength(1);
    expect(refused).toHaveLength(19);
  });

  it.each([
    ['with offline access', 'openid email profile offline_access'],
    ['without offline access', 'openid email'],
  ])('forces the token page even when the browser already has a session, and switches accounts (%s)', async (_label, scope) => {
    const first = uniqueEmail('first');
    const second = uniqueEmail('second');
    const flow = await startSignIn((await mintToken(t, adminToken, { email: first })).token, first, { scope });
    const done = await confirm(flow);
    const firstSub = (await exchange(flow, done.url)).claims()!.sub;

    // Same browser, a link for another person.
    const next = await mintToken(t, adminToken, { email: second });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      one_time_token: next.token,
      login_hint: second,
    });
    const landing = await flow.browser.follow(url.toString());
    const html = await landing.response.text();
    expect(html).toContain(`Continue as <span class="email">${second}</span>`);
    expect(html).toContain(`You are signed in as <span class="email">${first}</span>`);
    // oidc-provider ends the old session first (an auto-submitted logout form), then resumes.
    const result = await throughSessionSwitch(flow.browser, await flow.browser.submitForm(html, 'one-time-token'), t.baseUrl);
    expect(result.url.origin).toBe('http://127.0.0.1:5999');
    const tokens = await oidc.authorizationCodeGrant(config, result.url, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    expect(tokens.claims()!.email).toBe(second);
    expect(tokens.claims()!.sub).not.toBe(firstSub);
  });

  it('refuses a suspended account with ACCOUNT_DISABLED and stops its refresh tokens', async () => {
    const email = uniqueEmail('suspended');
    const flow = await startSignIn((await mintToken(t, adminToken, { email })).token, email);
    const tokens = await exchange(flow, (await confirm(flow)).url);
    // Through the Management API, which drops this instance's copy of the account at once. (An UPDATE by SQL reaches
    // the copy when its notice does, which a request sent right after may overtake: tests/e2e/cross-instance-caches.test.ts.)
    const suspended = await fetch(`${t.baseUrl}/api/users/${tokens.claims()!.sub}/is-suspended`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ isSuspended: true }),
    });
    expect(suspended.status).toBe(200);

    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const again = await startSignIn((await mintToken(t, adminToken, { email })).token, email);
    const refused = await confirm(again);
    expect(refused.response.status).toBe(403);
    expect(await refused.response.text()).toContain('ACCOUNT_DISABLED');
  });

  it('answers 50 parallel redemptions of one authorization code with exactly one token response', async () => {
    const email = uniqueEmail('code-race');
    const flow = await startSignIn((await mintToken(t, adminToken, { email })).token, email);
    const done = await confirm(flow);
    const code = done.url.searchParams.get('code')!;
    const app = config.clientMetadata();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        fetch(`${t.issuer}/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`,
          },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: flow.verifier }),
        }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 400)).toHaveLength(49);
    const bodies = await Promise.all(responses.filter((r) => r.status === 400).map((r) => r.json()));
    expect(new Set(bodies.map((b) => b.error))).toEqual(new Set(['invalid_grant']));
  });

  it('refuses an authorization request with an unregistered redirect URI without redirecting', async () => {
    const email = uniqueEmail();
    const minted = await mintToken(t, adminToken, { email });
    const browser = new CookieClient(t.baseUrl);
    const url = new URL(`${t.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: config.clientMetadata().client_id,
      redirect_uri: 'https://evil.example/callback',
      response_type: 'code',
      scope: 'openid',
      one_time_token: minted.token,
      login_hint: email,
    }).toString();
    const response = await browser.request(url.toString());
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.text()).toContain('redirect_uri');
  });
});
