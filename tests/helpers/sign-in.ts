import * as oidc from 'openid-client';
import { CookieClient, formAction } from './browser-client.ts';
import type { TestSesame } from './server.ts';

export type LinkFlow = {
  browser: CookieClient;
  /** The hosted "Continue as" page (or whatever the link led to). */
  landing: { response: Response; url: URL };
  html: string;
  verifier: string;
  state: string;
};

/**
 * What an app's landing page does with a magic link: an authorization-code +
 * PKCE request with `one_time_token` and `login_hint`, in a browser (a fresh
 * one unless given), stopping on the hosted page.
 */
export async function openLink(
  t: TestSesame,
  config: oidc.Configuration,
  input: { token: string; email: string; redirectUri: string; scope?: string; extra?: Record<string, string>; browser?: CookieClient },
): Promise<LinkFlow> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: input.redirectUri,
    scope: input.scope ?? 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    one_time_token: input.token,
    login_hint: input.email,
    ...input.extra,
  });
  const browser = input.browser ?? new CookieClient(t.baseUrl);
  const landing = await browser.follow(url.toString());
  return { browser, landing, html: await landing.response.text(), verifier, state };
}

/** Clicks Continue on the hosted page; answers where the browser ended up. */
export function confirmLink(flow: LinkFlow) {
  return flow.browser.submitForm(flow.html, 'one-time-token');
}

/** The whole sign-in: open the link, click Continue, exchange the code at the client. */
export async function signInWithLink(
  t: TestSesame,
  config: oidc.Configuration,
  input: Parameters<typeof openLink>[2],
) {
  const flow = await openLink(t, config, input);
  const done = await confirmLink(flow);
  const tokens = await oidc.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: flow.verifier, expectedState: flow.state });
  return { flow, tokens };
}

/**
 * Signing in as another account than the browser's session: oidc-provider
 * first ends the old session with an auto-submitted form (JavaScript, with a
 * noscript button), then resumes. Submits that form as a browser would until
 * the browser leaves Sesame's origin (or after three hops).
 */
export async function throughSessionSwitch(browser: CookieClient, result: { response: Response; url: URL }, baseUrl: string) {
  for (let i = 0; i < 3 && result.url.origin === new URL(baseUrl).origin; i += 1) {
    const page = await result.response.text();
    const action = /action="([^"]+)"/.exec(page)?.[1];
    if (!action) break;
    const inputs = Object.fromEntries([...page.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    result = await browser.follow(new URL(action, baseUrl).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(baseUrl).origin },
      body: new URLSearchParams(inputs),
    });
  }
  return result;
}

/**
 * What an app does to start a sign-in without a link: an authorization-code
 * + PKCE request (scope `openid email` unless `extra` says otherwise), in a
 * browser (a fresh one unless given), stopping on Sesame's first page.
 */
export async function startAuthorization(
  t: TestSesame,
  config: oidc.Configuration,
  redirectUri: string,
  extra: Record<string, string> = {},
  browser = new CookieClient(t.baseUrl),
) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...extra,
  });
  const landing = await browser.follow(url.toString());
  const html = await landing.response.text();
  const uid = /\/interaction\/([^/"]+)/.exec(landing.url.pathname)?.[1] ?? '';
  return { browser, landing, html, uid, verifier, state };
}

/**
 * A client's view of the provider with every endpoint reached through one
 * instance's port (a second instance on one database shares A's public URL).
 */
export async function discover(t: TestSesame, app: { id: string; secret: string | null }) {
  const response = await fetch(`${t.listenUrl}/oidc/.well-known/openid-configuration`);
  const metadata = (await response.json()) as Record<string, unknown>;
  const through = Object.fromEntries(
    Object.entries(metadata).map(([key, value]) =>
      [key, typeof value === 'string' && key !== 'issuer' ? value.replace(t.baseUrl, t.listenUrl) : value],
    ),
  ) as unknown as oidc.ServerMetadata;
  const config = new oidc.Configuration(through, app.id, app.secret!);
  oidc.allowInsecureRequests(config);
  return config;
}
