import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { RequestContext } from './types.ts';

/**
 * The client's address as Koa gives it: the socket's peer, or the first
 * `X-Forwarded-For` hop when the app is built with `proxy: TRUST_PROXY`
 * (src/main.ts). IPv4-mapped IPv6 addresses are shown as IPv4.
 */
export function clientIp(ctx: Pick<Context, 'ip'>): string | undefined {
  const ip = ctx.ip;
  if (!ip) return undefined;
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice('::ffff:'.length) : ip;
}

/** 16 hex characters of SHA-256 over the user agent and accept headers: stable per browser, not identifying more. */
export function deviceFingerprint(headers: { userAgent: string; accept: string; acceptLanguage: string; acceptEncoding: string }): string {
  const material = [headers.userAgent, headers.accept, headers.acceptLanguage, headers.acceptEncoding].join('\n');
  return createHash('sha256').update(material, 'utf8').digest('hex').slice(0, 16);
}

const MAX_USER_AGENT = 512;

/** What an event records of the request that caused it. */
export function requestContextOf(ctx: Context): RequestContext {
  const userAgent = ctx.get('User-Agent');
  return {
    ip: clientIp(ctx),
    ...(userAgent && { userAgent: userAgent.slice(0, MAX_USER_AGENT) }),
    deviceFingerprint: deviceFingerprint({
      userAgent,
      accept: ctx.get('Accept'),
      acceptLanguage: ctx.get('Accept-Language'),
      acceptEncoding: ctx.get('Accept-Encoding'),
    }),
    ...(typeof ctx.state.requestId === 'string' && { requestId: ctx.state.requestId }),
  };
}
