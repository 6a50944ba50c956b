import { importJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKeySet } from '../../src/oidc/keys.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

describe(`Management API (${databaseKind})`, () => {
  let t: TestSesame;
  let token: string;

  beforeAll(async () => {
    t = await startTestSesame();
    token = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Signs an access token with Sesame's own key, to test claims the token endpoint would never issue. */
  async function forgeAccessToken(claims: Record<string, unknown>, expiresAt: number) {
    const keys = (await loadKeySet(t.db, t.config.secret)).signing;
    const jwk = keys.find((key) => key.alg === 'ES256')!;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'at+jwt' })
      .setIssuer(t.issuer)
      .setAudience(`${t.baseUrl}/api`)
      .setIssuedAt(expiresAt - 3600)
      .setExpirationTime(expiresAt)
      .sign(await importJWK(jwk, 'ES256'));
  }

  describe('authentication', () => {
    it('answers 401 UNAUTHORIZED without a token', async () => {
      const response = await api(t, 'POST', '/api/one-time-tokens', { body: { email: uniqueEmail() } });
      expect(response.status).toBe(401);
      expect(response.body).toMatchObject({ code: 'UNAUTHORIZED', message: expect.any(String) });
    });

    it('answers 401 for a malformed, foreign or tampered token', async () => {
      const tampered = `${token.slice(0, -4)}AAAA`;
      for (const bad of ['not-a-jwt', tampered, 'a.b.c']) {
        const response = await api(t, 'GET', '/api/one-time-tokens/abc', { token: bad });
        expect(response.status, bad).toBe(401);
        expect(response.body.code).toBe('UNAUTHORIZED');
      }
      const basic = await fetch(`${t.baseUrl}/api/one-time-tokens/abc`, { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
      expect(basic.status).toBe(401);
    });

    it('answers 401 for an expired token and accepts the same token shape when unexpired', async () => {
      const now = Math.floor(Date.now() / 1000);
      const expired = await forgeAccessToken({ scope: 'all', client_id: t.m2m.id }, now - 10);
      expect((await api(t, 'GET', '/api/one-time-tokens/abc', { token: expired })).status).toBe(401);
      const fresh = await forgeAccessToken({ scope: 'all', client_id: t.m2m.id }, now + 600);
      expect((await api(t, 'GET', '/api/one-time-tokens/abc', { token: fresh })).status).toBe(404);
    });

    it('answers 401 for a token meant for another audience', async () => {
      // An ID token is signed by the same keys but is not an access token for the API.
      const now = Math.floor(Date.now() / 1000);
      const keys = (await loadKeySet(t.db, t.config.secret)).signing;
      const jwk = keys.find((key) => key.alg === 'ES256')!;
      const idToken = await new SignJWT({ scope: 'all' })
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
        .setIssuer(t.issuer)
        .setAudience('some-client')
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(await importJWK(jwk, 'ES256'));
      expect((await api(t, 'GET', '/api/one-time-tokens/abc', { token: idToken })).status).toBe(401);
    });

    it('answers 403 FORBIDDEN to a machine-to-machine app without Management API access', async () => {
      const created = await api(t, 'POST', '/api/applications', { token, body: { name: 'Plain backend', type: 'MachineToMachine' } });
      expect(created.status).toBe(201);
      const plain = { id: created.body.id as string, secret: created.body.secret as string };
      const weak = await managementToken(t, plain);
      const response = await api(t, 'POST', '/api/one-time-tokens', { token: weak, body: { email: uniqueEmail() } });
      expect(response.status).toBe(403);
      expect(response.body.code).toBe('FORBIDDEN');
    });

    it('does not give the bootstrap client a usable token without the `all` scope', async () => {
      const noScope = await managementToken(t, t.m2m, '');
      expect((await api(t, 'POST', '/api/one-time-tokens', { token: noScope, body: { email: uniqueEmail() } })).status).toBe(403);
    });
  });

  describe('one-time tokens', () => {
    it('mints a token with defaults and never shows it again', async () => {
      const before = Date.now();
      const response = await api(t, 'POST', '/api/one-time-tokens', { token, body: { email: '  Mixed.Case@Example.TEST ' } });
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ email: 'mixed.case@example.test', status: 'active', context: {}, consumedAt: null });
      expect(Buffer.from(response.body.token, 'base64url').length).toBeGreaterThanOrEqual(16);
      const lifetime = Date.parse(response.body.expiresAt) - before;
      expect(lifetime).toBeGreaterThan(595_000);
      expect(lifetime).toBeLessThan(605_000);

      const fetched = await api(t, 'GET', `/api/one-time-tokens/${response.body.id}`, { token });
      expect(fetched.status).toBe(200);
      expect(fetched.body).toEqual({ ...response.body, token: undefined });
      expect(fetched.text).not.toContain(response.body.token);
      const row = await t.db('one_time_tokens').where({ id: response.body.id }).first();
      expect(JSON.stringify(row)).not.toContain(response.body.token);
    });

    it('honours expiresIn and reports expiry at read time', async () => {
      const response = await api(t, 'POST', '/api/one-time-tokens', { token, body: { email: uniqueEmail(), expiresIn: 60 } });
      expect(response.status).toBe(201);
      t.advanceClock(61);
      try {
        const fetched = await api(t, 'GET', `/api/one-time-tokens/${response.body.id}`, { token });
        expect(fetched.body.status).toBe('expired');
      } finally {
        t.advanceClock(-61);
      }
    });

    it.each([
      ['a missing email', {}],
      ['an email of the wrong type', { email: 42 }],
      ['an invalid email', { email: 'not-an-email' }],
      ['an expiry under 60 seconds', { email: 'a@example.test', expiresIn: 59 }],
      ['an expiry over the maximum', { email: 'a@example.test', expiresIn: 7 * 24 * 3600 + 1 }],
      ['a fractional expiry', { email: 'a@example.test', expiresIn: 90.5 }],
      ['an expiry given as a string', { email: 'a@example.test', expiresIn: '600' }],
      ['an unknown field', { email: 'a@example.test', role: 'admin' }],
      ['a context of the wrong shape', { email: 'a@example.test', context: { jitOrganizationIds: 'org' } }],
      ['a body that is an array', [{ email: 'a@example.test' }]],
    ])('refuses %s with 400 INVALID_INPUT', async (_label, body) => {
      const response = await api(t, 'POST', '/api/one-time-tokens', { token, body });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ code: 'INVALID_INPUT', message: expect.any(String) });
    });

    it('refuses unknown organization ids and names them', async () => {
      const response = await api(t, 'POST', '/api/one-time-tokens', {
        token,
        body: { email: uniqueEmail(), context: { jitOrganizationIds: ['org-a', 'org-b'] } },
      });
      expect(response.status).toBe(400);
      expect(response.body.message).toContain('org-a');
      expect(response.body.unknownOrganizationIds).toEqual(['org-a', 'org-b']);
    });

    it('refuses malformed JSON, other content types, NUL bytes and huge bodies with clear 4xx', async () => {
      const malformed = await api(t, 'POST', '/api/one-time-tokens', { token, rawBody: '{"email":' });
      expect(malformed.status).toBe(400);
      expect(malformed.body.code).toBe('INVALID_INPUT');

      const form = await api(t, 'POST', '/api/one-time-tokens', {
        token,
        rawBody: 'email=a@example.test',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(form.status).toBe(415);
      expect(form.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');

      const nul = await api(t, 'POST', '/api/one-time-tokens', { token, rawBody: '{"email":"a\\u0000@example.test"}' });
      expect(nul.status).toBe(400);

      const huge = await api(t, 'POST', '/api/one-time-tokens', { token, body: { email: `${'a'.repeat(200_000)}@example.test` } });
      expect(huge.status).toBe(413);
      expect(huge.body.code).toBe('PAYLOAD_TOO_LARGE');
    });

    it('answers 404 for an unknown id and 400 for an id that cannot exist', async () => {
      const unknown = await api(t, 'GET', '/api/one-time-tokens/doesnotexist', { token });
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('NOT_FOUND');
      const weird = await api(t, 'GET', `/api/one-time-tokens/${encodeURIComponent('../../etc')}`, { token });
      expect(weird.status).toBe(400);
      const nul = await api(t, 'GET', '/api/one-time-tokens/abc%00def', { token });
      expect(nul.status).toBe(400);
    });
  });

  describe('applications', () => {
    it('creates a Traditional app with a url-safe secret that can sign users in', async () => {
      const response = await api(t, 'POST', '/api/applications', {
        token,
        body: { name: 'Portal', type: 'Traditional', oidcClientMetadata: { redirectUris: ['https://portal.example/cb'] } },
      });
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({
        name: 'Portal',
        type: 'Traditional',
        oidcClientMetadata: { redirectUris: ['https://portal.example/cb'], postLogoutRedirectUris: [] },
      });
      expect(response.body.secret).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      const row = await t.db('applications').where({ id: response.body.id }).first();
      expect(JSON.stringify(row)).not.toContain(response.body.secret);
    });

    it('creates SPA and Native apps as public clients without a secret', async () => {
      for (const [type, uri] of [['SPA', 'http://localhost:5173/cb'], ['Native', 'com.example.app:/callback']] as const) {
        const response = await api(t, 'POST', '/api/applications', { token, body: { name: type, type, oidcClientMetadata: { redirectUris: [uri] } } });
        expect(response.status, type).toBe(201);
        expect(response.body.secret).toBeNull();
      }
    });

    it.each([
      ['no name', { type: 'Traditional' }],
      ['an unknown type', { name: 'x', type: 'Mainframe' }],
      ['a plain-http redirect URI off localhost', { name: 'x', type: 'Traditional', oidcClientMetadata: { redirectUris: ['http://app.example/cb'] } }],
      ['a redirect URI with a fragment', { name: 'x', type: 'Traditional', oidcClientMetadata: { redirectUris: ['https://app.example/cb#x'] } }],
      ['a relative redirect URI', { name: 'x', type: 'SPA', oidcClientMetadata: { redirectUris: ['/cb'] } }],
      ['a javascript: redirect URI', { name: 'x', type: 'SPA', oidcClientMetadata: { redirectUris: ['javascript:alert(1)'] } }],
      ['redirect URIs on a machine-to-machine app', { name: 'x', type: 'MachineToMachine', oidcClientMetadata: { redirectUris: ['https://a.example/cb'] } }],
    ])('refuses %s with 400', async (_label, body) => {
      const response = await api(t, 'POST', '/api/applications', { token, body });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });
  });

  it('answers unknown API routes and methods with {code, message}', async () => {
    const unknown = await api(t, 'GET', '/api/nothing-here', { token });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('NOT_FOUND');
    const method = await api(t, 'DELETE', '/api/applications', { token });
    expect(method.status).toBe(405);
    expect(method.body.code).toBe('METHOD_NOT_ALLOWED');
  });
});
