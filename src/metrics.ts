import type Router from '@koa/router';
import { createRouter } from './http/routing.ts';
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Core } from './core.ts';
import type { Database } from './db/index.ts';
import type { InvalidationChannel } from './db/invalidation.ts';
import { AppError } from './errors.ts';
import { routeOf } from './http/middleware.ts';
import { constantTimeEqual } from './lib/crypto.ts';

export type Metrics = ReturnType<typeof createMetrics>;

/** What knex's tarn pool reports; read at scrape time. */
type PoolStats = { numUsed(): number; numFree(): number; numPendingAcquires(): number };

/**
 * Prometheus metrics for one server: its own registry (tests build several
 * servers in one process, so nothing goes to prom-client's global registry).
 * Labels only ever take values from small fixed sets: route patterns, methods,
 * statuses and result names, never raw paths, ids or tokens.
 */
export function createMetrics(deps: { db: Database; invalidation?: Pick<InvalidationChannel, 'isLive'> }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const pool = () => (deps.db.client as { pool?: PoolStats | null }).pool ?? undefined;
  const poolGauge = (name: string, help: string, read: (stats: PoolStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const stats = pool();
        this.set(stats ? read(stats) : 0);
      },
    });
  poolGauge('sesame_db_pool_used', 'Database connections in use (with those the hot statements keep between statements).', (stats) => stats.numUsed());
  poolGauge('sesame_db_pool_free', 'Idle database connections in the pool.', (stats) => stats.numFree());
  poolGauge('sesame_db_pool_pending', 'Requests waiting for a database connection.', (stats) => stats.numPendingAcquires());
  new Gauge({
    name: 'sesame_cache_invalidation_live',
    help: 'Whether this instance hears the database\'s change notices (1), or bypasses its caches because its listener is down (0).',
    registers,
    collect() {
      this.set(deps.invalidation?.isLive() ? 1 : 0);
    },
  });

  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by route pattern.',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by route pattern.',
      labelNames: ['method', 'route'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    signIns: new Counter({
      name: 'sesame_sign_ins_total',
      help: 'Sign-in attempts by method and result (success or the error code).',
      labelNames: ['method', 'result'] as const,
      registers,
    }),
    tokensMinted: new Counter({
      name: 'sesame_one_time_tokens_minted_total',
      help: 'One-time tokens minted.',
      registers,
    }),
    tokensConsumed: new Counter({
      name: 'sesame_one_time_tokens_consumed_total',
      help: 'One-time token redemptions by result (success or the error code).',
      labelNames: ['result'] as const,
      registers,
    }),
    mails: new Counter({
      name: 'sesame_mails_total',
      help: 'Mails handed to the mail server (or the dev outbox), by result.',
      labelNames: ['result'] as const,
      registers,
    }),
    rateLimitHits: new Counter({
      name: 'sesame_rate_limit_hits_total',
      help: 'Requests refused by a rate limit, by limit.',
      labelNames: ['limit'] as const,
      registers,
    }),
    cleanupDeleted: new Counter({
      name: 'sesame_cleanup_deleted_total',
      help: 'Rows purged by the cleanup job, by kind (provider_models, expired_tokens, consumed_tokens, revoked_tokens, expired_bans, rate_limits, audit_logs, hook_deliveries, sign_in_codes, interaction_attempts).',
      labelNames: ['kind'] as const,
      registers,
    }),
  };
}

/** `success`, or the AppError code in lower case (a fixed set), or `error`. */
function outcome(error?: unknown): string {
  if (error === undefined) return 'success';
  return error instanceof AppError ? error.code.toLowerCase() : 'error';
}

async function counted<T>(run: () => Promise<T>, record: (result: string) => void): Promise<T> {
  try {
    const value = await run();
    record(outcome());
    return value;
  } catch (error) {
    record(outcome(error));
    throw error;
  }
}

/**
 * Counts domain events without touching the domain services: their methods are
 * wrapped in place, so every caller that holds the same service object (the
 * Experience and Management APIs, invitations, sign-in) is counted. Behaviour
 * and results are unchanged.
 */
export function instrumentCore(core: Pick<Core, 'signIn' | 'tokens' | 'mailer'>, metrics: Metrics): void {
  const { signIn, tokens, mailer } = core;

  const withOneTimeToken = signIn.withOneTimeToken.bind(signIn);
  signIn.withOneTimeToken = (input) =>
    counted(() => withOneTimeToken(input), (result) => metrics.signIns.inc({ method: 'one_time_token', result }));

  const mint = tokens.mint.bind(tokens);
  tokens.mint = async (input) => {
    const minted = await mint(input);
    metrics.tokensMinted.inc();
    return minted;
  };

  const consume = tokens.consume.bind(tokens);
  tokens.consume = (input) => counted(() => consume(input), (result) => metrics.tokensConsumed.inc({ result }));
  const consumeWith = tokens.consumeWith.bind(tokens);
  tokens.consumeWith = (input, statement) => counted(() => consumeWith(input, statement), (result) => metrics.tokensConsumed.inc({ result }));

  const send = mailer.send.bind(mailer);
  mailer.send = (message) =>
    counted(() => send(message), (result) => metrics.mails.inc({ result: result === 'success' ? 'sent' : 'failed' }));
}

/** Counts and times every request by its route pattern (outside the error handler, so statuses are final). */
export function httpMetrics(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const stop = metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      const route = routeOf(ctx);
      stop({ method: ctx.method, route });
      metrics.httpRequests.inc({ method: ctx.method, route, status: String(ctx.status) });
    }
  };
}

/** `GET /metrics`: public unless a token is configured, then `Authorization: Bearer <token>`. */
export function createMetricsRouter(metrics: Metrics, options: { token?: string }): Router {
  const router = createRouter();
  router.get('/metrics', async (ctx) => {
    if (options.token) {
      const sent = /^Bearer (\S+)$/i.exec(ctx.get('Authorization'))?.[1] ?? '';
      if (!constantTimeEqual(sent, options.token)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new AppError('UNAUTHORIZED', 'A valid metrics token is required.');
      }
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}
