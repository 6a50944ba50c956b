import type Router from '@koa/router';
import { createRouter } from './routing.ts';
import { pendingMigrations, type Database } from '../db/index.ts';
import { AppError } from '../errors.ts';

export type HealthOptions = {
  db: Database;
  /** How long the database may take to answer `SELECT 1` (default 1 s). */
  databaseTimeoutMs?: number;
  /** How long a migration check is reused, so frequent probes stay cheap (default 5 s). */
  migrationsCacheMs?: number;
};

type Checks = { database: 'ok' | 'unreachable'; migrations: 'ok' | 'pending' | 'unknown' };

/**
 * Probes for orchestrators, without authentication:
 * - `GET /healthz`: the process is up (never touches the database).
 * - `GET /readyz`: the database answers and its schema is current; otherwise
 *   503 `NOT_READY` with what failed.
 */
export function createHealthRouter(options: HealthOptions): Router {
  const { db } = options;
  const databaseTimeoutMs = options.databaseTimeoutMs ?? 1000;
  const migrationsCacheMs = options.migrationsCacheMs ?? 5000;
  let migrations: { pending: Promise<number>; at: number } | undefined;

  async function databaseAnswers(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), databaseTimeoutMs);
    });
    const query = db.raw('select 1').then(
      () => true,
      () => false,
    );
    try {
      return await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Pending migrations, shared by concurrent probes and reused for a few seconds; a failed check is not kept. */
  function pendingCount(): Promise<number> {
    if (!migrations || Date.now() - migrations.at > migrationsCacheMs) {
      const pending = pendingMigrations(db);
      const entry = { pending, at: Date.now() };
      migrations = entry;
      pending.catch(() => {
        if (migrations === entry) migrations = undefined;
      });
    }
    return migrations.pending;
  }

  async function check(): Promise<{ checks: Checks; problem?: string }> {
    if (!(await databaseAnswers())) {
      return { checks: { database: 'unreachable', migrations: 'unknown' }, problem: 'The database does not answer.' };
    }
    let pending: number;
    try {
      pending = await pendingCount();
    } catch {
      return { checks: { database: 'ok', migrations: 'unknown' }, problem: 'The database migrations could not be checked.' };
    }
    if (pending > 0) {
      return {
        checks: { database: 'ok', migrations: 'pending' },
        problem: `${pending} database migration${pending === 1 ? ' is' : 's are'} pending.`,
      };
    }
    return { checks: { database: 'ok', migrations: 'ok' } };
  }

  const router = createRouter();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const { checks, problem } = await check();
    if (problem) {
      const error = new AppError('NOT_READY', problem, { checks });
      ctx.status = error.status;
      ctx.body = error.toBody();
      return;
    }
    ctx.body = { status: 'ok', checks };
  });
  return router;
}
