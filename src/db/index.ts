import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrationSource } from '../../migrations/index.ts';

export type Database = Knex;

// timestamptz and jsonb come back as Date and objects from both drivers; int8 counts as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));

export type DatabaseOptions =
  | { kind: 'postgres'; url: string; poolMax?: number }
  | { kind: 'embedded'; dataDir?: string };

/**
 * Opens the database: PostgreSQL when a URL is given, otherwise the embedded
 * PGlite (a single connection: keep transactions short).
 */
export function createDatabase(options: DatabaseOptions, onPoolError?: (error: Error) => void): Database {
  if (options.kind === 'postgres') {
    return knexFactory({
      client: 'pg',
      connection: options.url,
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
  }
  let connection: { filename?: string } = {};
  if (options.dataDir) {
    const filename = join(options.dataDir, 'pgdata');
    mkdirSync(filename, { recursive: true });
    connection = { filename };
  }
  return knexFactory({ client: EmbeddedClient, dialect: 'postgres', connection } as unknown as Knex.Config);
}

type ProcessResponse = (obj: { method?: string; output?: unknown; returning?: unknown; response: { affectedRows?: number } }, runner: unknown) => unknown;

/**
 * knex-pglite answers a plain `delete()` with the raw result object instead of
 * the number of deleted rows (it labels the command `DEL`, which knex's
 * PostgreSQL dialect does not recognise). Answer the count, as with pg.
 */
class EmbeddedClient extends (ClientPgLite as unknown as new (config: Knex.Config) => { processResponse: ProcessResponse }) {
  override processResponse: ProcessResponse = (obj, runner) => {
    if (obj.method === 'del' && !obj.output && !obj.returning) return obj.response.affectedRows ?? 0;
    return super.processResponse(obj, runner);
  };
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

/** Escapes LIKE wildcards so user input matches literally. */
export function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (char) => `\\${char}`);
}
