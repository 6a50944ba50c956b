import { createHash, randomBytes, randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import Koa, { type Context } from 'koa';
import mount from 'koa-mount';
import Provider, { errors, type Configuration } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';
import { openBaselineStore } from './baseline-pg.ts';

/**
 * The benchmark's baseline: a bare oidc-provider 9 doing the same protocol
 * work as Sesame with nothing else. Its in-memory adapter (with room for a
 * million entries instead of the default thousand, so nothing is evicted
 * mid-run), two static clients, a no-op login (the confirm POST finishes the
 * interaction for the `login_hint` email) and, for the Management API
 * scenarios, trivial Koa routes behind the same JWT check Sesame does,
 * keeping one-time tokens in memory. The same signing algorithms as Sesame:
 * RS256 ID tokens, ES256 JWT access tokens for the API resource.
 *
 * With BENCH_DATABASE_URL it is `baseline-pg` instead: the provider's state,
 * one-time tokens and accounts in that PostgreSQL database, kept the textbook
 * way (bench/baseline-pg.ts), and the confirm consumes the one-time token.
 *
 * Env: PORT, BASE_URL, BENCH_M2M_ID/SECRET, BENCH_APP_ID/SECRET, BENCH_REDIRECT_URI[, BENCH_DATABASE_URL].
 */
const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const port = Number(env('PORT'));
const baseUrl = env('BASE_URL');
const issuer = `${baseUrl}/oidc`;
const apiResource = `${baseUrl}/api`;
const API_SCOPE = 'all';

async function signingKey(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomUUID()}` };
}
const keys = [await signingKey('RS256'), await signingKey('ES256')];
const publicKeys = keys.map(({ d, p, q, dp, dq, qi, ...rest }) => rest);

const durable = process.env.BENCH_DATABASE_URL ? await openBaselineStore(process.env.BENCH_DATABASE_URL) : undefined;
const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** Accounts are emails; the no-op login creates one on first use. */
const accounts = new Map<string, string>();
const accountIdFor = async (email: string) => {
  const id = sha256(email).slice(0, 21);
  if (durable) await durable.upsertAccount(id, email);
  else accounts.set(id, email);
  return id;
};

const cookieKeys = [randomBytes(32).toString('base64url')];
const store = new LRU({ maxSize: 1_000_000 });
const configuration: Configuration = {
  adapter: durable ? durable.adapter : (name: string) => new MemoryAdapter(name, store),
  clients: [
    {
      client_id: env('BENCH_APP_ID'),
      client_secret: env('BENCH_APP_SECRET'),
      client_name: 'Bench app',
      redirect_uris: [env('BENCH_REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: env('BENCH_M2M_ID'),
      client_secret: env('BENCH_M2M_SECRET'),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: keys as NonNullable<Configuration['jwks']>['keys'] },
  cookies: { keys: cookieKeys },
  claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'], profile: ['name', 'updated_at'] },
  conformIdTokenClaims: false,
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  responseTypes: ['code'],
  pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
  extraParams: ['one_time_token'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => (oneOf ?? undefined) as unknown as string,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== apiResource) throw new errors.InvalidTarget();
        return { scope: API_SCOPE, audience: apiResource, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    ClientCredentials: 3600,
    IdToken: 3600,
    Interaction: 3600,
    Grant: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
  rotateRefreshToken: true,
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  findAccount: async (_ctx, sub) => {
    const email = durable ? await durable.emailOf(sub) : accounts.get(sub);
    if (!email) return undefined;
    return { accountId: sub, claims: async () => ({ sub, email, email_verified: true }) };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
};
const provider = new Provider(issuer, configuration);

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

const interactions = new Router();
interactions.get('/interaction/:uid', async (ctx) => {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const client = await provider.Client.find(String(details.params.client_id));
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = `<!doctype html><title>Sign in</title>
<p>Continue as ${escapeHtml(String(details.params.login_hint ?? ''))} to ${escapeHtml(client?.clientName ?? 'the app')}?</p>
<form method="post" action="/interaction/${details.uid}/confirm"><button type="submit">Continue</button></form>`;
});
interactions.post('/interaction/:uid/confirm', async (ctx) => {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const email = String(details.params.login_hint ?? 'someone@example.test').toLowerCase();
  if (durable && !(await durable.consume(email, sha256(String(details.params.one_time_token ?? ''))))) {
    ctx.status = 400;
    ctx.body = { code: 'INVALID_TOKEN' };
    return;
  }
  const accountId = await accountIdFor(email);
  const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
  grant.addOIDCScope(String(details.params.scope ?? 'openid'));
  const grantId = await grant.save();
  await provider.interactionFinished(
    ctx.req,
    ctx.res,
    { login: { accountId, amr: ['email'], remember: true }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
  ctx.respond = false;
});

/** The same check as Sesame's Management API: a JWT access token from our token endpoint with the `all` scope. */
const keySet = createLocalJWKSet({ keys: publicKeys });
async function requireApiToken(ctx: Context, next: () => Promise<unknown>) {
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(ctx.get('Authorization'));
  let scopes: string[] = [];
  try {
    if (!match?.[1]) throw new Error('no token');
    const { payload } = await jwtVerify(match[1], keySet, { issuer, audience: apiResource, typ: 'at+jwt', algorithms: ['ES256', 'RS256'] });
    scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
  } catch {
    ctx.status = 401;
    ctx.body = { code: 'UNAUTHORIZED' };
    return;
  }
  if (!scopes.includes(API_SCOPE)) {
    ctx.status = 403;
    ctx.body = { code: 'FORBIDDEN' };
    return;
  }
  await next();
}

async function jsonBody(ctx: Context): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
}

type TokenRecord = { id: string; email: string; tokenHash: string; status: 'active' | 'consumed' | 'revoked'; expiresAt: Date; createdAt: Date };
const tokens: TokenRecord[] = [];
const present = ({ tokenHash: _hash, ...record }: TokenRecord, now: Date) => ({
  ...record,
  status: record.status === 'active' && record.expiresAt <= now ? 'expired' : record.status,
});

const api = new Router({ prefix: '/api' });
api.use(requireApiToken);
api.post('/one-time-tokens', async (ctx) => {
  const body = await jsonBody(ctx);
  const email = String(body.email ?? '').trim().toLowerCase();
  const expiresIn = typeof body.expiresIn === 'number' ? body.expiresIn : 600;
  if (!email.includes('@')) {
    ctx.status = 400;
    ctx.body = { code: 'INVALID_INPUT' };
    return;
  }
  const token = randomBytes(32).toString('base64url');
  if (durable) {
    ctx.status = 201;
    ctx.body = { ...(await durable.mint(email, sha256(token), expiresIn)), token };
    return;
  }
  const now = new Date();
  const record: TokenRecord = {
    id: randomUUID(),
    email,
    tokenHash: sha256(token),
    status: 'active',
    createdAt: now,
    expiresAt: new Date(now.getTime() + expiresIn * 1000),
  };
  tokens.push(record);
  ctx.status = 201;
  ctx.body = { ...present(record, now), token };
});
api.get('/one-time-tokens', async (ctx) => {
  const now = new Date();
  const email = typeof ctx.query.email === 'string' ? ctx.query.email.trim().toLowerCase() : undefined;
  const status = typeof ctx.query.status === 'string' ? ctx.query.status : undefined;
  const page = Math.max(1, Number(ctx.query.page ?? 1));
  const pageSize = Math.min(100, Math.max(1, Number(ctx.query.page_size ?? 20)));
  if (durable) {
    const { total, items } = await durable.list({ email, status, page, pageSize });
    ctx.set('Total-Number', String(total));
    ctx.body = items;
    return;
  }
  // Newest first, like Sesame's list; a linear scan of the in-memory store.
  const matches: TokenRecord[] = [];
  for (let i = tokens.length - 1; i >= 0; i -= 1) {
    const record = tokens[i]!;
    if (email && record.email !== email) continue;
    if (status && present(record, now).status !== status) continue;
    matches.push(record);
  }
  ctx.set('Total-Number', String(matches.length));
  ctx.body = matches.slice((page - 1) * pageSize, page * pageSize).map((record) => present(record, now));
});

const app = new Koa();
// Mounted, the provider sets its cookies through this app's context: it signs them with the same keys.
app.keys = cookieKeys;
const health = new Router();
health.get('/healthz', (ctx) => {
  ctx.body = { status: 'ok' };
});
app.use(health.routes());
app.use(interactions.routes());
app.use(api.routes());
app.use(mount('/oidc', provider));

const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`baseline oidc-provider listening on ${baseUrl} (port ${port})\n`);
});
const stop = () => {
  server.close(() => void (durable?.close() ?? Promise.resolve()).finally(() => process.exit(0)));
  server.closeIdleConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
