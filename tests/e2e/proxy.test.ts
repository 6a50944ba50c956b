import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

/** The Set-Cookie headers of the hosted-page redirect for a link sign-in, through a "proxy" that says https. */
async function cookiesBehindHttpsProxy(t: TestSesame): Promise<string[]> {
  const admin = await managementToken(t);
  const app = await createTestApplication(t, admin, 'http://127.0.0.1:5994/callback');
  const email = uniqueEmail('proxy');
  const minted = await mintToken(t, admin, { email });
  const url = new URL(`${t.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: app.id,
    redirect_uri: 'http://127.0.0.1:5994/callback',
    response_type: 'code',
    scope: 'openid',
    one_time_token: minted.token,
    login_hint: email,
  }).toString();
  const response = await fetch(url, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' } });
  expect(response.status).toBe(303);
  return response.headers.getSetCookie();
}

describe(`TRUST_PROXY (${databaseKind})`, () => {
  let trusting: TestSesame;
  let direct: TestSesame;
  beforeAll(async () => {
    trusting = await startTestSesame({ TRUST_PROXY: 'true' });
    direct = await startTestSesame();
  });
  afterAll(async () => {
    await trusting?.close();
    await direct?.close();
  });

  it('marks cookies Secure when a trusted proxy says the request came over https', async () => {
    const cookies = await cookiesBehindHttpsProxy(trusting);
    const interaction = cookies.find((cookie) => cookie.startsWith('_interaction='));
    expect(interaction).toBeDefined();
    expect(interaction!.toLowerCase()).toContain('; secure');
    expect(interaction!.toLowerCase()).toContain('httponly');
    expect(interaction!.toLowerCase()).toContain('samesite=lax');
  });

  it('ignores X-Forwarded-* headers by default, so a client cannot fake them', async () => {
    const cookies = await cookiesBehindHttpsProxy(direct);
    const interaction = cookies.find((cookie) => cookie.startsWith('_interaction='));
    expect(interaction).toBeDefined();
    expect(interaction!.toLowerCase()).not.toContain('; secure');
  });
});
