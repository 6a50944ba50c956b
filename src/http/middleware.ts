import { randomUUID } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { containsNul, readRawBody } from './body.ts';
import { renderErrorPage } from './pages.ts';

/** One log line per request (path only: query strings can carry one-time tokens). */
export function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    ctx.state.requestId = randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId as string);
    try {
      await next();
    } finally {
      logger.info({
        requestId: ctx.state.requestId,
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    }
  };
}

function wantsJson(ctx: Context): boolean {
  return ctx.path.startsWith('/api/') || ctx.path === '/api' || ctx.accepts('html', 'json') !== 'html';
}

/**
 * Turns any thrown error into `{code, message}` (or an HTML page for browsers).
 * Unknown failures are logged with the request id and never leak internals.
 */
export function errorHandler(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AppError('NOT_FOUND');
    } catch (caught) {
      let error: AppError;
      if (caught instanceof AppError) {
        error = caught;
      } else if (isHttpError(caught) && caught.status === 405) {
        error = new AppError('METHOD_NOT_ALLOWED');
      } else if (isHttpError(caught) && caught.status === 404) {
        error = new AppError('NOT_FOUND');
      } else {
        logger.error({ requestId: ctx.state.requestId, err: caught }, 'unhandled error');
        error = new AppError('INTERNAL');
      }
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
