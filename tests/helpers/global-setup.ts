import { randomBytes } from 'node:crypto';
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
  project.provide('sesameSecret', randomBytes(32).toString('base64url'));
  const url = process.env.DATABASE_URL;
  if (!url) return;
  const db = createDatabase({ kind: 'postgres', url });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
