import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind } from '../helpers/db.ts';
import { api, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

/**
 * Paths are case-sensitive. @koa/router matched routes case-insensitively but
 * ran a prefix's `router.use` middleware only on the exact case: `/API/…`
 * reached the Management API's routes past its access-token check. Every
 * case variant of a protected path must now be a 404, token or not.
 */
describe(`paths are case-sensitive (${databaseKind})`, () => {
  let t: TestSesame;
  let admin: string;

  beforeAll(async () => {
    t = await startTestSesame();
    admin = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the Management API answers case variants of its paths with 404, never with data', async () => {
    expect((await api(t, 'GET', '/api/applications')).status).toBe(401);
    expect((await api(t, 'GET', '/api/applications', { token: admin })).status).toBe(200);
    for (const path of ['/API/applications', '/Api/users', '/API/one-time-tokens', '/aPi/logs', '/api/Applications', '/API/hooks']) {
      const anonymous = await api(t, 'GET', path);
      expect(anonymous.status, path).toBe(404);
      expect(anonymous.text, path).not.toContain('Bootstrap');
      expect((await api(t, 'GET', path, { token: admin })).status, path).toBe(404);
    }
    const minted = await api(t, 'POST', '/API/one-time-tokens', { body: { email: 'case@example.test' } });
    expect(minted.status).toBe(404);
    expect(minted.text).not.toContain('"token"');
  });

  it('the account API and the Experience API do the same', async () => {
    expect((await api(t, 'GET', '/api/my-account/mfa')).status).toBe(401);
    expect((await api(t, 'GET', '/API/MY-ACCOUNT/mfa')).status).toBe(404);
    expect((await api(t, 'GET', '/api/My-Account/mfa')).status).toBe(404);
    // The Experience API checks the Origin of every write; its case variants are no route at all.
    const crossSite = { origin: 'https://evil.example' };
    expect((await api(t, 'POST', '/api/experience/magic-link', { headers: crossSite, body: { email: 'a@example.test' } })).status).toBe(403);
    expect((await api(t, 'POST', '/API/EXPERIENCE/magic-link', { headers: crossSite, body: { email: 'a@example.test' } })).status).toBe(404);
  });
});
