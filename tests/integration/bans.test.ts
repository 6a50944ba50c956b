import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBanRepository, createBanService, type BanService } from '../../src/bans/index.ts';
import { createCleanupJob } from '../../src/cleanup/index.ts';
import type { Database } from '../../src/db/index.ts';
import { createLogger } from '../../src/logger.ts';
import { databaseKind, openOwnDatabase } from '../helpers/db.ts';

const HOUR = 3600;

describe(`IP bans on the database (${databaseKind})`, () => {
  let isolated: { db: Database; close: () => Promise<void> };
  let now: Date;
  const clock = () => now;
  const logger = createLogger('silent');
  const service = (cacheMs: number): BanService => createBanService({ repository: createBanRepository(isolated.db), clock, cacheMs, logger });

  beforeAll(async () => {
    isolated = await openOwnDatabase();
    now = new Date('2026-11-27T12:00:00Z');
  });
  afterAll(async () => {
    await isolated?.close();
  });

  it('never lets an automatic ban shorten a manual one, but lengthens a shorter one and replaces an expired one', async () => {
    const bans = service(0);
    await bans.ban({ ip: '192.0.2.1', reason: 'for good' });
    expect(await bans.autoBan('192.0.2.1', 'refusals', 24 * HOUR)).toMatchObject({ source: 'manual', expiresAt: null, reason: 'for good' });

    await bans.ban({ ip: '192.0.2.2', reason: 'a week', expiresIn: 7 * 24 * HOUR });
    expect(await bans.autoBan('192.0.2.2', 'refusals', 24 * HOUR)).toMatchObject({ source: 'manual', reason: 'a week' });

    await bans.ban({ ip: '192.0.2.3', reason: 'an hour', expiresIn: HOUR });
    const longer = await bans.autoBan('192.0.2.3', 'refusals', 24 * HOUR);
    expect(longer).toMatchObject({ source: 'automatic', expiresAt: new Date(now.getTime() + 24 * HOUR * 1000) });

    await bans.ban({ ip: '192.0.2.4', reason: 'a minute', expiresIn: 60 });
    now = new Date(now.getTime() + 120_000);
    expect(await bans.isBanned('192.0.2.4')).toBe(false);
    expect(await bans.autoBan('192.0.2.4', 'refusals', HOUR)).toMatchObject({ source: 'automatic', createdAt: now });
    expect(await bans.isBanned('192.0.2.4')).toBe(true);

    // A manual ban replaces whatever there was, shorter or not.
    expect(await bans.ban({ ip: '192.0.2.3', reason: 'forgiven soon', expiresIn: 60 })).toMatchObject({ source: 'manual', reason: 'forgiven soon' });
  });

  it('reads the ban list from memory between re-reads, and sees its own changes at once', async () => {
    const here = service(60_000);
    const elsewhere = service(60_000);
    expect(await here.isBanned('198.51.100.1')).toBe(false);
    await elsewhere.ban({ ip: '198.51.100.1', reason: 'on another instance' });
    // Another instance's ban is not seen before the copy is re-read (here: a minute) ...
    expect(await here.isBanned('198.51.100.1')).toBe(false);
    // ... this instance's own changes are.
    expect(await elsewhere.isBanned('198.51.100.1')).toBe(true);
    await here.ban({ ip: '198.51.100.2', reason: 'here' });
    expect(await here.isBanned('198.51.100.2')).toBe(true);
    expect(await here.unban('198.51.100.2')).toBe(true);
    expect(await here.isBanned('198.51.100.2')).toBe(false);
    expect(await here.unban('198.51.100.2')).toBe(false);
    // A fresh copy (as after cacheMs) has it.
    expect(await service(60_000).isBanned('198.51.100.1')).toBe(true);
  });

  it('answers at once from a fresh copy (isBannedNow), and not before the first read, nor when every check re-reads', async () => {
    const bans = service(60_000);
    await createBanService({ repository: createBanRepository(isolated.db), clock, cacheMs: 60_000, logger }).ban({ ip: '203.0.113.7', reason: 'now' });
    expect(bans.isBannedNow('203.0.113.7')).toBeUndefined();
    expect(await bans.isBanned('203.0.113.7')).toBe(true);
    expect(bans.isBannedNow('203.0.113.7')).toBe(true);
    expect(bans.isBannedNow('203.0.113.8')).toBe(false);
    await bans.unban('203.0.113.7');
    expect(bans.isBannedNow('203.0.113.7')).toBe(false);
    // An expired ban is not one, in memory either.
    await bans.ban({ ip: '203.0.113.9', reason: 'a minute', expiresIn: 60 });
    expect(bans.isBannedNow('203.0.113.9')).toBe(true);
    now = new Date(now.getTime() + 120_000);
    expect(bans.isBannedNow('203.0.113.9')).toBe(false);

    const always = service(0);
    await always.isBanned('203.0.113.8');
    expect(always.isBannedNow('203.0.113.8')).toBeUndefined();
  });

  it('lists active bans newest first with a total, and the cleanup deletes expired bans and rate-limit counters only', async () => {
    const bans = service(0);
    const page = await bans.list({ page: 1, pageSize: 2 });
    expect(page.items).toHaveLength(2);
    const all = await bans.list({ page: 1, pageSize: 100 });
    expect(page.total).toBe(all.items.length);
    const times = all.items.map((ban) => ban.createdAt.getTime());
    expect(times).toEqual([...times].sort((a, b) => b - a));

    await bans.ban({ ip: '203.0.113.9', reason: 'short', expiresIn: 60 });
    await isolated.db('rate_limits').insert([
      { key: 'test:expired', points: 3, expire: now.getTime() - 1 },
      { key: 'test:live', points: 3, expire: now.getTime() + 600_000 },
    ]);
    now = new Date(now.getTime() + 61_000);
    const job = createCleanupJob({ db: isolated.db, logger, clock, intervalMs: 0, retention: { auditDays: 30 } });
    const report = await job.runOnce();
    expect(report.deleted.expiredBans).toBeGreaterThanOrEqual(1);
    expect(report.deleted.rateLimits).toBe(1);
    expect(await isolated.db('banned_ips').where({ ip: '203.0.113.9' }).first()).toBeUndefined();
    expect(await isolated.db('banned_ips').where({ ip: '192.0.2.1' }).first()).toBeDefined();
    expect(await isolated.db('rate_limits').pluck('key')).toEqual(['test:live']);
  });
});
