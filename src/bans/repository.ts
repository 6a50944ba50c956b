import type { Knex } from 'knex';
import type { Database } from '../db/index.ts';

export type BanSource = 'manual' | 'automatic';

export type BanRecord = {
  ip: string;
  reason: string;
  source: BanSource;
  /** The Management API client that made a manual ban. */
  createdBy: string | null;
  createdAt: Date;
  /** Null: until lifted. */
  expiresAt: Date | null;
};

type Row = { ip: string; reason: string; source: BanSource; created_by: string | null; created_at: Date; expires_at: Date | null };

const toRecord = (row: Row): BanRecord => ({
  ip: row.ip,
  reason: row.reason,
  source: row.source,
  createdBy: row.created_by,
  createdAt: new Date(row.created_at),
  expiresAt: row.expires_at ? new Date(row.expires_at) : null,
});

const toRow = (ban: BanRecord): Row => ({
  ip: ban.ip,
  reason: ban.reason,
  source: ban.source,
  created_by: ban.createdBy,
  created_at: ban.createdAt,
  expires_at: ban.expiresAt,
});

export type BanRepository = ReturnType<typeof createBanRepository>;

/** SQL of `banned_ips`. "Active" is decided against the caller's `now`, never the database clock. */
export function createBanRepository(db: Database) {
  const table = () => db<Row>('banned_ips');
  const active = (query: Knex.QueryBuilder, now: Date) => query.where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now));

  return {
    async list(now: Date, page: { page: number; pageSize: number }): Promise<{ items: BanRecord[]; total: number }> {
      const [rows, counted] = await Promise.all([
        active(table().select('*'), now)
          .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'ip' }])
          .limit(page.pageSize)
          .offset((page.page - 1) * page.pageSize),
        active(table().count<{ count: number }[]>({ count: '*' }), now),
      ]);
      return { items: (rows as Row[]).map(toRecord), total: Number(counted[0]?.count ?? 0) };
    },

    async get(ip: string, now: Date): Promise<BanRecord | undefined> {
      const row = (await active(table().where({ ip }), now).first()) as Row | undefined;
      return row && toRecord(row);
    },

    /** Every active ban's address and end, for the in-memory list (at most `limit`). */
    async activeAddresses(now: Date, limit: number): Promise<Array<{ ip: string; expiresAt: Date | null }>> {
      const rows = (await active(table().select('ip', 'expires_at'), now).limit(limit)) as Array<Pick<Row, 'ip' | 'expires_at'>>;
      return rows.map((row) => ({ ip: row.ip, expiresAt: row.expires_at ? new Date(row.expires_at) : null }));
    },

    /** A manual ban replaces whatever the address had: the administrator decides. */
    async replace(ban: BanRecord): Promise<BanRecord> {
      const [row] = (await table().insert(toRow(ban)).onConflict('ip').merge().returning('*')) as Row[];
      return toRecord(row!);
    },

    /**
     * An automatic ban never shortens a ban in force (a permanent or a longer
     * one); an expired row is replaced. Answers the ban in force afterwards.
     */
    async extend(ban: BanRecord, now: Date): Promise<BanRecord> {
      await db.raw(
        `INSERT INTO banned_ips (ip, reason, source, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (ip) DO UPDATE SET reason = excluded.reason, source = excluded.source, created_by = excluded.created_by,
           created_at = excluded.created_at, expires_at = excluded.expires_at
         WHERE banned_ips.expires_at IS NOT NULL AND (banned_ips.expires_at <= ? OR banned_ips.expires_at < excluded.expires_at)`,
        [ban.ip, ban.reason, ban.source, ban.createdBy, ban.createdAt, ban.expiresAt, now],
      );
      const row = (await table().where({ ip: ban.ip }).first()) as Row;
      return toRecord(row);
    },

    /** Answers whether an active ban was lifted (an expired leftover row goes too, silently). */
    async delete(ip: string, now: Date): Promise<boolean> {
      const rows = (await table().where({ ip }).delete().returning(['expires_at'])) as Array<Pick<Row, 'expires_at'>>;
      return rows.some((row) => row.expires_at === null || new Date(row.expires_at) > now);
    },
  };
}
