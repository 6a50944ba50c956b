import { createHash } from 'node:crypto';
import type Router from '@koa/router';
import { createRouter } from '../../../src/http/routing.ts';
import { decodeJwt } from 'jose';
import type { Context } from 'koa';
import { AppError } from '../../../src/errors.ts';
import { readFormBody } from '../../../src/http/body.ts';
import { emailSchema } from '../../../src/http/guard.ts';
import { html, renderPage } from '../../../src/http/pages.ts';
import { randomToken } from '../../../src/lib/crypto.ts';

export type DemoDeps = {
  baseUrl: string;
  /** Where the demo's backend reaches Sesame's own HTTP API (loopback). */
  internalUrl: () => string;
  demoClient: () => Promise<{ id: string; secret: string }>;
  m2mClient: () => Promise<{ id: string; secret: string }>;
  managementResource: string;
};

const COOKIE = 'sesame_demo';

/**
 * A dev-only relying party living inside Sesame, so a newcomer sees the whole
 * product at once: its "backend" mints a one-time token through the real
 * Management API (client_credentials), its "landing page" starts a standard
 * authorization code + PKCE sign-in with `one_time_token` and `login_hint`,
 * and its callback shows the claims it received. It uses only public HTTP APIs.
 */
export function createDemoRouter(deps: DemoDeps): Router {
  const router = createRouter({ prefix: '/demo' });

  async function basicAuth(client: { id: string; secret: string }) {
    return `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
  }

  async function postForm(path: string, body: Record<string, string>, authorization: string) {
    const response = await fetch(`${deps.internalUrl()}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
      body: new URLSearchParams(body),
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(json)}`);
    return json;
  }

  router.get('/', (ctx) => {
    renderPage(
      ctx,
      'Demo',
      html`<h1>Try Sesame</h1>
<p>Type any email address. The demo backend mints a one-time token through the Management API and shows you the magic link it would mail.</p>
<form method="post" action="/demo/send">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" required placeholder="you@example.com">
<button type="submit">Create my magic link</button>
</form>
<h2>Or sign in the self-serve way</h2>
<p>Sesame's own sign-in page mails a link and a code. Here the mail lands in the <a href="/dev/outbox">dev outbox</a>. Addresses that have signed in once get it; others too when passwordless sign-up is on (<code>PUT /api/sign-in-exp</code>).</p>
<p><a class="button secondary" href="/demo/sign-in">Sign in with email</a></p>
<p class="muted">Dev only: this page is not served in production.</p>`,
    );
  });

  router.post('/send', async (ctx) => {
    const form = await readFormBody(ctx);
    const parsed = emailSchema.safeParse(form.email ?? '');
    if (!parsed.success) throw new AppError('INVALID_INPUT', 'Type a valid email address.');
    const email = parsed.data;
    const m2m = await deps.m2mClient();
    const { access_token: accessToken } = await postForm(
      '/oidc/token',
      { grant_type: 'client_credentials', resource: deps.managementResource, scope: 'all' },
      await basicAuth(m2m),
    );
    const minted = await fetch(`${deps.internalUrl()}/api/one-time-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(accessToken)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email, expiresIn: 900 }),
    });
    if (!minted.ok) throw new Error(`minting answered ${minted.status}`);
    const { token } = (await minted.json()) as { token: string };
    const link = `${deps.baseUrl}/demo/landing?${new URLSearchParams({ token, email })}`;
    renderPage(
      ctx,
      'Your magic link',
      html`<h1>Your magic link</h1>
<p>This is the link your backend would mail to <span class="email">${email}</span>. It works once and for 15 minutes.</p>
<p><a class="button" href="${link}">Open the magic link</a></p>
<pre>${link}</pre>
<p class="muted">Made with <code>POST /api/one-time-tokens</code>, authenticated by the bootstrap machine-to-machine client.</p>`,
    );
  });

  /** What the demo app does to start a sign-in: PKCE in a cookie, then /oidc/auth (with the link's token, if any). */
  async function startSignIn(ctx: Context, extra: Record<string, string>) {
    const client = await deps.demoClient();
    const verifier = randomToken(32);
    const state = randomToken(16);
    ctx.cookies.set(COOKIE, JSON.stringify({ verifier, state }), { signed: true, httpOnly: true, sameSite: 'lax', path: '/demo', maxAge: 600_000 });
    const params = new URLSearchParams({
      client_id: client.id,
      redirect_uri: `${deps.baseUrl}/demo/callback`,
      response_type: 'code',
      scope: 'openid email profile',
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...extra,
    });
    ctx.redirect(`${deps.baseUrl}/oidc/auth?${params}`);
  }

  // The app's landing page: turns the link into an OIDC sign-in.
  router.get('/landing', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const email = typeof ctx.query.email === 'string' ? ctx.query.email : '';
    if (!token || !email) throw new AppError('INVALID_INPUT', 'The link is missing its token or email.');
    await startSignIn(ctx, { one_time_token: token, login_hint: email });
  });

  // The app's "Sign in" button: Sesame's own sign-in pages (magic link, code, password).
  router.get('/sign-in', async (ctx) => {
    await startSignIn(ctx, {});
  });

  router.get('/callback', async (ctx: Context) => {
    const saved = ctx.cookies.get(COOKIE, { signed: true });
    const { verifier, state } = saved ? (JSON.parse(saved) as { verifier: string; state: string }) : { verifier: '', state: '' };
    if (typeof ctx.query.error === 'string') {
      return renderPage(ctx, 'Not signed in', html`<h1>Not signed in</h1><p>The sign-in ended with <code>${ctx.query.error}</code>.</p><p><a class="button" href="/demo">Start again</a></p>`, 400);
    }
    if (!saved || ctx.query.state !== state || typeof ctx.query.code !== 'string') {
      throw new AppError('INVALID_INPUT', 'This callback does not belong to a sign-in started here. Start again at /demo.');
    }
    ctx.cookies.set(COOKIE, null, { path: '/demo' });
    const client = await deps.demoClient();
    const tokens = await postForm(
      '/oidc/token',
      { grant_type: 'authorization_code', code: ctx.query.code, redirect_uri: `${deps.baseUrl}/demo/callback`, code_verifier: verifier },
      await basicAuth(client),
    );
    const claims = decodeJwt(String(tokens.id_token));
    const userinfo = await (
      await fetch(`${deps.internalUrl()}/oidc/me`, { headers: { authorization: `Bearer ${String(tokens.access_token)}` } })
    ).json();
    renderPage(
      ctx,
      'Signed in',
      html`<h1>Signed in as ${claims.email}</h1>
<p>The demo app received these ID token claims:</p>
<pre id="id-token-claims">${JSON.stringify(claims, null, 2)}</pre>
<p>and this from the userinfo endpoint:</p>
<pre id="userinfo">${JSON.stringify(userinfo, null, 2)}</pre>
<p><a class="button secondary" href="/demo">Try another email</a></p>`,
    );
  });

  return router;
}
