/**
 * Connections of knex's pool that the hot statements (./statements.ts
 * `runOnPool`) keep between one statement and the next instead of handing
 * each back at once. Taking a connection from knex's pool (tarn) costs two
 * pending operations with a timer each, an asynchronous validation and a
 * handful of promises, every time: about 5 µs of CPU in a loop of its own,
 * more in a busy server (the collector's share). Kept here, a refresh cost
 * 3% less CPU (Sesame and PostgreSQL), a mint 5%, a sign-in 2–3%
 * (bench/RESULTS.md, fourteenth round).
 *
 * The pool still owns every connection, and its maximum still holds: a
 * connection kept here is one the pool counts as used. So that knex's own
 * queries and transactions never wait on a connection kept idle here:
 * - when the pool is asked for a connection and has none free, an idle one
 *   kept here goes back to it at once;
 * - a statement that ends while someone waits on the pool hands its
 *   connection back instead of keeping it;
 * - at most all but one of the pool's connections are kept; a statement
 *   finding them all busy waits for the first of them to be free;
 * - one unused for `idleMs` (1 s) goes back, so the pool's own idle
 *   timeout can close it;
 * - when the pool is destroyed, every one goes back (the pool waits for them).
 * A connection that failed (knex marks it) goes back too, and the pool's
 * validation destroys it.
 */
type Connection = {
  query(query: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: unknown[]; rowCount: number | null }>;
  /** Set by knex's PostgreSQL client when the connection errors or ends. */
  __knex__disposed?: unknown;
  _ending?: boolean;
  _queryable?: boolean;
};

/** The part of tarn's pool used here. */
type Pool = {
  max: number;
  numFree(): number;
  numPendingAcquires(): number;
  on(event: 'acquireRequest' | 'poolDestroyRequest', listener: () => void): unknown;
};

export type PoolClient = {
  pool?: Pool;
  acquireConnection(): Promise<Connection>;
  releaseConnection(connection: Connection): Promise<unknown>;
};

type Held = { use<T>(work: (connection: Connection) => Promise<T>): Promise<T> };

const byPool = new WeakMap<Pool, Held>();

/** What `client`'s pool keeps for the hot statements (one per pool: knex makes a new one if the database is reopened). */
export function heldConnections(client: PoolClient, options: { idleMs?: number } = {}): Held | undefined {
  const pool = client.pool;
  if (!pool) return undefined;
  let held = byPool.get(pool);
  if (!held) {
    held = holdFrom(client, pool, options.idleMs ?? 1_000);
    byPool.set(pool, held);
  }
  return held;
}

const usable = (connection: Connection) => !connection.__knex__disposed && connection._ending !== true && connection._queryable !== false;

function holdFrom(client: PoolClient, pool: Pool, idleMs: number): Held {
  /** Kept and not in use, the last put back last (taken first, so the fewest stay warm). */
  const idle: Array<{ connection: Connection; since: number }> = [];
  /** Statements waiting for one of the kept connections (as many kept as allowed, all busy). */
  const waiting: Array<{ resolve: (connection: Connection) => void; reject: (error: unknown) => void }> = [];
  /** Taken from the pool and not given back: idle here or running a statement. */
  let kept = 0;
  let closing = false;
  let sweeper: NodeJS.Timeout | undefined;
  const most = Math.max(1, pool.max - 1);

  const acquire = async (): Promise<Connection> => {
    kept += 1;
    try {
      return await client.acquireConnection();
    } catch (error) {
      kept -= 1;
      throw error;
    }
  };

  /** Back to the pool; a statement waiting here then asks the pool itself, behind whoever waits there. */
  const giveBack = (connection: Connection) => {
    kept -= 1;
    try {
      void client.releaseConnection(connection).catch(() => {});
    } catch {
      // The pool is gone already (destroyed): nothing to give back to.
    }
    const next = waiting.shift();
    if (next) acquire().then(next.resolve, next.reject);
  };

  pool.on('acquireRequest', () => {
    if (pool.numFree() === 0 && idle.length > 0) giveBack(idle.pop()!.connection);
  });
  pool.on('poolDestroyRequest', () => {
    closing = true;
    while (idle.length > 0) giveBack(idle.pop()!.connection);
  });

  /** Gives back what has sat unused for `idleMs`; stops once nothing is kept idle. */
  const sweep = () => {
    const before = Date.now() - idleMs;
    // The bottom of the stack has been unused the longest.
    while (idle.length > 0 && idle[0]!.since <= before) giveBack(idle.shift()!.connection);
    if (idle.length === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  /** The most recently used idle connection that is still usable (others go back), if any. */
  const takeIdle = (): Connection | undefined => {
    for (let found = idle.pop(); found; found = idle.pop()) {
      if (usable(found.connection)) return found.connection;
      giveBack(found.connection);
    }
    return undefined;
  };

  /** A connection when none is idle: a new one from the pool while under the cap, else the first one put back. */
  const take = (): Promise<Connection> => {
    if (kept < most || closing) return acquire();
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };

  const put = (connection: Connection) => {
    // Someone waits on the pool itself (knex's own queries, a transaction): it comes first.
    if (closing || !usable(connection) || pool.numPendingAcquires() > 0) return giveBack(connection);
    const next = waiting.shift();
    if (next) return next.resolve(connection);
    idle.push({ connection, since: Date.now() });
    if (!sweeper) {
      sweeper = setInterval(sweep, idleMs);
      sweeper.unref();
    }
  };

  /** Runs `work` on `connection` and puts it back once the work has settled. */
  const runOn = <T>(connection: Connection, work: (connection: Connection) => Promise<T>): Promise<T> => {
    let running: Promise<T>;
    try {
      running = work(connection);
    } catch (error) {
      put(connection);
      return Promise.reject(error);
    }
    return running.then(
      (result) => {
        put(connection);
        return result;
      },
      (error: unknown) => {
        put(connection);
        throw error;
      },
    );
  };

  return {
    // Without async and await: an idle connection starts the work at once, and a statement makes two
    // promises here instead of five (every await makes one more while promise hooks are on).
    use(work) {
      const connection = takeIdle();
      return connection ? runOn(connection, work) : take().then((taken) => runOn(taken, work));
    },
  };
}
