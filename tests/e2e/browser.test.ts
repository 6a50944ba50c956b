import { decodeJwt } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, browserProfiles, exchangeCode, failureOf } from '../helpers/browser-flow.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { startTestClient, type TestClient } from '../helpers/test-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

describe(`signing in with a real browser (${databaseKind})`, () => {
  let t: TestSesame;
  let browser: Browser;
  let client: TestClient;
  let app: { id: string; secret: string };
  let adminToken: string;
  const { newPage, closeAll } = browserProfiles(() => browser, { timeoutMs: 20_000 });

  beforeAll(async () => {
    // Launch first: a missing Chromium fails here with a clear message.
    browser = await launchChromium();
    t = await startTestSesame();
    client = await startTestClient();
    adminToken = await managementToken(t);
    const created = await createTestApplication(t, adminToken, client.redirectUri);
    if (!created.secret) throw new Error('a Traditional application should come with a secret');
    app = { id: created.id, secret: created.secret };
  });
  afterEach(async () => {
    await closeAll();
  });
  afterAll(async () => {
    await browser?.close();
    await client?.close();
    await t?.close();
  });

  /** The authorize URL the app's landing page would build for a magic link. */
  const authorizeUrl = (token: string, email: string) =>
    authorizationRequest(t.issuer, { clientId: app.id, redirectUri: client.redirectUri }, { one_time_token: token, login_hint: email });

  /** Opens the link and checks the hosted Continue page shows the right email. */
  async function openContinuePage(page: Page, url: string, email: string) {
    await page.goto(url);
    await page.waitForURL((current) => current.pathname.startsWith('/interaction/'));
    expect(new URL(page.url()).origin).toBe(t.baseUrl);
    await page.getByText('Continue as').waitFor();
    expect(await page.locator('p:has-text("Continue as") .email').textContent()).toBe(email);
  }

  /**
   * Clicks Continue on the hosted page, waits for the browser to leave it, and
   * fails at once, with Sesame's error code, if it did not land where expected.
   */
  async function clickContinue(page: Page, landsOn?: { where: string; is: (url: URL) => boolean }) {
    const continuePage = page.url();
    await page.getByRole('button', { name: 'Continue', exact: true }).click();
    await page.waitForURL((current) => current.href !== continuePage);
    if (!landsOn) return;
    const landed = new URL(page.url());
    if (!landsOn.is(landed)) {
      const failure = await failureOf(page);
      throw new Error(
        `after Continue the browser should land on ${landsOn.where}, but it is on ${landed.pathname} showing ` +
          (failure ? `"${failure.title}" (${failure.code})` : JSON.stringify((await page.locator('body').innerText()).slice(0, 300))),
      );
    }
  }

  const atClientCallback = () => ({
    where: client.redirectUri,
    is: (url: URL) => url.origin === client.origin && url.pathname === '/callback',
  });

  const exchange = (code: string, verifier: string) => exchangeCode(t.issuer, { ...app, redirectUri: client.redirectUri }, code, verifier);

  it('a newcomer signs in through the demo', async () => {
    const email = uniqueEmail('demo');
    const page = await newPage();

    await page.goto(`${t.baseUrl}/demo`);
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Create my magic link' }).click();
    await page.waitForURL(`${t.baseUrl}/demo/send`);

    await page.getByRole('link', { name: 'Open the magic link' }).click();
    await page.waitForURL((current) => current.pathname.startsWith('/interaction/'));
    await page.getByText('Continue as').waitFor();
    expect(await page.locator('p:has-text("Continue as") .email').textContent()).toBe(email);

    await clickContinue(page, { where: '/demo/callback', is: (url) => url.origin === t.baseUrl && url.pathname === '/demo/callback' });
    const claims = JSON.parse((await page.locator('#id-token-claims').textContent()) ?? '') as Record<string, unknown>;
    expect(claims.email).toBe(email);
    expect(claims.email_verified).toBe(true);
    expect(claims.iss).toBe(t.issuer);
    expect(await page.locator('h1').textContent()).toBe(`Signed in as ${email}`);
  });

  it('clicking Continue on the hosted page lands back in a test client', async () => {
    const email = uniqueEmail('browser');
    const minted = await mintToken(t, adminToken, { email });
    const flow = authorizeUrl(minted.token, email);
    const page = await newPage();

    await openContinuePage(page, flow.url, email);
    // The page's stylesheet made it past the CSP (style-src 'self').
    expect(await page.evaluate(() => document.styleSheets.length)).toBeGreaterThan(0);
    await page.screenshot({ path: '/tmp/sesame-continue.png', fullPage: true });

    await clickContinue(page, atClientCallback());
    expect(await page.locator('body').textContent()).toBe('ok');
    const query = client.takeCallback();

    expect(query.get('error')).toBeNull();
    expect(query.get('code')).toBeTruthy();
    expect(query.get('state')).toBe(flow.state);
    expect(query.get('iss')).toBe(t.issuer);

    const tokens = await exchange(query.get('code')!, flow.verifier);
    const claims = decodeJwt(String(tokens.id_token));
    expect(claims.email).toBe(email);
    expect(claims.email_verified).toBe(true);
    expect(claims.aud).toBe(app.id);
    expect(claims.iss).toBe(t.issuer);
  });

  it('opening the same link again shows that it was already used', async () => {
    const email = uniqueEmail('reused');
    const minted = await mintToken(t, adminToken, { email });

    // First use, in one browser: signs in.
    const first = authorizeUrl(minted.token, email);
    const firstPage = await newPage();
    await openContinuePage(firstPage, first.url, email);
    await clickContinue(firstPage, atClientCallback());
    const firstQuery = client.takeCallback();
    expect(firstQuery.get('code')).toBeTruthy();
    expect(firstQuery.get('state')).toBe(first.state);

    // Second use, in another browser: the same token, a new sign-in.
    const second = authorizeUrl(minted.token, email);
    const page = await newPage();
    await openContinuePage(page, second.url, email);
    await clickContinue(page);
    expect(await failureOf(page)).toEqual({ title: 'This link was already used', code: 'TOKEN_ALREADY_USED' });
    await expect(page.getByText('already used').first().isVisible()).resolves.toBe(true);
    expect(await page.locator('body').innerText()).toContain('TOKEN_ALREADY_USED');

    // A way back to the app: the sign-in ends with access_denied at the client.
    const back = page.getByRole('button', { name: 'Back to the app' });
    expect(await back.count()).toBe(1);
    await back.click();
    await page.waitForURL((current) => current.origin === client.origin && current.pathname === '/callback');
    const query = client.takeCallback();
    expect(query.get('error')).toBe('access_denied');
    expect(query.get('state')).toBe(second.state);
    expect(query.get('iss')).toBe(t.issuer);
    expect(query.get('code')).toBeNull();
  });
});
