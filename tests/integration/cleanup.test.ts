import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createCleanupJob } from '../../src/cleanup/index.ts';
import { runCli } from '../../src/cli/index.ts';
import { loadConfig } from '../../src/config.ts';
import { createCore } from '../../src/core.ts';
import { createDatabase, migrateToLatest, type Database } from '../../src/db/index.ts';
import { createMetrics } from '../../src/metrics.ts';
import { databaseKind, openTestDatabase, uniqueEmail, usingPostgres, withScratchDatabase } from '../helpers/db.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Every test gets a database of its own, because the job deletes whatever is
 * due in the whole database. On PostgreSQL a scratch database (in the shared
 * one, the servers of other test files run the job too and would hold its
 * lock at random moments); on PGlite this file's private database, emptied
 * after each test (a fresh PGlite per test costs seconds).
 */
let embedded: Promise<Database> | undefined;
afterAll(async () => {
  await (await embedded)?.destroy();
});

async function withDatabase(run: (db: Database) => Promise<void>): Promise<void> {
  if (usingPostgres) {
    return withScratchDatabase(async (db) => {
      await migrateToLatest(db);
      await run(db);
    });
  }
  const db = await (embedded ??= openTestDatabase());
  try {
    await run(db);
  } finally {
    await db.raw('TRUNCATE oidc_model_instances, one_time_tokens, organization_invitations, organizations CASCADE');
  }
}

/** A clock the test moves forward, starting now. */
function movableClock() {
  const startedAt = Date.now();
  let offsetMs = 0;
  return {
    now: () => new Date(startedAt + offsetMs),
    advance: (ms: number) => {
      offsetMs += ms;
    },
  };
}

/** Log lines as objects, to assert on what the job logs. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug', base: undefined }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

const silent = pino({ level: 'silent' });

function job(db: Database, clock: () => Date, options: Partial<Parameters<typeof createCleanupJob>[0]> = {}) {
  return createCleanupJob({ db, logger: silent, clock, intervalMs: 0, retention: { auditDays: 30 }, ...options });
}

/** The domain services on `db`, as the server builds them, with the test's clock. */
function services(db: Database, clock: () => Date) {
  const config = loadConfig({ SESAME_SECRET: randomBytes(32).toString('base64url'), LOG_LEVEL: 'silent' });
  return createCore({ config, db, logger: silent, clock });
}

async function insertProviderRow(db: Database, expiresAt: Date | null, id = randomBytes(6).toString('hex')) {
  await db('oidc_model_instances').insert({ model_name: 'Session', id, payload: { kind: 'Session' }, expires_at: expiresAt });
  return id;
}

async function insertExpiredTokens(db: Database, count: number, expiredAt: Date) {
  await db('one_time_tokens').insert(
    Array.from({ length: count }, () => ({
      id: randomBytes(8).toString('hex'),
      email: uniqueEmail('batch'),
      token_hash: randomBytes(16).toString('hex'),
      expires_at: expiredAt,
      created_at: new Date(expiredAt.getTime() - 10 * MINUTE),
    })),
  );
}

const providerIds = async (db: Database) => (await db('oidc_model_instances').pluck('id')) as string[];
const tokenExists = async (db: Database, id: string) => Boolean(await db('one_time_tokens').where({ id }).first());

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe(`the cleanup job (${databaseKind})`, () => {
  it('purges provider state that expired, and keeps live rows, rows expired a moment ago and rows that never expire', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const now = clock.now().getTime();
      const expired = await insertProviderRow(db, new Date(now - HOUR));
      const justExpired = await insertProviderRow(db, new Date(now - MINUTE));
      const live = await insertProviderRow(db, new Date(now + HOUR));
      const forever = await insertProviderRow(db, null);

      const report = await job(db, clock.now).runOnce();

      expect(report).toMatchObject({ skipped: false, capped: false, deleted: { providerModels: 1, expiredTokens: 0, consumedTokens: 0, revokedTokens: 0 } });
      expect((await providerIds(db)).sort()).toEqual([justExpired, live, forever].sort());
      expect(await providerIds(db)).not.toContain(expired);

      // Past the five-minute margin for clock skew, the one that just expired goes too.
      clock.advance(5 * MINUTE);
      expect((await job(db, clock.now).runOnce()).deleted.providerModels).toBe(1);
      expect((await providerIds(db)).sort()).toEqual([live, forever].sort());
    });
  });

  it(usingPostgres ? 'leaves vacuuming to PostgreSQL\'s autovacuum' : 'vacuums every table after each run: the embedded database has no autovacuum', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const vacuums = async () =>
        Number(((await db.raw(`SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'oidc_model_instances'`)) as { rows: Array<{ vacuum_count: string }> }).rows[0]?.vacuum_count);
      const before = await vacuums();
      await insertProviderRow(db, new Date(clock.now().getTime() - HOUR));

      const report = await job(db, clock.now).runOnce();

      expect(report.deleted.providerModels).toBe(1);
      if (usingPostgres) {
        expect(report.vacuumed).toEqual([]);
        expect(await vacuums()).toBe(before);
      } else {
        expect(report.vacuumed).toEqual(expect.arrayContaining(['audit_logs', 'oidc_model_instances', 'one_time_tokens', 'rate_limits', 'users']));
        expect(await vacuums()).toBe(before + 1);
      }
    });
  });

  it('purges expired sign-in mails (any state) and second-factor attempt counts, and keeps live ones', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const now = clock.now().getTime();
      const code = (id: string, expiresAt: number, status = 'active') => ({
        id,
        interaction_uid: `i-${id}`,
        email: `${id}@example.test`,
        purpose: 'magic_link',
        token_hash: `hash-${id}`,
        code_hash: 'x',
        reference: 'ABC-DEF',
        status,
        expires_at: new Date(expiresAt),
        created_at: new Date(expiresAt - 10 * MINUTE),
      });
      await db('sign_in_codes').insert([code('old', now - HOUR), code('oldused', now - HOUR, 'consumed'), code('live', now + 5 * MINUTE)]);
      await db('interaction_attempts').insert([
        { interaction_uid: 'gone', kind: 'mfa', failures: 3, expires_at: new Date(now - MINUTE) },
        { interaction_uid: 'going-on', kind: 'mfa', failures: 1, expires_at: new Date(now + HOUR) },
      ]);
      const report = await job(db, clock.now).runOnce();
      expect(report.deleted).toMatchObject({ signInCodes: 2, interactionAttempts: 1 });
      expect((await db('sign_in_codes').select('id')).map((row: { id: string }) => row.id)).toEqual(['live']);
      expect((await db('interaction_attempts').select('interaction_uid')).map((row: { interaction_uid: string }) => row.interaction_uid)).toEqual(['going-on']);
      // This file's other tests count what the job deletes: leave nothing behind.
      await db('sign_in_codes').delete();
      await db('interaction_attempts').delete();
    });
  });

  it('keeps consumed and revoked tokens through the audit period and purges them after it', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const { tokens } = services(db, clock.now);
      const email = uniqueEmail('audit');
      const used = await tokens.mint({ email });
      await tokens.consume({ token: used.token, email });
      const revoked = await tokens.mint({ email: uniqueEmail('audit') });
      await tokens.revoke(revoked.id);

      expect((await job(db, clock.now).runOnce()).deleted).toMatchObject({ consumedTokens: 0, revokedTokens: 0 });
      clock.advance(29 * DAY);
      expect((await job(db, clock.now).runOnce()).deleted).toMatchObject({ consumedTokens: 0, revokedTokens: 0 });
      expect((await tokens.list({ email, status: 'consumed' }, { page: 1, pageSize: 10 })).total).toBe(1);

      clock.advance(DAY + MINUTE);
      // A longer audit period (AUDIT_RETENTION_DAYS=90) keeps them still.
      expect((await job(db, clock.now, { retention: { auditDays: 90 } }).runOnce()).deleted).toMatchObject({ consumedTokens: 0, revokedTokens: 0 });
      const report = await job(db, clock.now).runOnce();
      expect(report.deleted).toMatchObject({ consumedTokens: 1, revokedTokens: 1 });
      expect(await tokenExists(db, used.id)).toBe(false);
      expect(await tokenExists(db, revoked.id)).toBe(false);
    });
  });

  it('never touches an active token before it expires, and lists an expired one as expired for a day before purging it', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const { tokens } = services(db, clock.now);
      const longEmail = uniqueEmail('long');
      const long = await tokens.mint({ email: longEmail, expiresIn: 7 * 24 * 3600 });
      const short = await tokens.mint({ email: uniqueEmail('short'), expiresIn: 600 });

      clock.advance(601_000);
      expect((await job(db, clock.now).runOnce()).deleted.expiredTokens).toBe(0);
      expect((await tokens.get(short.id))?.status).toBe('active');
      expect((await tokens.list({ status: 'expired' }, { page: 1, pageSize: 10 })).items.map((token) => token.id)).toEqual([short.id]);

      clock.advance(DAY);
      expect((await job(db, clock.now).runOnce()).deleted.expiredTokens).toBe(1);
      expect(await tokenExists(db, short.id)).toBe(false);

      // Six days on, the long-lived link still signs in.
      clock.advance(5 * DAY);
      expect((await job(db, clock.now).runOnce()).deleted.expiredTokens).toBe(0);
      expect((await tokens.consume({ token: long.token, email: longEmail })).status).toBe('consumed');
    });
  });

  it('leaves the record of an invitation whose token was purged, which still lists as Expired', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const { organizations, invitations } = services(db, clock.now);
      const organizationId = `org-${randomBytes(4).toString('hex')}`;
      await organizations.insert({ id: organizationId, name: 'Acme', description: null, customData: {} });
      const { invitation } = await invitations.create({ email: uniqueEmail('invitee'), organizationId, landingUri: 'https://app.example.com/invite' });
      expect(invitation.oneTimeTokenId).toBeTruthy();

      // The invitation's week, then the day an expired token stays listed.
      clock.advance(8 * DAY + MINUTE);
      expect((await job(db, clock.now).runOnce()).deleted.expiredTokens).toBe(1);

      expect(await tokenExists(db, invitation.oneTimeTokenId!)).toBe(false);
      const kept = await invitations.mustExist(invitation.id);
      expect(kept).toMatchObject({ id: invitation.id, status: 'Pending', oneTimeTokenId: null });
      expect(invitations.status(kept)).toBe('Expired');
      const listed = await invitations.list({ organizationId, status: 'Expired' }, { page: 1, pageSize: 10 });
      expect(listed.items.map((item) => item.id)).toEqual([invitation.id]);
      expect((await invitations.list({ organizationId, status: 'Pending' }, { page: 1, pageSize: 10 })).total).toBe(0);
    });
  });

  it('deletes in batches until nothing is due, and stops at the per-run cap, leaving the rest for the next run', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const longAgo = new Date(clock.now().getTime() - 2 * DAY);
      for (let i = 0; i < 25; i += 1) await insertProviderRow(db, longAgo);
      await insertExpiredTokens(db, 12, longAgo);
      const small = job(db, clock.now, { batchSize: 10, maxRowsPerRun: 30 });

      const first = await small.runOnce();
      expect(first).toMatchObject({ capped: true, deleted: { providerModels: 25, expiredTokens: 5 } });
      const second = await small.runOnce();
      expect(second).toMatchObject({ capped: false, deleted: { providerModels: 0, expiredTokens: 7 } });
      expect(await providerIds(db)).toEqual([]);
      expect(await db('one_time_tokens').count({ count: '*' })).toEqual([{ count: 0 }]);
    });
  });

  it.runIf(usingPostgres)('lets one instance at a time run it: a run while another holds the lock reports skipped', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const expired = await insertProviderRow(db, new Date(clock.now().getTime() - HOUR));
      // Hold the first run inside its transaction: it purges provider state, then waits for this table lock.
      const blocker = await db.transaction();
      try {
        await blocker.raw('LOCK TABLE one_time_tokens IN ACCESS EXCLUSIVE MODE');
        const first = job(db, clock.now).runOnce();
        await waitFor(async () => {
          const { rows } = await db.raw(`SELECT count(*)::int AS waiting FROM pg_locks WHERE relation = 'one_time_tokens'::regclass AND NOT granted`);
          return rows[0].waiting > 0;
        }, 'the first run to wait inside its transaction');

        const second = await job(db, clock.now).runOnce();
        expect(second).toMatchObject({ skipped: true, deleted: { providerModels: 0, expiredTokens: 0, consumedTokens: 0, revokedTokens: 0 } });

        await blocker.commit();
        expect(await first).toMatchObject({ skipped: false, deleted: { providerModels: 1 } });
      } finally {
        if (!blocker.isCompleted()) await blocker.rollback();
      }
      expect(await providerIds(db)).not.toContain(expired);
      // The lock ends with the run's transaction: the next run goes ahead.
      expect((await job(db, clock.now).runOnce()).skipped).toBe(false);
    });
  });

  it.runIf(!usingPostgres)('takes turns on the embedded database when runs start together, deleting each row once', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      for (let i = 0; i < 12; i += 1) await insertProviderRow(db, new Date(clock.now().getTime() - HOUR));
      const reports = await Promise.all([job(db, clock.now, { batchSize: 5 }).runOnce(), job(db, clock.now, { batchSize: 5 }).runOnce()]);
      expect(reports.map((report) => report.deleted.providerModels).sort()).toEqual([0, 12]);
      expect(await providerIds(db)).toEqual([]);
    });
  });

  it('runs by itself once started, logs one info line with the counts, counts them in metrics, and stops', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const { logger, lines } = capturingLogger();
      const metrics = createMetrics({ db });
      await insertProviderRow(db, new Date(clock.now().getTime() - HOUR));
      const cleanup = createCleanupJob({ db, logger, clock: clock.now, intervalMs: 20, initialDelayMs: 0, retention: { auditDays: 30 }, metrics });

      cleanup.start();
      await waitFor(async () => (await providerIds(db)).length === 0, 'the job to purge the expired row');
      await waitFor(async () => lines.filter((line) => line.job === 'cleanup').length >= 2, 'a second run');
      await cleanup.stop();
      const seen = lines.length;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lines.length).toBe(seen);

      const runs = lines.filter((line) => line.job === 'cleanup');
      const info = runs.filter((line) => line.level === 30);
      expect(info).toEqual([expect.objectContaining({ msg: 'cleanup purged expired and old rows', total: 1, deleted: { providerModels: 1, expiredTokens: 0, consumedTokens: 0, revokedTokens: 0, expiredBans: 0, rateLimits: 0, auditLogs: 0, hookDeliveries: 0, signInCodes: 0, interactionAttempts: 0 } })]);
      expect(runs.filter((line) => line.level !== 30).every((line) => line.level === 20 && line.msg === 'cleanup found nothing to purge')).toBe(true);
      expect(await metrics.registry.getSingleMetricAsString('sesame_cleanup_deleted_total')).toContain('sesame_cleanup_deleted_total{kind="provider_models"} 1');
    });
  });

  it('does not run by itself when the interval is 0 (CLEANUP_INTERVAL_SECONDS=0)', async () => {
    await withDatabase(async (db) => {
      const clock = movableClock();
      const expired = await insertProviderRow(db, new Date(clock.now().getTime() - HOUR));
      const cleanup = job(db, clock.now, { intervalMs: 0, initialDelayMs: 0 });
      cleanup.start();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await cleanup.stop();
      expect(await providerIds(db)).toEqual([expired]);
    });
  });

  // The command opens the embedded database in its DATA_DIR either way: once is enough.
  it.runIf(!usingPostgres)('runs once from the CLI: sesame cleanup [--json] prints what it deleted', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sesame-cleanup-cli-'));
    const env = { DATA_DIR: dataDir, SESAME_SECRET: randomBytes(32).toString('base64url'), DATABASE_URL: '' };
    const io = { env, readStdin: async () => '' };
    try {
      const db = createDatabase({ kind: 'embedded', dataDir });
      try {
        await migrateToLatest(db);
        await insertProviderRow(db, new Date(Date.now() - HOUR));
      } finally {
        await db.destroy();
      }
      const json = await runCli(['cleanup', '--json'], io);
      expect(json.exitCode).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ skipped: false, capped: false, deleted: { providerModels: 1, expiredTokens: 0 } });
      const human = await runCli(['cleanup'], io);
      expect(human).toMatchObject({ exitCode: 0, stderr: '' });
      expect(human.stdout).toMatch(/^Provider state: +0$/m);
      expect(human.stdout).toContain('Nothing else is due.');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
