import { randomBytes } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBanRepository, createBanService } from '../../src/bans/index.ts';
import type { Rate } from '../../src/config.ts';
import type { Database } from '../../src/db/index.ts';
import { AppError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createRateLimits, rateLimitStore, type RateLimits } from '../../src/ratelimit/index.ts';
import { databaseKind, openOwnDatabase, openTestDatabase, usingPostgres } from '../helpers/db.ts';

const logger = createLogger('silent');
const koa = new Koa();

/** The rate-limit service of one Sesame instance on `db`, with only the mint quota switched on, at `rate`. */
function instance(db: Database, rate: Rate): RateLimits {
  const bans = createBanService({ repository: createBanRepository(db), clock: () => new Date(), cacheMs: 0, logger });
  const limits = { emailSendPerEmail: null, emailSendPerIp: null, verificationPerIp: null, passwordPerIpEmail: null, tokenMintPerClient: rate };
  return createRateLimits({ store: rateLimitStore(db), limits, autoBan: { after: null, seconds: 60 }, bans, logger });
}

/** A Koa context as a route has it (for the headers the service sets). */
function context(): Koa.Context {
  const req = new IncomingMessage(new Socket());
  return koa.createContext(req, new ServerResponse(req));
}

type Outcome = { allowed: boolean; remaining: number; reset: number; retryAfter?: number };

/** One mint's quota check by `clientId` on `service`: allowed or refused, with the headers it got. */
async function mint(service: RateLimits, clientId: string): Promise<Outcome> {
  const ctx = context();
  const headers = () => ({ remaining: Number(ctx.response.get('X-RateLimit-Remaining')), reset: Number(ctx.response.get('X-RateLimit-Reset')) });
  try {
    await service.consume(ctx, 'tokenMint', { clientId });
    return { allowed: true, ...headers() };
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== 'RATE_LIMITED') throw error;
    return { allowed: false, ...headers(), retryAfter: Number(error.details?.retryAfter) };
  }
}

/** Points the shared store counts for the client in its current window (a read: this instance's lease is not looked at). */
async function countedInStore(service: RateLimits, clientId: string, points: number): Promise<number> {
  const ctx = context();
  try {
    await service.check(ctx, 'tokenMint', { clientId });
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
  }
  return points - Number(ctx.response.get('X-RateLimit-Remaining'));
}

const newClient = () => `client-${randomBytes(6).toString('hex')}`;
const allowedOf = (outcomes: Outcome[]) => outcomes.filter((outcome) => outcome.allowed).length;
const perMinute = (points: number): Rate => ({ points, seconds: 60 });

describe(`leased mint quotas (${databaseKind}: counters in ${usingPostgres ? 'PostgreSQL' : 'memory'})`, () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('takes six points of the default 600/min in one store write and hands them out one per mint, counting down exactly', async () => {
    const service = instance(db, perMinute(600));
    const client = newClient();
    const seen = [];
    for (let n = 1; n <= 6; n += 1) seen.push((await mint(service, client)).remaining);
    expect(seen).toEqual([599, 598, 597, 596, 595, 594]);
    expect(await countedInStore(service, client, 600)).toBe(6);
    expect(await mint(service, client)).toMatchObject({ allowed: true, remaining: 593 });
    expect(await countedInStore(service, client, 600)).toBe(12);
  });

  it('sends one reservation for concurrent mints that find the lease empty, and the next one only when they used it up', async () => {
    const service = instance(db, perMinute(600));
    const client = newClient();
    const first = await Promise.all(Array.from({ length: 6 }, () => mint(service, client)));
    expect(allowedOf(first)).toBe(6);
    // Six concurrent reservations would have taken 36.
    expect(await countedInStore(service, client, 600)).toBe(6);

    // Thirteen more at once: three leases of six, one after the other; five points stay in this instance's lease.
    const second = await Promise.all(Array.from({ length: 13 }, () => mint(service, client)));
    expect(allowedOf(second)).toBe(13);
    expect(await countedInStore(service, client, 600)).toBe(24);
    expect(second.map((outcome) => outcome.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 13 }, (_, n) => 581 + n));
  });

  it('lets exactly the limit through 250 concurrent mints on one instance, then refuses with the window’s wait', async () => {
    const service = instance(db, perMinute(200));
    const client = newClient();
    const outcomes = await Promise.all(Array.from({ length: 250 }, () => mint(service, client)));
    expect(allowedOf(outcomes)).toBe(200);
    const refused = outcomes.filter((outcome) => !outcome.allowed);
    expect(refused.every((outcome) => outcome.remaining === 0 && outcome.retryAfter! > 55 && outcome.retryAfter! <= 60)).toBe(true);
    expect(await mint(service, client)).toMatchObject({ allowed: false, remaining: 0 });
  });

  it('ends a lease with the store’s window: the next window starts with a reservation of its own', async () => {
    const service = instance(db, { points: 200, seconds: 2 });
    const client = newClient();
    const before = await mint(service, client);
    expect(before).toMatchObject({ allowed: true, remaining: 199 });
    expect(await countedInStore(service, client, 200)).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    // The lease still holds a point, but its window is over: a point handed out now would be counted nowhere.
    expect(await countedInStore(service, client, 200)).toBe(0);
    const after = await mint(service, client);
    expect(after).toMatchObject({ allowed: true, remaining: 199 });
    expect(await countedInStore(service, client, 200)).toBe(2);
    expect(after.reset).toBeGreaterThan(before.reset);
  });

  it('counts every mint in the store below 200 a window (a lease of one is a plain consume)', async () => {
    const service = instance(db, perMinute(150));
    const client = newClient();
    for (let n = 1; n <= 3; n += 1) {
      expect(await mint(service, client)).toMatchObject({ allowed: true, remaining: 150 - n });
      expect(await countedInStore(service, client, 150)).toBe(n);
    }
    const tiny = instance(db, perMinute(3));
    const other = newClient();
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => mint(tiny, other)));
    expect(outcomes.map((outcome) => [outcome.allowed, outcome.remaining]).sort()).toEqual([[false, 0], [false, 0], [true, 0], [true, 1], [true, 2]]);
  });
});

describe.runIf(usingPostgres)('leased mint quotas shared by instances (PostgreSQL)', () => {
  let own: { db: Database; close: () => Promise<void> };
  beforeAll(async () => {
    own = await openOwnDatabase();
  });
  afterAll(async () => {
    await own?.close();
  });

  it('never lets more than the limit through two instances, and at most a lease less than one point short of it', async () => {
    const rate = perMinute(200); // leases of 2
    const [a, b] = [instance(own.db, rate), instance(own.db, rate)];
    const client = newClient();
    const outcomes = await Promise.all(Array.from({ length: 250 }, (_, n) => mint(n % 2 === 0 ? a : b, client)));
    const allowed = allowedOf(outcomes);
    expect(allowed).toBeLessThanOrEqual(200);
    expect(allowed).toBeGreaterThanOrEqual(199);
    // One short of the limit, the last point may still sit in an instance's lease: it alone may go through later,
    // and after it every mint is refused.
    const later = allowedOf(await Promise.all([mint(a, client), mint(b, client)]));
    expect(later).toBeLessThanOrEqual(200 - allowed);
    expect((await Promise.all([mint(a, client), mint(b, client)])).map((outcome) => outcome.allowed)).toEqual([false, false]);
  });

  it('shows other instances’ unused leases as used in X-RateLimit-Remaining', async () => {
    const rate = perMinute(600);
    const [a, b] = [instance(own.db, rate), instance(own.db, rate)];
    const client = newClient();
    expect(await mint(a, client)).toMatchObject({ remaining: 599 });
    // A holds five points: B sees 600 − 12 counted, plus the five of its own lease.
    expect(await mint(b, client)).toMatchObject({ remaining: 593 });
  });

  it('fails every waiting mint when the store fails, and asks the store again afterwards', async () => {
    const service = instance(own.db, perMinute(600));
    const client = newClient();
    await own.db.raw('ALTER TABLE rate_limits RENAME TO rate_limits_away');
    const failures = await Promise.allSettled(Array.from({ length: 4 }, () => mint(service, client)));
    await own.db.raw('ALTER TABLE rate_limits_away RENAME TO rate_limits');
    expect(failures.every((failure) => failure.status === 'rejected' && /rate_limits/.test(String(failure.reason)))).toBe(true);
    expect(await mint(service, client)).toMatchObject({ allowed: true, remaining: 599 });
    expect(await countedInStore(service, client, 600)).toBe(6);
  });
});
