import type { Middleware } from 'koa';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../db/index.ts';
import { columnsOf, recordset, run, statement } from '../db/statements.ts';
import { createGroupCommit, runsOfUniqueKeys } from '../lib/group-commit.ts';
import { jsonCopy } from '../lib/json-copy.ts';
import { requestSlot } from '../lib/request-store.ts';
import type { CachedModel, ModelCache } from './model-cache.ts';

type Row = { payload: AdapterPayload; expires_at: Date | null; consumed_at: Date | null };

const TABLE = 'oidc_model_instances';

/**
 * What the adapter keeps for the request in progress (see `adapterRequestScope`).
 *
 * - `reads`: oidc-provider loads the same model more than once in one request
 *   (the confirm step reads its Interaction twice). A `find` by (model, id)
 *   is answered from the request's first read; every write of the key
 *   drops it. Hits are copies, so what the provider does to one object does
 *   not leak into the next read.
 * - `pending`: upserts and deletions are held until the request's answer is
 *   ready, then written together (one statement) before it is sent: the
 *   resume's grant, session, code and interaction deletion cost one round
 *   trip instead of four, the token response's access and refresh token one
 *   instead of two. No one outside the request
 *   can tell: nothing it answers has left before its writes are committed.
 *   The last write of a key wins; whatever asks the database about a key
 *   with a write pending (a read, a consumption, a lookup by another column)
 *   writes the pending ones first.
 *
 * Nothing is kept from one request to the next, so several instances see
 * each other's writes as before.
 */
type RequestScope = {
  reads: Map<string, AdapterPayload | null>;
  pending: Map<string, () => Promise<void>>;
  /** The outcome of every write sent so far; each batch starts once the one before it has settled. */
  written: Promise<Array<PromiseSettledResult<void>>>;
  /** Batches sent and not settled yet. */
  writing: number;
  /** Set when the request's writes go out at its end: later writes (work it left running) are made at once. */
  closed: boolean;
  /** Whether any batch was ever sent (most requests send none: nothing to wait for at their end). */
  sent: boolean;
};
const requestScope = requestSlot<RequestScope>('adapter scope');

/** Whether the request holds writes or has sent some (what `writePending` waits for). */
const hasWrites = (scope: RequestScope) => scope.pending.size > 0 || scope.sent;

/** What a held write answers at once (it is made when the request ends): shared, as it never changes. */
const HELD: Promise<void> = Promise.resolve();

/** What a request has written before its first write: shared, since it is never changed. */
const NOTHING_WRITTEN: Promise<Array<PromiseSettledResult<void>>> = Promise.resolve([]);

/**
 * Sends the scope's pending writes (after any batch still in flight) and
 * resolves once everything sent so far has settled; throws the first failure
 * of any of them, so a failed write fails the request even when a read that
 * sent it early saw the error first.
 */
async function writePending(scope: RequestScope): Promise<void> {
  if (!hasWrites(scope)) return;
  if (scope.pending.size > 0) {
    scope.sent = true;
    const writes = [...scope.pending.values()];
    scope.pending.clear();
    scope.writing += 1;
    scope.written = scope.written.then(async (earlier) => {
      try {
        return [...earlier, ...(await Promise.allSettled(writes.map((write) => write())))];
      } finally {
        scope.writing -= 1;
      }
    });
  }
  const failed = (await scope.written).find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Upserted rows, one JSON parameter (src/db/statements.ts `recordset`), in `UpsertValues` order. */
const UPSERTED = recordset([
  ['model_name', 'text'],
  ['id', 'text'],
  ['payload', 'jsonb'],
  ['expires_at', 'timestamptz'],
  ['grant_id', 'text'],
  ['uid', 'text'],
  ['user_code', 'text'],
]);
const UPSERT_MANY = `INSERT INTO ${TABLE} (model_name, id, payload, expires_at, grant_id, uid, user_code)
    SELECT model_name, id, payload, expires_at, grant_id, uid, user_code FROM ${UPSERTED.from('r')}
    ON CONFLICT (model_name, id) DO UPDATE SET payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at,
      grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid, user_code = EXCLUDED.user_code`;
/**
 * The keys of a statement that joins them to the table (one array per key
 * column). Each array is behind a subquery (`(SELECT ?::text[])`): with
 * `unnest(?::text[], …)` PostgreSQL sizes the unnest by the arrays whenever
 * it plans with the values, so every plan made with them looked cheaper than
 * the prepared statement's generic one, and these statements were planned
 * anew on every execution (planning cost three times the execution of a
 * two-key read, bench/RESULTS.md). Behind a subquery the arrays are sized
 * alike either way (ten keys), and the generic plan is kept: a nested loop
 * over the primary key.
 */
const KEYS = `unnest((SELECT ?::text[]), (SELECT ?::text[])) AS k(model_name, id)`;
const DESTROY_MANY = `DELETE FROM ${TABLE} t USING ${KEYS} WHERE t.model_name = k.model_name AND t.id = k.id`;

/**
 * The hot statements as fixed text (knex's builder compiles each query anew:
 * about a tenth of the server's CPU per sign-in in the profile), prepared on
 * PostgreSQL (src/db/statements.ts).
 */
const SQL = {
  find: statement('oidc_find', `SELECT payload, expires_at, consumed_at FROM ${TABLE} WHERE model_name = ? AND id = ? LIMIT 1`),
  /** Several reads in one statement (one array per key column). */
  findMany: statement(
    'oidc_find_many',
    `SELECT t.model_name, t.id, t.payload, t.expires_at, t.consumed_at FROM ${TABLE} t
    JOIN ${KEYS} ON t.model_name = k.model_name AND t.id = k.id`,
  ),
  upsert: statement(
    'oidc_upsert',
    `INSERT INTO ${TABLE} (model_name, id, payload, expires_at, grant_id, uid, user_code) VALUES (?, ?, ?::jsonb, ?, ?, ?, ?)
    ON CONFLICT (model_name, id) DO UPDATE SET payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at,
      grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid, user_code = EXCLUDED.user_code`,
  ),
  /** Several upserts in one statement, whatever their number (one JSON parameter); each key at most once. */
  upsertMany: statement('oidc_upsert_many', UPSERT_MANY),
  consume: statement('oidc_consume', `UPDATE ${TABLE} SET consumed_at = CURRENT_TIMESTAMP WHERE model_name = ? AND id = ? AND consumed_at IS NULL RETURNING 1`),
  /** Several consumptions in one statement: answers the keys it consumed (each row once). */
  consumeMany: statement(
    'oidc_consume_many',
    `UPDATE ${TABLE} t SET consumed_at = CURRENT_TIMESTAMP FROM ${KEYS}
    WHERE t.model_name = k.model_name AND t.id = k.id AND t.consumed_at IS NULL RETURNING t.model_name, t.id`,
  ),
  destroy: statement('oidc_destroy', `DELETE FROM ${TABLE} WHERE model_name = ? AND id = ?`),
  destroyMany: statement('oidc_destroy_many', DESTROY_MANY),
  /** Deletions and upserts of other keys in one statement (the deletions' two arrays, then the upserts' JSON). */
  destroyAndUpsertMany: statement('oidc_destroy_and_upsert_many', `WITH gone AS (${DESTROY_MANY}) ${UPSERT_MANY}`),
};

/** Upserts, reads, consumptions or deletions per statement at most (group commit). */
const MAX_BATCH = 100;

/** An upsert's values, in the order of the statements' columns. */
type UpsertValues = [model: string, id: string, payload: string, expiresAt: Date | null, grantId: unknown, uid: unknown, userCode: unknown];

/** A write of one row: an upsert, or a deletion of a (model, id). */
type Write = { upsert: UpsertValues } | { destroy: [model: string, id: string] };

const keyOf = (write: Write) => {
  const [model, id] = 'upsert' in write ? write.upsert : write.destroy;
  return `${model}:${id}`;
};

/**
 * When a saved model expires: at its own `exp` (epoch seconds) when it has
 * one, which a save that keeps the expiry (an Interaction's or Session's
 * `persist()`) leaves as it was, so the row's indexed `expires_at` does not
 * change and PostgreSQL can update the row in place
 * (migrations/20261128000000_model_rows_hot.ts); otherwise `expiresIn`
 * seconds from now, and never when that is 0.
 */
function expiryOf(payload: AdapterPayload, expiresIn: number): Date | null {
  if (!expiresIn) return null;
  return typeof payload.exp === 'number' ? new Date(payload.exp * 1000) : new Date(Date.now() + expiresIn * 1000);
}

/**
 * Koa middleware giving each request its own adapter scope (`RequestScope`):
 * models read once per request, and writes held until the answer is ready,
 * then written before it is sent. Mount it inside the error handler: when
 * those writes fail, the answer becomes an error (a redirect carrying a code
 * that was not stored loses its Location), as an inline write failing would
 * have made it.
 */
export const adapterRequestScope = (): Middleware => (ctx, next) => {
  const scope: RequestScope = { reads: new Map(), pending: new Map(), written: NOTHING_WRITTEN, writing: 0, closed: false, sent: false };
  return requestScope.enter(ctx, scope, async () => {
    let failure: { error: unknown } | undefined;
    try {
      await next();
    } catch (error) {
      failure = { error };
    }
    scope.closed = true;
    // Most requests wrote no provider model: no call, no wait.
    if (hasWrites(scope)) {
      try {
        await writePending(scope);
      } catch (error) {
        ctx.remove('Location');
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  });
};

/**
 * Persists every oidc-provider model in one JSONB table. Clients are the
 * exception: they come from the applications table. `consume` is a
 * conditional UPDATE, so of two parallel redemptions of one code or refresh
 * token exactly one wins; the loser gets `invalid_grant`. Statements of one
 * kind that arrive while another of that kind is in flight go together as
 * the next one (group commit), each caller answered for its own row. Grants
 * and access tokens are also kept across requests in `deps.models`
 * (src/oidc/model-cache.ts), written through on save and dropped on every change.
 */
export function createAdapterFactory(
  db: Database,
  deps: { findClient: (id: string) => Promise<Record<string, unknown> | undefined>; models?: ModelCache },
) {
  const toPayload = (row: Row | undefined): AdapterPayload | undefined => {
    if (!row) return undefined;
    if (row.expires_at && new Date(row.expires_at).getTime() <= Date.now()) return undefined;
    return row.consumed_at
      ? { ...row.payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) }
      : row.payload;
  };

  /**
   * Upserts and deletions that arrive while another write is in flight share
   * the next statement (src/lib/group-commit.ts): a sign-in saves eight
   * models, a refresh two; the resume's three saves and its interaction's
   * deletion go as one statement, and under load concurrent requests' writes
   * go together. Each resolves once its own row is committed.
   */
  const writeGrouped = createGroupCommit(async (writes: Write[]) => {
    // One statement cannot write a row twice, and the later write of a key must win.
    for (const batch of runsOfUniqueKeys(writes, keyOf)) {
      const upserts = batch.flatMap((write) => ('upsert' in write ? [write.upsert] : []));
      const deletions = batch.flatMap((write) => ('destroy' in write ? [write.destroy] : []));
      if (deletions.length === 0) await (upserts.length === 1 ? run(db, SQL.upsert, upserts[0]!) : run(db, SQL.upsertMany, [UPSERTED.value(upserts)]));
      else if (upserts.length === 0) await (deletions.length === 1 ? run(db, SQL.destroy, deletions[0]!) : run(db, SQL.destroyMany, columnsOf(deletions)));
      else await run(db, SQL.destroyAndUpsertMany, [...columnsOf(deletions), UPSERTED.value(upserts)]);
    }
    return writes.map(() => undefined);
  }, { maxBatch: MAX_BATCH });
  /** Reads that arrive while another is in flight share the next statement, like the upserts. */
  const readRow = createGroupCommit(async (keys: Array<[name: string, id: string]>): Promise<Array<Row | undefined>> => {
    if (keys.length === 1) return [(await run<Row>(db, SQL.find, keys[0]!))[0]];
    const rows = await run<Row & { model_name: string; id: string }>(db, SQL.findMany, columnsOf(keys));
    const byKey = new Map<string, Row>(rows.map((row) => [`${row.model_name}:${row.id}`, row]));
    // Two reads of one key get a row each (a copy for the second): the provider changes what it is given.
    const given = new Set<string>();
    return keys.map(([name, id]) => {
      const key = `${name}:${id}`;
      const row = byKey.get(key);
      if (row && given.has(key)) return { ...row, payload: jsonCopy(row.payload) };
      given.add(key);
      return row;
    });
  }, { maxBatch: MAX_BATCH });
  /**
   * Consumptions that arrive while another is in flight share the next
   * statement. Of several consumptions of one key, in one statement or not,
   * exactly one wins: the row is consumed once, and only the first asker of
   * a key in a batch is told it won.
   */
  const consumeGrouped = createGroupCommit(async (keys: Array<[name: string, id: string]>): Promise<boolean[]> => {
    if (keys.length === 1) return [(await run(db, SQL.consume, keys[0]!)).length > 0];
    const consumed = new Set((await run<{ model_name: string; id: string }>(db, SQL.consumeMany, columnsOf(keys))).map((row) => `${row.model_name}:${row.id}`));
    return keys.map(([name, id]) => consumed.delete(`${name}:${id}`));
  }, { maxBatch: MAX_BATCH });
  const loadModel = async (name: string, id: string): Promise<CachedModel | undefined> => {
    const row = await readRow([name, id]);
    const payload = toPayload(row);
    return payload && { payload, expiresAt: row?.expires_at ? new Date(row.expires_at).getTime() : null };
  };

  return class DatabaseAdapter implements Adapter {
    /** The cross-request cache, for the models it keeps. */
    private readonly models: ModelCache | undefined;

    constructor(readonly name: string) {
      this.models = deps.models?.keeps(name) ? deps.models : undefined;
    }

    private rows() {
      return db(TABLE).where('model_name', this.name);
    }

    private forget(id?: string): void {
      const cache = requestScope.get()?.reads;
      if (!cache) return;
      if (id === undefined) cache.clear();
      else cache.delete(`${this.name}:${id}`);
    }

    /** Holds `write` of `id` until the request's end (the last write of a key wins), or makes it now outside a request. */
    private hold(id: string, write: () => Promise<void>): Promise<void> {
      this.forget(id);
      const scope = requestScope.get();
      if (!scope || scope.closed) return write();
      scope.pending.set(`${this.name}:${id}`, write);
      return HELD;
    }

    /**
     * Before asking the database about `id` (undefined: about rows found
     * otherwise), writes what the request holds for it, and waits for its
     * writes already on their way.
     */
    private settle(id?: string): Promise<void> | undefined {
      const scope = requestScope.get();
      if (!scope) return undefined;
      const held = id === undefined ? scope.pending.size > 0 : scope.pending.has(`${this.name}:${id}`);
      // Nothing to wait for: no promise (the caller skips its await; each await makes promises).
      return held || scope.writing > 0 ? writePending(scope) : undefined;
    }

    /** A write of `id` (undefined: of several rows), with the model cache dropping what it changes. */
    private dropping<T>(id: string | undefined, write: () => Promise<T>): Promise<T> {
      return this.models ? this.models.dropping(this.name, id, write) : write();
    }

    // Not async (nor is `hold`): a held save answers with one shared resolved promise.
    upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const expiresAt = expiryOf(payload, expiresIn);
      // Taken now: the provider may change the object after the save returns.
      const values: UpsertValues = [this.name, id, JSON.stringify(payload), expiresAt, payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null];
      const write = () => writeGrouped({ upsert: values });
      const models = this.models;
      if (!models) return this.hold(id, write);
      // The model cache keeps this copy as it is: taken now, since the provider may change `payload` before the write.
      const kept = jsonCopy(payload);
      return this.hold(id, () => models.writeThrough(this.name, id, kept, expiresAt?.getTime() ?? null, write));
    }

    find(id: string): Promise<AdapterPayload | undefined> {
      return this.name === 'Client' ? (deps.findClient(id) as Promise<AdapterPayload | undefined>) : this.findModel(id);
    }

    private async findModel(id: string): Promise<AdapterPayload | undefined> {
      const settling = this.settle(id);
      if (settling) await settling;
      const cache = requestScope.get()?.reads;
      const key = `${this.name}:${id}`;
      const hit = cache?.get(key);
      if (hit !== undefined) {
        // Expiry is checked again: a request can outlive a short-lived model.
        if (hit === null || (typeof hit.exp === 'number' && hit.exp * 1000 <= Date.now())) return undefined;
        return jsonCopy(hit);
      }
      const payload = this.models ? await this.models.find(this.name, id, () => loadModel(this.name, id)) : toPayload(await readRow([this.name, id]));
      cache?.set(key, payload === undefined ? null : jsonCopy(payload));
      return payload;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      await this.settle();
      return toPayload(await this.rows().andWhere('uid', uid).first<Row>('payload', 'expires_at', 'consumed_at'));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      await this.settle();
      return toPayload(await this.rows().andWhere('user_code', userCode).first<Row>('payload', 'expires_at', 'consumed_at'));
    }

    async consume(id: string): Promise<void> {
      const settling = this.settle(id);
      if (settling) await settling;
      this.forget(id);
      const won = await this.dropping(id, () => consumeGrouped([this.name, id]));
      if (!won) throw new errors.InvalidGrant(`${this.name} already consumed`);
    }

    async destroy(id: string): Promise<void> {
      await this.hold(id, async () => {
        await this.dropping(id, () => writeGrouped({ destroy: [this.name, id] }));
      });
    }

    /**
     * oidc-provider calls this once per token model when a grant is revoked. Only
     * this model's rows go: an Interaction also records a grant id, and deleting
     * it would strand the sign-in that is replacing the old session.
     */
    async revokeByGrantId(grantId: string): Promise<void> {
      await this.settle();
      this.forget();
      await this.dropping(undefined, () => this.rows().andWhere('grant_id', grantId).delete());
    }
  };
}
