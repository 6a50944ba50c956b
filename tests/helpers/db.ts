import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { inject } from 'vitest';
import knexFactory from 'knex';
import pg from 'pg';
import { createDatabase, migrateToLatest, type Database } from '../../src/db/index.ts';

export const usingPostgres = Boolean(process.env.DATABASE_URL);
export const databaseKind = usingPostgres ? 'PostgreSQL' : 'embedded PGlite';

/**
 * A real, migrated database for one test file: the shared PostgreSQL database
 * when DATABASE_URL is set (tests keep to their own rows), otherwise a fresh
 * in-memory PGlite.
 */
export async function openTestDatabase(): Promise<Database> {
  const db = process.env.DATABASE_URL
    ? createDatabase({ kind: 'postgres', url: process.env.DATABASE_URL })
    : createDatabase({ kind: 'embedded', pglite: new PGlite({ loadDataDir: migratedSnapshot() }) });
  // A no-op on the migrated snapshot and the shared PostgreSQL database; it still checks both are current.
  await migrateToLatest(db);
  return db;
}

let snapshot: Blob | undefined;
/** The migrated embedded database dumped by the global setup, read once per worker. */
function migratedSnapshot(): Blob {
  snapshot ??= new Blob([readFileSync(inject('pgliteSnapshot'))]);
  return snapshot;
}

/**
 * An empty database of its own, for tests that change the schema
 * (migrations) or must not share rows or background workers with other test
 * files: a scratch PostgreSQL database created here and dropped by `drop()`,
 * or a fresh PGlite. `poolMax: 1` makes PostgreSQL run one statement at a
 * time in the order they were asked for, as the embedded database always does.
 */
export async function openScratchDatabase(options: { poolMax?: number } = {}): Promise<{ db: Database; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const db = createDatabase({ kind: 'embedded' });
    return { db, drop: () => db.destroy() };
  }
  const name = `sesame_scratch_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const scratchUrl = new URL(url);
  scratchUrl.pathname = `/${name}`;
  const db = createDatabase({ kind: 'postgres', url: scratchUrl.toString(), poolMax: options.poolMax });
  return {
    db,
    drop: async () => {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}

export async function withScratchDatabase(run: (db: Database) => Promise<void>): Promise<void> {
  const { db, drop } = await openScratchDatabase();
  try {
    await run(db);
  } finally {
    await drop();
  }
}

export const uniqueEmail = (label = 'user') => `${label}-${randomBytes(5).toString('hex')}@example.test`;

/**
 * A migrated database no other test file shares, for tests that change what
 * is global to an installation (the sign-in settings): on PostgreSQL a
 * database of its own, created here and dropped by `close`; on the embedded
 * database every file has its own anyway.
 */
export async function openOwnDatabase(): Promise<{ db: Database; close: () => Promise<void> }> {
  if (!process.env.DATABASE_URL) {
    const db = await openTestDatabase();
    return { db, close: () => db.destroy() };
  }
  const own = await openScratchDatabase();
  await migrateToLatest(own.db);
  return { db: own.db, close: own.drop };
}

/**
 * The statements sent to `db` while `body` runs, as their SQL text: on
 * PostgreSQL at the driver (the hot statements bypass knex,
 * src/db/statements.ts), on the embedded database through knex's query event.
 */
export async function statementsSent(db: Database, body: () => Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  const record = (sql: unknown) => void sent.push(typeof sql === 'string' ? sql : '');
  const onQuery = (query: { sql?: unknown }) => record(query.sql);
  const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = prototype.query;
  if (usingPostgres) {
    prototype.query = function recorded(this: unknown, ...args: unknown[]) {
      const [first] = args as [string | { text?: unknown } | undefined];
      record(typeof first === 'string' ? first : first?.text);
      return query.apply(this, args);
    };
  } else db.on('query', onQuery);
  try {
    await body();
  } finally {
    prototype.query = query;
    db.off('query', onQuery);
  }
  return sent;
}

/** How many statements were sent to `db` while `body` runs (see `statementsSent`). */
export async function countQueries(db: Database, body: () => Promise<unknown>): Promise<number> {
  return (await statementsSent(db, body)).length;
}
