import type { Server } from 'node:http';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSpaServer } from '../../examples/spa/app.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, freePort, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

type StoredUser = { access_token: string; refresh_token?: string; id_token: string; profile: Record<string, unknown> };

describe(`examples/spa: oidc-client-ts in Chromium against Sesame (${databaseKind})`, () => {
  let t: TestSesame;
  let browser: Browser;
  let adminToken: string;
  let server: Server;
  let spaBase: string;
  let clientId: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    t = await startTestSesame();
    adminToken = await managementToken(t);
    const port = await freePort();
    spaBase = `http://localhost:${port}`;
    const created = await api(t, 'POST', '/api/applications', {
      token: adminToken,
      body: {
        name: 'SPA example',
        type: 'SPA',
        oidcClientMetadata: { redirectUris: [`${spaBase}/callback`], postLogoutRedirectUris: [`${spaBase}/signed-out`] },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body.secret).toBeNull();
    clientId = created.body.id;
    server = createSpaServer({ sesameUrl: t.baseUrl, clientId });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await t?.close();
  });

  async function newPage(): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    return page;
  }

  /** What oidc-client-ts keeps in sessionStorage for the signed-in user. */
  const storedUser = (page: Page) =>
    page.evaluate(
      (key) => {
        const raw = sessionStorage.getItem(key);
        return raw ? (JSON.parse(raw) as StoredUser) : null;
      },
      `oidc.user:${t.issuer}:${clientId}`,
    );

  /** Asks Sesame, as a resource server would, whether a token is still active. */
  async function introspect(token: string): Promise<boolean> {
    const response = await fetch(`${t.issuer}/token/introspection`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${t.m2m.id}:${t.m2m.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token }),
    });
    return ((await response.json()) as { active: boolean }).active;
  }

  it('signs in from a magic link, renews with the refresh token, and signs out', async () => {
    const email = uniqueEmail('spa');
    const minted = await mintToken(t, adminToken, { email });
    const page = await newPage();
    const authorizeRequests: URL[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin + url.pathname === `${t.issuer}/auth`) authorizeRequests.push(url);
    });

    // 1. The mailed link opens the SPA's landing page; oidc-client-ts sends the browser to Sesame.
    await page.goto(`${spaBase}/landing?${new URLSearchParams({ token: minted.token, email })}`);
    await page.waitForURL((url) => url.pathname.startsWith('/interaction/'));
    const authorize = authorizeRequests[0]!.searchParams;
    expect(authorize.get('client_id')).toBe(clientId);
    expect(authorize.get('one_time_token')).toBe(minted.token);
    expect(authorize.get('login_hint')).toBe(email);
    expect(authorize.get('code_challenge_method')).toBe('S256');
    expect(authorize.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The landing URL (with the token) was replaced, not kept in the history: the new tab's
    // about:blank and this page are the only entries (with redirectMethod 'assign' there are 3).
    expect(await page.evaluate(() => history.length)).toBe(2);

    // 2. Sesame's hosted page; nothing is consumed until the click.
    await expect.poll(() => page.locator('.email').first().textContent()).toBe(email);
    expect((await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: adminToken })).body.status).toBe('active');
    await page.getByRole('button', { name: 'Continue' }).click();

    // 3. Back in the SPA: the callback exchanged the code (public client, PKCE) and shows the user.
    await page.waitForURL(`${spaBase}/`);
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Signed in as ${email}`);
    expect((await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: adminToken })).body.status).toBe('consumed');
    const first = (await storedUser(page))!;
    expect(first.profile).toMatchObject({ email, email_verified: true });
    expect(decodeJwt(first.id_token)).toMatchObject({ iss: t.issuer, aud: clientId, email });
    expect(first.refresh_token).toBeTruthy();
    expect(await introspect(first.access_token)).toBe(true);

    // 4. Renew: a refresh_token grant from the browser (CORS), with rotation.
    await page.getByRole('button', { name: 'Renew tokens' }).click();
    await expect.poll(() => page.locator('#renewed').textContent()).toContain('Tokens renewed');
    const renewed = (await storedUser(page))!;
    expect(renewed.access_token).not.toBe(first.access_token);
    expect(renewed.refresh_token).toBeTruthy();
    expect(renewed.refresh_token).not.toBe(first.refresh_token);
    expect(await introspect(renewed.access_token)).toBe(true);
    expect(await introspect(first.refresh_token!)).toBe(false);
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Signed in as ${email}`);

    // A reload keeps the session (sessionStorage).
    await page.reload();
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Signed in as ${email}`);

    // 5. Sign out: the refresh token is revoked, Sesame asks for confirmation, then returns to the SPA.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((url) => url.origin === t.baseUrl);
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${spaBase}/`);
    await expect.poll(() => page.locator('#status').textContent()).toBe('You are signed out.');
    expect(await storedUser(page)).toBeNull();
    expect(await introspect(renewed.refresh_token!)).toBe(false);

    // Sesame's session is gone too: a silent sign-in in this browser answers login_required.
    const callbacks: URL[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin + url.pathname === `${spaBase}/callback`) callbacks.push(url);
    });
    await page.goto(
      `${t.issuer}/auth?${new URLSearchParams({
        client_id: clientId,
        redirect_uri: `${spaBase}/callback`,
        response_type: 'code',
        scope: 'openid',
        prompt: 'none',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGrSTSmOvw',
        code_challenge_method: 'S256',
        state: 'silent',
      })}`,
    );
    await page.waitForURL((url) => url.origin === spaBase);
    expect(callbacks).toHaveLength(1);
    expect(callbacks[0]!.searchParams.get('error')).toBe('login_required');
  });

  it('renews automatically with the refresh token shortly before the access token expires', async () => {
    const email = uniqueEmail('spa-auto');
    const minted = await mintToken(t, adminToken, { email });
    const page = await newPage();
    // A controllable clock in the page: oidc-client-ts schedules the renewal with timers.
    await page.clock.install();
    await page.goto(`${spaBase}/landing?${new URLSearchParams({ token: minted.token, email })}`);
    await page.waitForURL((url) => url.pathname.startsWith('/interaction/'));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${spaBase}/`);
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Signed in as ${email}`);
    const first = (await storedUser(page))!;

    // Sesame's access tokens live an hour; oidc-client-ts renews 60 s before that.
    await page.clock.fastForward('58:30');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await storedUser(page))!.access_token).toBe(first.access_token);
    await page.clock.fastForward('01:00');
    await expect.poll(async () => (await storedUser(page))?.access_token, { timeout: 10_000 }).not.toBe(first.access_token);
    const renewed = (await storedUser(page))!;
    expect(renewed.refresh_token).not.toBe(first.refresh_token);
    expect(await introspect(renewed.access_token)).toBe(true);
    expect(await introspect(first.refresh_token!)).toBe(false);
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Signed in as ${email}`);
  });

  it('a used link shows Sesame’s explanation, and “Back to the app” ends in the SPA with access_denied', async () => {
    const email = uniqueEmail('spa-used');
    const minted = await mintToken(t, adminToken, { email });
    const revoked = await api(t, 'DELETE', `/api/one-time-tokens/${minted.id}`, { token: adminToken });
    expect(revoked.status).toBeLessThan(300);
    const page = await newPage();
    await page.goto(`${spaBase}/landing?${new URLSearchParams({ token: minted.token, email })}`);
    await page.waitForURL((url) => url.pathname.startsWith('/interaction/'));
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('This link is not valid');
    await page.getByRole('button', { name: 'Back to the app' }).click();
    await page.waitForURL(`${spaBase}/`);
    await expect.poll(() => page.locator('#status').textContent()).toContain('Sign-in did not complete');
    expect(await storedUser(page)).toBeNull();
  });

  it('answers an incomplete link without going to Sesame, and serves the pages with a strict CSP', async () => {
    const page = await newPage();
    await page.goto(`${spaBase}/landing?email=ada%40example.com`);
    await expect.poll(() => page.locator('#status').textContent()).toBe('This link is incomplete.');
    expect(new URL(page.url()).origin).toBe(spaBase);
    const response = await fetch(`${spaBase}/landing?token=x&email=y`);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    const bundle = await fetch(`${spaBase}/vendor/oidc-client-ts.js`);
    expect(bundle.status).toBe(200);
    expect(await bundle.text()).toContain('UserManager');
  });
});
