/**
 * Rate limits, with `X-RateLimit-*` headers, `429 RATE_LIMITED` refusals and
 * automatic IP bans after repeated refusals (src/bans/).
 *
 * Routes call the service built once in src/main.ts (`limits`), passing the
 * Koa context (for the client address and the response headers), a limit name
 * and what else the limit counts by:
 *
 *   await limits.consume(ctx, 'emailSend', { email });        // before sending a magic link or an email code
 *   await limits.consume(ctx, 'tokenMint', { clientId });     // Management API minting
 *   const result = await limits.attempt(ctx, 'verification', {}, () => signIn.withEmailCode(…));
 *   const result = await limits.countFailures(ctx, 'verification', {}, () => signIn.withOneTimeToken(…));
 *   await limits.check(ctx, 'password', { email });           // refuse early without counting
 *   await limits.reward(ctx, 'password', { email });          // give one point back
 *   await limits.reset(ctx, 'password', { email });           // forget the counters (e.g. after a success)
 *
 * | limit          | counted by (default)                                     | env                                 |
 * |----------------|----------------------------------------------------------|-------------------------------------|
 * | `emailSend`    | email (10/1h) and client address (50/1h)                 | RATE_LIMIT_EMAIL_SEND_PER_EMAIL, …_PER_IP |
 * | `verification` | client address (30/10m)                                  | RATE_LIMIT_VERIFICATION_PER_IP      |
 * | `password`     | client address + email (10/15m)                          | RATE_LIMIT_PASSWORD_PER_IP_EMAIL    |
 * | `tokenMint`    | Management API client id (600/1m), never bans            | RATE_LIMIT_TOKEN_MINT_PER_CLIENT    |
 *
 * - `consume` takes a point from every counter of the limit and sets
 *   `X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds) for the
 *   counter closest to refusing. Past the limit it throws
 *   `AppError('RATE_LIMITED', …, { retryAfter })`: the error handler answers
 *   429 `{code: "RATE_LIMITED", message, retryAfter}` with `Retry-After`
 *   (JSON under /api, an error page for browsers). Call it before the work,
 *   after input validation and origin checks.
 * - `check` only reads: same headers, throws when no point is left.
 * - `reward` gives points back; `reset` clears the counters.
 * - `attempt` = consume, run, and give the point back when `run` succeeds:
 *   only failures count (code verification, passwords). When `run`
 *   throws, the point stays taken and the error goes on.
 * - `countFailures` = check, run, and take a point only when `run` throws:
 *   the same count with one read per success instead of two writes, for
 *   secrets nobody can guess (256-bit one-time tokens and magic-link tokens),
 *   where parallel attempts slipping past the read gain nothing.
 *
 * Refusals of `emailSend`, `verification` and `password` also count per
 * client address: AUTO_BAN_AFTER of them (5/1h) ban the address for
 * AUTO_BAN_SECONDS (24 h). The client address honours TRUST_PROXY
 * (src/http/client-ip.ts); IPv6 addresses are counted by their /64.
 *
 * Counters live in PostgreSQL (`rate_limits`, shared by all instances) when
 * Sesame runs on PostgreSQL, and in memory on the embedded database. On
 * PostgreSQL, reads (`check`, and so `countFailures`) that arrive while
 * another is in flight share the next statement (group commit).
 * `tokenMint` is leased (./lease.ts): each instance takes
 * max(1, min(10, ⌊points/100⌋)) points of the store at once (6 of the default
 * 600/1m) and hands them out from memory, so a mint costs a sixth of a
 * counter write; never more than the limit pass, but other instances' unused
 * leases count as used. The security limits count every request. A new
 * limit is a name in `LimitName`/`LimitSubject` and its counters in
 * `limitRules` (./rules.ts) plus its env variable in src/config.ts.
 */
import type { Database } from '../db/index.ts';
import type { RateLimitStore } from './service.ts';

export { createRateLimits, type RateLimits, type RateLimitStore } from './service.ts';
export { limitRules, ipBucket, counterKey, verdict, type LimitName, type LimitSubject } from './rules.ts';
export { leaseSize, grantedPoints, leaseState } from './lease.ts';

/** PostgreSQL keeps the counters when the database is PostgreSQL; the embedded one keeps them in memory. */
export function rateLimitStore(db: Database): RateLimitStore {
  return (db.client as { config: { client?: unknown } }).config.client === 'pg' ? { kind: 'postgres', db } : { kind: 'memory' };
}
