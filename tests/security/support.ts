/**
 * Helpers shared by the security suite: starting link sign-ins by hand,
 * redeeming codes with raw HTTP, forging JWTs, and raw sockets for requests
 * `fetch` refuses to send. Everything talks to 127.0.0.1 only.
 */
import { createHash, createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { importJWK, SignJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { loadKeySet } from '../../src/oidc/keys.ts';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { api, type TestSesame } from '../helpers/server.ts';

export type Client = { id: string; secret: string | null };

export const basicAuth = (client: { id: string; secret: string | null }) =>
  `Basic ${Buffer.from(`${client.id}:${client.secret ?? ''}`).toString('base64')}`;

export const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');

/** An /oidc/auth URL for `client` with PKCE; `extra` overrides or adds parameters. */
export async function authorizeUrl(
  t: TestSesame,
  client: Client,
  redirectUri: string,
  extra: Record<string, string> = {},
): Promise<{ url: string; verifier: string }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const params = new URLSearchParams({
    client_id: client.id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  });
  return { url: `${t.issuer}/auth?${params}`, verifier };
}

export type LinkFlow = {
  browser: CookieClient;
  landing: { response: Response; url: URL };
  html: string;
  verifier: string;
};

/** Opens a sign-in link in a browser (a fresh one unless given) and stops on the hosted page. */
export async function openLink(
  t: TestSesame,
  client: Client,
  redirectUri: string,
  token: string,
  email: string,
  options: { browser?: CookieClient; extra?: Record<string, string> } = {},
): Promise<LinkFlow> {
  const { url, verifier } = await authorizeUrl(t, client, redirectUri, { one_time_token: token, login_hint: email, ...options.extra });
  const browser = options.browser ?? new CookieClient(t.baseUrl);
  const landing = await browser.follow(url);
  return { browser, landing, html: await landing.response.text(), verifier };
}

/** Presses "Continue" on the hosted page and follows Sesame's redirects. */
export function pressContinue(flow: LinkFlow) {
  return flow.browser.submitForm(flow.html, 'one-time-token');
}

/**
 * Completes a sign-in in `browser` (which may already hold a session for
 * another account: oidc-provider then ends it with an auto-submitted form).
 * Answers the callback URL.
 */
export async function signInWithLink(t: TestSesame, client: Client, redirectUri: string, token: string, email: string, browser?: CookieClient) {
  const flow = await openLink(t, client, redirectUri, token, email, {
    browser,
    // offline_access: oidc-provider keeps such grants over the logout that switching accounts does.
    extra: { scope: 'openid email offline_access', prompt: 'consent' },
  });
  let result = await pressContinue(flow);
  const target = new URL(redirectUri);
  for (let i = 0; i < 3 && result.url.origin !== target.origin; i += 1) {
    const page = await result.response.text();
    const action = /action="([^"]+)"/.exec(page)?.[1];
    if (!action) break;
    const inputs = Object.fromEntries([...page.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    result = await flow.browser.follow(new URL(action, t.baseUrl).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
      body: new URLSearchParams(inputs),
    });
  }
  return { ...flow, callback: result.url, final: result.response };
}

/** POST /oidc/token with a form body; answers status and JSON. */
export async function tokenRequest(t: TestSesame, form: Record<string, string>, authorization?: string) {
  const response = await fetch(`${t.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

export async function tokenStatus(t: TestSesame, adminToken: string, id: string): Promise<string> {
  return (await api(t, 'GET', `/api/one-time-tokens/${id}`, { token: adminToken })).body.status as string;
}

/** Sesame's own private signing keys (the test shares its database). */
export async function signingKeys(t: TestSesame): Promise<JWK[]> {
  return (await loadKeySet(t.db, t.config.secret)).signing as JWK[];
}

/** A JWT signed with Sesame's real ES256 key: claims the token endpoint would never issue. */
export async function forgeWithSesameKey(
  t: TestSesame,
  claims: Record<string, unknown>,
  options: { typ?: string; audience?: string; issuer?: string; expiresAt?: number; notBefore?: number } = {},
): Promise<string> {
  const jwk = (await signingKeys(t)).find((key) => key.alg === 'ES256')!;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, typ: options.typ ?? 'at+jwt' })
    .setIssuer(options.issuer ?? t.issuer)
    .setAudience(options.audience ?? `${t.baseUrl}/api`)
    .setIssuedAt(now - 60)
    .setExpirationTime(options.expiresAt ?? now + 600);
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
  return jwt.sign(await importJWK(jwk, 'ES256'));
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWT with an arbitrary header, signed with HMAC-SHA256 under `key` (or unsigned when key is undefined). */
export function handmadeJwt(header: Record<string, unknown>, payload: Record<string, unknown>, key?: string | Buffer): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  if (key === undefined) return `${input}.`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

/** The PEM (SPKI) of a public JWK: what an alg-confusion attacker would use as the HMAC key. */
export function publicPem(jwk: JWK): string {
  const publicPart: JsonWebKey = { kty: jwk.kty, n: jwk.n, e: jwk.e, crv: jwk.crv, x: jwk.x, y: jwk.y };
  return createPublicKey({ key: publicPart, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
}

/** Sends raw bytes over a new TCP connection and answers the raw response (status line first). */
export function rawHttp(listenUrl: string, request: string | Buffer, timeoutMs = 3000): Promise<string> {
  const { hostname, port } = new URL(listenUrl);
  return new Promise((resolve) => {
    let out = '';
    const socket = connect(Number(port), hostname === 'localhost' ? '127.0.0.1' : hostname, () => socket.write(request));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (chunk) => {
      out += chunk.toString('latin1');
    });
    socket.on('end', done);
    socket.on('error', done);
  });
}

export const rawStatus = (response: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);

/**
 * Headers of a response as a plain object, without the ones that differ per
 * request. X-RateLimit-Remaining and -Reset count down with every attempt from
 * the address, whatever the token (a failure never gives its point back), so
 * they differ between any two requests; X-RateLimit-Limit is kept.
 */
export function comparableHeaders(headers: Headers): Record<string, string> {
  const skip = new Set(['date', 'x-request-id', 'set-cookie', 'keep-alive', 'connection', 'x-ratelimit-remaining', 'x-ratelimit-reset']);
  const kept: Array<[string, string]> = [];
  headers.forEach((value, name) => {
    if (!skip.has(name)) kept.push([name, value]);
  });
  return Object.fromEntries(kept.sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * One request through node:http, which (unlike fetch) sends the Host header
 * it is given: a client forging Host, as through a proxy that passes it on.
 */
export function requestWithHost(
  listenUrl: string,
  path: string,
  options: { host: string; method?: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(listenUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: hostname === 'localhost' ? '127.0.0.1' : hostname,
        port: Number(port),
        path,
        method: options.method ?? 'GET',
        headers: { ...options.headers, host: options.host },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
