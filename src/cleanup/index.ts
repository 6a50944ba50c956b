import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isDatabaseUnavailable, isEmbedded, type Database } from '../db/index.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { cleanupCutoffs, DEFAULT_RETENTION, type RetentionPolicy } from './cutoffs.ts';
import { purges, type CleanupKind } from './purge.ts';

export { cleanupCutoffs, DEFAULT_RETENTION, retentionOf, type Cutoffs, type RetentionPolicy } from './cutoffs.ts';
export type { CleanupKind } from './purge.ts';

export type CleanupReport = {
  /** Another instance was running the cleanup: this run did nothing. */
  skipped: boolean;
  deleted: Record<CleanupKind, number>;
  /** The run stopped at its row cap: what is left goes in the next run. */
  capped: boolean;
  /** Tables the run vacuumed: on the embedded database only, which has no autovacuum (see `vacuumEmbedded`). */
  vacuumed: string[];
  ms: number;
};

export type CleanupJob = ReturnType<typeof createCleanupJob>;

/**
 * The embedded database never vacuums by itself: PGlite runs PostgreSQL as one
 * single-user process, with no autovacuum launcher (and no table statistics to
 * tell which tables need it), so the space of deleted and updated rows was
 * never made reusable and the indexes kept every dead entry: the cost of a
 * lookup grew with the history. Each cleanup run on it therefore ends with a
 * `VACUUM` of every table, one at a time with a turn for requests in between
 * (pages without dead rows are skipped through the visibility map, so a quiet
 * table costs little; no ANALYZE, whose sampling of a large table would hold
 * the thread). PostgreSQL's own autovacuum does this for a server database.
 */
async function vacuumEmbedded(db: Database): Promise<string[]> {
  const { rows } = (await db.raw(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)) as { rows: Array<{ tablename: string }> };
  const tables = rows.map((row) => row.tablename);
  for (const table of tables) {
    await nextTurn();
    await db.raw('VACUUM ??', [table]);
  }
  return tables;
}

/**
 * One lock for the whole cleanup, taken per run with pg_try_advisory_xact_lock
 * (transaction-level, so it works through PgBouncer in transaction mode). A
 * 64-bit key outside the int4 range of the hashtext() keys that one-time
 * tokens lock per email, so no email's lock can be this one.
 */
const LOCK_KEY = 0x5e5a_c1ea_0001;

const METRIC_LABELS: Record<CleanupKind, string> = {
  providerModels: 'provider_models',
  expiredTokens: 'expired_tokens',
  consumedTokens: 'consumed_tokens',
  revokedTokens: 'revoked_tokens',
  expiredBans: 'expired_bans',
  signInCodes: 'sign_in_codes',
  interactionAttempts: 'interaction_attempts',
  rateLimits: 'rate_limits',
  auditLogs: 'audit_logs',
  hookDeliveries: 'hook_deliveries',
};

const nothingDeleted = (): Record<CleanupKind, number> => ({
  providerModels: 0,
  expiredTokens: 0,
  consumedTokens: 0,
  revokedTokens: 0,
  expiredBans: 0,
  signInCodes: 0,
  interactionAttempts: 0,
  rateLimits: 0,
  auditLogs: 0,
  hookDeliveries: 0,
});

/**
 * Data hygiene: purges expired provider state, one-time tokens, IP bans and
 * rate-limit counters, consumed or revoked tokens once the audit period is
 * over, and audit log and webhook delivery rows past their retention. Every instance
 * runs the job; the advisory lock lets one at a time do the work. A run is one
 * transaction of bounded batches (`batchSize` rows per DELETE, at most
 * `maxRowsPerRun` in all), so it never holds its locks long; a backlog is
 * worked off over several runs.
 */
export function createCleanupJob(deps: {
  db: Database;
  logger: Logger;
  clock: () => Date;
  /** Time between runs; 0 disables start() (runOnce still works). */
  intervalMs: number;
  /** The first run after start(), so a starting instance serves first (default 5 s). */
  initialDelayMs?: number;
  retention: Pick<RetentionPolicy, 'auditDays'> & Partial<RetentionPolicy>;
  metrics?: Pick<Metrics, 'cleanupDeleted'>;
  batchSize?: number;
  maxRowsPerRun?: number;
}) {
  const { db, logger, clock, intervalMs, metrics } = deps;
  const retention: RetentionPolicy = { ...DEFAULT_RETENTION, ...deps.retention };
  const batchSize = deps.batchSize ?? 5_000;
  const maxRowsPerRun = deps.maxRowsPerRun ?? 50_000;
  const log = logger.child({ job: 'cleanup' });

  async function runOnce(): Promise<CleanupReport> {
    const started = performance.now();
    const cutoffs = cleanupCutoffs(clock(), retention);
    const deleted = nothingDeleted();
    let capped = false;
    const ran = await db.transaction(async (trx) => {
      const { rows } = (await trx.raw('SELECT pg_try_advisory_xact_lock(?) AS locked', [LOCK_KEY])) as { rows: [{ locked: boolean }] };
      if (!rows[0].locked) return false;
      let budget = maxRowsPerRun;
      for (const purge of purges) {
        for (;;) {
          if (budget === 0) {
            capped = true;
            return true;
          }
          const limit = Math.min(batchSize, budget);
          // The embedded database runs each statement synchronously on this thread:
          // give timers, signals and sockets a turn between statements.
          await nextTurn();
          const count = await purge.deleteBatch(trx, cutoffs, limit);
          deleted[purge.kind] += count;
          budget -= count;
          if (count < limit) break;
        }
      }
      return true;
    });
    const vacuumed = ran && isEmbedded(db) ? await vacuumEmbedded(db) : [];
    const report: CleanupReport = { skipped: !ran, deleted, capped, vacuumed, ms: Math.round(performance.now() - started) };

    if (report.skipped) {
      log.debug('cleanup skipped: another instance is running it');
      return report;
    }
    for (const [kind, count] of Object.entries(deleted) as Array<[CleanupKind, number]>) {
      if (count > 0) metrics?.cleanupDeleted.inc({ kind: METRIC_LABELS[kind] }, count);
    }
    const total = Object.values(deleted).reduce((sum, count) => sum + count, 0);
    if (total > 0) log.info({ deleted, total, capped, vacuumed: vacuumed.length, ms: report.ms }, 'cleanup purged expired and old rows');
    else log.debug({ vacuumed: vacuumed.length, ms: report.ms }, 'cleanup found nothing to purge');
    return report;
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let active = false;

  function schedule(delayMs: number) {
    timer = setTimeout(() => {
      timer = undefined;
      running = runOnce()
        .then(
          () => undefined,
          (error: unknown) => {
            if (isDatabaseUnavailable(error)) log.warn({ reason: String((error as Error).message) }, 'cleanup: the database is unreachable; trying again next run');
            else log.error({ err: error }, 'cleanup failed; trying again next run');
          },
        )
        .finally(() => {
          running = undefined;
          if (active && !timer) schedule(intervalMs);
        });
    }, delayMs);
    // A pending cleanup never keeps the process alive.
    timer.unref();
  }

  return {
    runOnce,

    /** Runs the cleanup every `intervalMs`, the first time after `initialDelayMs`; runs never overlap. */
    start(): void {
      if (active || intervalMs <= 0) return;
      active = true;
      // Restarted while a run is still in flight: that run schedules the next.
      if (!running) schedule(deps.initialDelayMs ?? 5_000);
    },

    /** Stops scheduling; resolves once a run in flight has finished (close the database after). */
    async stop(): Promise<void> {
      active = false;
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
