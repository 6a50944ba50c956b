import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { authorizeUrl, basicAuth, signInWithLink, tokenRequest, type Client } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:5982/callback';
const OTHER_REDIRECT_URI = 'http://127.0.0.1:5983/callback';
const SPA_REDIRECT_URI = 'http://localhost:5984/callback';

/** Attacks on the OIDC endpoints: codes, refresh tokens, PKCE, client authentication, redirect URIs, logout. */
describe(`OIDC attacks (${databaseKind})`, () => {
  let t: TestSesame;
  let admin: string;
  let app: Client;
  let other: Client;
  let spa: Client;

  beforeAll(async () => {
    t = await startTestSesame();
    admin = await managementToken(t);
    app = await createTestApplication(t, admin, REDIRECT_URI);
    other = await createTestApplication(t, admin, OTHER_REDIRECT_URI);
    spa = await createTestApplication(t, admin, SPA_REDIRECT_URI, 'SPA');
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A finished link sign-in for `app`: the code, its verifier and the browser holding the session. */
  async function signIn(client = app, redirectUri = REDIRECT_URI) {
    const email = uniqueEmail();
    const flow = await signInWithLink(t, client, redirectUri, (await mintToken(t, admin, { email })).token, email);
    const code = flow.callback.searchParams.get('code');
    if (!code) throw new Error(`no code: ${flow.callback}`);
    return { ...flow, code, email };
  }

  const redeem = (code: string, verifier: string, client: Client = app, redirectUri = REDIRECT_URI) =>
    tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }, basicAuth(client));
  const refresh = (refreshToken: string, client: Client = app) =>
    tokenRequest(t, { grant_type: 'refresh_token', refresh_token: refreshToken }, basicAuth(client));
  const introspect = async (token: string) => {
    const response = await fetch(`${t.issuer}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(app) },
      body: new URLSearchParams({ token }),
    });
    return (await response.json()) as { active: boolean };
  };

  describe('authorization codes and refresh tokens', () => {
    it('answers 20 parallel redemptions of one authorization code with exactly one token response', async () => {
      const { code, verifier } = await signIn();
      const results = await Promise.all(Array.from({ length: 20 }, () => redeem(code, verifier)));
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 400 && r.body.error === 'invalid_grant')).toHaveLength(19);
    });

    it('refuses a replayed authorization code and revokes the tokens the code already produced', async () => {
      const { code, verifier } = await signIn();
      const first = await redeem(code, verifier);
      expect(first.status).toBe(200);
      const replay = await redeem(code, verifier);
      expect(replay.status).toBe(400);
      expect(replay.body.error).toBe('invalid_grant');
      expect((await introspect(first.body.access_token!)).active).toBe(false);
      expect((await refresh(first.body.refresh_token!)).body.error).toBe('invalid_grant');
    });

    it('answers 20 parallel redemptions of one refresh token with exactly one new token pair', async () => {
      const { code, verifier } = await signIn();
      const tokens = (await redeem(code, verifier)).body;
      const results = await Promise.all(Array.from({ length: 20 }, () => refresh(tokens.refresh_token!)));
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 400 && r.body.error === 'invalid_grant')).toHaveLength(19);
    });

    it('refuses a replayed (rotated) refresh token and then revokes its successor too', async () => {
      const { code, verifier } = await signIn();
      const tokens = (await redeem(code, verifier)).body;
      const rotated = await refresh(tokens.refresh_token!);
      expect(rotated.status).toBe(200);
      expect(rotated.body.refresh_token).not.toBe(tokens.refresh_token);
      const replay = await refresh(tokens.refresh_token!);
      expect(replay.body.error).toBe('invalid_grant');
      // Reuse means the old token leaked: the whole grant is revoked, the thief's or the user's successor alike.
      expect((await refresh(rotated.body.refresh_token!)).body.error).toBe('invalid_grant');
    });

    it('refuses a code redeemed by another client with that client’s valid credentials', async () => {
      const { code, verifier } = await signIn();
      const stolen = await redeem(code, verifier, other, REDIRECT_URI);
      expect(stolen.status).toBe(400);
      expect(stolen.body.error).toBe('invalid_grant');
      expect(stolen.body.access_token).toBeUndefined();
    });

    it('refuses a code redeemed with a redirect_uri other than the one it was issued for', async () => {
      const { code, verifier } = await signIn();
      for (const redirectUri of [OTHER_REDIRECT_URI, `${REDIRECT_URI}/evil`, 'https://evil.example/callback']) {
        const response = await redeem(code, verifier, app, redirectUri);
        expect(response.status, redirectUri).toBe(400);
        expect(response.body.access_token).toBeUndefined();
      }
    });

    it('does not let another client revoke a refresh token it does not own', async () => {
      const { code, verifier } = await signIn();
      const tokens = (await redeem(code, verifier)).body;
      await fetch(`${t.issuer}/token/revocation`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(other) },
        body: new URLSearchParams({ token: tokens.refresh_token!, token_type_hint: 'refresh_token' }),
      });
      expect((await refresh(tokens.refresh_token!)).status).toBe(200);
    });
  });

  describe('PKCE', () => {
    it('refuses a public (SPA) client’s authorization request without code_challenge: no code is issued', async () => {
      const params = new URLSearchParams({ client_id: spa.id, redirect_uri: SPA_REDIRECT_URI, response_type: 'code', scope: 'openid' });
      const response = await new CookieClient(t.baseUrl).request(`${t.issuer}/auth?${params}`);
      const location = response.headers.get('location');
      if (location) {
        const target = new URL(location, t.baseUrl);
        expect(target.searchParams.get('error')).toBe('invalid_request');
        expect(target.searchParams.has('code')).toBe(false);
        expect(target.pathname.startsWith('/interaction/')).toBe(false);
      } else {
        expect(response.status).toBe(400);
      }
    });

    it('refuses the plain code_challenge_method for public and confidential clients', async () => {
      for (const [client, redirectUri] of [[spa, SPA_REDIRECT_URI], [app, REDIRECT_URI]] as const) {
        const { url } = await authorizeUrl(t, client, redirectUri, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
        const response = await new CookieClient(t.baseUrl).request(url);
        const location = new URL(response.headers.get('location') ?? '/', t.baseUrl);
        expect(location.pathname.startsWith('/interaction/'), client.id).toBe(false);
        expect(location.searchParams.has('code')).toBe(false);
      }
    });

    it('refuses a code redeemed with a wrong or a missing code_verifier', async () => {
      const { code, verifier } = await signIn();
      const wrong = await redeem(code, oidc.randomPKCECodeVerifier());
      expect(wrong.body.error).toBe('invalid_grant');
      const missing = await tokenRequest(t, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }, basicAuth(app));
      expect(missing.status).toBe(400);
      expect(missing.body.access_token).toBeUndefined();
      // The attempts did not hand the code to anyone; the rightful holder may still redeem it.
      expect((await redeem(code, verifier)).status).toBe(200);
    });
  });

  describe('client authentication', () => {
    it('refuses a wrong secret, another client’s secret, an empty secret and no secret', async () => {
      const { code, verifier } = await signIn();
      const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier };
      const attempts: Array<[string, Record<string, string>, string | undefined]> = [
        ['a wrong secret', form, basicAuth({ id: app.id, secret: `${app.secret}x` })],
        ['another client’s secret', form, basicAuth({ id: app.id, secret: other.secret })],
        ['an empty secret', form, basicAuth({ id: app.id, secret: '' })],
        ['no secret at all', { ...form, client_id: app.id }, undefined],
        // oidc-provider takes client_secret_basic and client_secret_post as one method: the secret is what counts.
        ['another client’s secret in the body', { ...form, client_id: app.id, client_secret: other.secret! }, undefined],
        ['the right secret for another client id', { ...form, client_id: other.id, client_secret: app.secret! }, undefined],
      ];
      for (const [label, body, authorization] of attempts) {
        const response = await tokenRequest(t, body, authorization);
        expect(response.body.access_token, label).toBeUndefined();
        // An empty Basic secret is malformed (400 invalid_request); everything else fails authentication.
        if (label === 'an empty secret') expect([response.status, response.body.error], label).toEqual([400, 'invalid_request']);
        else expect([response.status, response.body.error], label).toEqual([401, 'invalid_client']);
      }
      expect((await redeem(code, verifier)).status).toBe(200);
    });

    it('refuses client_credentials to user-facing applications, confidential or public', async () => {
      const confidential = await tokenRequest(t, { grant_type: 'client_credentials', resource: `${t.baseUrl}/api`, scope: 'all' }, basicAuth(app));
      expect(confidential.status).toBe(400);
      expect(confidential.body.access_token).toBeUndefined();
      const publicClient = await tokenRequest(t, { grant_type: 'client_credentials', client_id: spa.id, resource: `${t.baseUrl}/api`, scope: 'all' });
      expect(publicClient.status).toBeGreaterThanOrEqual(400);
      expect(publicClient.body.access_token).toBeUndefined();
    });

    it('refuses implicit and hybrid response types: tokens never travel in the redirect', async () => {
      for (const responseType of ['token', 'id_token', 'id_token token', 'code id_token', 'code token', 'none']) {
        const { url } = await authorizeUrl(t, app, REDIRECT_URI, { response_type: responseType, nonce: 'n' });
        const response = await new CookieClient(t.baseUrl).request(url);
        const location = response.headers.get('location') ?? '';
        expect(location.startsWith('/interaction/'), responseType).toBe(false);
        expect(location, responseType).not.toMatch(/access_token|id_token=|code=/);
        expect(response.status, responseType).toBeLessThan(500);
      }
    });
  });

  describe('redirect_uri', () => {
    it.each([
      ['an unregistered host', 'https://evil.example/callback'],
      ['a prefix match (extra path segment)', `${REDIRECT_URI}/evil`],
      ['a prefix match (suffix on the path)', `${REDIRECT_URI}evil`],
      ['a trailing slash', `${REDIRECT_URI}/`],
      ['dot segments', 'http://127.0.0.1:5982/callback/../evil'],
      ['an encoded dot-dot-slash', 'http://127.0.0.1:5982/callback%2F..%2Fevil'],
      ['a different port', 'http://127.0.0.1:5999/callback'],
      ['no port', 'http://127.0.0.1/callback'],
      ['a different path', 'http://127.0.0.1:5982/other'],
      ['a different path case', 'http://127.0.0.1:5982/Callback'],
      ['a different scheme', 'https://127.0.0.1:5982/callback'],
      ['an extra query', `${REDIRECT_URI}?next=https://evil.example`],
      ['a fragment', `${REDIRECT_URI}#https://evil.example`],
      ['userinfo pointing elsewhere', 'http://127.0.0.1:5982@evil.example/callback'],
      ['the registered URI as a subdomain', 'http://127.0.0.1.evil.example:5982/callback'],
      ['a protocol-relative URI', '//evil.example/callback'],
      ['a javascript: URI', 'javascript:alert(document.domain)//'],
      ['another client’s registered URI', OTHER_REDIRECT_URI],
    ])('refuses %s at /oidc/auth with 400 and no redirect', async (_label, redirectUri) => {
      const { url } = await authorizeUrl(t, app, redirectUri);
      const response = await new CookieClient(t.baseUrl).request(url, { headers: { accept: 'text/html' } });
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(await response.text()).toContain('redirect_uri');
    });
  });

  describe('logout', () => {
    async function logoutPage(browser: CookieClient, params: Record<string, string>) {
      const response = await browser.request(`${t.issuer}/session/end?${new URLSearchParams(params)}`, { headers: { accept: 'text/html' } });
      return { response, html: await response.text() };
    }

    async function confirmLogout(browser: CookieClient, html: string) {
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
      if (!xsrf) throw new Error(`no logout form:\n${html}`);
      return browser.follow(`${t.issuer}/session/end/confirm`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
        body: new URLSearchParams({ xsrf, logout: 'yes' }),
      });
    }

    async function silentSignInWorks(browser: CookieClient) {
      const { url } = await authorizeUrl(t, app, REDIRECT_URI, { prompt: 'none' });
      return (await browser.follow(url)).url.searchParams.has('code');
    }

    it('refuses an unregistered post_logout_redirect_uri, and one registered only for another client', async () => {
      const { browser } = await signIn();
      for (const uri of ['https://evil.example/', `${REDIRECT_URI}/evil`, OTHER_REDIRECT_URI, `${REDIRECT_URI}?next=https://evil.example`]) {
        const page = await logoutPage(browser, { client_id: app.id, post_logout_redirect_uri: uri });
        expect(page.response.status, uri).toBe(400);
        expect(page.response.headers.get('location')).toBeNull();
      }
    });

    it('ignores a post_logout_redirect_uri that comes without a client: logging out ends on Sesame', async () => {
      const { browser } = await signIn();
      const page = await logoutPage(browser, { post_logout_redirect_uri: 'https://evil.example/' });
      if (page.response.status === 200) {
        const out = await confirmLogout(browser, page.html);
        expect(out.url.origin).toBe(new URL(t.baseUrl).origin);
      } else {
        expect(page.response.status).toBe(400);
        expect(page.response.headers.get('location')).toBeNull();
      }
    });

    it('does not log out on a forged confirmation without the page’s xsrf value (logout CSRF)', async () => {
      const { browser } = await signIn();
      await logoutPage(browser, { client_id: app.id });
      for (const body of [{ logout: 'yes' }, { logout: 'yes', xsrf: 'forged' }] as Array<Record<string, string>>) {
        const response = await browser.request(`${t.issuer}/session/end/confirm`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
          body: new URLSearchParams(body),
        });
        expect(response.status, JSON.stringify(body)).toBe(400);
      }
      expect(await silentSignInWorks(browser)).toBe(true);
    });
  });
});
