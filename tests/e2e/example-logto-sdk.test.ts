import type { Server } from 'node:http';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../examples/logto-sdk/app.ts';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, freePort, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

describe(`examples/logto-sdk: @logto/node against Sesame (${databaseKind})`, () => {
  let t: TestSesame;
  let adminToken: string;
  let server: Server;
  let appBase: string;
  let app: { id: string; secret: string };
  let organizationId: string;
  let roleName: string;

  beforeAll(async () => {
    t = await startTestSesame();
    adminToken = await managementToken(t);
    const port = await freePort();
    appBase = `http://localhost:${port}`;
    const created = await api(t, 'POST', '/api/applications', {
      token: adminToken,
      body: {
        name: 'Logto SDK example',
        type: 'Traditional',
        oidcClientMetadata: { redirectUris: [`${appBase}/callback`], postLogoutRedirectUris: [`${appBase}/`] },
      },
    });
    expect(created.status).toBe(201);
    app = { id: created.body.id, secret: created.body.secret };

    const organization = await api(t, 'POST', '/api/organizations', { token: adminToken, body: { name: 'Acme' } });
    expect(organization.status).toBe(201);
    organizationId = organization.body.id;
    roleName = `member-${organizationId}`;
    const role = await api(t, 'POST', '/api/organization-roles', { token: adminToken, body: { name: roleName } });
    expect(role.status).toBe(201);
    const jit = await api(t, 'PUT', `/api/organizations/${organizationId}/jit/roles`, {
      token: adminToken,
      body: { organizationRoleIds: [role.body.id] },
    });
    expect(jit.status).toBeLessThan(300);

    server = createApp({ endpoint: t.baseUrl, appId: app.id, appSecret: app.secret, baseUrl: appBase });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await t?.close();
  });

  /** A prompt=none authorization request for the example's client, in the given browser: is there a Sesame session? */
  async function silentAuthorize(sesame: CookieClient) {
    const url = new URL(`${t.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: app.id,
      redirect_uri: `${appBase}/callback`,
      response_type: 'code',
      scope: 'openid',
      prompt: 'none',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGrSTSmOvw',
      code_challenge_method: 'S256',
      state: 'silent',
    }).toString();
    const answer = await sesame.follow(url.toString());
    return answer.url.searchParams;
  }

  it('signs in from a magic link, then serves claims, userinfo, an organization token, a refresh and sign-out', async () => {
    const email = uniqueEmail('logto-sdk');
    const minted = await mintToken(t, adminToken, { email, context: { jitOrganizationIds: [organizationId] } });

    // 1. The mailed link opens the example's landing page, which calls signIn() and sends the browser to Sesame.
    const browser = new CookieClient(appBase);
    const sesame = browser.atOrigin(t.baseUrl);
    const landing = await browser.follow(`/landing?${new URLSearchParams({ token: minted.token, email })}`);
    expect(landing.response.status).toBe(302);
    expect(landing.url.origin + landing.url.pathname).toBe(`${t.issuer}/auth`);
    const authorize = landing.url.searchParams;
    expect(authorize.get('one_time_token')).toBe(minted.token);
    expect(authorize.get('login_hint')).toBe(email);
    expect(authorize.get('prompt')).toBe('consent');
    expect(authorize.get('code_challenge_method')).toBe('S256');
    expect(authorize.getAll('resource')).toEqual(['urn:logto:resource:organizations']);
    expect(authorize.get('scope')!.split(' ').sort()).toEqual(
      ['email', 'offline_access', 'openid', 'profile', 'urn:logto:scope:organization_roles', 'urn:logto:scope:organizations'].sort(),
    );

    // 2. Sesame's hosted "Continue as" page; the click (a POST) sends the browser back to the example's callback.
    const page = await sesame.follow(landing.url.toString());
    expect(page.response.status).toBe(200);
    const html = await page.response.text();
    expect(html).toContain(email);
    const done = await sesame.submitForm(html, 'one-time-token');
    expect(done.url.origin + done.url.pathname).toBe(`${appBase}/callback`);
    expect(done.url.searchParams.get('iss')).toBe(t.issuer);

    // 3. The callback exchanges the code with handleSignInCallback and lands on /me.
    const callback = await browser.follow(done.url.toString());
    expect(callback.url.pathname).toBe('/me');
    const me = (await callback.response.json()) as { claims: Record<string, unknown>; userInfo: Record<string, unknown> };
    expect(callback.response.status, JSON.stringify(me)).toBe(200);
    expect(me.claims).toMatchObject({ iss: t.issuer, aud: app.id, email, email_verified: true, organizations: [organizationId] });
    expect(me.claims.organization_roles).toEqual([`${organizationId}:${roleName}`]);
    expect(me.userInfo).toMatchObject({ sub: me.claims.sub, email, organizations: [organizationId] });

    // 4. An organization token (refresh_token grant with organization_id).
    const organization = await browser.follow(`/organization-token?id=${encodeURIComponent(organizationId)}`);
    const orgBody = (await organization.response.json()) as { token: string; claims: Record<string, unknown> };
    expect(organization.response.status, JSON.stringify(orgBody)).toBe(200);
    expect(decodeJwt(orgBody.token).aud).toBe(`urn:logto:organization:${organizationId}`);
    const jwks = createRemoteJWKSet(new URL(`${t.issuer}/jwks`));
    const { payload } = await jwtVerify(orgBody.token, jwks, { issuer: t.issuer, audience: `urn:logto:organization:${organizationId}` });
    expect(payload).toMatchObject({ sub: me.claims.sub, organization_id: organizationId });
    expect(orgBody.claims).toMatchObject({ aud: `urn:logto:organization:${organizationId}`, sub: me.claims.sub });

    // 5. getAccessToken() after dropping the cached token: a refresh_token grant, and userinfo still works.
    const refreshed = await browser.follow('/refresh');
    const refreshBody = (await refreshed.response.json()) as { refreshed: boolean; userInfo: Record<string, unknown> };
    expect(refreshed.response.status, JSON.stringify(refreshBody)).toBe(200);
    expect(refreshBody).toMatchObject({ refreshed: true, userInfo: { sub: me.claims.sub, email } });

    // 6. Sign-out: the SDK revokes the refresh token and sends the browser to end_session; Sesame ends the session.
    expect((await silentAuthorize(sesame)).get('code')).toBeTruthy();
    const refreshTokens = async () =>
      (await t.db('oidc_model_instances').where('model_name', 'RefreshToken').whereRaw(`payload->>'clientId' = ?`, [app.id]).whereRaw(`payload->>'accountId' = ?`, [String(me.claims.sub)])).length;
    expect(await refreshTokens()).toBeGreaterThan(0);
    const signOut = await browser.follow('/sign-out');
    // The SDK swallows revocation errors: check that Sesame really revoked the refresh token.
    expect(await refreshTokens()).toBe(0);
    expect(signOut.url.origin + signOut.url.pathname).toBe(`${t.issuer}/session/end`);
    expect(signOut.url.searchParams.get('client_id')).toBe(app.id);
    expect(signOut.url.searchParams.get('post_logout_redirect_uri')).toBe(`${appBase}/`);
    const logoutPage = await sesame.follow(signOut.url.toString());
    const logoutHtml = await logoutPage.response.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(logoutHtml)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(logoutHtml)?.[1];
    expect(action && xsrf, logoutHtml).toBeTruthy();
    const out = await sesame.follow(new URL(action!, t.baseUrl).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
    });
    expect(out.url.toString()).toBe(`${appBase}/`);
    const home = await browser.follow(out.url.toString());
    expect(await home.response.json()).toEqual({ signedIn: false });
    // A new authorization request without a token needs a login again.
    expect((await silentAuthorize(sesame)).get('error')).toBe('login_required');
    expect((await browser.follow('/me')).response.status).toBe(401);
  });

  it('refuses a landing without token and email', async () => {
    const browser = new CookieClient(appBase);
    expect((await browser.follow('/landing')).response.status).toBe(400);
  });
});
