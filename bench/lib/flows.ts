import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Agent } from 'undici';
import { basicAuth, CookieJar, form, header, send, type Reply } from './http.ts';
import type { ServerProcess } from './processes.ts';

/**
 * The protocol work the scenarios measure, over plain HTTP: what an app's
 * backend and a user's browser send. Identical for Sesame and the baseline,
 * which expose the same paths (/oidc/*, /interaction/*, /api/one-time-tokens).
 */
export type Credentials = { id: string; secret: string };

export type Target = {
  name: string;
  /** Where requests go: one URL per server process; requests alternate between them. */
  urls: string[];
  /** The public BASE_URL every process shares (issuer, API audience, form Origin). */
  baseUrl: string;
  m2m: Credentials;
  app: Credentials;
  redirectUri: string;
  agent: Agent;
  adminToken: string;
  processes: ServerProcess[];
  /** The PostgreSQL database whose backends' CPU counts towards this target's cost (none: no PostgreSQL). */
  database?: string;
  next: number;
};

export const REDIRECT_URI = 'http://127.0.0.1:5999/callback';
export const SCOPE = 'openid email profile offline_access';

export type Timing = (step: string, ms: number) => void;

export class StepError extends Error {
  constructor(step: string, reply: Reply) {
    super(`${step}: HTTP ${reply.status} ${reply.text.replace(/\s+/g, ' ').slice(0, 200)}`);
  }
}

/** The next server of the target (round robin, per request). */
const pick = (target: Target) => target.urls[target.next++ % target.urls.length]!;

async function timed(timing: Timing | undefined, step: string, run: () => Promise<Reply>): Promise<Reply> {
  const t0 = performance.now();
  const reply = await run();
  timing?.(step, performance.now() - t0);
  return reply;
}

const expect = (step: string, reply: Reply, ...statuses: number[]) => {
  if (!statuses.includes(reply.status)) throw new StepError(step, reply);
  return reply;
};

const json = <T>(reply: Reply) => JSON.parse(reply.text) as T;

export async function clientCredentials(target: Target, timing?: Timing): Promise<string> {
  const reply = await timed(timing, 'client_credentials', () =>
    send(
      target.agent,
      'POST',
      `${pick(target)}/oidc/token`,
      { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(target.m2m.id, target.m2m.secret) },
      form({ grant_type: 'client_credentials', resource: `${target.baseUrl}/api`, scope: 'all' }),
    ),
  );
  return json<{ access_token: string }>(expect('client_credentials', reply, 200)).access_token;
}

/** The app's backend mints a one-time token for `email`; answers the plaintext token. */
export async function mint(target: Target, email: string, timing?: Timing): Promise<string> {
  const reply = await timed(timing, 'mint', () =>
    send(
      target.agent,
      'POST',
      `${pick(target)}/api/one-time-tokens`,
      { 'content-type': 'application/json', authorization: `Bearer ${target.adminToken}` },
      JSON.stringify({ email, expiresIn: 600 }),
    ),
  );
  return json<{ token: string }>(expect('mint', reply, 201)).token;
}

export async function listTokens(target: Target, query: Record<string, string>, timing?: Timing): Promise<number> {
  const reply = await timed(timing, 'list', () =>
    send(target.agent, 'GET', `${pick(target)}/api/one-time-tokens?${new URLSearchParams(query)}`, {
      authorization: `Bearer ${target.adminToken}`,
    }),
  );
  expect('list', reply, 200);
  return Number(header(reply, 'total-number'));
}

/** A redirect inside the site is followed on the next server; one to the app's redirect URI ends the browser part. */
const located = (step: string, reply: Reply) => {
  const location = header(reply, 'location');
  if (reply.status < 300 || reply.status >= 400 || !location) throw new StepError(step, reply);
  return new URL(location, 'http://site.invalid');
};

const unescapeHtml = (value: string) =>
  value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/**
 * The page's first form posting to /interaction/…, with its hidden inputs (Sesame's
 * forms carry a `csrf` field, as tests/helpers/browser-client.ts `findForm` reads them).
 */
export function interactionForm(html: string): { action: string; hidden: Record<string, string> } | undefined {
  for (const match of html.matchAll(/<form\b[^>]*\baction="(\/interaction\/[^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    const hidden: Record<string, string> = {};
    for (const input of (match[2] ?? '').matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
      hidden[unescapeHtml(input[1] ?? '')] = unescapeHtml(input[2] ?? '');
    }
    return { action: unescapeHtml(match[1] ?? ''), hidden };
  }
  return undefined;
}

export type PendingCode = { code: string; verifier: string };

/**
 * The browser part of a one-time-token sign-in, in a fresh browser (its own
 * cookie jar): mint → /oidc/auth with PKCE, one_time_token and login_hint →
 * the "Continue as" page → confirm (POST) → resume → the redirect to the
 * app's callback, which carries the code (the app itself is not served).
 */
export async function signInToCode(target: Target, email: string, timing?: Timing): Promise<PendingCode> {
  const token = await mint(target, email, timing);
  const jar = new CookieJar();
  const browser = (step: string, method: 'GET' | 'POST', path: string, extra: Record<string, string> = {}, body = '') =>
    timed(timing, step, async () => {
      const cookie = jar.header();
      const reply = await send(target.agent, method, `${pick(target)}${path}`, { ...extra, ...(cookie ? { cookie } : {}) }, method === 'POST' ? body : undefined);
      jar.store(reply);
      return reply;
    });

  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const authorize = new URLSearchParams({
    client_id: target.app.id,
    redirect_uri: target.redirectUri,
    response_type: 'code',
    scope: SCOPE,
    prompt: 'consent',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    one_time_token: token,
    login_hint: email,
  });
  const toPage = located('authorize', await browser('authorize', 'GET', `/oidc/auth?${authorize}`));
  const page = expect('page', await browser('page', 'GET', toPage.pathname + toPage.search), 200);
  const confirm = interactionForm(page.text);
  if (!confirm) throw new StepError('page (no confirm form)', page);
  const toResume = located(
    'confirm',
    await browser(
      'confirm',
      'POST',
      confirm.action,
      { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(target.baseUrl).origin },
      form(confirm.hidden),
    ),
  );
  const callback = located('resume', await browser('resume', 'GET', toResume.pathname + toResume.search));
  const code = callback.searchParams.get('code');
  if (!callback.href.startsWith(target.redirectUri) || !code || callback.searchParams.get('state') !== state) {
    throw new Error(`resume: expected a redirect to the callback with a code, got ${callback.href.slice(0, 200)}`);
  }
  return { code, verifier };
}

export type TokenSet = { access_token: string; refresh_token?: string; id_token: string };

export async function exchangeCode(target: Target, pending: PendingCode, timing?: Timing): Promise<TokenSet> {
  const reply = await timed(timing, 'token', () =>
    send(
      target.agent,
      'POST',
      `${pick(target)}/oidc/token`,
      { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(target.app.id, target.app.secret) },
      form({ grant_type: 'authorization_code', code: pending.code, redirect_uri: target.redirectUri, code_verifier: pending.verifier }),
    ),
  );
  const tokens = json<TokenSet>(expect('token', reply, 200));
  if (!tokens.access_token || !tokens.id_token) throw new StepError('token (no tokens)', reply);
  return tokens;
}

export async function userinfo(target: Target, accessToken: string, email: string, timing?: Timing): Promise<void> {
  const reply = await timed(timing, 'userinfo', () =>
    send(target.agent, 'GET', `${pick(target)}/oidc/me`, { authorization: `Bearer ${accessToken}` }),
  );
  const claims = json<{ email?: string }>(expect('userinfo', reply, 200));
  if (claims.email !== email) throw new StepError('userinfo (wrong email)', reply);
}

/** Scenario 1: the whole sign-in, 7 requests. Answers the refresh token. */
export async function signIn(target: Target, email: string, timing?: Timing): Promise<string> {
  const pending = await signInToCode(target, email, timing);
  const tokens = await exchangeCode(target, pending, timing);
  await userinfo(target, tokens.access_token, email, timing);
  if (!tokens.refresh_token) throw new Error('token: no refresh token (offline_access was not granted)');
  return tokens.refresh_token;
}

export async function refresh(target: Target, refreshToken: string, timing?: Timing): Promise<string> {
  const reply = await timed(timing, 'refresh', () =>
    send(
      target.agent,
      'POST',
      `${pick(target)}/oidc/token`,
      { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(target.app.id, target.app.secret) },
      form({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    ),
  );
  const tokens = json<TokenSet>(expect('refresh', reply, 200));
  if (!tokens.refresh_token || tokens.refresh_token === refreshToken) throw new StepError('refresh (not rotated)', reply);
  return tokens.refresh_token;
}

/** Registers the app the sign-ins use (Sesame only: the baseline has it configured statically). */
export async function registerApp(target: Target): Promise<Credentials> {
  const reply = await send(
    target.agent,
    'POST',
    `${target.urls[0]}/api/applications`,
    { 'content-type': 'application/json', authorization: `Bearer ${target.adminToken}` },
    JSON.stringify({ name: 'Bench app', type: 'Traditional', oidcClientMetadata: { redirectUris: [target.redirectUri], postLogoutRedirectUris: [] } }),
  );
  const app = json<{ id: string; secret: string }>(expect('register app', reply, 201));
  return { id: app.id, secret: app.secret };
}

/** A browser that opened a sign-in page (no one-time token): its cookie jar holds the interaction cookie. */
export type OpenInteraction = { jar: CookieJar; uid: string };

export async function openInteraction(target: Target): Promise<OpenInteraction> {
  const jar = new CookieJar();
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URLSearchParams({
    client_id: target.app.id,
    redirect_uri: target.redirectUri,
    response_type: 'code',
    scope: SCOPE,
    prompt: 'consent',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(16).toString('base64url'),
  });
  const reply = await send(target.agent, 'GET', `${pick(target)}/oidc/auth?${authorize}`);
  jar.store(reply);
  const page = located('authorize (self-serve)', reply);
  const uid = /^\/interaction\/([^/]+)/.exec(page.pathname)?.[1];
  if (!uid) throw new StepError('authorize (self-serve: no interaction)', reply);
  return { jar, uid };
}

/**
 * Scenario 4: the hosted sign-in page's JSON API asks for a magic link for a
 * known address (`POST /api/experience/magic-link`); Sesame stores the link's
 * record and mails it (to the bench's SMTP sink) before it answers.
 */
export async function requestMagicLink(target: Target, browser: OpenInteraction, email: string, timing?: Timing): Promise<void> {
  const cookie = browser.jar.header();
  const reply = await timed(timing, 'magic-link', () =>
    send(
      target.agent,
      'POST',
      `${pick(target)}/api/experience/magic-link`,
      { 'content-type': 'application/json', origin: new URL(target.baseUrl).origin, ...(cookie ? { cookie } : {}) },
      JSON.stringify({ email }),
    ),
  );
  const body = json<{ message?: string }>(expect('magic-link', reply, 200));
  if (body.message !== 'Magic link sent') throw new StepError('magic-link (unexpected answer)', reply);
}
