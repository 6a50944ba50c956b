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
