import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { inject } from 'vitest';
import knexFactory from 'knex';
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
 * An empty database of its own, for tests that change the schema (migrations):
 * a scratch PostgreSQL database created and dropped around the test, or a
 * fresh PGlite.
 */
export async function withScratchDatabase(run: (db: Database) => Promise<void>): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const db = createDatabase({ kind: 'embedded' });
    try {
      await run(db);
    } finally {
      await db.destroy();
    }
    return;
  }
  const name = `sesame_scratch_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const scratchUrl = new URL(url);
  scratchUrl.pathname = `/${name}`;
  const db = createDatabase({ kind: 'postgres', url: scratchUrl.toString() });
  try {
    await run(db);
  } finally {
    await db.destroy();
    await admin.raw(`DROP DATABASE IF EXISTS ${name}`);
    await admin.destroy();
  }
}

export const uniqueEmail = (label = 'user') => `${label}-${randomBytes(5).toString('hex')}@example.test`;

/**
 * A migrated database no other test file writes to, kept open until `close`:
 * a fresh PGlite from the snapshot, or a scratch PostgreSQL database. For
 * tests whose state is per address or global (rate limits, IP bans), which
 * files sharing one PostgreSQL database from 127.0.0.1 would otherwise mix.
 */
export async function openIsolatedDatabase(): Promise<{ db: Database; close: () => Promise<void> }> {
  if (!usingPostgres) {
    const db = await openTestDatabase();
    return { db, close: () => db.destroy() };
  }
  let release!: () => void;
  let opened!: (db: Database) => void;
  const ready = new Promise<Database>((resolve) => {
    opened = resolve;
  });
  const done = withScratchDatabase(async (db) => {
    await migrateToLatest(db);
    opened(db);
    await new Promise<void>((resolve) => {
      release = resolve;
    });
  });
  const db = await Promise.race([ready, done.then(() => Promise.reject(new Error('the scratch database closed early')))]);
  return {
    db,
    close: async () => {
      release();
      await done;
    },
  };
}
