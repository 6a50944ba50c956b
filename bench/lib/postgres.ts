import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The bench's own PostgreSQL database: created fresh (sesame_bench_<random>)
 * and dropped at the end, so a run never touches anyone else's data.
 */
export const ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** The bench server's URL, on `database`. */
const urlOf = (database: string) => {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
};

export type BenchDatabase = { name: string; url: string; drop: () => Promise<void> };

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `sesame_bench_${randomBytes(4).toString('hex')}`;
  await withClient(ADMIN_URL, (client) => client.query(`CREATE DATABASE ${name}`));
  return {
    name,
    url: urlOf(name),
    drop: () => withClient(ADMIN_URL, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/**
 * The backends serving Sesame's connections to `database`. Autovacuum
 * workers are left out: one that starts while a scenario runs cleans up after
 * the scenarios before it too, and used to be counted whole in that scenario
 * (PostgreSQL's CPU per refresh moved between 0.25 and 0.98 ms in back-to-back
 * runs with the same statements per refresh).
 */
export async function backendPids(database: string): Promise<number[]> {
  return withClient(ADMIN_URL, async (client) => {
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
      [database],
    );
    return rows.map((row) => row.pid);
  });
}

/**
 * `VACUUM (ANALYZE)` of the bench database, before each scenario on
 * PostgreSQL: every scenario starts from a database without the dead rows of
 * the ones before it. Otherwise a scenario's cost depends on what ran just
 * before and on whether autovacuum (off on some machines; when on, it wakes
 * once a minute) happens to clean up during its window: the steady
 * scenario's p99 was bimodal (14 and 64 ms in back-to-back runs) right after
 * the sign-in peak's 64 concurrent flows. Answers how long it took.
 */
export async function vacuumDatabase(database: string): Promise<number> {
  const started = performance.now();
  await withClient(urlOf(database), (client) => client.query('VACUUM (ANALYZE)'));
  return (performance.now() - started) / 1000;
}

export type TableActivity = { inserted: number; updated: number; hotUpdated: number; deleted: number; deadRows: number };

/** Row writes to the bench database's tables so far (PostgreSQL's statistics, up to a second behind). */
export async function tableActivity(database: string): Promise<TableActivity> {
  return withClient(urlOf(database), async (client) => {
    const { rows } = await client.query<Record<keyof TableActivity, string>>(
      `SELECT sum(n_tup_ins) AS inserted, sum(n_tup_upd) AS updated, sum(n_tup_hot_upd) AS "hotUpdated",
              sum(n_tup_del) AS deleted, sum(n_dead_tup) AS "deadRows"
       FROM pg_stat_user_tables`,
    );
    const row = rows[0]!;
    return {
      inserted: Number(row.inserted),
      updated: Number(row.updated),
      hotUpdated: Number(row.hotUpdated),
      deleted: Number(row.deleted),
      deadRows: Number(row.deadRows),
    };
  });
}

/** Where the server's write-ahead log is, in bytes (the whole server: its other databases are idle during a run). */
export async function walPosition(): Promise<bigint> {
  return withClient(ADMIN_URL, async (client) => {
    const { rows } = await client.query<{ at: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS at`);
    return BigInt(rows[0]!.at.split('.')[0]!);
  });
}

/** The server settings that change what a run measures. */
export async function postgresSettings(): Promise<Record<string, string>> {
  return withClient(ADMIN_URL, async (client) => {
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
       WHERE name IN ('autovacuum', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_connections')
       ORDER BY name`,
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.unit === '8kB' ? `${Math.round((Number(row.setting) * 8) / 1024)} MB` : row.setting]));
  });
}

export async function postgresVersion(): Promise<string> {
  return withClient(ADMIN_URL, async (client) => {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return rows[0]?.server_version ?? 'unknown';
  });
}

export type RowCounts = { oneTimeTokens: number; providerRows: number; users: number; byModel: Record<string, number>; sizeMb: number };

export async function rowCounts(url: string): Promise<RowCounts> {
  return withClient(url, async (client) => {
    const count = async (sql: string) => Number((await client.query<{ n: string }>(sql)).rows[0]?.n ?? 0);
    const byModel = await client.query<{ model_name: string; n: string }>(
      'SELECT model_name, count(*) AS n FROM oidc_model_instances GROUP BY model_name ORDER BY model_name',
    );
    return {
      oneTimeTokens: await count('SELECT count(*) AS n FROM one_time_tokens'),
      providerRows: await count('SELECT count(*) AS n FROM oidc_model_instances'),
      users: await count('SELECT count(*) AS n FROM users'),
      byModel: Object.fromEntries(byModel.rows.map((row) => [row.model_name, Number(row.n)])),
      sizeMb: Math.round((await count('SELECT pg_database_size(current_database()) AS n')) / 1024 / 102.4) / 10,
    };
  });
}

/**
 * Adds `count` one-time tokens and `count` provider rows in bulk, shaped like
 * a database that has run for a while: tokens spread over 20,000 emails and
 * ten days, mostly consumed or revoked and long expired; provider rows of
 * every model, half of them expired. Then ANALYZE, as autovacuum would.
 */
export async function seedRows(url: string, count: number): Promise<{ seconds: number }> {
  const started = Date.now();
  const salt = randomBytes(4).toString('hex');
  await withClient(url, async (client) => {
    await client.query(
      `INSERT INTO one_time_tokens (id, email, token_hash, status, context, expires_at, created_at, consumed_at, revoked_at)
       SELECT 'seed' || $2 || g,
              'seed-' || (g % 20000) || '@seed.example',
              encode(sha256(('seed-token-' || $2 || '-' || g)::bytea), 'hex'),
              CASE WHEN g % 10 < 6 THEN 'consumed' WHEN g % 10 < 8 THEN 'revoked' ELSE 'active' END,
              '{}'::jsonb,
              now() - make_interval(secs => g % 864000) + interval '10 minutes',
              now() - make_interval(secs => g % 864000),
              CASE WHEN g % 10 < 6 THEN now() - make_interval(secs => g % 864000) + interval '1 minute' END,
              CASE WHEN g % 10 IN (6, 7) THEN now() - make_interval(secs => g % 864000) + interval '2 minutes' END
       FROM generate_series(1, $1::int) AS g`,
      [count, salt],
    );
    await client.query(
      `INSERT INTO oidc_model_instances (model_name, id, payload, expires_at, consumed_at, grant_id, uid)
       SELECT m.name, 'seed' || $2 || g,
              jsonb_build_object(
                'kind', m.name, 'jti', 'seed' || $2 || g, 'accountId', 'seeduser' || (g % 20000),
                'clientId', 'seed-client', 'grantId', 'seedgrant' || $2 || (g / 6),
                'scope', 'openid email profile offline_access', 'iat', extract(epoch FROM now())::int - g % 86400,
                'exp', extract(epoch FROM now())::int - 86400 + g % 172800,
                'claims', jsonb_build_object('id_token', '{}'::jsonb), 'sessionUid', 'seeduid' || $2 || g),
              now() - interval '1 day' + make_interval(secs => g % 172800),
              CASE WHEN m.name IN ('AuthorizationCode', 'RefreshToken') AND g % 3 = 0 THEN now() END,
              CASE WHEN m.name IN ('AccessToken', 'AuthorizationCode', 'RefreshToken') THEN 'seedgrant' || $2 || (g / 6) END,
              CASE WHEN m.name = 'Session' THEN 'seeduid' || $2 || g END
       FROM generate_series(1, $1::int) AS g
       CROSS JOIN LATERAL (SELECT (ARRAY['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'Interaction'])[1 + g % 6] AS name) AS m`,
      [count, salt],
    );
    await client.query('ANALYZE one_time_tokens');
    await client.query('ANALYZE oidc_model_instances');
  });
  return { seconds: (Date.now() - started) / 1000 };
}
