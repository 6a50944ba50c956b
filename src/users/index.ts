import { escapeLike, type Database } from '../db/index.ts';
import { run, statement } from '../db/statements.ts';
import { generateId } from '../lib/ids.ts';
import { createGroupCommit, runsOfUniqueKeys } from '../lib/group-commit.ts';
import { CONSUME_SQL, consumeManySql, consumptionValues, prefixedColumnsOf, tokenFromPrefixed, type TokenConsumption } from '../tokens/repository.ts';
import type { TokenRecord } from '../tokens/core.ts';

export type User = {
  id: string;
  primaryEmail: string | null;
  emailVerified: boolean;
  name: string | null;
  avatar: string | null;
  hasPassword: boolean;
  isSuspended: boolean;
  createdAt: Date;
  lastSignInAt: Date | null;
};

type Row = {
  id: string;
  primary_email: string | null;
  email_verified: boolean;
  name: string | null;
  avatar: string | null;
  password_hash: string | null;
  is_suspended: boolean;
  created_at: Date;
  updated_at: Date;
  last_sign_in_at: Date | null;
};

const toUser = (row: Row): User => ({
  id: row.id,
  primaryEmail: row.primary_email,
  emailVerified: row.email_verified,
  name: row.name,
  avatar: row.avatar,
  hasPassword: Boolean(row.password_hash),
  isSuspended: row.is_suspended,
  createdAt: new Date(row.created_at),
  lastSignInAt: row.last_sign_in_at ? new Date(row.last_sign_in_at) : null,
});

const COLUMNS = 'id, primary_email, email_verified, name, avatar, password_hash, is_suspended, created_at, updated_at, last_sign_in_at';

/**
 * A sign-in that proved the mailbox, as one upsert whose new row comes from
 * `source` (a VALUES row, or a SELECT from the consumed one-time token).
 */
const signInUpsert = (source: string) => `INSERT INTO users (id, primary_email, email_verified, created_at, updated_at, last_sign_in_at)
     ${source}
     ON CONFLICT ((lower(primary_email))) DO UPDATE
       SET last_sign_in_at = EXCLUDED.last_sign_in_at, updated_at = EXCLUDED.updated_at, email_verified = true
       WHERE NOT users.is_suspended
     RETURNING ${COLUMNS}, (xmax = 0) AS created,
       EXISTS (SELECT 1 FROM user_mfa_factors f WHERE f.user_id = users.id AND f.type = 'totp' AND f.confirmed_at IS NOT NULL) AS has_totp,
       CASE WHEN xmax = 0 THEN ARRAY(
         SELECT organization_id FROM organization_jit_email_domains WHERE email_domain = split_part(users.primary_email, '@', 2)
       ) END AS domain_organization_ids`;

/** The statements of every sign-in (the account read of each token request, the upserts), prepared on PostgreSQL. */
const SQL = {
  findById: statement('users_find_by_id', `SELECT ${COLUMNS} FROM users WHERE id = ? LIMIT 1`),
  signInVerifiedEmail: statement('users_sign_in_verified_email', signInUpsert('VALUES (?, ?, true, ?, ?, ?)')),
  /** The one-time token's consumption and, only when it consumed one, the upsert for its address. */
  signInWithToken: statement(
    'users_sign_in_with_token',
    `WITH consumed AS (${CONSUME_SQL}),
     account AS (${signInUpsert('SELECT ?::text, consumed.email, true, ?::timestamptz, ?::timestamptz, ?::timestamptz FROM consumed')})
     SELECT ${prefixedColumnsOf('consumed')}, account.*
     FROM consumed LEFT JOIN account ON true`,
  ),
  /**
   * The same for several tokens of different addresses (one array per
   * value; each array behind a subquery, so the prepared statement keeps its
   * generic plan, see src/oidc/adapter.ts): each consumed token's address is
   * upserted, and each account is matched back to its token by address.
   */
  signInWithTokens: statement(
    'users_sign_in_with_tokens',
    `WITH consumed AS (${consumeManySql(
      `(SELECT * FROM unnest((SELECT ?::text[]), (SELECT ?::text[]), (SELECT ?::timestamptz[]), (SELECT ?::text[]), (SELECT ?::text[]))
        AS k(r_hash, r_email, r_at, r_uid, r_new_id))`,
      'r.r_new_id, r.r_at',
    )}),
     account AS (${signInUpsert('SELECT r_new_id, email, true, r_at, r_at, r_at FROM consumed')})
     SELECT ${prefixedColumnsOf('consumed')}, account.*
     FROM consumed LEFT JOIN account ON lower(account.primary_email) = lower(consumed.email)`,
  ),
};

/** Token sign-ins per statement at most (group commit). */
const MAX_SIGN_IN_BATCH = 100;

type UpsertRow = Row & { created: boolean; has_totp: boolean; domain_organization_ids: string[] | null };

const toSignInUpsert = (row: UpsertRow): SignInUpsert => ({
  user: toUser(row),
  created: row.created,
  hasTotp: row.has_totp,
  ...(row.domain_organization_ids && { domainOrganizationIds: row.domain_organization_ids }),
});

/**
 * What a sign-in's upsert answers: the account, whether it was created, and
 * what the rest of the sign-in would otherwise ask in statements of their
 * own, read in the same snapshot: whether the account has a confirmed
 * authenticator (the MFA prompt's check at the resume) and, for a new
 * account, the organizations that provision its email domain. The last two
 * are missing when the account was suspended (and so not touched).
 */
export type SignInUpsert = { user: User; created: boolean; hasTotp?: boolean; domainOrganizationIds?: string[] };

export type UserRepository = ReturnType<typeof createUserRepository>;

export function createUserRepository(db: Database) {
  const table = () => db<Row>('users');
  type SignInRow = UpsertRow & Record<string, unknown>;
  /**
   * Token sign-ins that arrive while another is in flight share the next
   * statement (src/lib/group-commit.ts), one address per statement: under
   * load the confirm step's statement is shared like the provider's writes.
   * Each answers the row of its own token, if it consumed one.
   */
  const signInGrouped = createGroupCommit(async (consumptions: TokenConsumption[]): Promise<Array<SignInRow | undefined>> => {
    const results: Array<SignInRow | undefined> = [];
    // One statement cannot upsert an account twice (nor update a token twice, which only its own address can
    // name): a second sign-in of an address goes in a later statement and sees the first one's outcome.
    for (const batch of runsOfUniqueKeys(consumptions, (consumption) => consumption.email.toLowerCase())) {
      if (batch.length === 1) {
        const [consumption] = batch as [TokenConsumption];
        const { now } = consumption;
        results.push((await run<SignInRow>(db, SQL.signInWithToken, [...consumptionValues(consumption), generateId(), now, now, now]))[0]);
        continue;
      }
      const rows = await run<SignInRow>(db, SQL.signInWithTokens, [
        batch.map((consumption) => consumption.hash),
        batch.map((consumption) => consumption.email),
        batch.map((consumption) => consumption.now),
        batch.map((consumption) => consumption.interactionUid ?? null),
        batch.map(() => generateId()),
      ]);
      const byAddress = new Map(rows.map((row) => [String(row.token_email).toLowerCase(), row]));
      for (const consumption of batch) {
        const row = byAddress.get(consumption.email.toLowerCase());
        results.push(row && row.token_token_hash === consumption.hash ? row : undefined);
      }
    }
    return results;
  }, { maxBatch: MAX_SIGN_IN_BATCH });
  return {
    async findById(id: string) {
      const [row] = await run<Row>(db, SQL.findById, [id]);
      return row ? toUser(row) : undefined;
    },

    async findByEmail(email: string) {
      const row = await table().whereRaw('lower(primary_email) = lower(?)', [email]).first();
      return row ? toUser(row) : undefined;
    },

    /**
     * The user owning `email`, created (with the email verified) when there is
     * none. Safe under concurrency: the unique index on lower(email) decides.
     */
    async findOrCreateVerifiedByEmail(email: string, now: Date): Promise<{ user: User; created: boolean }> {
      const inserted = await db.raw<{ rows: Row[] }>(
        `INSERT INTO users (id, primary_email, email_verified, created_at, updated_at)
         VALUES (?, ?, true, ?, ?)
         ON CONFLICT ((lower(primary_email))) DO NOTHING
         RETURNING *`,
        [generateId(), email, now, now],
      );
      const row = inserted.rows[0];
      if (row) return { user: toUser(row), created: true };
      const existing = await this.findByEmail(email);
      if (!existing) throw new Error('user vanished between insert and select');
      return { user: existing, created: false };
    },

    /**
     * A sign-in that proved the mailbox, in one statement: the account owning
     * `email` gets its sign-in recorded and its email verified, or is created
     * so. A suspended account is left untouched (read back, so the caller can
     * refuse it). `created` comes from `xmax = 0`: the row was inserted, not
     * updated. See `SignInUpsert` for what else it answers.
     */
    async signInVerifiedEmail(email: string, now: Date): Promise<SignInUpsert> {
      const [row] = await run<UpsertRow>(db, SQL.signInVerifiedEmail, [generateId(), email, now, now, now]);
      return row ? toSignInUpsert(row) : this.suspended(email);
    },

    /**
     * A one-time token's sign-in in one statement, one round trip and one
     * commit: the token's consumption (as `tokens.consume`), then, only if it
     * consumed the token, `signInVerifiedEmail`'s upsert for the token's
     * address at the consumption's `now`. Undefined when no token was
     * consumed: nothing was written. Sign-ins of other addresses arriving
     * meanwhile share the statement (`signInGrouped`); single use is still
     * decided per token row by the conditional UPDATE.
     */
    async signInWithToken(consumption: TokenConsumption): Promise<(SignInUpsert & { token: TokenRecord }) | undefined> {
      const row = await signInGrouped(consumption);
      if (!row) return undefined;
      const token = tokenFromPrefixed(row);
      return { token, ...(row.id ? toSignInUpsert(row) : await this.suspended(token.email)) };
    },

    /** The account an upsert left untouched because it is suspended. */
    async suspended(email: string): Promise<SignInUpsert> {
      const suspended = await this.findByEmail(email);
      if (!suspended) throw new Error('user vanished between insert and select');
      return { user: suspended, created: false };
    },

    async insert(user: { id: string; primaryEmail: string | null; name: string | null; avatar: string | null; passwordHash: string | null; emailVerified: boolean; now: Date }) {
      const [row] = await table()
        .insert({
          id: user.id,
          primary_email: user.primaryEmail,
          name: user.name,
          avatar: user.avatar,
          password_hash: user.passwordHash,
          email_verified: user.emailVerified,
          created_at: user.now,
          updated_at: user.now,
        })
        .returning('*');
      return toUser(row as Row);
    },

    async list(filter: { search?: string }, page: { page: number; pageSize: number }) {
      const base = table().modify((query) => {
        if (filter.search) {
          const pattern = `%${escapeLike(filter.search)}%`;
          query.where((where) => where.whereILike('primary_email', pattern).orWhereILike('name', pattern).orWhere('id', filter.search!));
        }
      });
      const [{ count }] = (await base.clone().count({ count: '*' })) as [{ count: number | string }];
      const rows = await base
        .clone()
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(page.pageSize)
        .offset((page.page - 1) * page.pageSize);
      return { items: (rows as Row[]).map(toUser), total: Number(count) };
    },

    async update(
      id: string,
      changes: { primaryEmail?: string | null; name?: string | null; avatar?: string | null; passwordHash?: string | null; isSuspended?: boolean; emailVerified?: boolean },
      now: Date,
    ) {
      const [row] = await table()
        .where({ id })
        .update({
          ...(changes.primaryEmail === undefined ? {} : { primary_email: changes.primaryEmail }),
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.avatar === undefined ? {} : { avatar: changes.avatar }),
          ...(changes.passwordHash === undefined ? {} : { password_hash: changes.passwordHash }),
          ...(changes.isSuspended === undefined ? {} : { is_suspended: changes.isSuspended }),
          ...(changes.emailVerified === undefined ? {} : { email_verified: changes.emailVerified }),
          updated_at: now,
        })
        .returning('*');
      return row ? toUser(row as Row) : undefined;
    },

    async delete(id: string) {
      return (await table().where({ id }).delete()) > 0;
    },

    async passwordHashOf(id: string) {
      return (await table().where({ id }).first('password_hash'))?.password_hash ?? null;
    },

    /** Records a sign-in; proving the mailbox also verifies the email. */
    async recordSignIn(id: string, now: Date, emailVerified: boolean) {
      await table()
        .where({ id })
        .update({
          last_sign_in_at: now,
          updated_at: now,
          ...(emailVerified ? { email_verified: true } : {}),
        });
    },
  };
}
