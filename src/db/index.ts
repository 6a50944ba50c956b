import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { lockDataDir } from './data-dir-lock.ts';
import knexFactory, { type Knex } from 'knex';
import type { PGlite } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrationSource } from '../../migrations/index.ts';
import { usePreparedStatements } from './statements.ts';
import type { Logger } from '../logger.ts';

export type Database = Knex;

// timestamptz and jsonb come back as Date and objects from both drivers; int8 counts as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));

export type DatabaseOptions = (
  | { kind: 'postgres'; url: string; poolMax?: number; /** Hot statements as named prepared statements (default true; see ./statements.ts). */ preparedStatements?: boolean }
  | { kind: 'embedded'; dataDir?: string; /** An open PGlite to use (tests load a migrated snapshot). */ pglite?: PGlite }
) & {
  /** Where knex's own warnings go (default: the console). */
  logger?: Logger;
};

/**
 * knex's warnings as JSON log lines (first line only: no stacks). A failed
 * connection attempt is logged at debug: the request that met it logs it already.
 */
function knexLog(logger: Logger): Knex.Config['log'] {
  const line = (message: unknown) => String(message).split('\n', 1)[0] ?? '';
  return {
    warn: (message: unknown) => {
      const level = /^(Acquire connection error|Connection Error)/.test(line(message)) ? 'debug' : 'warn';
      logger[level]({ source: 'knex' }, line(message));
    },
    error: (message: unknown) => logger.error({ source: 'knex' }, line(message)),
    deprecate: (method: string, alternative: string) => logger.warn({ source: 'knex' }, `${method} is deprecated, use ${alternative}`),
    debug: (message: unknown) => logger.debug({ source: 'knex' }, line(message)),
  };
}

/** The embedded PGlite behind `db` (knex-pglite keeps it on its client from the start); undefined on PostgreSQL. */
export function embeddedPglite(db: Database): PGlite | undefined {
  return (db.client as { pglite?: PGlite }).pglite;
}

/** Whether `db` is the embedded PGlite. */
export function isEmbedded(db: Database): boolean {
  return embeddedPglite(db) !== undefined;
}

/**
 * Opens the database: PostgreSQL when a URL is given, otherwise the embedded
 * PGlite (a single connection: keep transactions short).
 */
export function createDatabase(options: DatabaseOptions, onPoolError?: (error: Error) => void): Database {
  if (options.kind === 'postgres') {
    const db = knexFactory({
      client: 'pg',
      connection: options.url,
      ...(options.logger && { log: knexLog(options.logger) }),
      pool: {
        min: 0,
        max: options.poolMax ?? 10,
        afterCreate: (connection: pg.Client, done: (error: Error | null, connection: pg.Client) => void) => {
          // An idle connection dropped by a database restart must not crash the process.
          connection.on('error', (error) => onPoolError?.(error));
          done(null, connection);
        },
      },
    });
    usePreparedStatements(db, options.preparedStatements ?? true);
    return db;
  }
  let connection: { filename?: string } | (() => { pglite: PGlite }) = {};
  let release = () => {};
  if (options.pglite) {
    const pglite = options.pglite;
    connection = () => ({ pglite });
  } else if (options.dataDir) {
    // One process at a time: refuse a DATA_DIR another running Sesame (or CLI) has open.
    release = lockDataDir(options.dataDir);
    const filename = join(options.dataDir, 'pgdata');
    mkdirSync(filename, { recursive: true });
    connection = { filename };
  }
  const db = knexFactory({
    client: EmbeddedClient,
    dialect: 'postgres',
    connection,
    ...(options.logger && { log: knexLog(options.logger) }),
  } as unknown as Knex.Config);
  const destroy = db.destroy.bind(db);
  // knex defines destroy as read-only but configurable: redefine it to release the lock too.
  Object.defineProperty(db, 'destroy', {
    configurable: true,
    value: async () => {
      try {
        return await destroy();
      } finally {
        release();
      }
    },
  });
  return db;
}

type ProcessResponse = (obj: { method?: string; output?: unknown; returning?: unknown; response: { affectedRows?: number } }, runner: unknown) => unknown;

/**
 * knex-pglite answers a plain `delete()` with the raw result object instead of
 * the number of deleted rows (it labels the command `DEL`, which knex's
 * PostgreSQL dialect does not recognise). Answer the count, as with pg.
 */
class EmbeddedClient extends (ClientPgLite as unknown as new (config: Knex.Config) => { processResponse(...args: Parameters<ProcessResponse>): unknown }) {
  // A prototype method, not a field: knex builds transaction clients from the prototype.
  override processResponse(...[obj, runner]: Parameters<ProcessResponse>): unknown {
    if (obj.method === 'del' && !obj.output && !obj.returning) return obj.response.affectedRows ?? 0;
    return super.processResponse(obj, runner);
  }
}

const migrationConfig: Knex.MigratorConfig = { migrationSource, tableName: 'knex_migrations' };

export async function migrateToLatest(db: Database): Promise<void> {
  await db.migrate.latest(migrationConfig);
}

export async function rollbackAll(db: Database): Promise<void> {
  await db.migrate.rollback(migrationConfig, true);
}

/** Undoes the newest applied migration only. */
export async function rollbackLast(db: Database): Promise<void> {
  await db.migrate.down(migrationConfig);
}

export async function pendingMigrations(db: Database): Promise<number> {
  const [, pending] = (await db.migrate.list(migrationConfig)) as [unknown[], unknown[]];
  return pending.length;
}

/** Socket errors and PostgreSQL states that mean "cannot reach the database now", not "bad query". */
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '53300', // too_many_connections
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up or shutting down)
]);
const unavailableMessages =
  /Connection terminated|Connection ended unexpectedly|Client has encountered a connection error|Timeout acquiring a connection/i;

/**
 * Whether an error means the database cannot be reached right now (down,
 * restarting, pool exhausted): the request may be retried later. Looks
 * through `AggregateError`s (a host with several addresses) and causes.
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 3) return false;
  const { code, name, message, errors, cause } = error as Record<string, unknown>;
  if (typeof code === 'string' && (unavailableCodes.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  if (name === 'KnexTimeoutError') return true;
  if (typeof message === 'string' && unavailableMessages.test(message)) return true;
  if (Array.isArray(errors) && errors.some((inner) => isDatabaseUnavailable(inner, depth + 1))) return true;
  return isDatabaseUnavailable(cause, depth + 1);
}

export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/**
 * Migrates to the latest schema, waiting for a database that cannot be reached
 * yet (a PostgreSQL started after Sesame): retries with exponential backoff
 * (0.5 s doubling to 10 s) until `deadlineMs`, then gives up. Any other error
 * (wrong password, missing database, failed migration) is thrown at once.
 * The embedded database is in-process and never waits.
 */
export async function migrateWhenReachable(
  db: Database,
  options: { deadlineMs: number; onRetry: (error: unknown, delayMs: number, attempt: number) => void },
): Promise<void> {
  const giveUpAt = Date.now() + options.deadlineMs;
  let delayMs = 500;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await migrateToLatest(db);
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      const left = giveUpAt - Date.now();
      if (left <= 0) {
        throw new DatabaseUnreachableError(`the database was not reachable within ${Math.round(options.deadlineMs / 1000)} s`, {
          cause: error,
        });
      }
      const wait = Math.min(delayMs, left);
      options.onRetry(error, wait, attempt);
      await new Promise((resolve) => setTimeout(resolve, wait));
      delayMs = Math.min(delayMs * 2, 10_000);
    }
  }
}

/** Escapes LIKE wildcards so user input matches literally. */
export function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (char) => `\\${char}`);
}
