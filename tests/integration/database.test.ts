import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { databaseKind, openTestDatabase } from '../helpers/db.ts';

describe(`the database layer (${databaseKind})`, () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('reports how many rows a delete and an update changed, as a number, on both databases', async () => {
    const ids = [0, 1, 2].map(() => `db-test-${randomBytes(6).toString('hex')}`);
    await db('organizations').insert(ids.map((id) => ({ id, name: id })));
    expect(await db('organizations').whereIn('id', ids.slice(0, 2)).update({ description: 'x' })).toBe(2);
    expect(await db('organizations').whereIn('id', ids.slice(0, 2)).delete()).toBe(2);
    expect(await db('organizations').where({ id: ids[0] }).delete()).toBe(0);
    const returned = await db('organizations').where({ id: ids[2] }).delete().returning('id');
    expect(returned).toEqual([{ id: ids[2] }]);
  });

  it('reports the deleted row count inside a transaction too', async () => {
    const ids = [0, 1].map(() => `db-trx-${randomBytes(6).toString('hex')}`);
    await db('organizations').insert(ids.map((id) => ({ id, name: id })));
    const deleted = await db.transaction((trx) => trx('organizations').whereIn('id', ids).delete());
    expect(deleted).toBe(2);
  });
});
