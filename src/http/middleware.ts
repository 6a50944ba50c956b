import { randomUUID } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { isDatabaseUnavailable } from '../db/index.ts';
import { AppError, errorTable } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { containsNul, readRawBody } from './body.ts';
import { renderErrorPage } from './pages.ts';

/** Probe and scrape endpoints: polled every few seconds, so logged at debug only. */
const quietPaths = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The route pattern that answered (`/api/users/:id`, `/oidc/token`,
 * `/interaction/:uid`), never the raw path: it is safe as a metric label and
 * in logs. `unmatched` when no route did (404s, 405s).
 */
export function routeOf(ctx: Context): string {
  // @koa/router records every layer whose path matched; the route is the last one
  // for this method (middleware layers such as an auth `router.use` have no methods).
  const layers = (ctx as { matched?: Array<{ path: unknown; methods: string[] }> }).matched ?? [];
  const route = layers.findLast((layer) => layer.methods.includes(ctx.method) && typeof layer.path === 'string');
  if (route) return route.path as string;
  // oidc-provider routes with its own router, inside the koa-mount prefix.
  const { _matchedRoute: matched, mountPath } = ctx as { _matchedRoute?: unknown; mountPath?: unknown };
  if (typeof matched === 'string' && typeof mountPath === 'string') return `${mountPath}${matched}`;
  return 'unmatched';
}

/** One log line per request (path only: query strings can carry one-time tokens). */
export function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    ctx.state.requestId = randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId as string);
    try {
      await next();
    } finally {
      const level = quietPaths.has(ctx.path) ? 'debug' : 'info';
      // The line is built only when it is written (LOG_LEVEL=warn leaves every one out).
      if (logger.isLevelEnabled(level)) {
        logger[level]({
          requestId: ctx.state.requestId,
          method: ctx.method,
          path: ctx.path,
          route: routeOf(ctx),
          status: ctx.status,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        });
      }
    }
  };
}

function wantsJson(ctx: Context): boolean {
  return ctx.path.startsWith('/api/') || ctx.path === '/api' || quietPaths.has(ctx.path) || ctx.accepts('html', 'json') !== 'html';
}

/**
 * Turns any thrown error into `{code, message}` (or an HTML page for browsers).
 * Unknown failures are logged with the request id and never leak internals.
 */
export function errorHandler(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.state.providerError !== undefined) answerProviderError(ctx, logger);
      if (ctx.status === 404 && ctx.body === undefined) throw new AppError('NOT_FOUND');
    } catch (caught) {
      let error: AppError;
      if (caught instanceof AppError) {
        error = caught;
      } else if (isHttpError(caught) && (caught.status === 405 || caught.status === 501)) {
        // 501: a method no route knows (TRACE, PROPFIND, …).
        error = new AppError('METHOD_NOT_ALLOWED');
      } else if (isHttpError(caught) && caught.status === 404) {
        error = new AppError('NOT_FOUND');
      } else if (isDatabaseUnavailable(caught)) {
        logger.warn({ requestId: ctx.state.requestId, ...describe(caught) }, 'database unavailable');
        error = new AppError('SERVICE_UNAVAILABLE');
      } else {
        logger.error({ requestId: ctx.state.requestId, err: caught }, 'unhandled error');
        error = new AppError('INTERNAL');
      }
      if (error.code === 'SERVICE_UNAVAILABLE') ctx.set('Retry-After', RETRY_AFTER_SECONDS);
      // RATE_LIMITED carries its own wait in seconds.
      if (typeof error.details?.retryAfter === 'number') ctx.set('Retry-After', String(error.details.retryAfter));
      ctx.status = error.status;
      if (wantsJson(ctx)) {
        ctx.body = error.toBody();
      } else {
        renderErrorPage(ctx, { title: 'Something is not right', message: error.message, code: error.code });
        ctx.status = error.status;
      }
    }
  };
}

const RETRY_AFTER_SECONDS = '5';

/** The code and message of a failure, without the stack: enough for an outage that repeats per request. */
function describe(error: unknown): { code?: unknown; reason: string } {
  const { message, code } = error as { message?: unknown; code?: unknown };
  return { ...(code !== undefined && { code }), reason: String(message) };
}

/**
 * oidc-provider answers its own unexpected failures (`server_error`, 500) and
 * reports them through its `server_error` event, which the composition root
 * records in `ctx.state.providerError`. Log them with the request id; when the
 * database is down, answer 503 so clients retry (a redirect to the client
 * stays as the provider made it).
 */
function answerProviderError(ctx: Context, logger: Logger): void {
  const failure: unknown = ctx.state.providerError;
  if (!isDatabaseUnavailable(failure)) {
    logger.error({ requestId: ctx.state.requestId, err: failure }, 'unhandled error in the OIDC provider');
    return;
  }
  logger.warn({ requestId: ctx.state.requestId, ...describe(failure) }, 'database unavailable');
  if (ctx.status !== 500) return;
  ctx.status = 503;
  ctx.set('Retry-After', RETRY_AFTER_SECONDS);
  const body = ctx.body as { error?: unknown } | undefined;
  if (body && typeof body === 'object' && !Buffer.isBuffer(body) && body.error === 'server_error') {
    ctx.body = { error: 'temporarily_unavailable', error_description: errorTable.SERVICE_UNAVAILABLE.message };
  }
}

function isHttpError(value: unknown): value is { status: number; expose?: boolean } {
  return typeof value === 'object' && value !== null && typeof (value as { status?: unknown }).status === 'number';
}

/**
 * Rejects NUL bytes in the query string and in form bodies sent to the OIDC
 * provider before they reach a JSONB insert or an index lookup. The checked
 * body is handed to oidc-provider as the already-read `req.body`.
 */
export async function rejectNulBytes(ctx: Context, next: Next): Promise<void> {
  if (containsNul(ctx.querystring) || containsNul(ctx.path)) {
    throw new AppError('INVALID_INPUT', 'The request contains a NUL byte.');
  }
  if (ctx.path.startsWith('/oidc/') && ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
    const raw = await readRawBody(ctx, 56 * 1024);
    if (containsNul(raw)) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'the request contains a NUL byte' };
      return;
    }
    (ctx.req as unknown as { body: string }).body = raw;
  }
  await next();
}

/**
 * Whether a state-changing request comes from our own pages. Pages are served
 * with `Referrer-Policy: no-referrer`, under which browsers send `Origin: null`
 * even to the same origin; Fetch Metadata (`Sec-Fetch-Site`) then tells. A
 * request naming another site is refused. Without `requireOrigin`, a request
 * with neither header (old browsers) passes: the SameSite=Lax interaction
 * cookie is what keeps cross-site form posts out in that case.
 */
export function isSameOriginRequest(ctx: Context, origin: string, options: { requireOrigin: boolean }): boolean {
  const sent = ctx.get('Origin');
  const site = ctx.get('Sec-Fetch-Site');
  if (site === 'cross-site' || site === 'same-site') return false;
  if (sent && sent !== 'null') return sent === origin;
  if (sent === 'null') return site === 'same-origin';
  return !options.requireOrigin;
}

/**
 * Every URL Sesame builds (discovery endpoints, redirects, form actions) comes
 * from BASE_URL, never from the request's Host or X-Forwarded-Host headers,
 * which a client can forge. Cookies are Secure exactly when BASE_URL is https
 * (the public URL is what browsers use, whatever hop terminates TLS).
 */
export function pinOrigin(request: object, baseUrl: string): Middleware {
  const url = new URL(baseUrl);
  // Once, on the app's request prototype (`app.request`: Koa makes every ctx.request with Object.create
  // from it), instead of on each request: the same values, without ~1 µs of defineProperties per request.
  Object.defineProperties(request, {
    protocol: { value: url.protocol.slice(0, -1) },
    secure: { value: url.protocol === 'https:' },
    host: { value: url.host },
    hostname: { value: url.hostname },
    origin: { value: url.origin },
  });
  return (ctx, next) => {
    ctx.req.headers.host = url.host;
    if (ctx.req.headers['x-forwarded-host'] !== undefined) delete ctx.req.headers['x-forwarded-host'];
    return next();
  };
}

/** Pages oidc-provider renders itself (form_post, logout) must not be framed either. */
export async function denyFraming(ctx: Context, next: Next): Promise<void> {
  ctx.set('X-Frame-Options', 'DENY');
  await next();
  if (ctx.type === 'text/html' && !ctx.response.get('Content-Security-Policy')) {
    ctx.set('Content-Security-Policy', "frame-ancestors 'none'");
  }
}
