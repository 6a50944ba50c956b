import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import type { JSONWebKeySet } from 'jose';
import Koa from 'koa';
import mount from 'koa-mount';
import { createDemoRouter } from '../packages/demo/src/index.ts';
import { createOutboxRouter } from '../packages/demo/src/outbox.ts';
import { createAccountApiRouter } from '../packages/account/src/index.ts';
import { createExperienceRouter } from '../packages/experience/src/index.ts';
import { createManagementApiRouter } from '../packages/management-api/src/index.ts';
import { createBanRepository, createBanService, refuseBannedIps } from './bans/index.ts';
import { ensureBootstrap, type BootstrapResult } from './bootstrap.ts';
import { createCleanupJob, retentionOf } from './cleanup/index.ts';
import { createCore } from './core.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createDatabase, migrateWhenReachable, type Database } from './db/index.ts';
import { openInvalidationChannel } from './db/invalidation.ts';
import { createHealthRouter } from './http/health.ts';
import { denyFraming, errorHandler, pinOrigin, rejectNulBytes, requestLog } from './http/middleware.ts';
import { html, renderPage } from './http/pages.ts';
import { createRouter, routesOf } from './http/routing.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics, createMetricsRouter, httpMetrics, instrumentCore } from './metrics.ts';
import { deriveKey } from './lib/crypto.ts';
import { START_WATCH_MS, watchStart } from './lib/start-watch.ts';
import { createProviderHolder } from './oidc/holder.ts';
import { createKeyService } from './oidc/key-service.ts';
import { ensureKeys, keySetVersion, loadKeySet, publicJwks } from './oidc/keys.ts';
import { createProvider, MANAGEMENT_API_SCOPE, MY_ACCOUNT_SCOPE } from './oidc/provider.ts';
import { adapterRequestScope } from './oidc/adapter.ts';
import { createRateLimits, rateLimitStore } from './ratelimit/index.ts';

export type SesameOptions = {
  config: Config;
  /** An open database; by default one is opened from the config. */
  db?: Database;
  clock?: () => Date;
  logger?: Logger;
  /** The demo application's id (tests sharing one database each use their own). */
  demoClientId?: string;
  /** How often to look for rotated keys (default 10 s). */
  keyPollMs?: number;
  /** How long to wait at start for a PostgreSQL that cannot be reached yet (default 120 s). */
  databaseWaitMs?: number;
  /** How often a start still running says which step it is on (default 15 s). */
  startWatchMs?: number;
};

export type Sesame = Awaited<ReturnType<typeof createSesame>>;

/** The composition root: builds the whole graph once. Tests build the same graph. */
export async function createSesame(options: SesameOptions) {
  // What this start opened so far, closed again (last first) when a later step fails: a failed start
  // leaves no database pool or listener connection behind to keep the process alive.
  const opened: Array<() => Promise<unknown>> = [];
  const logger = options.logger ?? createLogger(options.config.logLevel);
  const watch = watchStart(logger, options.startWatchMs ?? START_WATCH_MS);
  try {
    return await assemble({ ...options, logger }, opened, watch.step);
  } catch (error) {
    for (const close of opened.reverse()) {
      await close().catch((closeError: unknown) => logger.warn({ err: closeError }, 'closing after a failed start failed'));
    }
    throw error;
  } finally {
    watch.stop();
  }
}

async function assemble(options: SesameOptions & { logger: Logger }, opened: Array<() => Promise<unknown>>, step: (name: string) => void) {
  const { config, logger } = options;
  const db =
    options.db ??
    createDatabase(
      config.databaseUrl
        ? { kind: 'postgres', url: config.databaseUrl, preparedStatements: config.preparedStatements, logger }
        : { kind: 'embedded', dataDir: config.dataDir, logger },
      (error) => logger.warn({ err: error }, 'database connection error'),
    );
  if (!options.db) opened.push(() => db.destroy());

  step(config.databaseUrl ? 'migrating the database' : 'opening and migrating the embedded database');
  await migrateWhenReachable(db, {
    deadlineMs: options.databaseWaitMs ?? 120_000,
    onRetry: (error, delayMs, attempt) => {
      const { code, message } = error as { code?: unknown; message?: unknown };
      logger.warn({ attempt, code, reason: String(message) }, `database not reachable, retrying in ${delayMs / 1000}s`);
    },
  });
  step('loading the signing and cookie keys');
  await ensureKeys(db, config.secret);
  const initialKeySet = await loadKeySet(db, config.secret);
  let jwks = publicJwks(initialKeySet.signing) as JSONWebKeySet;

  // Other writers' changes (other instances, the CLI, SQL by hand) reach the caches through it.
  step('opening the change-notice channel');
  const invalidation = await openInvalidationChannel(db, { listenUrl: config.databaseListenUrl, logger });
  opened.push(() => invalidation.close());
  const core = createCore({ config, db, logger, clock: options.clock, invalidation });
  const { applications, users, userService, organizations, organizationService, tokens, outbox, mailer, invitations, signIn } = core;
  const metrics = createMetrics({ db, invalidation });
  instrumentCore(core, metrics);
  const cleanup = createCleanupJob({
    db,
    logger,
    clock: core.clock,
    intervalMs: config.cleanup.intervalSeconds * 1000,
    retention: retentionOf(config),
    metrics,
  });
  const bans = createBanService({ repository: createBanRepository(db), clock: core.clock, cacheMs: config.bans.cacheSeconds * 1000, logger, invalidation });
  const limits = createRateLimits({
    store: rateLimitStore(db),
    limits: config.rateLimits,
    autoBan: { after: config.bans.autoBanAfter, seconds: config.bans.autoBanSeconds },
    bans,
    logger,
    metrics,
    events: core.events,
  });
  step('creating the bootstrap clients');
  const bootstrap = await ensureBootstrap(config, applications, options.demoClientId);
  // Behind a TLS-terminating proxy, X-Forwarded-Proto makes cookies Secure; believed only when configured.
  // The client address (rate limits, bans) is then X-Forwarded-For's last entry, the one our proxy added.
  const app = new Koa({ proxy: config.trustProxy, maxIpsCount: 1 });
  app.keys = initialKeySet.cookie;
  const providers = createProviderHolder({
    initial: initialKeySet,
    build: (keySet) => {
      const built = createProvider({ config, db, keySet, applications, users, accounts: core.accounts, models: core.models, organizations, settings: core.settings, mfa: core.mfa });
      built.proxy = config.trustProxy;
      // The provider answers its own failures (500 server_error): errorHandler logs them and maps an outage to 503.
      built.on('server_error', (ctx: Koa.Context, error: unknown) => {
        ctx.state.providerError = error;
      });
      return built;
    },
    loadKeySet: () => loadKeySet(db, config.secret),
    keySetVersion: () => keySetVersion(db),
    onSwap: (keySet) => {
      app.keys = keySet.cookie;
      jwks = publicJwks(keySet.signing) as JSONWebKeySet;
    },
    logger,
    pollMs: options.keyPollMs,
  });
  const provider = () => providers.current();
  const keys = createKeyService({ db, secret: config.secret, providers });

  let internalUrl = config.baseUrl;
  // Set by close(): answers still to be sent tell clients not to reuse the connection, so it can close.
  let draining = false;
  app.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      if (draining) ctx.set('Connection', 'close');
    }
  });
  app.use(pinOrigin(app.request, config.baseUrl));
  app.use(requestLog(logger));
  // Events published while a request is handled carry its IP, user agent, device fingerprint and id.
  app.use(core.events.middleware());
  app.use(httpMetrics(metrics));
  app.use(errorHandler(logger));
  // oidc-provider models: read once per request, written together before the answer is sent (src/oidc/adapter.ts).
  app.use(adapterRequestScope());
  app.use(routesOf(createHealthRouter({ db })));
  app.use(routesOf(createMetricsRouter(metrics, { token: config.metricsToken })));
  app.use(refuseBannedIps(bans));
  app.use(rejectNulBytes);

  const origin = new URL(config.baseUrl).origin;
  const home = createRouter();
  home.get('/', (ctx) => {
    renderPage(
      ctx,
      'Sesame',
      html`<h1>Sesame is running</h1>
<p>An OpenID Connect provider whose best sign-in is a link.</p>
<ul>
<li>Issuer: <code>${config.issuer}</code></li>
<li><a href="/oidc/.well-known/openid-configuration">OpenID configuration</a></li>
${bootstrap.demo ? html`<li><a href="/demo">Try the demo: sign in with a magic link</a></li>` : ''}
</ul>`,
    );
  });
  app.use(routesOf(home));

  const experience = createExperienceRouter({
    provider,
    signIn,
    emailSignIn: core.emailSignIn,
    settings: core.settings,
    users,
    origin,
    csrfKey: deriveKey(config.secret, 'csrf'),
    limits,
    mfa: core.mfa,
    events: core.events,
  });
  app.use(routesOf(experience, { throw: true }));

  if (bootstrap.demo) {
    const demo = createDemoRouter({
      baseUrl: config.baseUrl,
      internalUrl: () => internalUrl,
      managementResource: config.managementApiResource,
      demoClient: async () => withSecret(await applications.findWithSecret(bootstrap.demo!.id)),
      m2mClient: async () => withSecret(await applications.findWithSecret(bootstrap.m2m.id)),
    });
    app.use(routesOf(demo, { throw: true }));
  }

  if (outbox) {
    const outboxRouter = createOutboxRouter(outbox);
    app.use(routesOf(outboxRouter, { throw: true }));
  }

  const managementApi = createManagementApiRouter({
    baseUrl: config.baseUrl,
    issuer: config.issuer,
    resource: config.managementApiResource,
    scope: MANAGEMENT_API_SCOPE,
    jwks: () => jwks,
    tokens,
    applications,
    users,
    userService,
    organizations,
    organizationService,
    invitations,
    keys,
    mailer,
    settings: core.settings,
    mfa: core.mfa,
    events: core.events,
    audit: core.audit,
    hooks: core.hooks.service,
    clock: core.clock,
    limits,
    bans,
  });
  const accountApi = createAccountApiRouter({
    issuer: config.issuer,
    resource: config.myAccountResource,
    scope: MY_ACCOUNT_SCOPE,
    jwks: () => jwks,
    users,
    mfa: core.mfa,
    events: core.events,
  });
  app.use(routesOf(accountApi, { throw: true }));
  app.use(routesOf(managementApi, { throw: true }));
  // The provider is rebuilt when keys rotate: mount whichever is current.
  const mounted = new WeakMap<object, Koa.Middleware>();
  app.use((ctx, next) => {
    const current = provider();
    let middleware = mounted.get(current);
    if (!middleware) {
      const inner = mount('/oidc', current);
      middleware = (ctx, next) =>
        ctx.path === '/oidc' || ctx.path.startsWith('/oidc/') ? denyFraming(ctx, () => inner(ctx, next)) : inner(ctx, next);
      mounted.set(current, middleware);
    }
    return middleware(ctx, next);
  });

  let server: Server | undefined;
  return {
    app,
    db,
    invalidation,
    provider,
    providers,
    managementApi,
    bootstrap,
    services: core,
    outbox,
    metrics,
    cleanup,
    limits,
    bans,
    async listen(port = config.port, host?: string): Promise<Server> {
      server = await new Promise<Server>((resolve, reject) => {
        const listening = app.listen(port, host, () => resolve(listening));
        listening.once('error', reject);
      });
      internalUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      providers.start();
      cleanup.start();
      core.hooks.worker.start();
      return server;
    },
    /**
     * Stops the key poller, the cleanup job and the webhook worker and stops accepting
     * connections; requests in flight may finish for `drainMs` (default
     * 10 s), then the remaining connections are cut. Last, once a cleanup run
     * in flight is done, closes the invalidation listener, and the database when this instance opened it.
     */
    async close({ drainMs = 10_000 }: { drainMs?: number } = {}): Promise<void> {
      providers.stop();
      const cleanupStopped = cleanup.stop();
      const hooksStopped = core.hooks.worker.stop();
      const listening = server;
      if (listening) {
        draining = true;
        const closed = new Promise<void>((resolve) => listening.close(() => resolve()));
        listening.closeIdleConnections();
        const cutOff = setTimeout(() => listening.closeAllConnections(), drainMs);
        try {
          await closed;
        } finally {
          clearTimeout(cutOff);
        }
      }
      await cleanupStopped;
      await hooksStopped;
      // Events of the last requests are written before the database closes.
      await core.events.flush();
      await invalidation.close();
      if (!options.db) await db.destroy();
    },
  };
}

function withSecret(found: { application: { id: string }; secret: string | undefined } | undefined) {
  if (!found?.secret) throw new Error('a bootstrap application is missing or has no secret');
  return { id: found.application.id, secret: found.secret };
}

function banner(config: Config, bootstrap: BootstrapResult): string {
  const lines = [
    '',
    `Sesame is listening on ${config.baseUrl}`,
    `  Issuer:        ${config.issuer}`,
    `  Discovery:     ${config.issuer}/.well-known/openid-configuration`,
    `  Database:      ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}`}`,
  ];
  if (bootstrap.demo) lines.push(`  Demo:          ${config.baseUrl}/demo`);
  lines.push(`  M2M client id: ${bootstrap.m2m.id}`);
  if (bootstrap.m2m.generatedSecret) {
    lines.push(
      `  M2M secret:    ${bootstrap.m2m.generatedSecret}`,
      '  (shown once: store it now; set SESAME_BOOTSTRAP_CLIENT_SECRET to choose your own)',
    );
  }
  return `${lines.join('\n')}\n`;
}

async function start(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  let sesame: Sesame | undefined;
  let stopping = false;
  // Installed first: a stop while still waiting for the database exits at once.
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing the requests in flight');
    try {
      await sesame?.close();
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    sesame = await createSesame({ config, logger });
    await sesame.listen(config.port);
  } catch (error) {
    logger.fatal({ err: error }, 'Sesame could not start');
    process.exit(1);
  }
  process.stdout.write(banner(config, sesame.bootstrap));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await start();
}
