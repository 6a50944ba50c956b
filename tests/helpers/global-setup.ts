import { createDatabase, migrateToLatest } from '../../src/db/index.ts';

/**
 * With DATABASE_URL set, every test file shares that PostgreSQL database:
 * migrate it once here so files do not race for the migration lock.
 */
export default async function setup(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) return;
  const db = createDatabase({ kind: 'postgres', url });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
