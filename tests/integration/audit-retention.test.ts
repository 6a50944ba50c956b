import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCleanupJob, retentionOf } from '../../src/cleanup/index.ts';
import { loadConfig } from '../../src/config.ts';
import { createCore } from '../../src/core.ts';
import { migrateToLatest, type Database } from '../../src/db/index.ts';
import { databaseKind, openScratchDatabase, openTestDatabase, uniqueEmail, usingPostgres } from '../helpers/db.ts';

const DAY = 24 * 3600 * 1000;
const silent = pino({ level: 'silent' });

/**
 * The cleanup deletes whatever is due in the whole database, so this file
 * has a database of its own: a scratch PostgreSQL database, or its private PGlite.
 */
describe(`audit log and webhook delivery retention (${databaseKind})`, () => {
  let db: Database;
  let drop: () => Promise<void>;
  const startedAt = Date.now();
  let offsetMs = 0;
  const clock = () => new Date(startedAt + offsetMs);

  beforeAll(async () => {
    if (usingPostgres) {
      ({ db, drop } = await openScratchDatabase());
      await migrateToLatest(db);
    } else {
      db = await openTestDatabase();
      drop = () => db.destroy();
    }
  });
  afterAll(async () => {
    await drop?.();
  });

  it('trims audit rows past AUDIT_LOG_RETENTION_DAYS and finished deliveries past HOOK_DELIVERY_RETENTION_DAYS, and keeps the rest', async () => {
    const config = loadConfig({
      SESAME_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'silent',
      AUDIT_LOG_RETENTION_DAYS: '10',
      HOOK_DELIVERY_RETENTION_DAYS: '5',
    });
    const core = createCore({ config, db, logger: silent, clock });
    const job = createCleanupJob({ db, logger: silent, clock, intervalMs: 0, retention: retentionOf(config) });
    const hook = await core.hooks.service.create({ name: 'retention', url: 'http://127.0.0.1:9/hook', events: ['User.Created'] });
    const at = (daysAgo: number) => new Date(clock().getTime() - daysAgo * DAY);

    // Audit rows written by the bus 12, 9 and 0 days "ago" (the clock moves, the rows keep their time).
    const emails = { old: uniqueEmail('old'), recent: uniqueEmail('recent'), today: uniqueEmail('today') };
    offsetMs = -12 * DAY;
    await core.events.publish('EmailCode.Sent', { email: emails.old });
    offsetMs = -9 * DAY;
    await core.events.publish('EmailCode.Sent', { email: emails.recent });
    offsetMs = 0;
    await core.events.publish('EmailCode.Sent', { email: emails.today });

    const delivery = (id: string, status: string, daysAgo: number) => ({
      id,
      hook_id: hook.id,
      event: 'User.Created',
      status,
      attempts: 1,
      created_at: at(daysAgo),
      next_attempt_at: status === 'pending' ? at(daysAgo) : null,
    });
    await db('hook_deliveries').insert([
      delivery('old-succeeded', 'succeeded', 6),
      delivery('old-failed', 'failed', 6),
      // Still being retried: kept whatever its age.
      delivery('old-pending', 'pending', 6),
      delivery('recent-failed', 'failed', 4),
    ]);

    const report = await job.runOnce();
    expect(report.skipped).toBe(false);
    expect(report.deleted).toMatchObject({ auditLogs: 1, hookDeliveries: 2 });

    const remaining = (await db('audit_logs').whereIn('email', Object.values(emails)).select('email')).map((row: { email: string }) => row.email);
    expect(remaining.sort()).toEqual([emails.recent, emails.today].sort());
    const deliveries = (await db('hook_deliveries').where({ hook_id: hook.id }).select('id')).map((row: { id: string }) => row.id);
    expect(deliveries.sort()).toEqual(['old-pending', 'recent-failed']);

    // A day later the 9-day-old row is past 10 days too.
    offsetMs = 1.5 * DAY;
    expect((await job.runOnce()).deleted).toMatchObject({ auditLogs: 1 });
    expect(await db('audit_logs').whereIn('email', Object.values(emails)).pluck('email')).toEqual([emails.today]);
  });

  it('keeps audit rows 90 days and deliveries 30 days unless configured', () => {
    const config = loadConfig({ SESAME_SECRET: randomBytes(32).toString('base64url') });
    expect(retentionOf(config)).toEqual({ auditDays: 30, auditLogDays: 90, hookDeliveryDays: 30 });
  });
});
