import { describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/index.ts';
import { heldConnections, type PoolClient } from '../../src/db/held-connections.ts';
import { run, statement } from '../../src/db/statements.ts';

/**
 * The connections the hot statements keep from knex's pool between one
 * statement and the next (src/db/held-connections.ts), on a real PostgreSQL:
 * they are reused, and they never keep knex's own queries, a transaction or
 * the pool's shutdown waiting.
 */
const url = process.env.DATABASE_URL;
const backend = statement('test_held_backend', 'SELECT pg_backend_pid() AS pid, ?::int AS n');
const sleepy = statement('test_held_sleep', 'SELECT pg_sleep(?::float8) AS slept');

type Tarn = { numUsed(): number; numFree(): number; numPendingAcquires(): number };
const tarn = (db: Database) => (db.client as { pool: Tarn }).pool;

async function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still waiting after ${ms} ms`)), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(!url)('connections kept for the hot statements (PostgreSQL)', () => {
  const open = (poolMax: number) => createDatabase({ kind: 'postgres', url: url!, poolMax });
  const pidOf = async (db: Database, n = 0) => (await run<{ pid: number }>(db, backend, [n]))[0]!.pid;
  /** `body` on a database of its own with a pool of `poolMax`, closed afterwards. */
  const withPool = async (poolMax: number, body: (db: Database) => Promise<void>) => {
    const db = open(poolMax);
    try {
      await body(db);
    } finally {
      await db.destroy();
    }
  };

  it('runs one statement after another on the same connection, and keeps it in use in the pool meanwhile', () =>
    withPool(4, async (db) => {
      const pids = new Set<number>();
      for (let n = 0; n < 20; n += 1) pids.add(await pidOf(db, n));
      expect(pids.size).toBe(1);
      // Kept between statements: knex's pool counts it as used.
      expect(tarn(db).numUsed()).toBe(1);
    }));

  it('keeps at most all but one of the pool, and concurrent statements beyond that still run', () =>
    withPool(3, async (db) => {
      const results = await Promise.all(Array.from({ length: 12 }, (_, n) => run<{ n: number }>(db, backend, [n])));
      expect(results.map(([row]) => row!.n)).toEqual(Array.from({ length: 12 }, (_, n) => n));
      expect(tarn(db).numUsed()).toBeLessThanOrEqual(2);
    }));

  it("gives a kept idle connection to knex's own query when the pool has no other", () =>
    withPool(1, async (db) => {
      await pidOf(db);
      expect(tarn(db).numFree()).toBe(0);
      const rows = await within(5_000, db.raw<{ rows: Array<{ one: number }> }>('SELECT 1 AS one'), "knex's query");
      expect(rows.rows).toEqual([{ one: 1 }]);
      // And takes it again for the next statement.
      expect(await within(5_000, pidOf(db), 'the next statement')).toBeGreaterThan(0);
    }));

  it('hands its connection to a transaction waiting on the pool when its statement ends', () =>
    withPool(2, async (db) => {
      // The pool's other connection is taken by a transaction that stays open while the statement runs.
      let finishFirst = () => {};
      const firstOpen = new Promise<void>((resolve) => (finishFirst = resolve));
      let firstStarted = () => {};
      const started = new Promise<void>((resolve) => (firstStarted = resolve));
      const first = db.transaction(async (trx) => {
        await trx.raw('SELECT 1');
        firstStarted();
        await firstOpen;
      });
      await started;
      const statementDone = run(db, sleepy, [0.3]);
      // A second transaction asks while both connections are busy: it gets the statement's once it ends.
      const second = within(5_000, db.transaction((trx) => trx.raw('SELECT 2 AS two')), 'the second transaction');
      await statementDone;
      expect((await second).rows).toEqual([{ two: 2 }]);
      finishFirst();
      await first;
    }));

  it('keeps the connection of work that failed, whether it threw or rejected, for the next statement', () =>
    withPool(2, async (db) => {
      const held = heldConnections(db.client as PoolClient)!;
      const first = await pidOf(db);
      await expect(held.use(() => {
        throw new Error('thrown before any promise');
      })).rejects.toThrow('thrown before any promise');
      await expect(held.use((connection) => connection.query({ text: 'SELECT 1/0' }))).rejects.toThrow(/division by zero/);
      expect(await pidOf(db)).toBe(first);
      expect(tarn(db).numUsed()).toBe(1);
    }));

  it('gives an unused connection back after the idle time', () =>
    withPool(4, async (db) => {
      const held = heldConnections(db.client as PoolClient, { idleMs: 100 });
      expect(held).toBeDefined();
      await held!.use((connection) => connection.query({ text: 'SELECT 1' }));
      expect(tarn(db).numUsed()).toBe(1);
      const deadline = Date.now() + 3_000;
      while (tarn(db).numUsed() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(tarn(db).numUsed()).toBe(0);
    }));

  it('lets the database close at once with connections kept', async () => {
    const db = open(4);
    await Promise.all(Array.from({ length: 6 }, (_, n) => pidOf(db, n)));
    expect(tarn(db).numUsed()).toBeGreaterThan(0);
    await within(3_000, db.destroy(), 'destroy');
  });

  it('does not reuse a kept connection whose backend went away', async () => {
    const db = open(3);
    const other = open(1);
    try {
      const gone = await pidOf(db);
      await other.raw('SELECT pg_terminate_backend(?)', [gone]);
      // The client sees its socket close; the next statement runs on a new connection.
      const deadline = Date.now() + 3_000;
      let next: number | undefined;
      while (next === undefined && Date.now() < deadline) {
        next = await pidOf(db).catch(() => undefined);
        if (next === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(next).toBeDefined();
      expect(next).not.toBe(gone);
      expect(await pidOf(db)).toBe(next);
    } finally {
      await other.destroy();
      await db.destroy();
    }
  });
});
