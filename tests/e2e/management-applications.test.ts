import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind } from '../helpers/db.ts';
import { api, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

type Client = { id: string; secret: string };

describe(`applications in the Management API (${databaseKind})`, () => {
  let t: TestSesame;
  let token: string;

  beforeAll(async () => {
    t = await startTestSesame();
    token = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  const call = (method: string, path: string, body?: unknown) => api(t, method, path, { token, ...(body === undefined ? {} : { body }) });

  async function createApp(body: Record<string, unknown>) {
    const response = await call('POST', '/api/applications', body);
    if (response.status !== 201) throw new Error(`application failed: ${response.status} ${response.text}`);
    return response.body as { id: string; secret: string | null; type: string };
  }

  const ids = (items: Array<{ id: string }>) => items.map((item) => item.id);
  const sealedSecretOf = async (id: string) => (await t.db('applications').where({ id }).first()).secret_sealed as string | null;

  /** Neither the secret nor its sealed form may appear in a response that is not a creation or rotation. */
  function expectNoSecret(text: string, secrets: Array<string | null | undefined>) {
    expect(text).not.toContain('secret_sealed');
    expect(text).not.toContain('"secret"');
    for (const secret of secrets) if (secret) expect(text).not.toContain(secret);
  }

  /** The token endpoint with client_secret_basic, as a backend calls it. */
  async function tokenRequest(client: Client, form: Record<string, string>) {
    const response = await fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams(form),
    });
    return { status: response.status, body: (await response.json()) as { access_token?: string; error?: string } };
  }

  const clientCredentials = (client: Client, scope = 'all') =>
    tokenRequest(client, { grant_type: 'client_credentials', resource: `${t.baseUrl}/api`, scope });

  /** A Management API call made with `accessToken`. */
  const apiStatus = async (accessToken: string) => (await api(t, 'GET', '/api/applications?page_size=1', { token: accessToken })).status;

  /**
   * Total-Number must count every matching row. Other test files may write to a
   * shared PostgreSQL database meanwhile, so the count is compared only when the
   * table did not change around the request.
   */
  async function expectTotalMatchesTable(path: string, count: () => Promise<number>) {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const before = await count();
      const response = await call('GET', path);
      const after = await count();
      if (before === after) {
        expect(response.headers.get('total-number')).toBe(String(before));
        return response;
      }
    }
    throw new Error('the applications table kept changing');
  }
  const countOfType = (type?: string) => async () =>
    Number((await t.db('applications').modify((q) => (type ? q.where({ type }) : q)).count({ count: '*' }))[0]!.count);

  describe('POST /api/applications', () => {
    it('creates a machine-to-machine app with a url-safe secret and no Management API access by default', async () => {
      const response = await call('POST', '/api/applications', { name: '  Billing backend ', type: 'MachineToMachine', description: 'Invoices' });
      expect(response.status).toBe(201);
      expect(response.body).toEqual({
        id: expect.stringMatching(/^[A-Za-z0-9_-]+$/),
        name: 'Billing backend',
        type: 'MachineToMachine',
        description: 'Invoices',
        oidcClientMetadata: { redirectUris: [], postLogoutRedirectUris: [] },
        isThirdParty: false,
        managementApiAccess: false,
        createdAt: expect.any(String),
        secret: expect.stringMatching(/^[A-Za-z0-9_-]{40,}$/),
      });
      const sealed = await sealedSecretOf(response.body.id);
      expect(sealed).toBeTruthy();
      expect(sealed).not.toContain(response.body.secret);
      expect(response.text).not.toContain(sealed!);
    });

    it('creates an M2M app with Management API access that works at once', async () => {
      const app = await createApp({ name: 'Admin backend', type: 'MachineToMachine', managementApiAccess: true });
      const issued = await clientCredentials({ id: app.id, secret: app.secret! });
      expect(issued.status).toBe(200);
      expect(await apiStatus(issued.body.access_token!)).toBe(200);
    });

    it.each([
      ['a name of the wrong type', { name: 42, type: 'SPA' }, 'body.name'],
      ['a name over 256 characters', { name: 'n'.repeat(257), type: 'SPA' }, 'body.name'],
      ['a description over 2048 characters', { name: 'x', type: 'SPA', description: 'd'.repeat(2049) }, 'body.description'],
      ['a missing type', { name: 'x' }, 'body.type'],
      ['redirect URIs that are not an array', { name: 'x', type: 'SPA', oidcClientMetadata: { redirectUris: 'https://a.example/cb' } }, 'body.oidcClientMetadata.redirectUris'],
      ['a redirect URI over 2048 characters', { name: 'x', type: 'SPA', oidcClientMetadata: { redirectUris: [`https://a.example/${'a'.repeat(2048)}`] } }, 'body.oidcClientMetadata.redirectUris.0'],
      ['managementApiAccess given as a string', { name: 'x', type: 'MachineToMachine', managementApiAccess: 'yes' }, 'body.managementApiAccess'],
    ])('refuses %s with 400 naming the field', async (_label, body, path) => {
      const response = await call('POST', '/api/applications', body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain(path);
    });

    it('refuses unknown fields, also inside oidcClientMetadata, naming them', async () => {
      const top = await call('POST', '/api/applications', { name: 'x', type: 'SPA', isAdmin: true });
      expect(top.status).toBe(400);
      expect(top.body.message).toContain('isAdmin');
      const nested = await call('POST', '/api/applications', { name: 'x', type: 'SPA', oidcClientMetadata: { grantTypes: ['implicit'] } });
      expect(nested.status).toBe(400);
      expect(nested.body.message).toContain('grantTypes');
    });

    it('refuses Management API access for an app that is not machine-to-machine', async () => {
      const response = await call('POST', '/api/applications', { name: 'x', type: 'Traditional', managementApiAccess: true });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });

    it('refuses a NUL byte in the body', async () => {
      const response = await api(t, 'POST', '/api/applications', { token, rawBody: '{"name":"a\\u0000b","type":"SPA"}' });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });
  });

  describe('GET /api/applications', () => {
    it('filters by type with a Total-Number that counts the filter, and never shows secrets', async () => {
      const created = [
        await createApp({ name: 'Native one', type: 'Native', oidcClientMetadata: { redirectUris: ['com.example.one:/cb'] } }),
        await createApp({ name: 'Native two', type: 'Native', oidcClientMetadata: { redirectUris: ['com.example.two:/cb'] } }),
        await createApp({ name: 'Web', type: 'Traditional', oidcClientMetadata: { redirectUris: ['https://web.example/cb'] } }),
        await createApp({ name: 'Backend', type: 'MachineToMachine' }),
      ];
      const everyApp = [...ids(created), t.m2m.id];
      const secrets = [...created.map((app) => app.secret), t.m2m.secret, ...(await Promise.all(everyApp.map((id) => sealedSecretOf(id))))];

      const natives = await expectTotalMatchesTable('/api/applications?type=Native&page_size=100', countOfType('Native'));
      expect(natives.status).toBe(200);
      expect(natives.body.length).toBeGreaterThanOrEqual(2);
      expect(natives.body.every((app: { type: string }) => app.type === 'Native')).toBe(true);
      // Newest first.
      const nativeIds = ids(natives.body);
      expect(nativeIds.indexOf(created[1]!.id)).toBeLessThan(nativeIds.indexOf(created[0]!.id));
      expect(nativeIds).not.toContain(created[2]!.id);

      const all = await expectTotalMatchesTable('/api/applications?page_size=100', countOfType());
      expectNoSecret(all.text, secrets);
      const machines = await call('GET', '/api/applications?type=MachineToMachine&page_size=100');
      expectNoSecret(machines.text, secrets);
      expect(ids(machines.body)).toContain(created[3]!.id);
    });

    it('answers a page beyond the end with [] and the full Total-Number; page_size 100 is allowed', async () => {
      const beyond = await expectTotalMatchesTable('/api/applications?page=1000000&page_size=100', countOfType());
      expect(beyond.status).toBe(200);
      expect(beyond.body).toEqual([]);
      expect(Number(beyond.headers.get('total-number'))).toBeGreaterThan(0);
      const one = await call('GET', '/api/applications?page_size=1');
      expect(one.body).toHaveLength(1);
    });

    it.each([
      ['a page size of 101', 'page_size=101'],
      ['page 0', 'page=0'],
      ['an unknown type', 'type=Mainframe'],
      ['an unknown parameter', 'name=x'],
      ['a NUL byte', 'type=SPA%00'],
    ])('refuses %s with 400', async (_label, query) => {
      const response = await call('GET', `/api/applications?${query}`);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });
  });

  describe('GET /api/applications/:id', () => {
    it('shows an application without its secret', async () => {
      const app = await createApp({ name: 'Portal', type: 'Traditional', oidcClientMetadata: { redirectUris: ['https://portal.example/cb'] } });
      const response = await call('GET', `/api/applications/${app.id}`);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ id: app.id, name: 'Portal', type: 'Traditional', managementApiAccess: false });
      expect(response.body).not.toHaveProperty('secret');
      expectNoSecret(response.text, [app.secret, await sealedSecretOf(app.id)]);
    });

    it('answers 404 NOT_FOUND for an unknown id and 400 for an id that cannot exist', async () => {
      const unknown = await call('GET', '/api/applications/no-such-app');
      expect(unknown.status).toBe(404);
      expect(unknown.body).toMatchObject({ code: 'NOT_FOUND' });
      expect((await call('GET', `/api/applications/${encodeURIComponent('a.b')}`)).status).toBe(400);
      expect((await call('GET', '/api/applications/a%00b')).status).toBe(400);
    });
  });

  describe('PATCH /api/applications/:id', () => {
    it('changes name, description and redirect URIs, keeping what is not given, without showing the secret', async () => {
      const app = await createApp({
        name: 'Shop',
        type: 'Traditional',
        description: 'Old',
        oidcClientMetadata: { redirectUris: ['https://shop.example/cb'], postLogoutRedirectUris: ['https://shop.example/'] },
      });
      const renamed = await call('PATCH', `/api/applications/${app.id}`, { name: 'Shop 2', description: null });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toMatchObject({ name: 'Shop 2', description: null, oidcClientMetadata: { redirectUris: ['https://shop.example/cb'] } });
      expectNoSecret(renamed.text, [app.secret, await sealedSecretOf(app.id)]);

      const moved = await call('PATCH', `/api/applications/${app.id}`, { oidcClientMetadata: { redirectUris: ['https://shop.example/callback', 'http://localhost:3000/cb'] } });
      expect(moved.status).toBe(200);
      expect(moved.body.oidcClientMetadata).toEqual({
        redirectUris: ['https://shop.example/callback', 'http://localhost:3000/cb'],
        postLogoutRedirectUris: ['https://shop.example/'],
      });
      expect((await call('GET', `/api/applications/${app.id}`)).body).toEqual(moved.body);
    });

    it.each([
      ['a plain-http redirect URI off localhost', { redirectUris: ['http://app.example/cb'] }],
      ['a redirect URI with a fragment', { redirectUris: ['https://app.example/cb#x'] }],
      ['a relative redirect URI', { redirectUris: ['/cb'] }],
      ['a javascript: redirect URI', { redirectUris: ['javascript:alert(1)'] }],
      ['a data: post-logout redirect URI', { postLogoutRedirectUris: ['data:text/html,hi'] }],
      ['a private-scheme URI on a web app', { redirectUris: ['com.example.app:/cb'] }],
    ])('validates redirect URIs like creation: refuses %s with 400 and changes nothing', async (_label, oidcClientMetadata) => {
      const app = await createApp({ name: 'SPA', type: 'SPA', oidcClientMetadata: { redirectUris: ['https://spa.example/cb'] } });
      const response = await call('PATCH', `/api/applications/${app.id}`, { oidcClientMetadata });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect((await call('GET', `/api/applications/${app.id}`)).body.oidcClientMetadata.redirectUris).toEqual(['https://spa.example/cb']);
    });

    it('refuses redirect URIs on a machine-to-machine app', async () => {
      const app = await createApp({ name: 'Backend', type: 'MachineToMachine' });
      const response = await call('PATCH', `/api/applications/${app.id}`, { oidcClientMetadata: { redirectUris: ['https://a.example/cb'] } });
      expect(response.status).toBe(400);
    });

    it.each([
      ['an empty body', {}],
      ['a type change', { type: 'SPA' }],
      ['a secret', { secret: 'chosen-by-me' }],
      ['an empty name', { name: ' ' }],
      ['a name over 256 characters', { name: 'n'.repeat(257) }],
      ['managementApiAccess given as a string', { managementApiAccess: 'true' }],
    ])('refuses %s with 400', async (_label, body) => {
      const app = await createApp({ name: 'Backend', type: 'MachineToMachine' });
      const response = await call('PATCH', `/api/applications/${app.id}`, body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });

    it('names an unknown field it refuses', async () => {
      const app = await createApp({ name: 'Backend', type: 'MachineToMachine' });
      const response = await call('PATCH', `/api/applications/${app.id}`, { isAdmin: true });
      expect(response.body.message).toContain('isAdmin');
    });

    it('answers 404 for an unknown application', async () => {
      const response = await call('PATCH', '/api/applications/no-such-app', { name: 'x' });
      expect(response.status).toBe(404);
      expect(response.body.code).toBe('NOT_FOUND');
    });

    it('gives and takes Management API access: the app’s token works once given, and is refused at once when taken', async () => {
      const app = await createApp({ name: 'Ops backend', type: 'MachineToMachine' });
      const client = { id: app.id, secret: app.secret! };
      const without = await clientCredentials(client);
      expect(without.status).toBe(200);
      expect(await apiStatus(without.body.access_token!)).toBe(403);

      const given = await call('PATCH', `/api/applications/${app.id}`, { managementApiAccess: true });
      expect(given.status).toBe(200);
      expect(given.body.managementApiAccess).toBe(true);
      const withAccess = await clientCredentials(client);
      expect(withAccess.status).toBe(200);
      expect(await apiStatus(withAccess.body.access_token!)).toBe(200);

      const taken = await call('PATCH', `/api/applications/${app.id}`, { managementApiAccess: false });
      expect(taken.body.managementApiAccess).toBe(false);
      // The token is still unexpired, but the app no longer has access.
      const refused = await api(t, 'GET', '/api/applications', { token: withAccess.body.access_token! });
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('FORBIDDEN');
    });

    it('refuses Management API access for a Traditional app', async () => {
      const app = await createApp({ name: 'Web', type: 'Traditional', oidcClientMetadata: { redirectUris: ['https://web.example/cb'] } });
      const response = await call('PATCH', `/api/applications/${app.id}`, { managementApiAccess: true });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect((await call('GET', `/api/applications/${app.id}`)).body.managementApiAccess).toBe(false);
    });
  });

  describe('POST /api/applications/:id/secret', () => {
    it('rotates a machine-to-machine app’s secret: the old one stops working at the token endpoint, the new one works', async () => {
      const app = await createApp({ name: 'Rotating backend', type: 'MachineToMachine' });
      const old = { id: app.id, secret: app.secret! };
      expect((await clientCredentials(old, '')).status).toBe(200);

      const rotated = await call('POST', `/api/applications/${app.id}/secret`);
      expect(rotated.status).toBe(200);
      expect(rotated.body).toMatchObject({ id: app.id, type: 'MachineToMachine', secret: expect.stringMatching(/^[A-Za-z0-9_-]{40,}$/) });
      expect(rotated.body.secret).not.toBe(old.secret);
      expect(rotated.text).not.toContain((await sealedSecretOf(app.id))!);

      const refused = await clientCredentials(old, '');
      expect(refused.status).toBe(401);
      expect(refused.body.error).toBe('invalid_client');
      expect((await clientCredentials({ id: app.id, secret: rotated.body.secret }, '')).status).toBe(200);
      expectNoSecret((await call('GET', `/api/applications/${app.id}`)).text, [old.secret, rotated.body.secret]);
    });

    it('rotates a Traditional app’s secret: only the new one authenticates the app', async () => {
      const app = await createApp({ name: 'Rotating web', type: 'Traditional', oidcClientMetadata: { redirectUris: ['https://web.example/cb'] } });
      const rotated = await call('POST', `/api/applications/${app.id}/secret`);
      expect(rotated.status).toBe(200);
      // A made-up code: an authenticated client learns the code is bad, an unauthenticated one that it is unknown.
      const form = { grant_type: 'authorization_code', code: 'made-up-code', redirect_uri: 'https://web.example/cb' };
      const withOld = await tokenRequest({ id: app.id, secret: app.secret! }, form);
      expect(withOld.status).toBe(401);
      expect(withOld.body.error).toBe('invalid_client');
      const withNew = await tokenRequest({ id: app.id, secret: rotated.body.secret }, form);
      expect(withNew.status).toBe(400);
      expect(withNew.body.error).toBe('invalid_grant');
    });

    it('refuses to rotate the secret of an SPA or Native app (public clients) with 400', async () => {
      for (const [type, uri] of [['SPA', 'https://spa.example/cb'], ['Native', 'com.example.app:/cb']] as const) {
        const app = await createApp({ name: type, type, oidcClientMetadata: { redirectUris: [uri] } });
        const response = await call('POST', `/api/applications/${app.id}/secret`);
        expect(response.status, type).toBe(400);
        expect(response.body.code).toBe('INVALID_INPUT');
        expect(await sealedSecretOf(app.id)).toBeNull();
      }
    });

    it('answers 404 for an unknown application', async () => {
      const response = await call('POST', '/api/applications/no-such-app/secret');
      expect(response.status).toBe(404);
      expect(response.body.code).toBe('NOT_FOUND');
    });
  });

  describe('DELETE /api/applications/:id', () => {
    it('deletes an application: 204, its client credentials fail with invalid_client, and it is gone', async () => {
      const app = await createApp({ name: 'Doomed backend', type: 'MachineToMachine', managementApiAccess: true });
      const client = { id: app.id, secret: app.secret! };
      const issued = await clientCredentials(client);
      expect(await apiStatus(issued.body.access_token!)).toBe(200);

      const deleted = await call('DELETE', `/api/applications/${app.id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe('');

      const refused = await clientCredentials(client);
      expect(refused.status).toBe(401);
      expect(refused.body.error).toBe('invalid_client');
      // Its still-unexpired Management API token stops working too.
      expect(await apiStatus(issued.body.access_token!)).toBe(403);
      for (const [method, path, body] of [
        ['GET', `/api/applications/${app.id}`, undefined],
        ['PATCH', `/api/applications/${app.id}`, { name: 'x' }],
        ['DELETE', `/api/applications/${app.id}`, undefined],
        ['POST', `/api/applications/${app.id}/secret`, undefined],
      ] as const) {
        const response = await call(method, path, body);
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(response.body).toMatchObject({ code: 'NOT_FOUND' });
      }
    });

    it('answers 404 for an unknown application', async () => {
      const response = await call('DELETE', '/api/applications/no-such-app');
      expect(response.status).toBe(404);
      expect(response.body.code).toBe('NOT_FOUND');
    });
  });
});
