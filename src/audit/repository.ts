import type { Knex } from 'knex';
import type { Database } from '../db/index.ts';
import { recordset, run, statement } from '../db/statements.ts';
import type { EventResult } from '../events/index.ts';

export type AuditEntry = {
  id: string;
  createdAt: Date;
  event: string;
  result: EventResult;
  userId: string | null;
  email: string | null;
  applicationId: string | null;
  ip: string | null;
  userAgent: string | null;
  deviceFingerprint: string | null;
  requestId: string | null;
  data: Record<string, unknown>;
};

export type AuditFilter = { event?: string; userId?: string; email?: string; ip?: string; applicationId?: string; from?: Date; to?: Date };

type Row = {
  id: string | number;
  created_at: Date;
  event: string;
  result: EventResult;
  user_id: string | null;
  email: string | null;
  application_id: string | null;
  ip: string | null;
  user_agent: string | null;
  device_fingerprint: string | null;
  request_id: string | null;
  data: Record<string, unknown>;
};

const toEntry = (row: Row): AuditEntry => ({
  id: String(row.id),
  createdAt: new Date(row.created_at),
  event: row.event,
  result: row.result,
  userId: row.user_id,
  email: row.email,
  applicationId: row.application_id,
  ip: row.ip,
  userAgent: row.user_agent,
  deviceFingerprint: row.device_fingerprint,
  requestId: row.request_id,
  data: row.data ?? {},
});

/** Per UTC day and event, with the sign-in method where the event has one. */
export type DailyCount = { day: string; event: string; method: string | null; count: number };

export type AuditRepository = ReturnType<typeof createAuditRepository>;

/** The inserted rows, one JSON parameter (src/db/statements.ts `recordset`), in this order. */
const INSERTED = recordset([
  ['created_at', 'timestamptz'],
  ['event', 'text'],
  ['result', 'text'],
  ['user_id', 'text'],
  ['email', 'text'],
  ['application_id', 'text'],
  ['ip', 'text'],
  ['user_agent', 'text'],
  ['device_fingerprint', 'text'],
  ['request_id', 'text'],
  ['data', 'jsonb'],
]);

/**
 * Any number of rows in one prepared statement, in the order given: ids are
 * drawn in ordinality order. The builder's multi-row VALUES had a new text
 * for every batch size, compiled by knex and parsed and planned by
 * PostgreSQL each time.
 */
const INSERT_MANY = statement(
  'audit_logs_insert_many',
  `INSERT INTO audit_logs (created_at, event, result, user_id, email, application_id, ip, user_agent, device_fingerprint, request_id, data)
   SELECT created_at, event, result, user_id, email, application_id, ip, user_agent, device_fingerprint, request_id, data
   FROM ${INSERTED.from('t', { ordinality: true })}
   ORDER BY n`,
);

export function createAuditRepository(db: Database) {
  const table = () => db<Row>('audit_logs');
  const filtered = (filter: AuditFilter) =>
    table().modify((query: Knex.QueryBuilder) => {
      if (filter.event) query.where('event', filter.event);
      if (filter.userId) query.where('user_id', filter.userId);
      if (filter.email) query.where('email', filter.email);
      if (filter.ip) query.where('ip', filter.ip);
      if (filter.applicationId) query.where('application_id', filter.applicationId);
      if (filter.from) query.where('created_at', '>=', filter.from);
      if (filter.to) query.where('created_at', '<', filter.to);
    });

  return {
    async insert(entry: Omit<AuditEntry, 'id'>): Promise<void> {
      await this.insertMany([entry]);
    },

    /** Several rows in one statement, in order (ids ascend with it). */
    async insertMany(entries: Array<Omit<AuditEntry, 'id'>>): Promise<void> {
      if (entries.length === 0) return;
      await run(db, INSERT_MANY, [
        INSERTED.value(
          entries.map((entry) => [
            entry.createdAt,
            entry.event,
            entry.result,
            entry.userId,
            entry.email,
            entry.applicationId,
            entry.ip,
            entry.userAgent,
            entry.deviceFingerprint,
            entry.requestId,
            JSON.stringify(entry.data),
          ]),
        ),
      ]);
    },

    /** Newest first. */
    async list(filter: AuditFilter, page: { page: number; pageSize: number }) {
      const [{ count }] = (await filtered(filter).count({ count: '*' })) as [{ count: number | string }];
      const rows = await filtered(filter)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(page.pageSize)
        .offset((page.page - 1) * page.pageSize);
      return { items: (rows as Row[]).map(toEntry), total: Number(count) };
    },

    /** Counts in [from, to), grouped by UTC day, event and (for sign-ins) method. */
    async dailyCounts(from: Date, to: Date): Promise<DailyCount[]> {
      const { rows } = (await db.raw(
        `SELECT to_char(date_trunc('day', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
                event,
                CASE WHEN event LIKE 'SignIn.%' THEN data->>'method' END AS method,
                count(*) AS count
           FROM audit_logs
          WHERE created_at >= ? AND created_at < ?
          GROUP BY 1, 2, 3`,
        [from, to],
      )) as { rows: Array<{ day: string; event: string; method: string | null; count: number | string }> };
      return rows.map((row) => ({ ...row, count: Number(row.count) }));
    },
  };
}
