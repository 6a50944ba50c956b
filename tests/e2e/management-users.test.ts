import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const REDIRECT_URI = 'http://127.0.0.1:5998/callback';
const APP_ORIGIN = 'http://127.0.0.1:5998';

/** What must never reach a Management API client, whatever the route. */
function expectNoSecrets(text: string, extra: string[] = []) {
  expect(text).not.toContain('password_hash');
  expect(text).not.toContain('passwordHash');
  expect(text).not.toContain('$argon2');
  for (const secret of extra) expect(text).not.toContain(secret);
}

const tag = () => randomBytes(5).toString('hex');

describe(`users in the Management API (${databaseKind})`, () => {
  let t: TestSesame;
  let token: string;
  let app: { id: string; secret: string | null };
  let config: oidc.Configuration;

  beforeAll(async () => {
    t = await startTestSesame();
    token = await managementToken(t);
    app = await createTestApplication(t, token, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await t?.close();
  });

  const call = (method: string, path: string, body?: unknown) => api(t, method, path, { token, ...(body === undefined ? {} : { body }) });

  async function createUser(body: Record<string, unknown> = {}) {
    const response = await call('POST', '/api/users', { primaryEmail: uniqueEmail(), ...body });
    if (response.status !== 201) throw new Error(`user failed: ${response.status} ${response.text}`);
    return response.body as { id: string; primaryEmail: string | null };
  }

  /** A one-time-token sign-in in a fresh browser, as far as the confirmation page's answer. */
  async function signIn(email: string, browser = new CookieClient(t.baseUrl)) {
    const minted = await mintToken(t, token, { email });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      one_time_token: minted.token,
      login_hint: email,
    });
    const landing = await browser.follow(url.toString());
    const done = await browser.submitForm(await landing.response.text(), 'one-time-token');
    return { browser, done, verifier, state };
  }

  /** Signs in and exchanges the code: ID token claims and a refresh token. */
  async function signInForTokens(email: string, browser?: CookieClient) {
    const flow = await signIn(email, browser);
    expect(flow.done.url.origin).toBe(APP_ORIGIN);
    const tokens = await oidc.authorizationCodeGrant(config, flow.done.url, { pkceCodeVerifier: flow.verifier, expectedState: flow.state });
    return { ...flow, tokens, sub: tokens.claims()!.sub };
  }

  /** An authorization request with prompt=none in `browser`: where the app gets sent back to. */
  async function silentAuthorize(browser: CookieClient) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      prompt: 'none',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const { url: landed } = await browser.follow(url.toString());
    expect(landed.origin).toBe(APP_ORIGIN);
    return landed.searchParams;
  }

  describe('POST /api/users', () => {
    it('creates a user with a normalized email, unverified, without a password', async () => {
      const email = uniqueEmail('create');
      const response = await call('POST', '/api/users', { primaryEmail: `  ${email.toUpperCase()} `, name: ' Ada ', avatar: 'https://img.example/a.png' });
      expect(response.status).toBe(201);
      expect(response.body).toEqual({
        id: expect.stringMatching(/^[A-Za-z0-9_-]+$/),
        primaryEmail: email,
        emailVerified: false,
        name: 'Ada',
        avatar: 'https://img.example/a.png',
        hasPassword: false,
        isSuspended: false,
        createdAt: expect.any(String),
        lastSignInAt: null,
      });
      expect(Date.parse(response.body.createdAt)).not.toBeNaN();
      expectNoSecrets(response.text);
    });

    it('creates a user with a password: hasPassword is true and no hash is ever shown', async () => {
      const password = `correct horse ${tag()}`;
      const created = await call('POST', '/api/users', { primaryEmail: uniqueEmail('pw'), password });
      expect(created.status).toBe(201);
      expect(created.body.hasPassword).toBe(true);
      expectNoSecrets(created.text, [password]);
      const row = await t.db('users').where({ id: created.body.id }).first();
      expect(row.password_hash).toMatch(/^\$argon2id\$/);

      const fetched = await call('GET', `/api/users/${created.body.id}`);
      expect(fetched.body.hasPassword).toBe(true);
      expectNoSecrets(fetched.text, [password, row.password_hash]);
      const listed = await call('GET', `/api/users?search=${created.body.id}`);
      expect(listed.body).toHaveLength(1);
      expectNoSecrets(listed.text, [password, row.password_hash]);
    });

    it('creates a user with no fields at all (an account without email)', async () => {
      const response = await call('POST', '/api/users', {});
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ primaryEmail: null, name: null, avatar: null, hasPassword: false });
    });

    it.each([
      ['an email of the wrong type', { primaryEmail: 42 }, 'body.primaryEmail'],
      ['an invalid email', { primaryEmail: 'not-an-email' }, 'body.primaryEmail'],
      ['a name of the wrong type', { name: ['Ada'] }, 'body.name'],
      ['an empty name', { name: '   ' }, 'body.name'],
      ['a name over 256 characters', { name: 'n'.repeat(257) }, 'body.name'],
      ['an email over 254 characters', { primaryEmail: `${'a'.repeat(250)}@example.test` }, 'body.primaryEmail'],
      ['a non-http avatar', { avatar: 'javascript:alert(1)' }, 'body.avatar'],
      ['an avatar over 2048 characters', { avatar: `https://img.example/${'a'.repeat(2048)}` }, 'body.avatar'],
      ['a password under 8 characters', { password: 'short' }, 'body.password'],
      ['a password over 256 characters', { password: 'p'.repeat(257) }, 'body.password'],
      ['a password of the wrong type', { password: 12345678 }, 'body.password'],
    ])('refuses %s with 400 naming the field', async (_label, body, path) => {
      const response = await call('POST', '/api/users', body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain(path);
    });

    it('refuses an unknown field with 400 naming it, and creates nobody', async () => {
      const email = uniqueEmail('unknown-field');
      const response = await call('POST', '/api/users', { primaryEmail: email, isAdmin: true });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect(response.body.message).toContain('isAdmin');
      expect((await call('GET', `/api/users?search=${encodeURIComponent(email)}`)).body).toEqual([]);
    });

    it('refuses a NUL byte anywhere in the body, a body that is not an object and a body over the limit', async () => {
      const nul = await api(t, 'POST', '/api/users', { token, rawBody: '{"name":"Ada\\u0000Lovelace"}' });
      expect(nul.status).toBe(400);
      expect(nul.body.code).toBe('INVALID_INPUT');
      expect((await call('POST', '/api/users', ['x'])).status).toBe(400);
      expect((await call('POST', '/api/users', 'x')).status).toBe(400);
      const huge = await call('POST', '/api/users', { name: 'n'.repeat(70_000) });
      expect(huge.status).toBe(413);
    });

    it('refuses a second user with the same email in another case with 409 EMAIL_ALREADY_IN_USE', async () => {
      const email = uniqueEmail('dup');
      expect((await call('POST', '/api/users', { primaryEmail: email })).status).toBe(201);
      const again = await call('POST', '/api/users', { primaryEmail: email.toUpperCase() });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('EMAIL_ALREADY_IN_USE');
      expect((await call('GET', `/api/users?search=${encodeURIComponent(email)}`)).headers.get('total-number')).toBe('1');
    });

    it('gives exactly one of 10 parallel creates of one email a 201 and the rest 409', async () => {
      const email = uniqueEmail('race');
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => call('POST', '/api/users', { primaryEmail: i % 2 ? email.toUpperCase() : email, password: `password-${i}` })),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      const refused = results.filter((r) => r.status === 409);
      expect(refused).toHaveLength(9);
      expect(new Set(refused.map((r) => r.body.code))).toEqual(new Set(['EMAIL_ALREADY_IN_USE']));
      expect((await call('GET', `/api/users?search=${encodeURIComponent(email)}`)).headers.get('total-number')).toBe('1');
    });
  });

  describe('GET /api/users', () => {
    it('searches email, name and exact id, and paginates with a Total-Number that counts the search', async () => {
      const label = tag();
      const created = [];
      for (let i = 0; i < 3; i += 1) created.push(await createUser({ name: `Pager ${label} ${i}` }));
      const byEmail = await createUser({ primaryEmail: uniqueEmail(`mail${label}`) });

      const all = await call('GET', `/api/users?search=${label.toUpperCase()}`);
      expect(all.status).toBe(200);
      expect(all.headers.get('total-number')).toBe('4');
      // Newest first.
      expect(all.body.map((u: { id: string }) => u.id)).toEqual([byEmail.id, ...created.map((u) => u.id).reverse()]);

      const page1 = await call('GET', `/api/users?search=${label}&page=1&page_size=3`);
      const page2 = await call('GET', `/api/users?search=${label}&page=2&page_size=3`);
      expect(page1.body).toHaveLength(3);
      expect(page2.body).toHaveLength(1);
      expect(page2.headers.get('total-number')).toBe('4');
      const beyond = await call('GET', `/api/users?search=${label}&page=3&page_size=3`);
      expect(beyond.status).toBe(200);
      expect(beyond.body).toEqual([]);
      expect(beyond.headers.get('total-number')).toBe('4');

      const largest = await call('GET', `/api/users?search=${label}&page_size=100`);
      expect(largest.status).toBe(200);
      expect(largest.body).toHaveLength(4);

      const byId = await call('GET', `/api/users?search=${created[1]!.id}`);
      expect(byId.body.map((u: { id: string }) => u.id)).toEqual([created[1]!.id]);
      const none = await call('GET', `/api/users?search=nobody-${tag()}`);
      expect(none.body).toEqual([]);
      expect(none.headers.get('total-number')).toBe('0');
    });

    it('matches % and _ in a search literally, not as wildcards', async () => {
      const label = tag();
      const percent = await createUser({ name: `Deal ${label}%off` });
      const underscore = await createUser({ name: `Deal ${label}_x` });
      await createUser({ name: `Deal ${label}AAoff` });
      await createUser({ name: `Deal ${label}Bx` });

      const byPercent = await call('GET', `/api/users?search=${encodeURIComponent(`${label}%`)}`);
      expect(byPercent.body.map((u: { id: string }) => u.id)).toEqual([percent.id]);
      expect(byPercent.headers.get('total-number')).toBe('1');
      const byUnderscore = await call('GET', `/api/users?search=${encodeURIComponent(`${label}_`)}`);
      expect(byUnderscore.body.map((u: { id: string }) => u.id)).toEqual([underscore.id]);
      const byBackslash = await call('GET', `/api/users?search=${encodeURIComponent(`${label}\\`)}`);
      expect(byBackslash.status).toBe(200);
      expect(byBackslash.body).toEqual([]);
    });

    it.each([
      ['a page size of 101', 'page_size=101'],
      ['a page size of 0', 'page_size=0'],
      ['page 0', 'page=0'],
      ['a fractional page', 'page=1.5'],
      ['a non-numeric page size', 'page_size=ten'],
      ['an empty search', 'search='],
      ['a search over 256 characters', `search=${'s'.repeat(257)}`],
      ['an unknown parameter', 'role=admin'],
      ['a NUL byte in the search', 'search=a%00b'],
    ])('refuses %s with 400', async (_label, query) => {
      const response = await call('GET', `/api/users?${query}`);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });

    it('names the unknown query parameter it refuses', async () => {
      const response = await call('GET', '/api/users?role=admin');
      expect(response.body.message).toContain('role');
    });
  });

  describe('GET /api/users/:id', () => {
    it('answers 404 NOT_FOUND for an unknown id and 400 for an id that cannot exist', async () => {
      const unknown = await call('GET', '/api/users/no-such-user');
      expect(unknown.status).toBe(404);
      expect(unknown.body).toMatchObject({ code: 'NOT_FOUND' });
      expect((await call('GET', `/api/users/${encodeURIComponent('a b')}`)).status).toBe(400);
      expect((await call('GET', `/api/users/${'x'.repeat(65)}`)).status).toBe(400);
      expect((await call('GET', '/api/users/abc%00def')).status).toBe(400);
    });
  });

  describe('PATCH /api/users/:id', () => {
    it('changes name and avatar, and clears them with null', async () => {
      const user = await createUser({ name: 'Before' });
      const changed = await call('PATCH', `/api/users/${user.id}`, { name: 'After', avatar: 'https://img.example/b.png' });
      expect(changed.status).toBe(200);
      expect(changed.body).toMatchObject({ id: user.id, name: 'After', avatar: 'https://img.example/b.png', primaryEmail: user.primaryEmail });
      const cleared = await call('PATCH', `/api/users/${user.id}`, { name: null, avatar: null });
      expect(cleared.body).toMatchObject({ name: null, avatar: null });
      expect((await call('GET', `/api/users/${user.id}`)).body).toEqual(cleared.body);
    });

    it('keeps a verified email verified until the email changes, then resets emailVerified', async () => {
      const email = uniqueEmail('verified');
      const { sub } = await signInForTokens(email);
      const signedIn = await call('GET', `/api/users/${sub}`);
      expect(signedIn.body).toMatchObject({ primaryEmail: email, emailVerified: true });
      expect(signedIn.body.lastSignInAt).toEqual(expect.any(String));

      expect((await call('PATCH', `/api/users/${sub}`, { name: 'Renamed' })).body.emailVerified).toBe(true);
      expect((await call('PATCH', `/api/users/${sub}`, { primaryEmail: email.toUpperCase() })).body.emailVerified).toBe(true);

      const newEmail = uniqueEmail('moved');
      const moved = await call('PATCH', `/api/users/${sub}`, { primaryEmail: newEmail });
      expect(moved.status).toBe(200);
      expect(moved.body).toMatchObject({ primaryEmail: newEmail, emailVerified: false });
      expect((await call('GET', `/api/users/${sub}`)).body.emailVerified).toBe(false);
    });

    it('refuses another user’s email in any case with 409 and changes nothing', async () => {
      const taken = await createUser();
      const user = await createUser();
      const response = await call('PATCH', `/api/users/${user.id}`, { primaryEmail: taken.primaryEmail!.toUpperCase() });
      expect(response.status).toBe(409);
      expect(response.body.code).toBe('EMAIL_ALREADY_IN_USE');
      expect((await call('GET', `/api/users/${user.id}`)).body.primaryEmail).toBe(user.primaryEmail);
    });

    it.each([
      ['an empty body', {}],
      ['an unknown field', { isSuspended: true }],
      ['a password (it has its own route)', { password: 'long-enough-password' }],
      ['an invalid email', { primaryEmail: 'nope' }],
      ['a name over 256 characters', { name: 'n'.repeat(257) }],
    ])('refuses %s with 400', async (_label, body) => {
      const user = await createUser();
      const response = await call('PATCH', `/api/users/${user.id}`, body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });

    it('names the unknown field it refuses', async () => {
      const user = await createUser();
      const response = await call('PATCH', `/api/users/${user.id}`, { nickname: 'x' });
      expect(response.body.message).toContain('nickname');
    });

    it('answers 404 for an unknown user', async () => {
      const response = await call('PATCH', '/api/users/no-such-user', { name: 'x' });
      expect(response.status).toBe(404);
      expect(response.body.code).toBe('NOT_FOUND');
    });
  });

  describe('PATCH /api/users/:id/password', () => {
    it('sets a password: hasPassword becomes true, the hash changes and is never shown', async () => {
      const user = await createUser();
      const first = `first-password-${tag()}`;
      const set = await call('PATCH', `/api/users/${user.id}/password`, { password: first });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ id: user.id, hasPassword: true });
      const hash = (await t.db('users').where({ id: user.id }).first()).password_hash as string;
      expectNoSecrets(set.text, [first, hash]);

      const second = `second-password-${tag()}`;
      const reset = await call('PATCH', `/api/users/${user.id}/password`, { password: second });
      expect(reset.status).toBe(200);
      const newHash = (await t.db('users').where({ id: user.id }).first()).password_hash as string;
      expect(newHash).not.toBe(hash);
      expectNoSecrets(reset.text, [second, newHash]);
    });

    it.each([
      ['a missing password', {}],
      ['a short password', { password: '1234567' }],
      ['a password over 256 characters', { password: 'p'.repeat(257) }],
      ['a password of the wrong type', { password: true }],
      ['an unknown field', { password: 'long-enough-password', confirm: 'long-enough-password' }],
    ])('refuses %s with 400', async (_label, body) => {
      const user = await createUser();
      const response = await call('PATCH', `/api/users/${user.id}/password`, body);
      expect(response.status).toBe(400);
      expect((await call('GET', `/api/users/${user.id}`)).body.hasPassword).toBe(false);
    });

    it('answers 404 for an unknown user', async () => {
      const response = await call('PATCH', '/api/users/no-such-user/password', { password: 'long-enough-password' });
      expect(response.status).toBe(404);
      expect(response.body.code).toBe('NOT_FOUND');
    });
  });

  describe('PATCH /api/users/:id/is-suspended', () => {
    it('suspends a user: their refresh token stops working and a sign-in shows ACCOUNT_DISABLED; unsuspending lets them in again', async () => {
      const email = uniqueEmail('suspend');
      const before = await signInForTokens(email);
      // The refresh token works while the account is active (it rotates).
      const refreshed = await oidc.refreshTokenGrant(config, before.tokens.refresh_token!);

      const suspended = await call('PATCH', `/api/users/${before.sub}/is-suspended`, { isSuspended: true });
      expect(suspended.status).toBe(200);
      expect(suspended.body).toMatchObject({ id: before.sub, isSuspended: true });
      expect((await call('GET', `/api/users/${before.sub}`)).body.isSuspended).toBe(true);

      await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.fetchUserInfo(config, refreshed.access_token, before.sub)).rejects.toThrow();
      expect((await call('GET', `/api/users/${before.sub}/sessions`)).body).toEqual([]);
      const refused = await signIn(email);
      expect(refused.done.response.status).toBe(403);
      expect(await refused.done.response.text()).toContain('ACCOUNT_DISABLED');
      expect(refused.done.url.origin).toBe(t.baseUrl);

      const unsuspended = await call('PATCH', `/api/users/${before.sub}/is-suspended`, { isSuspended: false });
      expect(unsuspended.status).toBe(200);
      expect(unsuspended.body.isSuspended).toBe(false);
      const again = await signInForTokens(email);
      expect(again.sub).toBe(before.sub);
      // Suspension revoked the old tokens: unsuspending does not bring them back.
      await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it.each([
      ['a missing flag', {}],
      ['a flag given as a string', { isSuspended: 'true' }],
      ['an unknown field', { isSuspended: true, reason: 'spam' }],
    ])('refuses %s with 400', async (_label, body) => {
      const user = await createUser();
      const response = await call('PATCH', `/api/users/${user.id}/is-suspended`, body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect((await call('GET', `/api/users/${user.id}`)).body.isSuspended).toBe(false);
    });

    it('answers 404 for an unknown user', async () => {
      const response = await call('PATCH', '/api/users/no-such-user/is-suspended', { isSuspended: true });
      expect(response.status).toBe(404);
      expect(response.body.code).toBe('NOT_FOUND');
    });
  });

  describe('sessions', () => {
    it('lists the session of a sign-in with its client and amr, without the session id', async () => {
      const email = uniqueEmail('sessions');
      const { sub } = await signInForTokens(email);
      const response = await call('GET', `/api/users/${sub}/sessions`);
      expect(response.status).toBe(200);
      expect(response.body).toEqual([
        { uid: expect.any(String), loginAt: expect.any(String), expiresAt: expect.any(String), amr: ['email'], clientIds: [app.id] },
      ]);
      expect(Date.parse(response.body[0].expiresAt)).toBeGreaterThan(Date.now());
      // The session's id is the value of the browser's session cookie: it must not be shown.
      const rows = await t.db('oidc_model_instances').where({ model_name: 'Session' }).whereRaw(`payload->>'accountId' = ?`, [sub]).select('id');
      expect(rows).toHaveLength(1);
      expect(response.body[0].uid).not.toBe(rows[0].id);
      expect(response.text).not.toContain(rows[0].id);
    });

    it('lists no sessions for a user who never signed in', async () => {
      const user = await createUser();
      const response = await call('GET', `/api/users/${user.id}/sessions`);
      expect(response.status).toBe(200);
      expect(response.body).toEqual([]);
    });

    it('forces a logout: 204, refresh fails with invalid_grant, no sessions are listed and silent sign-in needs a login', async () => {
      const email = uniqueEmail('logout');
      const { browser, tokens, sub } = await signInForTokens(email);
      // Before: the browser's session signs the app in silently, and the refresh token works.
      const silentBefore = await silentAuthorize(browser);
      expect(silentBefore.get('code')).toBeTruthy();
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);

      const ended = await call('DELETE', `/api/users/${sub}/sessions`);
      expect(ended.status).toBe(204);
      expect(ended.text).toBe('');

      await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await call('GET', `/api/users/${sub}/sessions`)).body).toEqual([]);
      const silentAfter = await silentAuthorize(browser);
      expect(silentAfter.get('error')).toBe('login_required');
      expect(silentAfter.get('code')).toBeNull();

      // Ending the sessions of a user with none is not an error.
      expect((await call('DELETE', `/api/users/${sub}/sessions`)).status).toBe(204);
    });

    it('answers 404 for an unknown user on both routes', async () => {
      for (const method of ['GET', 'DELETE']) {
        const response = await call(method, '/api/users/no-such-user/sessions');
        expect(response.status, method).toBe(404);
        expect(response.body.code).toBe('NOT_FOUND');
      }
    });
  });

  describe('GET /api/users/:id/organizations', () => {
    it('lists the user’s organizations with their roles in each', async () => {
      const user = await createUser();
      const label = tag();
      const first = (await call('POST', '/api/organizations', { name: `First ${label}`, customData: { plan: 'pro' } })).body;
      const second = (await call('POST', '/api/organizations', { name: `Second ${label}` })).body;
      const admin = (await call('POST', '/api/organization-roles', { name: `admin-${label}` })).body;
      const viewer = (await call('POST', '/api/organization-roles', { name: `viewer-${label}` })).body;
      expect((await call('POST', `/api/organizations/${first.id}/users`, { userIds: [user.id] })).status).toBe(201);
      expect((await call('POST', `/api/organizations/${second.id}/users`, { userIds: [user.id] })).status).toBe(201);
      expect((await call('POST', `/api/organizations/${first.id}/users/${user.id}/roles`, { organizationRoleIds: [viewer.id, admin.id] })).status).toBe(201);

      const response = await call('GET', `/api/users/${user.id}/organizations`);
      expect(response.status).toBe(200);
      expect(response.body).toEqual([
        {
          ...first,
          organizationRoles: [
            { id: admin.id, name: admin.name },
            { id: viewer.id, name: viewer.name },
          ],
        },
        { ...second, organizationRoles: [] },
      ]);
    });

    it('lists nothing for a user without organizations and answers 404 for an unknown user', async () => {
      const user = await createUser();
      expect((await call('GET', `/api/users/${user.id}/organizations`)).body).toEqual([]);
      const unknown = await call('GET', '/api/users/no-such-user/organizations');
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('NOT_FOUND');
    });
  });

  describe('DELETE /api/users/:id', () => {
    it('deletes a user: 204, then 404 everywhere, gone from their organizations, and the email can be used again', async () => {
      const email = uniqueEmail('delete');
      const user = await createUser({ primaryEmail: email });
      const colleague = await createUser();
      const org = (await call('POST', '/api/organizations', { name: `Team ${tag()}` })).body;
      expect((await call('POST', `/api/organizations/${org.id}/users`, { userIds: [user.id, colleague.id] })).status).toBe(201);
      const deleted = await call('DELETE', `/api/users/${user.id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe('');
      for (const [method, path, body] of [
        ['GET', `/api/users/${user.id}`],
        ['PATCH', `/api/users/${user.id}`, { name: 'x' }],
        ['DELETE', `/api/users/${user.id}`],
        ['GET', `/api/users/${user.id}/sessions`],
        ['GET', `/api/users/${user.id}/organizations`],
      ] as const) {
        const response = await call(method, path, body);
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(response.body).toMatchObject({ code: 'NOT_FOUND' });
      }
      const members = await call('GET', `/api/organizations/${org.id}/users`);
      expect(members.body.map((m: { id: string }) => m.id)).toEqual([colleague.id]);
      expect(members.headers.get('total-number')).toBe('1');
      expect((await call('POST', '/api/users', { primaryEmail: email })).status).toBe(201);
    });

    it('ends a deleted user’s sessions: their refresh token fails', async () => {
      const email = uniqueEmail('deleted-signed-in');
      const { tokens, sub } = await signInForTokens(email);
      expect((await call('DELETE', `/api/users/${sub}`)).status).toBe(204);
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect(await t.db('oidc_model_instances').whereRaw(`payload->>'accountId' = ?`, [sub]).first()).toBeUndefined();
    });
  });
});
