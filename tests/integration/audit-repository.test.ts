import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditRepository, type AuditEntry } from '../../src/audit/index.ts';
import type { Database } from '../../src/db/index.ts';
import { countQueries, databaseKind, openTestDatabase, uniqueEmail } from '../helpers/db.ts';

/** The audit log's batch insert: one statement for any number of rows, each row as given, in order. */
describe(`audit repository (${databaseKind})`, () => {
  let db: Database;

  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db.destroy();
  });

  const entry = (overrides: Partial<Omit<AuditEntry, 'id'>>): Omit<AuditEntry, 'id'> => ({
    createdAt: new Date('2026-11-28T01:02:03.456Z'),
    event: 'SignIn.Succeeded',
    result: 'success',
    userId: null,
    email: null,
    applicationId: null,
    ip: null,
    userAgent: null,
    deviceFingerprint: null,
    requestId: null,
    data: {},
    ...overrides,
  });

  it('writes a batch in one statement, in order, every column as given (nulls, JSON, non-ASCII text)', async () => {
    const repository = createAuditRepository(db);
    const email = uniqueEmail('audit-batch');
    const entries = [
      entry({ email, userId: 'user-1', applicationId: 'app-1', ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (Ünïcode ✓)', deviceFingerprint: 'fp', requestId: 'req-1', data: { method: 'one_time_token', nested: { list: [1, 'two', null] } } }),
      entry({ email, event: 'SignIn.Failed', result: 'failure', data: { code: 'TOKEN_EXPIRED', quote: `it's "quoted" \\ back` } }),
      entry({ email, event: 'Token.Created', createdAt: new Date('2026-11-28T01:02:04.000Z') }),
    ];
    const statements = await countQueries(db, () => repository.insertMany(entries));
    expect(statements).toBe(1);

    const { items } = await repository.list({ email }, { page: 1, pageSize: 10 });
    const written = [...items].sort((a, b) => Number(a.id) - Number(b.id));
    expect(written.map(({ id: _id, ...rest }) => rest)).toEqual(entries);
    expect(Number(written[0]!.id)).toBeLessThan(Number(written[1]!.id));
    expect(Number(written[1]!.id)).toBeLessThan(Number(written[2]!.id));
  });

  it('writes one row and nothing for an empty batch', async () => {
    const repository = createAuditRepository(db);
    const email = uniqueEmail('audit-one');
    await repository.insertMany([]);
    await repository.insertMany([entry({ email, event: 'MagicLink.Requested' })]);
    const { items } = await repository.list({ email }, { page: 1, pageSize: 10 });
    expect(items.map((item) => item.event)).toEqual(['MagicLink.Requested']);
  });
});
