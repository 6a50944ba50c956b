import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, migrateToLatest, type Database } from '../../src/db/index.ts';
import { recordset, run, statement } from '../../src/db/statements.ts';
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

describe(`recordset: a batch's rows as one JSON parameter, on ${databaseKind}`, () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  const rows = recordset([
    ['name', 'text'],
    ['data', 'jsonb'],
    ['at', 'timestamptz'],
  ]);
  const read = statement('test_recordset_read', `SELECT name, data, at FROM ${rows.from('r', { ordinality: true })} ORDER BY n`);
  const readPlain = statement('test_recordset_plain', `SELECT count(*)::int AS rows FROM ${rows.from('r')}`);

  it('reads back every value as given, in order: quotes, backslashes, newlines, non-ASCII, nulls, dates, JSON', async () => {
    const awkward = 'a "quoted" \\ back\\slash\nnew line, tab\t, é, 日本, 🔑, {braces}, [brackets], commas';
    const at = new Date('2026-11-28T22:15:30.123Z');
    const data = { text: awkward, nested: { list: [1, 'two', null, true] } };
    const given = [
      [awkward, JSON.stringify(data), at],
      [null, null, null],
      ['', JSON.stringify('just a string'), new Date(0)],
      [undefined, JSON.stringify([]), at],
      // A lone surrogate: as a text parameter it became U+FFFD (UTF-8 has no other spelling for it); so it does here.
      ['half \ud83d of a pair', null, null],
    ];
    const answered = await run<{ name: string | null; data: unknown; at: Date | string | null }>(db, read, [rows.value(given)]);
    expect(answered.map((row) => ({ ...row, at: row.at === null ? null : new Date(row.at).toISOString() }))).toEqual([
      { name: awkward, data, at: at.toISOString() },
      { name: null, data: null, at: null },
      { name: '', data: 'just a string', at: new Date(0).toISOString() },
      { name: null, data: [], at: at.toISOString() },
      { name: 'half \ufffd of a pair', data: null, at: null },
    ]);
    expect(await run(db, readPlain, [rows.value(given)])).toEqual([{ rows: 5 }]);
  });

  it('refuses an invalid date (the row would otherwise be stored with NULL) and a jsonb value that is not JSON text', () => {
    expect(() => rows.value([['x', null, new Date(Number.NaN)]])).toThrow(RangeError);
    expect(() => rows.value([['x', { not: 'text' }, null]])).toThrow(/JSON text/);
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
