import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

/** Starts a link sign-in straight at the instance's port, as a reverse proxy would forward it. */
async function authorize(t: TestSesame, headers: Record<string, string> = {}) {
  const admin = await managementToken(t);
  const app = await createTestApplication(t, admin, 'http://127.0.0.1:5994/callback');
  const email = uniqueEmail('proxy');
  const minted = await mintToken(t, admin, { email });
  const url = new URL(`${t.listenUrl}/oidc/auth`);
  url.search = new URLSearchParams({
    client_id: app.id,
    redirect_uri: 'http://127.0.0.1:5994/callback',
    response_type: 'code',
    scope: 'openid',
    one_time_token: minted.token,
    login_hint: email,
  }).toString();
  const response = await fetch(url, { redirect: 'manual', headers });
  expect(response.status).toBe(303);
  return response;
}

const interactionCookie = (response: Response) => response.headers.getSetCookie().find((cookie) => cookie.startsWith('_interaction='));

describe(`behind a TLS-terminating proxy (${databaseKind})`, () => {
  let public_: TestSesame;
  let local: TestSesame;
  beforeAll(async () => {
    // The public URL is https; the proxy forwards plain http to the instance's port.
    public_ = await startTestSesame({ TRUST_PROXY: 'true' }, { baseUrl: 'https://id.sesame.test' });
    local = await startTestSesame();
  });
  afterAll(async () => {
    await public_?.close();
    await local?.close();
  });

  it('sends Secure cookies and https URLs when BASE_URL is https, whatever hop terminated TLS', async () => {
    const response = await authorize(public_);
    // The hosted page is reached by a path on the same (public) origin.
    expect(response.headers.get('location')).toMatch(/^\/interaction\//);
    const cookie = interactionCookie(response)!.toLowerCase();
    expect(cookie).toContain('; secure');
    expect(cookie).toContain('httponly');
    expect(cookie).toContain('samesite=lax');
    const discovery = await (await fetch(`${public_.listenUrl}/oidc/.well-known/openid-configuration`)).json();
    expect(discovery.token_endpoint).toBe('https://id.sesame.test/oidc/token');
  });

  it('builds every URL from BASE_URL, never from a forged Host or X-Forwarded-Host', async () => {
    const response = await authorize(public_, { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' });
    expect(response.headers.get('location')).not.toContain('evil.example');
    const discovery = await (
      await fetch(`${public_.listenUrl}/oidc/.well-known/openid-configuration`, { headers: { 'x-forwarded-host': 'evil.example' } })
    ).json();
    expect(JSON.stringify(discovery)).not.toContain('evil.example');
  });

  it('sends no Secure cookies on a plain-http BASE_URL (local development)', async () => {
    const cookie = interactionCookie(await authorize(local, { 'x-forwarded-proto': 'https' }))!.toLowerCase();
    expect(cookie).not.toContain('; secure');
  });
});
