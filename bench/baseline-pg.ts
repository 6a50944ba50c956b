import { randomUUID } from 'node:crypto';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import pg from 'pg';

/**
 * The baseline's durable variant (`baseline-pg` in the bench): what a bare
 * oidc-provider costs on the same PostgreSQL when its state is kept there the
 * textbook way. One table for every model, as oidc-provider's contributed SQL
 * adapters do, one statement per adapter call (no batching, no caching), a
 * pool of 10 connections and named (prepared) statements. One-time tokens and
 * accounts live in PostgreSQL too: a mint is an INSERT of the token's hash,
 * and the confirm consumes the token (one conditional UPDATE) and upserts the
 * account; `findAccount` reads it back.
 *
 * It is a reference point, not a floor: it sends more statements than Sesame
 * (which batches and caches), and it keeps no audit log, rate limits, hooks
 * or sessions list.
 */
export type BaselineStore = Awaited<ReturnType<typeof openBaselineStore>>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS baseline_oidc (
  model text NOT NULL, id text NOT NULL, payload jsonb NOT NULL, grant_id text, uid text,
  expires_at timestamptz, consumed_at timestamptz, PRIMARY KEY (model, id));
CREATE INDEX IF NOT EXISTS baseline_oidc_grant ON baseline_oidc (grant_id);
CREATE INDEX IF NOT EXISTS baseline_oidc_uid ON baseline_oidc (uid);
CREATE TABLE IF NOT EXISTS baseline_tokens (
  id uuid PRIMARY KEY, email text NOT NULL, token_hash text NOT NULL UNIQUE, status text NOT NULL,
  expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL, consumed_at timestamptz);
CREATE INDEX IF NOT EXISTS baseline_tokens_email ON baseline_tokens (email, created_at DESC);
CREATE TABLE IF NOT EXISTS baseline_accounts (id text PRIMARY KEY, email text NOT NULL UNIQUE);
`;

type TokenRow = { id: string; email: string; status: string; expires_at: Date; created_at: Date };
const presentToken = (row: TokenRow, now: Date) => ({
  id: row.id,
  email: row.email,
  status: row.status === 'active' && row.expires_at <= now ? 'expired' : row.status,
  expiresAt: row.expires_at,
  createdAt: row.created_at,
});

export async function openBaselineStore(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  await pool.query(SCHEMA);
  const run = <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]) => pool.query<R>({ name, text, values });

  class PgAdapter implements Adapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      await run(
        'upsert',
        `INSERT INTO baseline_oidc (model, id, payload, grant_id, uid, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at`,
        [this.model, id, payload, payload.grantId ?? null, payload.uid ?? null, expiresIn ? new Date(Date.now() + expiresIn * 1000) : null],
      );
    }

    private async findWhere(name: string, column: 'id' | 'uid', value: string): Promise<AdapterPayload | undefined> {
      const { rows } = await run<{ payload: AdapterPayload; consumed_at: Date | null }>(
        name,
        `SELECT payload, consumed_at FROM baseline_oidc WHERE model = $1 AND ${column} = $2 AND (expires_at IS NULL OR expires_at > now())`,
        [this.model, value],
      );
      const row = rows[0];
      if (!row) return undefined;
      return row.consumed_at ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : row.payload;
    }

    find(id: string) {
      return this.findWhere('find', 'id', id);
    }

    findByUid(uid: string) {
      return this.findWhere('find_by_uid', 'uid', uid);
    }

    async findByUserCode(): Promise<undefined> {
      return undefined;
    }

    async consume(id: string): Promise<void> {
      await run('consume', 'UPDATE baseline_oidc SET consumed_at = now() WHERE model = $1 AND id = $2', [this.model, id]);
    }

    async destroy(id: string): Promise<void> {
      await run('destroy', 'DELETE FROM baseline_oidc WHERE model = $1 AND id = $2', [this.model, id]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await run('revoke_by_grant', 'DELETE FROM baseline_oidc WHERE grant_id = $1', [grantId]);
    }
  }

  return {
    adapter: (name: string) => new PgAdapter(name),

    async mint(email: string, tokenHash: string, expiresIn: number) {
      const now = new Date();
      const { rows } = await run<TokenRow>(
        'mint',
        "INSERT INTO baseline_tokens (id, email, token_hash, status, expires_at, created_at) VALUES ($1, $2, $3, 'active', $4, $5) RETURNING id, email, status, expires_at, created_at",
        [randomUUID(), email, tokenHash, new Date(now.getTime() + expiresIn * 1000), now],
      );
      return presentToken(rows[0]!, now);
    },

    async list(filter: { email?: string; status?: string; page: number; pageSize: number }) {
      const now = new Date();
      // 'expired' is an active token past its expiry, as in Sesame's list.
      const status = filter.status === 'expired' ? 'active' : filter.status;
      const expiry = filter.status === 'expired' ? 'expires_at <= $3' : filter.status === 'active' ? 'expires_at > $3' : '$3::timestamptz IS NOT NULL';
      const where = `($1::text IS NULL OR email = $1) AND ($2::text IS NULL OR status = $2) AND ${expiry}`;
      const values = [filter.email ?? null, status ?? null, now];
      const [page, total] = await Promise.all([
        run<TokenRow>(
          `list_${filter.status ?? 'any'}`,
          `SELECT id, email, status, expires_at, created_at FROM baseline_tokens WHERE ${where} ORDER BY created_at DESC LIMIT $4 OFFSET $5`,
          [...values, filter.pageSize, (filter.page - 1) * filter.pageSize],
        ),
        run<{ n: string }>(`count_${filter.status ?? 'any'}`, `SELECT count(*) AS n FROM baseline_tokens WHERE ${where}`, values),
      ]);
      return { total: Number(total.rows[0]!.n), items: page.rows.map((row) => presentToken(row, now)) };
    },

    /** Consumes the token minted for `email` (hash given); false when it is unknown, used, revoked or expired. */
    async consume(email: string, tokenHash: string): Promise<boolean> {
      const { rowCount } = await run(
        'consume_token',
        "UPDATE baseline_tokens SET status = 'consumed', consumed_at = now() WHERE token_hash = $1 AND email = $2 AND status = 'active' AND expires_at > now()",
        [tokenHash, email],
      );
      return rowCount === 1;
    },

    async upsertAccount(id: string, email: string): Promise<void> {
      await run('upsert_account', 'INSERT INTO baseline_accounts (id, email) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING', [id, email]);
    },

    async emailOf(id: string): Promise<string | undefined> {
      const { rows } = await run<{ email: string }>('find_account', 'SELECT email FROM baseline_accounts WHERE id = $1', [id]);
      return rows[0]?.email;
    },

    close: () => pool.end(),
  };
}
