import { isIP } from 'node:net';
import type { Context } from 'koa';

const MAPPED_DOTTED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * One text per address, so a ban or a counter cannot be dodged by writing the
 * same address another way: IPv6 lower-case and compressed (`2001:DB8:0::1` →
 * `2001:db8::1`), IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4. Undefined for
 * anything that is not one address (names, ranges, zone ids, leading zeros).
 */
export function canonicalIp(value: string): string | undefined {
  const text = value.trim();
  if (text.includes('%')) return undefined;
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6) return undefined;
  // What a dual-stack listener reports for every IPv4 client: answered without
  // the URL parser below, which costs about 2.5 µs a call (this runs several
  // times per request).
  const dotted = MAPPED_DOTTED.exec(text)?.[1];
  if (dotted !== undefined && isIP(dotted) === 4) return dotted;
  // The WHATWG URL parser serialises IPv6 canonically (RFC 5952).
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const [high, low] = [Number.parseInt(mapped[1]!, 16), Number.parseInt(mapped[2]!, 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/**
 * The client's address. The app is built with `proxy: TRUST_PROXY` and
 * `maxIpsCount: 1` (src/main.ts), so behind a trusted proxy this is the last
 * X-Forwarded-For entry, the one the proxy appended itself (earlier entries
 * are whatever the client sent); otherwise the socket's peer and
 * X-Forwarded-For is ignored.
 */
export function clientIp(ctx: Context): string {
  return knownClientIp(ctx) ?? 'unknown';
}

/** The client's address as `clientIp` reads it, or undefined when there is none to read (for records that may leave it out). */
export function knownClientIp(ctx: Context): string | undefined {
  return canonicalIp(ctx.ip) ?? canonicalIp(ctx.socket.remoteAddress ?? '');
}
