import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { createDatabase, migrateToLatest } from '../../src/db/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** One SESAME_SECRET for the run: instances sharing a database must share it. */
    sesameSecret: string;
    /** A migrated embedded database, dumped: test files load it instead of migrating their own. */
    pgliteSnapshot: string;
  }
}

const root = new URL('../..', import.meta.url).pathname;

/**
 * A migrated PGlite, dumped once per schema version (keyed by the migrations'
 * and PGlite's content) and reused across runs: loading it takes about a
 * second where a fresh database plus migrations takes several.
 */
async function pgliteSnapshot(): Promise<string> {
  const hash = createHash('sha256');
  const migrationsDir = join(root, 'migrations');
  for (const file of readdirSync(migrationsDir).sort()) hash.update(file).update(readFileSync(join(migrationsDir, file)));
  hash.update(readFileSync(join(root, 'node_modules/@electric-sql/pglite/package.json')));
  const path = join(tmpdir(), `sesame-pglite-${hash.digest('hex').slice(0, 16)}.tar`);
  if (existsSync(path)) return path;
  const pglite = new PGlite();
  const db = createDatabase({ kind: 'embedded', pglite });
  try {
    await migrateToLatest(db);
    const dump = await pglite.dumpDataDir('none');
    const partial = `${path}.${process.pid}.part`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, path);
  } finally {
    await db.destroy();
  }
  return path;
}

/**
 * With DATABASE_URL set, every test file shares that PostgreSQL database:
 * migrate it once here so files do not race for the migration lock.
 */
export default async function setup(project: TestProject): Promise<void> {
  const url = process.env.DATABASE_URL;
  // Derived from the database URL on PostgreSQL, so a second run on the same database still unseals its keys.
  const secret = url
    ? createHash('sha256').update(`sesame-test-secret:${url}`).digest('base64url')
    : randomBytes(32).toString('base64url');
  project.provide('sesameSecret', secret);
  project.provide('pgliteSnapshot', url ? '' : await pgliteSnapshot());
  if (!url) return;
  const db = createDatabase({ kind: 'postgres', url });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
