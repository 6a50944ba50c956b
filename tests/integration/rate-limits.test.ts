import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBanRepository, createBanService } from '../../src/bans/index.ts';
import type { RateLimitConfig } from '../../src/config.ts';
import { createDatabase, type Database } from '../../src/db/index.ts';
import { AppError } from '../../src/errors.ts';
import { errorHandler } from '../../src/http/middleware.ts';
import { createLogger } from '../../src/logger.ts';
import { createRateLimits, rateLimitStore, type LimitName } from '../../src/ratelimit/index.ts';
import { countQueries, databaseKind, openOwnDatabase, uniqueEmail, usingPostgres } from '../helpers/db.ts';

const limits: RateLimitConfig = {
  emailSendPerEmail: { points: 10, seconds: 3600 },
  emailSendPerIp: { points: 15, seconds: 3600 },
  verificationPerIp: null,
  passwordPerIpEmail: { points: 3, seconds: 900 },
  tokenMintPerClient: null,
};

/**
 * The service on `db` behind a throwaway Koa app, as a route would call it:
 * each request names the limit, the email and what to do (`consume`, `check`,
 * `reward`, `reset`, or `attempt`/`countFailures` with a run that fails or
 * succeeds; `ran` counts the runs of `countFailures`).
 */
let ran = 0;

async function serve(db: Database): Promise<{ url: string; close: () => Promise<void> }> {
  const logger = createLogger('silent');
  const bans = createBanService({ repository: createBanRepository(db), clock: () => new Date(), cacheMs: 0, logger });
  const service = createRateLimits({ store: rateLimitStore(db), limits, autoBan: { after: null, seconds: 60 }, bans, logger });
  const app = new Koa();
  app.use(errorHandler(logger));
  const router = new Router();
  router.post('/:operation/:limit', async (ctx) => {
    const name = ctx.params.limit as LimitName;
    const subject = { email: String(ctx.query.email) } as never;
    switch (ctx.params.operation) {
      case 'consume':
        await service.consume(ctx, name, subject);
        break;
      case 'check':
        await service.check(ctx, name, subject);
        break;
      case 'reward':
        await service.reward(ctx, name, subject);
        break;
      case 'reset':
        await service.reset(ctx, name, subject);
        break;
      case 'countFailures':
        await service.countFailures(ctx, name, subject, async () => {
          ran += 1;
          if (ctx.query.fail) throw new AppError('TOKEN_INVALID');
        });
        break;
      default:
        await service.attempt(ctx, name, subject, async () => {
          if (ctx.query.fail) throw new AppError('TOKEN_INVALID');
        });
    }
    ctx.body = { ok: true };
  });
  app.use(router.routes());
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function request(url: string, operation: string, limit: LimitName, email: string, extra = '') {
  const response = await fetch(`${url}/${operation}/${limit}?email=${encodeURIComponent(email)}${extra}`, { method: 'POST', headers: { accept: 'application/json' } });
  return { status: response.status, remaining: response.headers.get('x-ratelimit-remaining'), limit: response.headers.get('x-ratelimit-limit'), body: await response.json() };
}

describe(`the rate-limit service (${databaseKind}: counters in ${usingPostgres ? 'PostgreSQL' : 'memory'})`, () => {
  let isolated: { db: Database; close: () => Promise<void> };
  let served: { url: string; close: () => Promise<void> };

  beforeAll(async () => {
    isolated = await openOwnDatabase();
    served = await serve(isolated.db);
  });
  afterAll(async () => {
    await served?.close();
    await isolated?.close();
  });

  const call = (operation: string, limit: LimitName, email: string, extra = '') => request(served.url, operation, limit, email, extra);


  it('sends sign-in mail ten times an hour per email and refuses the eleventh; other emails go until the address’s own limit', async () => {
    const email = uniqueEmail('send');
    for (let n = 1; n <= 10; n += 1) expect(await call('consume', 'emailSend', email)).toMatchObject({ status: 200, limit: '10', remaining: String(10 - n) });
    const refused = await call('consume', 'emailSend', email);
    expect(refused).toMatchObject({ status: 429, remaining: '0', body: { code: 'RATE_LIMITED', retryAfter: expect.any(Number) } });
    // The same address in another case is the same counter.
    expect((await call('consume', 'emailSend', email.toUpperCase())).status).toBe(429);
    // Another email goes, but the address's own counter (15/h) is now the closest to refusing.
    expect(await call('consume', 'emailSend', uniqueEmail('send'))).toMatchObject({ status: 200, limit: '15', remaining: '2' });

    // 13 of the address's 15 points are used (refused sends count too): two more emails go, then none, whatever the email.
    const statuses = [];
    for (let n = 0; n < 4; n += 1) statuses.push((await call('consume', 'emailSend', uniqueEmail('spray'))).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
  });

  it('checks without consuming, and refuses the check once no point is left', async () => {
    const email = uniqueEmail('pw');
    expect(await call('check', 'password', email)).toMatchObject({ status: 200, limit: '3', remaining: '3' });
    expect(await call('check', 'password', email)).toMatchObject({ status: 200, remaining: '3' });
    for (let n = 0; n < 3; n += 1) await call('consume', 'password', email);
    expect(await call('check', 'password', email)).toMatchObject({ status: 429, remaining: '0', body: { code: 'RATE_LIMITED' } });
  });

  it('gives points back with reward and forgets the counters with reset', async () => {
    const email = uniqueEmail('pw');
    await call('consume', 'password', email);
    expect((await call('consume', 'password', email)).remaining).toBe('1');
    expect((await call('reward', 'password', email)).remaining).toBe('2');
    await call('consume', 'password', email);
    await call('consume', 'password', email);
    expect((await call('consume', 'password', email)).status).toBe(429);
    expect(await call('reset', 'password', email)).toMatchObject({ status: 200, remaining: '3' });
    expect(await call('consume', 'password', email)).toMatchObject({ status: 200, remaining: '2' });
  });

  it('counts only failed attempts: a success gives its point back, a failure keeps it and passes its error on', async () => {
    const email = uniqueEmail('attempt');
    for (let n = 0; n < 5; n += 1) expect(await call('attempt', 'password', email)).toMatchObject({ status: 200, remaining: '3' });
    expect(await call('attempt', 'password', email, '&fail=1')).toMatchObject({ status: 410, remaining: '2', body: { code: 'TOKEN_INVALID' } });
    await call('attempt', 'password', email, '&fail=1');
    await call('attempt', 'password', email, '&fail=1');
    expect(await call('attempt', 'password', email)).toMatchObject({ status: 429 });
  });

  it('counts only failures with countFailures: a success takes no point; once used up it refuses before running', async () => {
    const email = uniqueEmail('failures');
    for (let n = 0; n < 5; n += 1) expect(await call('countFailures', 'password', email)).toMatchObject({ status: 200, remaining: '3' });
    expect(await call('countFailures', 'password', email, '&fail=1')).toMatchObject({ status: 410, remaining: '2', body: { code: 'TOKEN_INVALID' } });
    await call('countFailures', 'password', email, '&fail=1');
    expect(await call('countFailures', 'password', email, '&fail=1')).toMatchObject({ status: 410, remaining: '0' });
    const before = ran;
    expect(await call('countFailures', 'password', email)).toMatchObject({ status: 429 });
    expect(ran).toBe(before);
  });

  it('keeps each password counter per address and email', async () => {
    const [a, b] = [uniqueEmail('pw'), uniqueEmail('pw')];
    for (let n = 0; n < 3; n += 1) await call('consume', 'password', a);
    expect((await call('consume', 'password', a)).status).toBe(429);
    expect(await call('consume', 'password', b)).toMatchObject({ status: 200, remaining: '2' });
  });

  it.runIf(usingPostgres)('reads the counters of parallel checks together, each answered with its own', async () => {
    const logger = createLogger('silent');
    const bans = createBanService({ repository: createBanRepository(isolated.db), clock: () => new Date(), cacheMs: 0, logger });
    const service = createRateLimits({ store: rateLimitStore(isolated.db), limits, autoBan: { after: null, seconds: 60 }, bans, logger });
    const emails = Array.from({ length: 12 }, () => uniqueEmail('parallel'));
    for (const [index, email] of emails.entries()) for (let n = 0; n < index % 4; n += 1) await call('consume', 'password', email);
    // The checks of twelve requests made at the same moment, each with its own context (the route's client address is 127.0.0.1).
    const contexts = emails.map(() => ({ ip: '127.0.0.1', socket: {}, headers: {} as Record<string, string>, set(headers: Record<string, string>) { Object.assign(this.headers, headers); } }));
    let outcomes: Array<PromiseSettledResult<void>> = [];
    const statements = await countQueries(isolated.db, async () => {
      outcomes = await Promise.allSettled(emails.map((email, index) => service.check(contexts[index] as never, 'password', { email })));
    });
    expect(statements).toBe(1);
    for (const [index, outcome] of outcomes.entries()) {
      const left = 3 - (index % 4);
      expect(contexts[index]!.headers['X-RateLimit-Remaining']).toBe(String(left));
      if (left > 0) expect(outcome.status).toBe('fulfilled');
      else expect(outcome).toMatchObject({ status: 'rejected', reason: { code: 'RATE_LIMITED' } });
    }
  });

  it('sets no headers and never refuses for a limit that is switched off', async () => {
    for (let n = 0; n < 3; n += 1) expect(await call('consume', 'verification', 'x@example.test')).toMatchObject({ status: 200, limit: null });
  });
});

describe.runIf(usingPostgres)('the rate-limit service and prepared statements', () => {
  // One connection, so the session whose statements are listed is the one the limiter used.
  async function preparedAfterEveryOperation(preparedStatements: boolean): Promise<string[]> {
    const db = createDatabase({ kind: 'postgres', url: process.env.DATABASE_URL!, poolMax: 1, preparedStatements });
    const served = await serve(db);
    try {
      const email = uniqueEmail('bouncer');
      for (const operation of ['consume', 'check', 'reward', 'reset', 'attempt', 'countFailures']) {
        expect((await request(served.url, operation, 'password', email)).status).toBe(200);
      }
      const { rows } = (await db.raw('SELECT name FROM pg_prepared_statements')) as { rows: Array<{ name: string }> };
      return rows.map((row) => row.name).sort();
    } finally {
      await served.close();
      await db.destroy();
    }
  }

  it('prepares its statements once per connection by default', async () => {
    expect(await preparedAfterEveryOperation(true)).toEqual(['rate_limits:rlflx-delete', 'rate_limits:rlflx-upsert', 'sesame_rate_limits_read_many']);
  });

  it('prepares none with DATABASE_PREPARED_STATEMENTS=false (PgBouncer in transaction mode before 1.21)', async () => {
    expect(await preparedAfterEveryOperation(false)).toEqual([]);
  });
});
