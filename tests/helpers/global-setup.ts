import { createHash, randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { createDatabase, migrateToLatest } from '../../src/db/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** One SESAME_SECRET for the run: instances sharing a database must share it. */
    sesameSecret: string;
  }
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
  if (!url) return;
  const db = createDatabase({ kind: 'postgres', url });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
