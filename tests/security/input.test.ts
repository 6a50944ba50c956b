import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { authorizeUrl, basicAuth, openLink, rawHttp, rawStatus, type Client } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:5987/callback';

/** Hostile input: oversize, NUL bytes, deep nesting, odd content types and encodings, injection. Always 4xx, never 500. */
describe(`hostile input (${databaseKind})`, () => {
  let t: TestSesame;
  let admin: string;
  let app: Client;
  let organizationId: string;

  beforeAll(async () => {
    t = await startTestSesame();
    admin = await managementToken(t);
    app = await createTestApplication(t, admin, REDIRECT_URI);
    organizationId = (await api(t, 'POST', '/api/organizations', { token: admin, body: { name: 'Input org' } })).body.id;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A raw request to Sesame: path, method, headers and body exactly as given. */
  async function send(path: string, init: { method?: string; headers?: Record<string, string>; body?: BodyInit; auth?: boolean } = {}) {
    const headers: Record<string, string> = { ...init.headers };
    if (init.auth) headers.authorization = `Bearer ${admin}`;
    const response = await fetch(`${t.listenUrl}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      body: init.body,
      redirect: 'manual',
      ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    return { status: response.status, text: await response.text(), headers: response.headers };
  }
  const json = { 'content-type': 'application/json' };
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const experienceHeaders = () => ({ ...json, origin: t.baseUrl });

  /** An interaction in a browser, for the Experience API and hosted pages. */
  async function interaction() {
    const email = uniqueEmail();
    const minted = await mintToken(t, admin, { email });
    return openLink(t, app, REDIRECT_URI, minted.token, email);
  }

  const nested = (depth: number, leaf = '"x"') => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;

  describe('size', () => {
    it('refuses oversized bodies with 413 on every JSON and form surface', async () => {
      const big = 'a'.repeat(200_000);
      const cases: Array<[string, string, Record<string, string>, string, boolean]> = [
        ['mint', '/api/one-time-tokens', json, JSON.stringify({ email: `${big}@example.test` }), true],
        ['organization customData', '/api/organizations', json, JSON.stringify({ name: 'x', customData: { big } }), true],
        ['Experience API', '/api/experience/one-time-token', experienceHeaders(), JSON.stringify({ token: big }), false],
        ['token endpoint', '/oidc/token', form, `grant_type=refresh_token&refresh_token=${big}`, false],
        ['revocation', '/oidc/token/revocation', form, `token=${big}`, false],
        ['introspection', '/oidc/token/introspection', form, `token=${big}`, false],
        ['demo form', '/demo/send', form, `email=${big}`, false],
      ];
      for (const [label, path, headers, body, auth] of cases) {
        const response = await send(path, { headers, body, auth });
        expect(response.status, label).toBe(413);
      }
    });

    it('refuses a chunked body without Content-Length once it grows past the limit', async () => {
      const chunk = 'a'.repeat(1000);
      const chunked = (path: string, headers: string) =>
        `POST ${path} HTTP/1.1\r\nHost: localhost\r\n${headers}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        `${Array.from({ length: 120 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('')}0\r\n\r\n`;
      const cases = [
        chunked('/api/one-time-tokens', `Authorization: Bearer ${admin}\r\nContent-Type: application/json\r\n`),
        chunked('/api/experience/one-time-token', `Origin: ${t.baseUrl}\r\nContent-Type: application/json\r\n`),
        chunked('/oidc/token', 'Content-Type: application/x-www-form-urlencoded\r\n'),
      ];
      for (const request of cases) {
        expect(rawStatus(await rawHttp(t.listenUrl, request)), request.split('\r\n')[0]).toBe(413);
      }
    });

    it('refuses oversized headers and URLs with 431 before any route runs', async () => {
      const bigHeader = await rawHttp(t.listenUrl, `GET /api/users HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`);
      expect(rawStatus(bigHeader)).toBe(431);
      const bigUrl = await rawHttp(t.listenUrl, `GET /oidc/auth?login_hint=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      expect(rawStatus(bigUrl)).toBe(431);
      const manyHeaders = Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n');
      expect(rawStatus(await rawHttp(t.listenUrl, `GET /healthz HTTP/1.1\r\nHost: localhost\r\n${manyHeaders}\r\nConnection: close\r\n\r\n`))).toBe(431);
    });

    it('refuses over-long values inside the size limit with 400, never storing them', async () => {
      const long = 'a'.repeat(5000);
      const cases: Array<[string, string, string, unknown]> = [
        ['email', 'POST', '/api/one-time-tokens', { email: `${long}@example.test` }],
        ['user name', 'POST', '/api/users', { primaryEmail: uniqueEmail(), name: long }],
        ['redirect URI', 'POST', '/api/applications', { name: 'x', type: 'Traditional', oidcClientMetadata: { redirectUris: [`https://a.example/${long}`] } }],
        ['organization name', 'POST', '/api/organizations', { name: long }],
        ['invitation landing URI', 'POST', '/api/organization-invitations', { email: uniqueEmail(), organizationId, landingUri: `https://a.example/${long}` }],
      ];
      for (const [label, method, path, body] of cases) {
        expect((await api(t, method, path, { token: admin, body })).status, label).toBe(400);
      }
      const { url } = await authorizeUrl(t, app, REDIRECT_URI, { one_time_token: 'a'.repeat(600), login_hint: 'a@example.test' });
      const response = await new CookieClient(t.baseUrl).request(url);
      const location = response.headers.get('location') ?? '';
      expect(location.startsWith('/interaction/')).toBe(false);
      expect(response.status).toBeLessThan(500);
    });
  });

  describe('NUL bytes', () => {
    it('refuses NUL bytes in query strings with 400', async () => {
      const { url } = await authorizeUrl(t, app, REDIRECT_URI, { one_time_token: 'abc', login_hint: 'a@example.test' });
      const flow = await interaction();
      const paths = [
        `${url.replace(t.issuer, '/oidc')}&state=a%00b`,
        url.replace(t.issuer, '/oidc').replace('login_hint=a%40example.test', 'login_hint=a%00b%40example.test'),
        url.replace(t.issuer, '/oidc').replace('one_time_token=abc', 'one_time_token=%00'),
        '/api/users?search=a%00b',
        '/api/one-time-tokens?email=a%00b%40example.test',
        '/api/organizations?q=%00',
        `${flow.landing.url.pathname}?x=%00`,
        `/oidc/session/end?post_logout_redirect_uri=%00&client_id=${app.id}`,
        '/demo/landing?token=%00&email=a%40example.test',
      ];
      for (const path of paths) {
        const response = await send(path, { auth: path.startsWith('/api/') });
        expect(response.status, path).toBe(400);
      }
    });

    it('refuses NUL bytes in paths with 400', async () => {
      for (const [method, path] of [
        ['GET', '/api/users/a%00b'],
        ['GET', '/api/applications/%00'],
        ['DELETE', '/api/one-time-tokens/a%00'],
        ['GET', '/interaction/a%00b'],
        ['POST', '/interaction/a%00b/one-time-token'],
        ['GET', '/oidc/auth/a%00b'],
        ['GET', '/oidc/session/end%00'],
        ['GET', '/dev/outbox/%00.html'],
        ['GET', '/static/sesame.css%00'],
      ] as const) {
        const response = await send(path, { method, auth: path.startsWith('/api/'), headers: method === 'POST' ? form : {}, body: method === 'POST' ? '' : undefined });
        expect(response.status, `${method} ${path}`).toBe(400);
      }
    });

    it('refuses NUL bytes in JSON bodies, escaped or raw, with 400', async () => {
      const escaped = (value: string) => value.replace('NUL', '\\u0000');
      const cases: Array<[string, string, string]> = [
        ['mint email', '/api/one-time-tokens', escaped('{"email":"aNUL@example.test"}')],
        ['mint email, raw byte', '/api/one-time-tokens', '{"email":"a\u0000@example.test"}'],
        ['user name', '/api/users', escaped('{"name":"NUL"}')],
        ['application name', '/api/applications', escaped('{"name":"NUL","type":"SPA"}')],
        ['customData key', '/api/organizations', escaped('{"name":"x","customData":{"NUL":1}}')],
        ['customData value', '/api/organizations', escaped('{"name":"x","customData":{"a":"NUL"}}')],
        ['invitation landing URI', '/api/organization-invitations', escaped(`{"email":"a@example.test","organizationId":"${organizationId}","landingUri":"https://a.example/NUL"}`)],
      ];
      for (const [label, path, body] of cases) {
        expect((await send(path, { headers: json, body, auth: true })).status, label).toBe(400);
      }
      const flow = await interaction();
      for (const body of ['{"token":"a\\u0000"}', '{"token":"a\u0000"}', '{"email":"a\\u0000@example.test"}']) {
        const response = await flow.browser.request('/api/experience/one-time-token', { method: 'POST', headers: experienceHeaders(), body });
        expect(response.status, body).toBe(400);
      }
    });

    it('refuses NUL bytes in form bodies sent to the OIDC endpoints with 400', async () => {
      const cases: Array<[string, string, Record<string, string>]> = [
        ['/oidc/token', 'grant_type=authorization_code&code=a%00b&redirect_uri=x', { authorization: basicAuth(app) }],
        ['/oidc/token', 'grant_type=refresh_token&refresh_token=a\u0000b', { authorization: basicAuth(app) }],
        ['/oidc/token/revocation', 'token=%00', { authorization: basicAuth(app) }],
        ['/oidc/token/introspection', 'token=a%00', { authorization: basicAuth(app) }],
        ['/oidc/session/end/confirm', 'xsrf=%00&logout=yes', { origin: t.baseUrl }],
        ['/demo/send', 'email=a%00%40example.test', {}],
      ];
      for (const [path, body, headers] of cases) {
        expect((await send(path, { headers: { ...form, ...headers }, body })).status, `${path} ${body}`).toBe(400);
      }
    });

    it('refuses NUL bytes and bare CR in headers with 400 (Authorization, Cookie, Origin, any header)', async () => {
      const requests = [
        'GET /api/users HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer a\u0000b\r\nConnection: close\r\n\r\n',
        'GET /interaction/abc HTTP/1.1\r\nHost: localhost\r\nCookie: _interaction=a\u0000b\r\nConnection: close\r\n\r\n',
        'POST /api/experience/one-time-token HTTP/1.1\r\nHost: localhost\r\nOrigin: http://a\u0000b\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
        'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Anything: a\u0000b\r\nConnection: close\r\n\r\n',
        'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Anything: a\rInjected: yes\r\nConnection: close\r\n\r\n',
        'GET /a\u0000b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      ];
      for (const request of requests) {
        expect(rawStatus(await rawHttp(t.listenUrl, request)), JSON.stringify(request.split('\r\n')[0])).toBe(400);
      }
    });

    it('never splits a response through CR/LF in values it puts into Location or other headers', async () => {
      for (const path of [
        '/demo/landing?token=x%0d%0aSet-Cookie:%20evil=1&email=a%40example.test',
        `/oidc/auth?client_id=${app.id}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&response_type=code&scope=openid&prompt=none&state=a%0d%0aSet-Cookie:%20evil=1`,
        '/interaction/a%0d%0aSet-Cookie:%20evil=1',
      ]) {
        const response = await send(path);
        expect(response.status, path).toBeLessThan(500);
        expect(response.headers.getSetCookie().some((cookie) => cookie.startsWith('evil=')), path).toBe(false);
        expect(response.headers.get('location') ?? '', path).not.toMatch(/[\r\n]/);
      }
    });
  });

  describe('structure', () => {
    it.each([
      ['mint email', '/api/one-time-tokens', (deep: string) => `{"email":${deep}}`],
      ['mint context', '/api/one-time-tokens', (deep: string) => `{"email":"a@example.test","context":{"jitOrganizationIds":${deep}}}`],
      ['user name', '/api/users', (deep: string) => `{"name":${deep}}`],
      ['application metadata', '/api/applications', (deep: string) => `{"name":"x","type":"SPA","oidcClientMetadata":{"redirectUris":${deep}}}`],
      ['organization customData', '/api/organizations', (deep: string) => `{"name":"x","customData":{"a":${deep}}}`],
      ['invitation roles', '/api/organization-invitations', (deep: string) => `{"email":"a@example.test","organizationId":"x","landingUri":"https://a.example/","roles":${deep}}`],
    ])('refuses deeply nested JSON in the %s with 400, never 500', async (_label, path, body) => {
      // Moderate nesting may be legitimate custom data; it must simply never crash the server.
      expect((await send(path, { headers: json, body: body(nested(1_000)), auth: true })).status).toBeLessThan(500);
      const response = await send(path, { headers: json, body: body(nested(20_000)), auth: true });
      expect(response.status).toBe(400);
      expect(response.text).not.toContain('INTERNAL');
    });

    it('refuses deeply nested JSON on the Experience API with 400', async () => {
      const flow = await interaction();
      for (const body of [`{"token":${nested(20_000)}}`, nested(30_000)]) {
        const response = await flow.browser.request('/api/experience/one-time-token', { method: 'POST', headers: experienceHeaders(), body });
        expect(response.status).toBe(400);
      }
    });

    it('refuses content types other than JSON with 415 on the Management and Experience APIs, and non-form bodies at the token endpoint', async () => {
      const flow = await interaction();
      const types = ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/json-patch+json', 'text/html', ''];
      for (const type of types) {
        const headers: Record<string, string> = type ? { 'content-type': type } : {};
        const body = type.startsWith('application/x-www') ? 'email=a%40example.test' : '{"email":"a@example.test"}';
        const management = await send('/api/one-time-tokens', { headers, body, auth: true });
        expect(management.status, `Management API, ${type || 'no type'}`).toBe(415);
        const custom = await flow.browser.request('/api/experience/one-time-token', { method: 'POST', headers: { ...headers, origin: t.baseUrl }, body: '{}' });
        expect(custom.status, `Experience API, ${type || 'no type'}`).toBe(415);
      }
      for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x']) {
        const response = await send('/oidc/token', { headers: { 'content-type': type, authorization: basicAuth(app) }, body: '{"grant_type":"client_credentials"}' });
        expect(response.status, type).toBe(400);
        expect(JSON.parse(response.text).error).toBe('invalid_request');
      }
    });

    it('refuses malformed JSON and broken encodings with 400', async () => {
      for (const body of ['{"email":', '{"email":"a@example.test"} trailing', '\uFEFF{"email":"a@example.test"}', "{'email':'a@example.test'}", '{"email":"a@example.test",}', 'null', '"a@example.test"', '12']) {
        expect((await send('/api/one-time-tokens', { headers: json, body, auth: true })).status, body).toBe(400);
      }
      const invalidUtf8 = Buffer.concat([Buffer.from('{"email":"a'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('@example.test"}')]);
      expect((await send('/api/one-time-tokens', { headers: json, body: invalidUtf8, auth: true })).status).toBe(400);
      for (const path of ['/api/users/%E0%A4%A', '/api/users/%', '/interaction/%', '/interaction/%E0%A4%A/one-time-token']) {
        const response = await send(path, { auth: true });
        expect(response.status, path).toBeGreaterThanOrEqual(400);
        expect(response.status, path).toBeLessThan(500);
      }
      for (const path of ['/api/users?search=%E0%A4%A', '/api/one-time-tokens?email=%', '/oidc/auth?client_id=%E0%A4%A']) {
        const response = await send(path, { auth: true });
        expect(response.status, path).toBeLessThan(500);
      }
    });

    it('refuses repeated and array-shaped parameters with 4xx', async () => {
      for (const path of [
        '/api/users?page=1&page=2',
        '/api/one-time-tokens?status=active&status=consumed',
        '/api/users?search[]=x',
        '/api/users?search=a&search=b',
        '/api/applications?type=SPA&type=Native',
      ]) {
        expect((await send(path, { auth: true })).status, path).toBe(400);
      }
      const { url } = await authorizeUrl(t, app, REDIRECT_URI);
      const doubled = await send(`${url.replace(t.issuer, '/oidc')}&client_id=${app.id}`);
      expect(doubled.status).toBe(400);
      const token = await send('/oidc/token', { headers: { ...form, authorization: basicAuth(app) }, body: 'grant_type=refresh_token&grant_type=client_credentials&refresh_token=x' });
      expect(token.status).toBe(400);
    });

    it('refuses out-of-range and non-numeric paging with 400', async () => {
      for (const query of ['page=0', 'page=-1', 'page=1.5', 'page=1e400', 'page=NaN', 'page=99999999999', 'page_size=0', 'page_size=101', 'page_size=1e6', 'page_size=abc']) {
        expect((await send(`/api/users?${query}`, { auth: true })).status, query).toBe(400);
      }
    });

    it('does not let __proto__ or constructor keys pollute prototypes', async () => {
      const payloads: Array<[string, string]> = [
        ['/api/one-time-tokens', '{"email":"a@example.test","__proto__":{"polluted":"yes"}}'],
        ['/api/users', '{"name":"x","constructor":{"prototype":{"polluted":"yes"}}}'],
        ['/api/organizations', '{"name":"x","customData":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}}'],
        ['/api/applications', '{"name":"x","type":"SPA","__proto__":{"managementApiAccess":true,"polluted":"yes"}}'],
      ];
      for (const [path, body] of payloads) {
        const response = await send(path, { headers: json, body, auth: true });
        expect(response.status, path).toBeLessThan(500);
        if (path === '/api/applications' && response.status === 201) expect(JSON.parse(response.text).managementApiAccess).toBe(false);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).managementApiAccess).toBeUndefined();
      const flow = await interaction();
      const custom = await flow.browser.request('/api/experience/one-time-token', {
        method: 'POST',
        headers: experienceHeaders(),
        body: '{"__proto__":{"email":"admin@example.test"}}',
      });
      expect(custom.status).toBe(400);
    });
  });

  describe('injection', () => {
    it('treats SQL and LIKE metacharacters in searches and filters as plain text', async () => {
      const marker = uniqueEmail('sqli');
      await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: marker } });
      for (const search of ["' OR '1'='1", "%' OR 1=1 --", "'; DROP TABLE users; --", '\\', "') UNION SELECT password_hash FROM users --"]) {
        const response = await api(t, 'GET', `/api/users?search=${encodeURIComponent(search)}`, { token: admin });
        expect(response.status, search).toBe(200);
        expect(response.body, search).toEqual([]);
      }
      for (const wildcard of ['%', '_']) {
        const response = await api(t, 'GET', `/api/users?search=${encodeURIComponent(wildcard)}&page_size=100`, { token: admin });
        for (const user of response.body as Array<{ primaryEmail: string | null; name: string | null }>) {
          expect(`${user.primaryEmail} ${user.name}`, wildcard).toContain(wildcard);
        }
      }
      for (const path of ["/api/one-time-tokens?email=' OR 1=1 --", "/api/organizations?q=' OR '1'='1", "/api/organization-invitations?email=x' OR 'a'='a"]) {
        const response = await api(t, 'GET', path.replace(/ /g, '%20').replace(/'/g, '%27'), { token: admin });
        expect(response.status, path).toBe(200);
        expect(response.body, path).toEqual([]);
      }
      expect((await api(t, 'GET', `/api/users/${encodeURIComponent("x' OR '1'='1")}`, { token: admin })).status).toBe(400);
      const stillThere = await api(t, 'GET', `/api/users?search=${encodeURIComponent(marker)}`, { token: admin });
      expect(stillThere.body).toHaveLength(1);
    });

    it('ignores method-override headers', async () => {
      const created = await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: uniqueEmail('override') } });
      for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
        const response = await send(`/api/users/${created.body.id}`, { method: 'POST', headers: { ...json, [header]: 'DELETE' }, body: '{}', auth: true });
        expect(response.status, header).toBe(405);
      }
      expect((await api(t, 'GET', `/api/users/${created.body.id}`, { token: admin })).status).toBe(200);
    });

    it('answers TRACE, WebDAV and other unsupported methods with 405/501, never 500, and never echoes the request', async () => {
      const failures: string[] = [];
      for (const method of ['TRACE', 'PROPFIND', 'PURGE']) {
        for (const path of ['/', '/api/users', '/oidc/auth', '/interaction/abc', '/healthz']) {
          const response = await rawHttp(t.listenUrl, `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nX-Secret-Probe: echo-me\r\nConnection: close\r\n\r\n`);
          const status = rawStatus(response);
          if (![400, 404, 405, 501].includes(status) || response.includes('echo-me')) failures.push(`${method} ${path} → ${status}`);
        }
      }
      expect(failures).toEqual([]);
    });
  });
});
