import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, migrateToLatest, type Database } from '../../src/db/index.ts';
import { run, statement } from '../../src/db/statements.ts';
import { createUserRepository } from '../../src/users/index.ts';
import { databaseKind, openScratchDatabase, openTestDatabase, uniqueEmail, usingPostgres } from '../helpers/db.ts';

const probe = statement('test_probe', 'SELECT ?::text AS a, ?::int AS b');

describe(`hot statements (src/db/statements.ts) on ${databaseKind}`, () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('numbers the placeholders for PostgreSQL and compacts the text', () => {
    const sample = statement('test_sample', `SELECT 1\n   FROM users WHERE id = ? AND name = ?`);
    expect(sample).toEqual({
      name: 'sesame_test_sample',
      text: 'SELECT 1 FROM users WHERE id = ? AND name = ?',
      pgText: 'SELECT 1 FROM users WHERE id = $1 AND name = $2',
    });
  });

  it('refuses a name declared twice (two texts under one prepared name would collide)', () => {
    expect(() => statement('test_probe', 'SELECT 2')).toThrow(/declared twice/);
  });

  it('runs with its values and answers the rows, outside and inside a transaction', async () => {
    expect(await run(db, probe, ['x', 7])).toEqual([{ a: 'x', b: 7 }]);
    const inside = await db.transaction((trx) => run(trx, probe, ['y', 8]));
    expect(inside).toEqual([{ a: 'y', b: 8 }]);
  });
});

describe.skipIf(!usingPostgres)('prepared statements on PostgreSQL', () => {
  // One connection, so the session that prepared is the one asked.
  const openSingle = (preparedStatements: boolean) =>
    createDatabase({ kind: 'postgres', url: process.env.DATABASE_URL!, poolMax: 1, preparedStatements });
  const prepared = async (db: Database) =>
    (await db.raw<{ rows: Array<{ name: string }> }>('SELECT name FROM pg_prepared_statements')).rows.map((row) => row.name);

  it('prepares a statement once per connection by default', async () => {
    const db = openSingle(true);
    try {
      await run(db, probe, ['a', 1]);
      await run(db, probe, ['b', 2]);
      expect(await prepared(db)).toContain('sesame_test_probe');
    } finally {
      await db.destroy();
    }
  });

  it('sends it unnamed with DATABASE_PREPARED_STATEMENTS=false (a pooler that cannot keep them)', async () => {
    const db = openSingle(false);
    try {
      expect(await run(db, probe, ['a', 1])).toEqual([{ a: 'a', b: 1 }]);
      expect(await prepared(db)).not.toContain('sesame_test_probe');
    } finally {
      await db.destroy();
    }
  });

  it('keeps working on a connection that prepared it before a migration added a column', async () => {
    const { db: scratch, drop } = await openScratchDatabase();
    await migrateToLatest(scratch);
    const scratchUrl = (scratch.client as { config: { connection: string } }).config.connection;
    const single = createDatabase({ kind: 'postgres', url: scratchUrl, poolMax: 1 });
    try {
      const users = createUserRepository(single);
      const { user } = await users.signInVerifiedEmail(uniqueEmail('prepared'), new Date());
      expect((await users.findById(user.id))?.id).toBe(user.id);
      await scratch.raw(`ALTER TABLE users ADD COLUMN extra_${randomBytes(3).toString('hex')} text`);
      // A prepared `SELECT *` would now fail with "cached plan must not change result type".
      expect((await users.findById(user.id))?.id).toBe(user.id);
      expect((await users.signInVerifiedEmail(user.primaryEmail!, new Date())).user.id).toBe(user.id);
    } finally {
      await single.destroy();
      await drop();
    }
  });
});
