import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient, findForm } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { openLink, signInWithLink } from '../helpers/sign-in.ts';

const REDIRECT_URI = 'http://127.0.0.1:5998/callback';

describe(`OIDC endpoints and the Experience API (${databaseKind})`, () => {
  let t: TestSesame;
  let config: oidc.Configuration;
  let adminToken: string;

  beforeAll(async () => {
    t = await startTestSesame();
    adminToken = await managementToken(t);
    const app = await createTestApplication(t, adminToken, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function signIn(scope = 'openid email offline_access') {
    const email = uniqueEmail();
    const minted = await mintToken(t, adminToken, { email });
    const { flow, tokens } = await signInWithLink(t, config, {
      token: minted.token,
      email,
      redirectUri: REDIRECT_URI,
      scope,
      extra: { prompt: 'consent' },
    });
    return { email, browser: flow.browser, tokens, landing: flow.landing };
  }

  /** Starts a link sign-in in a fresh browser and stops on the hosted page. */
  function startInteraction(token: string, email: string) {
    return openLink(t, config, { token, email, redirectUri: REDIRECT_URI });
  }

  it('publishes discovery at /oidc/.well-known/openid-configuration with the expected issuer and features', async () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(`${t.baseUrl}/oidc`);
    expect(metadata.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.introspection_endpoint).toBe(`${t.issuer}/token/introspection`);
    expect(metadata.revocation_endpoint).toBe(`${t.issuer}/token/revocation`);
    expect(metadata.end_session_endpoint).toBe(`${t.issuer}/session/end`);
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    const jwks = await (await fetch(metadata.jwks_uri!)).json();
    expect(jwks.keys.map((key: { alg: string }) => key.alg).sort()).toEqual(['ES256', 'RS256']);
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
  });

  it('signs ID tokens with RS256 by default', async () => {
    const { tokens } = await signIn('openid');
    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString());
    expect(header.alg).toBe('RS256');
  });

  it('introspects an active access token and reports it inactive after revocation', async () => {
    const { tokens } = await signIn();
    const active = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(active.active).toBe(true);
    expect(active.sub).toBe(tokens.claims()!.sub);
    await oidc.tokenRevocation(config, tokens.access_token);
    const revoked = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(revoked.active).toBe(false);
  });

  it('lets only the owning client revoke or introspect a token, and machine-to-machine clients introspect', async () => {
    const { tokens } = await signIn();
    const other = await createTestApplication(t, adminToken, 'http://127.0.0.1:5993/callback');
    const otherConfig = await oidc.discovery(new URL(t.issuer), other.id, other.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
    expect((await oidc.tokenIntrospection(otherConfig, tokens.access_token)).active).toBe(false);
    await oidc.tokenRevocation(otherConfig, tokens.refresh_token!).catch(() => undefined);
    expect((await oidc.tokenIntrospection(config, tokens.refresh_token!)).active).toBe(true);

    const m2m = await oidc.discovery(new URL(t.issuer), t.m2m.id, t.m2m.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const seen = await oidc.tokenIntrospection(m2m, tokens.access_token);
    expect(seen.active).toBe(true);
    expect(seen.client_id).toBe(config.clientMetadata().client_id);
  });

  it('revokes a refresh token so it can no longer be used', async () => {
    const { tokens } = await signIn();
    await oidc.tokenRevocation(config, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('ends the session with RP-initiated logout and returns to the registered post-logout URI', async () => {
    const { browser, tokens } = await signIn('openid email');
    const logoutUrl = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: REDIRECT_URI,
      state: 'bye',
    });
    const page = await browser.follow(logoutUrl.toString());
    const html = await page.response.text();
    expect(html).toContain('Sign out?');
    const action = /<form[^>]*action="([^"]+)"/.exec(html)![1]!;
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    const out = await browser.follow(new URL(action, t.baseUrl).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    expect(out.url.origin + out.url.pathname).toBe(REDIRECT_URI);
    expect(out.url.searchParams.get('state')).toBe('bye');

    // The session is gone: a silent sign-in now needs a login.
    const silent = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      prompt: 'none',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const answer = await browser.follow(silent.toString());
    expect(answer.url.searchParams.get('error')).toBe('login_required');
  });

  it('keeps the session for a silent sign-in after a link sign-in', async () => {
    const { browser } = await signIn('openid email');
    const silent = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      prompt: 'none',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const answer = await browser.follow(silent.toString());
    expect(answer.url.searchParams.get('code')).toBeTruthy();
  });

  it('issues client_credentials tokens for the Management API only to machine-to-machine clients', async () => {
    const response = await fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${config.clientMetadata().client_id}:${config.clientMetadata().client_secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${t.baseUrl}/api`, scope: 'all' }),
    });
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.error_description).toBe('requested grant type is not allowed for this client');
  });

  it('rejects NUL bytes in OIDC requests with 400 instead of failing in the database', async () => {
    const auth = await fetch(`${t.issuer}/auth?client_id=abc%00def&response_type=code&scope=openid`, { redirect: 'manual' });
    expect(auth.status).toBe(400);
    const token = await fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=authorization_code&code=abc%00def&client_id=x',
    });
    expect(token.status).toBe(400);
    expect((await token.json()).error).toBe('invalid_request');
  });

  describe('Experience API: POST /api/experience/one-time-token', () => {
    const post = (browser: CookieClient, body: string, headers: Record<string, string> = {}) =>
      browser.request('/api/experience/one-time-token', {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: t.baseUrl, ...headers },
        body,
      });

    it('signs in and answers {redirectTo} that completes the authorization', async () => {
      const email = uniqueEmail();
      const minted = await mintToken(t, adminToken, { email });
      const { browser } = await startInteraction(minted.token, email);
      const response = await post(browser, JSON.stringify({ token: minted.token, email }));
      expect(response.status).toBe(200);
      const { redirectTo } = await response.json();
      expect(redirectTo).toMatch(new RegExp(`^${t.issuer}/auth/`));
      const done = await browser.follow(redirectTo);
      expect(done.url.origin + done.url.pathname).toBe(REDIRECT_URI);
      expect(done.url.searchParams.get('code')).toBeTruthy();
    });

    it('answers TOKEN_ALREADY_USED, TOKEN_INVALID and TOKEN_EXPIRED with 410 JSON', async () => {
      const email = uniqueEmail();
      const used = await mintToken(t, adminToken, { email });
      await post((await startInteraction(used.token, email)).browser, '{}');
      const again = await post((await startInteraction(used.token, email)).browser, '{}');
      expect(again.status).toBe(410);
      expect(await again.json()).toMatchObject({ code: 'TOKEN_ALREADY_USED', message: expect.any(String) });

      const invalid = await post((await startInteraction('nope', email)).browser, '{}');
      expect(invalid.status).toBe(410);
      expect((await invalid.json()).code).toBe('TOKEN_INVALID');

      const short = await mintToken(t, adminToken, { email, expiresIn: 60 });
      const { browser } = await startInteraction(short.token, email);
      t.advanceClock(120);
      try {
        const expired = await post(browser, '{}');
        expect(expired.status).toBe(410);
        expect((await expired.json()).code).toBe('TOKEN_EXPIRED');
      } finally {
        t.advanceClock(-120);
      }
    });

    it('requires a same-origin Origin, a JSON body and an interaction cookie', async () => {
      const email = uniqueEmail();
      const minted = await mintToken(t, adminToken, { email });
      const { browser } = await startInteraction(minted.token, email);

      const crossSite = await post(browser, '{}', { origin: 'https://evil.example' });
      expect(crossSite.status).toBe(403);
      expect((await crossSite.json()).code).toBe('INVALID_ORIGIN');

      const noOrigin = await browser.request('/api/experience/one-time-token', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(noOrigin.status).toBe(403);

      const form = await post(browser, 'token=x', { 'content-type': 'application/x-www-form-urlencoded' });
      expect(form.status).toBe(415);

      const huge = await post(browser, JSON.stringify({ token: 'x'.repeat(100_000) }));
      expect(huge.status).toBe(413);
      const nul = await post(browser, JSON.stringify({ token: 'abc\u0000' }));
      expect(nul.status).toBe(400);
      const unknownField = await post(browser, JSON.stringify({ token: 'abc', admin: true }));
      expect(unknownField.status).toBe(400);

      const wrongTypes = await post(browser, JSON.stringify({ token: 5 }));
      expect(wrongTypes.status).toBe(400);
      expect((await wrongTypes.json()).code).toBe('INVALID_INPUT');

      const stranger = await post(new CookieClient(t.baseUrl), JSON.stringify({ token: minted.token, email }));
      expect(stranger.status).toBe(400);
      expect((await stranger.json()).code).toBe('INTERACTION_NOT_FOUND');

      // None of the refused calls consumed the token.
      const record = await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: adminToken });
      expect(record.body.status).toBe('active');
    });
  });

  describe('hosted pages', () => {
    it('explains a link opened in another browser instead of failing', async () => {
      const email = uniqueEmail();
      const minted = await mintToken(t, adminToken, { email });
      const { landing, html } = await startInteraction(minted.token, email);
      const other = new CookieClient(t.baseUrl);
      const page = await other.request(landing.url.pathname, { headers: { accept: 'text/html' } });
      expect(page.status).toBe(400);
      expect(await page.text()).toContain('This sign-in has ended');
      const posted = await other.submitForm(html, 'one-time-token');
      expect(posted.response.status).toBe(400);
      expect((await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: adminToken })).body.status).toBe('active');
    });

    it.each([
      ['another Origin', { origin: 'https://evil.example' }],
      ['Origin null from another site', { origin: 'null', 'sec-fetch-site': 'cross-site' }],
      ['Origin null from a sibling site', { origin: 'null', 'sec-fetch-site': 'same-site' }],
      ['Origin null without fetch metadata', { origin: 'null' }],
      ['fetch metadata saying cross-site', { 'sec-fetch-site': 'cross-site' }],
    ])('refuses a form post to the confirmation with %s', async (_label, headers) => {
      const email = uniqueEmail();
      const minted = await mintToken(t, adminToken, { email });
      const { browser, html } = await startInteraction(minted.token, email);
      // With the page's valid CSRF token: the Origin alone must refuse it.
      const form = findForm(html, 'one-time-token');
      const response = await browser.request(form.action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers },
        body: new URLSearchParams(form.hidden),
      });
      expect(response.status).toBe(403);
      expect((await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: adminToken })).body.status).toBe('active');
    });

    it('accepts the Origin: null that browsers send from no-referrer pages when fetch metadata says same-origin', async () => {
      const email = uniqueEmail();
      const minted = await mintToken(t, adminToken, { email });
      const { browser, html } = await startInteraction(minted.token, email);
      const form = findForm(html, 'one-time-token');
      const response = await browser.request(form.action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null', 'sec-fetch-site': 'same-origin' },
        body: new URLSearchParams(form.hidden),
      });
      expect(response.status).toBe(303);
      expect((await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: adminToken })).body.status).toBe('consumed');
    });

    it('answers unknown interactions and bad demo input with clear 4xx pages', async () => {
      const browser = new CookieClient(t.baseUrl);
      const unknown = await browser.request('/interaction/not-a-real-uid', { headers: { accept: 'text/html' } });
      expect(unknown.status).toBe(400);
      expect(await unknown.text()).toContain('This sign-in has ended');
      const posted = await browser.postForm('/interaction/not-a-real-uid/one-time-token');
      expect(posted.response.status).toBe(400);
      const demo = await browser.postForm('/demo/send', { email: 'not an email' });
      expect(demo.response.status).toBe(400);
      expect(await demo.response.text()).toContain('Type a valid email address');
      const nul = await browser.request('/interaction/abc%00def');
      expect(nul.status).toBe(400);
    });

    it('opens the sign-in page (email first) when a sign-in arrives without a one-time token', async () => {
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      const landing = await new CookieClient(t.baseUrl).follow(url.toString());
      expect(landing.response.status).toBe(200);
      const page = await landing.response.text();
      expect(page).toContain('<input id="email" name="email" type="email"');
      expect(page).toContain('Email me a sign-in link');
    });
  });
});
