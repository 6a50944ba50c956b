import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import type { TestClient } from './test-client.ts';

/** An authorization request as an app builds it: the URL, and what the app keeps for the callback. */
export type Flow = { url: string; verifier: string; state: string };

/** The authorization-code + PKCE request an app sends (scope `openid email` unless `params` says otherwise). */
export function authorizationRequest(issuer: string, app: { clientId: string; redirectUri: string }, params: Record<string, string> = {}): Flow {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const url = new URL(`${issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: app.clientId,
    redirect_uri: app.redirectUri,
    response_type: 'code',
    scope: 'openid email',
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...params,
  }).toString();
  return { url: url.toString(), verifier, state };
}

/**
 * Fresh browser profiles (no cookies), one per person, closed together by
 * `closeAll` (call it after each test).
 */
export function browserProfiles(browser: () => Browser, defaults: { timeoutMs?: number; locale?: string } = {}) {
  const contexts: BrowserContext[] = [];
  const timeoutMs = defaults.timeoutMs ?? 15_000;
  async function newContext(options: BrowserContextOptions = {}): Promise<BrowserContext> {
    const context = await browser().newContext({
      viewport: { width: 1024, height: 720 },
      ...(defaults.locale ? { locale: defaults.locale } : {}),
      ...options,
    });
    context.setDefaultTimeout(timeoutMs);
    context.setDefaultNavigationTimeout(timeoutMs);
    contexts.push(context);
    return context;
  }
  return {
    newContext,
    newPage: async (options?: BrowserContextOptions): Promise<Page> => (await newContext(options)).newPage(),
    closeAll: () => Promise.all(contexts.splice(0).map((context) => context.close())),
  };
}

/** What a Sesame failure page says (title and error code), or undefined on any other page. */
export async function failureOf(page: Page) {
  const code = page.locator('main.card p.code code');
  if ((await code.count()) === 0) return undefined;
  return { title: (await page.locator('main.card h1').textContent())?.trim(), code: (await code.textContent())?.trim() };
}

/** The app's code exchange at the token endpoint (client_secret_basic); expects 200 and answers the body. */
export async function exchangeCode(
  issuer: string,
  app: { id: string; secret: string; redirectUri: string },
  code: string,
  verifier: string,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(app.id)}:${encodeURIComponent(app.secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: verifier }),
  });
  const body = (await response.json()) as Record<string, unknown>;
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body;
}

/** Where a hosted sign-in starts and ends: Sesame's origin and issuer, and the app's callback. */
export type HostedSignIn = { baseUrl: string; issuer: string; client: Pick<TestClient, 'origin' | 'takeCallback'> };

const atCallback = (client: HostedSignIn['client']) => (url: URL) => url.origin === client.origin && url.pathname === '/callback';

/** Opens the authorization request and waits for Sesame's hosted page. */
export async function openAuthorization(page: Page, flow: Flow, baseUrl: string) {
  await page.goto(flow.url);
  await page.waitForURL((current) => current.origin === baseUrl && current.pathname.startsWith('/interaction/'));
}

/**
 * Clicks and waits for the app's callback; fails with what the page shows
 * when it lands elsewhere. With `flow`, checks the callback's `state` and
 * `iss`. Answers the callback's query.
 */
export async function clickToCallback(page: Page, click: () => Promise<void>, hosted: HostedSignIn, flow?: Flow) {
  const isCallback = atCallback(hosted.client);
  const before = page.url();
  await click();
  await page.waitForURL((current) => current.href !== before && (isCallback(current) || current.origin === hosted.baseUrl));
  // A Sesame page may auto-submit on (oidc-provider's session-ending form post): give it time to reach the client.
  await page.waitForURL(isCallback, { timeout: 10_000 }).catch(() => undefined);
  const landed = new URL(page.url());
  if (!isCallback(landed)) {
    const failure = await failureOf(page);
    throw new Error(
      `the browser should be at the app's callback but is on ${landed.pathname} showing ` +
        (failure ? `"${failure.title}" (${failure.code})` : JSON.stringify((await page.locator('body').innerText()).slice(0, 400))),
    );
  }
  const query = hosted.client.takeCallback();
  if (flow) {
    expect(query.get('state')).toBe(flow.state);
    expect(query.get('iss')).toBe(hosted.issuer);
  }
  return query;
}
