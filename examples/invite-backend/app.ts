/**
 * A small backend that invites people into a Sesame organization and mails
 * the link itself:
 *
 * - a Management API token from client_credentials, refreshed before it expires;
 * - `POST /invite {email, organizationId}` creates the invitation with
 *   `sendEmail: false` and mails the link through SMTP_URL (nodemailer);
 * - `GET /landing?token&email` (the mailed link) starts an authorization-code +
 *   PKCE sign-in with `one_time_token` and `login_hint` (openid-client), the
 *   verifier and state kept in a signed cookie;
 * - `GET /callback` finishes it and shows the user's organizations.
 */
import Router from '@koa/router';
import Koa from 'koa';
import nodemailer from 'nodemailer';
import * as oidc from 'openid-client';

export type InviteBackendConfig = {
  /** Sesame's BASE_URL; the issuer is `${sesameUrl}/oidc`, the Management API `${sesameUrl}/api`. */
  sesameUrl: string;
  /** A machine-to-machine application with Management API access. */
  m2m: { id: string; secret: string };
  /** A Traditional application whose redirect URI is `${baseUrl}/callback`. */
  app: { id: string; secret: string };
  /** Where this backend is reached, e.g. http://localhost:3003. */
  baseUrl: string;
  /** e.g. smtp://user:pass@smtp.example.com:587 */
  smtpUrl: string;
  mailFrom?: string;
  /** Keys that sign the sign-in cookie (Koa `app.keys`). */
  cookieKeys: string[];
  /** Seconds before expiry at which the Management API token is renewed (default 60). */
  refreshMarginSeconds?: number;
  /** Clock in milliseconds (tests move it). */
  now?: () => number;
};

const SCOPE = 'openid email urn:logto:scope:organizations urn:logto:scope:organization_roles';
const FLOW_COOKIE = 'invite_flow';

const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!);

async function discover(sesameUrl: string, client: { id: string; secret: string }) {
  const issuer = new URL(`${sesameUrl.replace(/\/$/, '')}/oidc`);
  // Plain http is for a local Sesame only.
  const options = issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined;
  return oidc.discovery(issuer, client.id, client.secret, undefined, options);
}

/** A Management API access token, fetched with client_credentials and renewed shortly before it expires. */
export class ManagementToken {
  private current: { token: string; expiresAt: number } | undefined;
  private pending: Promise<string> | undefined;
  /** How many tokens were fetched (for tests and logs). */
  fetched = 0;

  constructor(
    private readonly config: oidc.Configuration,
    private readonly resource: string,
    private readonly marginSeconds: number,
    private readonly now: () => number,
  ) {}

  async get(): Promise<string> {
    if (this.current && this.now() < this.current.expiresAt - this.marginSeconds * 1000) return this.current.token;
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetch(): Promise<string> {
    const answer = await oidc.clientCredentialsGrant(this.config, { resource: this.resource, scope: 'all' });
    this.fetched += 1;
    this.current = { token: answer.access_token, expiresAt: this.now() + (answer.expires_in ?? 60) * 1000 };
    return answer.access_token;
  }
}

async function readJson(ctx: Koa.Context): Promise<unknown> {
  if (!ctx.is('application/json')) ctx.throw(415, 'send application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 16_384) ctx.throw(413, 'body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return ctx.throw(400, 'invalid JSON');
  }
}

export async function createInviteBackend(config: InviteBackendConfig) {
  const sesameUrl = config.sesameUrl.replace(/\/$/, '');
  const baseUrl = config.baseUrl.replace(/\/$/, '');
  const redirectUri = `${baseUrl}/callback`;
  const now = config.now ?? Date.now;
  const [m2mConfig, appConfig] = await Promise.all([discover(sesameUrl, config.m2m), discover(sesameUrl, config.app)]);
  const managementToken = new ManagementToken(m2mConfig, `${sesameUrl}/api`, config.refreshMarginSeconds ?? 60, now);
  const mailer = nodemailer.createTransport(config.smtpUrl);

  async function managementApi(method: string, path: string, body?: unknown) {
    const response = await fetch(`${sesameUrl}/api${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await managementToken.get()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
  }

  const router = new Router();

  router.post('/invite', async (ctx) => {
    const input = (await readJson(ctx)) as { email?: unknown; organizationId?: unknown } | null;
    const email = typeof input?.email === 'string' ? input.email.trim() : '';
    const organizationId = typeof input?.organizationId === 'string' ? input.organizationId : '';
    if (!email || !organizationId) {
      ctx.status = 400;
      ctx.body = { code: 'INVALID_INPUT', message: 'email and organizationId are required' };
      return;
    }
    const created = await managementApi('POST', '/organization-invitations', {
      email,
      organizationId,
      landingUri: `${baseUrl}/landing`,
      sendEmail: false,
    });
    if (created.status !== 201) {
      // Sesame's answer ({code, message}) says what was wrong: pass it on.
      ctx.status = created.status >= 500 ? 502 : created.status;
      ctx.body = created.body ?? { code: 'MANAGEMENT_API_ERROR', message: `Management API answered ${created.status}` };
      return;
    }
    const invitation = created.body!;
    const organization = await managementApi('GET', `/organizations/${encodeURIComponent(organizationId)}`);
    const organizationName = String(organization.body?.name ?? organizationId);
    const link = String(invitation.link);
    try {
      await mailer.sendMail({
        from: config.mailFrom ?? 'Invitations <invitations@localhost>',
        to: invitation.email,
        subject: `You are invited to join ${organizationName}`,
        text: `You are invited to join ${organizationName}.\n\nAccept the invitation: ${link}\n\nThe link works once.`,
        html: `<p>You are invited to join <strong>${escapeHtml(organizationName)}</strong>.</p><p><a href="${escapeHtml(link)}">Accept the invitation</a></p><p>The link works once.</p>`,
      });
    } catch (error) {
      // The link was not delivered: revoke it, so no unknown link stays valid.
      await managementApi('PUT', `/organization-invitations/${encodeURIComponent(invitation.id)}/status`, { status: 'Revoked' });
      ctx.status = 502;
      ctx.body = { code: 'MAIL_NOT_SENT', message: error instanceof Error ? error.message : String(error) };
      return;
    }
    ctx.status = 201;
    // Never the link or the token: they went to the invitee only.
    ctx.body = { id: invitation.id, email: invitation.email, organizationId, status: invitation.status, expiresAt: invitation.expiresAt };
  });

  router.get('/landing', async (ctx) => {
    const token = ctx.query.token;
    const email = ctx.query.email;
    if (typeof token !== 'string' || typeof email !== 'string' || !token || !email) {
      ctx.status = 400;
      ctx.body = 'This link is incomplete.';
      return;
    }
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    ctx.cookies.set(FLOW_COOKIE, Buffer.from(JSON.stringify({ verifier, state })).toString('base64url'), {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      path: '/callback',
      maxAge: 15 * 60 * 1000,
    });
    const url = oidc.buildAuthorizationUrl(appConfig, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      one_time_token: token,
      login_hint: email,
    });
    ctx.redirect(url.toString());
  });

  router.get('/callback', async (ctx) => {
    const raw = ctx.cookies.get(FLOW_COOKIE, { signed: true });
    ctx.cookies.set(FLOW_COOKIE, null, { path: '/callback' });
    if (!raw) {
      ctx.status = 400;
      ctx.body = 'No sign-in in progress in this browser: open the link again.';
      return;
    }
    const flow = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { verifier: string; state: string };
    let claims: oidc.IDToken;
    try {
      const tokens = await oidc.authorizationCodeGrant(appConfig, new URL(ctx.originalUrl, baseUrl), {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
      });
      claims = tokens.claims()!;
    } catch (error) {
      ctx.status = 400;
      ctx.type = 'html';
      const reason = error instanceof oidc.AuthorizationResponseError ? error.error : error instanceof Error ? error.message : String(error);
      ctx.body = `<!doctype html><title>Sign-in failed</title><h1>Sign-in failed</h1><p>${escapeHtml(reason)}</p>`;
      return;
    }
    const organizationIds = Array.isArray(claims.organizations) ? (claims.organizations as string[]) : [];
    const roles = Array.isArray(claims.organization_roles) ? (claims.organization_roles as string[]) : [];
    const organizations = await Promise.all(
      organizationIds.map(async (id) => {
        const answer = await managementApi('GET', `/organizations/${encodeURIComponent(id)}`);
        const roleNames = roles.filter((role) => role.startsWith(`${id}:`)).map((role) => role.slice(id.length + 1));
        return { id, name: String(answer.body?.name ?? id), roles: roleNames };
      }),
    );
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>Welcome</title>
<h1>Welcome, ${escapeHtml(String(claims.email ?? claims.sub))}</h1>
<p>Your organizations:</p>
<ul>${organizations
      .map((o) => `<li data-organization-id="${escapeHtml(o.id)}">${escapeHtml(o.name)} (${o.roles.map(escapeHtml).join(', ') || 'no roles'})</li>`)
      .join('')}</ul>`;
  });

  const app = new Koa();
  app.keys = config.cookieKeys;
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const status = (error as { status?: number }).status ?? 500;
      ctx.status = status;
      ctx.body = { code: status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST', message: status >= 500 ? 'internal error' : (error as Error).message };
      if (status >= 500) console.error(error);
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods());

  return { app, managementToken, close: () => mailer.close() };
}
