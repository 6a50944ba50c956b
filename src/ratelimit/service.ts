import type { Context } from 'koa';
import type { EventBus } from '../events/index.ts';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { BanService } from '../bans/index.ts';
import type { Rate, RateLimitConfig } from '../config.ts';
import type { Database } from '../db/index.ts';
import { run, runOnPool, statement } from '../db/statements.ts';
import { createGroupCommit } from '../lib/group-commit.ts';
import { AppError } from '../errors.ts';
import { clientIp } from '../http/client-ip.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { createLeasedCounter, leaseSize, type LeasedCounter } from './lease.ts';
import { counterKey, ipBucket, limitRules, verdict, type Counter, type CounterState, type LimitName, type LimitRule, type LimitSubject } from './rules.ts';

/** Where counters live: PostgreSQL (shared by every instance) or this process's memory (the embedded database). */
export type RateLimitStore = { kind: 'postgres'; db: Database } | { kind: 'memory' };

export type RateLimits = ReturnType<typeof createRateLimits>;

/**
 * rate-limiter-flexible's PostgreSQL store sends its own SQL with statement
 * names: hand it a "pool" that runs each query on a connection from knex's
 * pool, prepared or unnamed as the database is configured (PgBouncer in
 * transaction mode needs unnamed ones; see src/db/statements.ts).
 */
const knexPool = (db: Database) => ({ query: (query: { name?: string; text: string; values?: unknown[] }) => runOnPool(db, query) });

function createLimiter(store: RateLimitStore, keyPrefix: string, rate: Rate): RateLimiterAbstract {
  const options = { keyPrefix, points: rate.points, duration: rate.seconds };
  if (store.kind === 'memory') return new RateLimiterMemory(options);
  // The table comes from our migrations, and the cleanup job purges expired rows (no timers of the library's own).
  return new RateLimiterPostgres({
    ...options,
    storeClient: knexPool(store.db),
    storeType: 'pool',
    tableName: 'rate_limits',
    tableCreated: true,
    clearExpiredByTimeout: false,
  });
}

/** Several counters' rows, as the library's `get` reads one (`expire` in epoch milliseconds). */
const READ_MANY = statement(
  'rate_limits_read_many',
  'SELECT key, points, expire FROM rate_limits WHERE key = ANY(?::text[]) AND (expire > ?::bigint OR expire IS NULL)',
);

/** Counter reads per statement at most (group commit). */
const MAX_READ_BATCH = 100;

/**
 * Reads PostgreSQL counters by their stored key (`limiter.getKey(key)`):
 * the points taken and the milliseconds left in the window (-1: none), or
 * null for no counter in its window, as the library's `get` reads them.
 * Reads that arrive while another is in flight share the next statement
 * (src/lib/group-commit.ts): every one-time-token sign-in checks its
 * address's counter first, and under load concurrent checks go together.
 */
function groupedCounterReads(db: Database) {
  return createGroupCommit(async (keys: string[]): Promise<Array<{ consumed: number; msBeforeNext: number } | null>> => {
    const rows = await run<{ key: string; points: number; expire: string | number | null }>(db, READ_MANY, [keys, Date.now()]);
    const byKey = new Map(rows.map((row) => [row.key, row]));
    return keys.map((key) => {
      const row = byKey.get(key);
      return row ? { consumed: row.points, msBeforeNext: row.expire === null ? -1 : Math.max(Number(row.expire) - Date.now(), 0) } : null;
    });
  }, { maxBatch: MAX_READ_BATCH });
}

/** A refusal comes back as a rejected RateLimiterRes; any other rejection is a store failure and is thrown. */
async function settle(operation: Promise<RateLimiterRes>): Promise<RateLimiterRes> {
  try {
    return await operation;
  } catch (error) {
    if (error instanceof RateLimiterRes) return error;
    throw error;
  }
}

const stateOf = (counter: Counter, res: RateLimiterRes | null): CounterState => ({
  rate: counter.rate,
  consumed: res?.consumedPoints ?? 0,
  msBeforeNext: res && res.msBeforeNext >= 0 ? res.msBeforeNext : counter.rate.seconds * 1000,
});

/**
 * The rate limits (see ./index.ts for how to call them). Every refusal of a
 * limit that counts towards bans is counted per client address too; at
 * `autoBan.after` refusals within its window the address is banned for
 * `autoBan.seconds`.
 */
export function createRateLimits(deps: {
  store: RateLimitStore;
  limits: RateLimitConfig;
  autoBan: { after: Rate | null; seconds: number };
  bans: BanService;
  logger: Logger;
  /** `sesame_rate_limit_hits_total{limit}` counts refusals. */
  metrics?: Pick<Metrics, 'rateLimitHits'>;
  /** Refusals and automatic bans go to the audit log. */
  events?: EventBus;
}) {
  const { store, bans, logger, metrics } = deps;
  const rules = limitRules(deps.limits);
  const limiters = new Map<string, RateLimiterAbstract>();
  /** Leased counters whose lease is more than one point (with one, a lease would be a plain consume). */
  const leased = new Map<string, LeasedCounter>();
  for (const rule of Object.values(rules)) {
    for (const counter of rule.counters) {
      const limiter = createLimiter(store, counter.id, counter.rate);
      limiters.set(counter.id, limiter);
      const size = leaseSize(counter.rate.points);
      if (counter.leased && size > 1) {
        leased.set(counter.id, createLeasedCounter({ rate: counter.rate, size, reserve: async (key, points) => stateOf(counter, await settle(limiter.consume(key, points))) }));
      }
    }
  }
  const refusals = deps.autoBan.after && createLimiter(store, 'autoBan:ip', deps.autoBan.after);
  const readGrouped = store.kind === 'postgres' ? groupedCounterReads(store.db) : undefined;
  /** A counter as the library's `get` answers it; on PostgreSQL, read together with other requests' counters. */
  async function readCounter(limiter: RateLimiterAbstract, key: string): Promise<RateLimiterRes | null> {
    if (!readGrouped) return limiter.get(key);
    const read = await readGrouped(limiter.getKey(key));
    return read && new RateLimiterRes(Math.max(limiter.points - read.consumed, 0), read.msBeforeNext, read.consumed);
  }

  /** Runs one operation on each counter of the limit, with the counter's key for this request. */
  function eachCounter(ctx: Context, rule: LimitRule, subject: object, operation: (counter: Counter, key: string) => Promise<CounterState>) {
    const ip = clientIp(ctx);
    return Promise.all(rule.counters.map((counter) => operation(counter, counterKey(counter.by, { ip, ...subject }))));
  }

  /** A limiter operation on the counter's store, read as the counter's state. */
  const inStore =
    (operation: (limiter: RateLimiterAbstract, key: string) => Promise<RateLimiterRes | null>) =>
    async (counter: Counter, key: string): Promise<CounterState> =>
      stateOf(counter, await operation(limiters.get(counter.id)!, key));

  const consumeInStore = inStore((limiter, key) => settle(limiter.consume(key)));

  /** Takes a point: from this instance's lease of a leased counter, otherwise from the store. */
  const takePoint = (counter: Counter, key: string): Promise<CounterState> => leased.get(counter.id)?.take(key) ?? consumeInStore(counter, key);

  async function countRefusal(ip: string): Promise<void> {
    if (!refusals || ip === 'unknown') return;
    const key = ipBucket(ip);
    const counted = await settle(refusals.consume(key));
    if (counted.consumedPoints < refusals.points) return;
    const ban = await bans.autoBan(ip, `${counted.consumedPoints} rate-limit refusals within ${refusals.duration} s`, deps.autoBan.seconds);
    await refusals.delete(key);
    logger.warn({ ip, until: ban.expiresAt?.toISOString() ?? null }, 'IP banned automatically after repeated rate-limit refusals');
    await deps.events?.publish('Ip.Banned', { ip, reason: ban.reason, expiresAt: ban.expiresAt?.toISOString() ?? null, manual: false });
  }

  /** Sets the headers; when a counter refuses, counts the refusal towards a ban and throws RATE_LIMITED. */
  async function answer(ctx: Context, name: LimitName, subject: object, states: CounterState[], isOver: (state: CounterState) => boolean): Promise<void> {
    if (states.length === 0) return;
    const { headers, retryAfter } = verdict(states, Date.now(), isOver);
    ctx.set(headers);
    if (retryAfter === undefined) return;
    metrics?.rateLimitHits.inc({ limit: name });
    const email = (subject as { email?: string }).email;
    await deps.events?.publish('RateLimit.Hit', { limit: name, ip: clientIp(ctx), ...(email ? { email } : {}) });
    if (rules[name].countsTowardBans) await countRefusal(clientIp(ctx));
    throw new AppError('RATE_LIMITED', undefined, { retryAfter });
  }

  async function consume<N extends LimitName>(ctx: Context, name: N, subject: LimitSubject[N]): Promise<void> {
    const rule = rules[name];
    const states = await eachCounter(ctx, rule, subject, takePoint);
    await answer(ctx, name, subject, states, (state) => state.consumed > state.rate.points);
  }

  async function reward<N extends LimitName>(ctx: Context, name: N, subject: LimitSubject[N], points = 1): Promise<void> {
    const rule = rules[name];
    const states = await eachCounter(ctx, rule, subject, inStore((limiter, key) => limiter.reward(key, points)));
    await answer(ctx, name, subject, states, () => false);
  }

  async function check<N extends LimitName>(ctx: Context, name: N, subject: LimitSubject[N]): Promise<void> {
    const rule = rules[name];
    const states = await eachCounter(ctx, rule, subject, inStore(readCounter));
    await answer(ctx, name, subject, states, (state) => state.consumed >= state.rate.points);
  }

  return {
    consume,
    reward,

    check,

    async reset<N extends LimitName>(ctx: Context, name: N, subject: LimitSubject[N]): Promise<void> {
      const rule = rules[name];
      const states = await eachCounter(ctx, rule, subject, async (counter, key) => {
        leased.get(counter.id)?.forget(key);
        await limiters.get(counter.id)!.delete(key);
        return stateOf(counter, null);
      });
      await answer(ctx, name, subject, states, () => false);
    },

    async attempt<N extends LimitName, T>(ctx: Context, name: N, subject: LimitSubject[N], run: () => Promise<T>): Promise<T> {
      await consume(ctx, name, subject);
      const result = await run();
      await reward(ctx, name, subject);
      return result;
    },

    /**
     * Counts only failures: refused once the limit is used up (a read), then
     * a failed `run` takes a point. For secrets too long to guess (one-time
     * tokens: 256 bits), where parallel attempts slipping past the read gain
     * nothing; a success then costs one read instead of two writes. Guessable
     * secrets (codes, passwords) use `attempt`, which takes the point first.
     */
    async countFailures<N extends LimitName, T>(ctx: Context, name: N, subject: LimitSubject[N], run: () => Promise<T>): Promise<T> {
      await check(ctx, name, subject);
      try {
        return await run();
      } catch (error) {
        const rule = rules[name];
        const states = await eachCounter(ctx, rule, subject, takePoint);
        await answer(ctx, name, subject, states, () => false);
        throw error;
      }
    },
  };
}
