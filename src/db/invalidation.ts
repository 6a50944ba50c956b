import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { createTtlCache, type TtlCache } from '../lib/ttl-cache.ts';
import type { Logger } from '../logger.ts';
import { embeddedPglite, type Database } from './index.ts';

/** The channel the triggers of migrations/20261127060000_invalidation.ts notify on. */
export const INVALIDATION_CHANNEL = 'sesame_invalidate';

/**
 * What a notice names: `users:<id>`, `applications:<id>`, `hooks:*`,
 * `models:<model>:<id>` (oidc-provider's Grant and AccessToken rows), `mfa:<user id>` (a user's authenticators),
 * `sign_in_settings:*`, `banned_ips:*`.
 */
export type InvalidationTopic = 'users' | 'applications' | 'hooks' | 'models' | 'mfa' | 'sign_in_settings' | 'banned_ips';

/**
 * Tells this process's caches that rows changed, whoever changed them. While
 * it is not live (not yet listening, connection lost, reconnecting) notices
 * may be missed, so caches must not answer from memory: `isLive()` is false
 * then, and every subscriber is told `'*'` (drop everything) when the channel
 * goes down and again when it is back.
 */
export type InvalidationChannel = {
  isLive(): boolean;
  /** `onInvalidate` gets the changed row's id, or `'*'` for all of them. */
  subscribe(topic: InvalidationTopic, onInvalidate: (id: string) => void): void;
  /** The listening PostgreSQL backend's pid (undefined while not connected, or on the embedded database). */
  listenerPid(): number | undefined;
  close(): Promise<void>;
};

/** Subscribers and dispatch, shared by the channels below. */
function createSubscribers(logger?: Logger) {
  const subscribers = new Map<InvalidationTopic, Set<(id: string) => void>>();
  const call = (onInvalidate: (id: string) => void, id: string) => {
    try {
      onInvalidate(id);
    } catch (error) {
      logger?.error({ err: error }, 'cache invalidation failed');
    }
  };
  return {
    add(topic: InvalidationTopic, onInvalidate: (id: string) => void) {
      const set = subscribers.get(topic) ?? new Set();
      set.add(onInvalidate);
      subscribers.set(topic, set);
    },
    /** A `<topic>:<id>` payload; anything else is ignored. */
    dispatch(payload: string) {
      const at = payload.indexOf(':');
      if (at <= 0) return;
      const id = payload.slice(at + 1);
      for (const onInvalidate of subscribers.get(payload.slice(0, at) as InvalidationTopic) ?? []) call(onInvalidate, id);
    },
    clearAll() {
      for (const set of subscribers.values()) for (const onInvalidate of set) call(onInvalidate, '*');
    },
  };
}

/**
 * No listener: caches are never live, so every read goes to the database.
 * For processes that do not stay (the CLI) and cores built without one.
 */
export function withoutInvalidation(): InvalidationChannel {
  return { isLive: () => false, subscribe: () => {}, listenerPid: () => undefined, close: async () => {} };
}

/**
 * The channel for `db`: on PostgreSQL a connection of its own that LISTENs
 * (to `listenUrl`, default: the database's own URL; it must be a direct
 * session, not a transaction-mode PgBouncer); on the embedded PGlite,
 * PGlite's in-process LISTEN (one process only, so it cannot be lost).
 */
export async function openInvalidationChannel(
  db: Database,
  options: { listenUrl?: string; logger?: Logger; retryMs?: { first: number; max: number }; heartbeatMs?: number } = {},
): Promise<InvalidationChannel> {
  const pglite = embeddedPglite(db);
  if (pglite) return embeddedChannel(pglite, options.logger);
  // knex keeps the settings it opens pg connections with on its client.
  const connection = options.listenUrl ? { connectionString: options.listenUrl } : (db.client as { connectionSettings?: pg.ClientConfig }).connectionSettings;
  if (!connection) throw new Error('the invalidation listener needs the PostgreSQL connection settings');
  return postgresChannel({ ...options, connection });
}

async function embeddedChannel(pglite: PGlite, logger?: Logger): Promise<InvalidationChannel> {
  const subscribers = createSubscribers(logger);
  const unlisten = await pglite.listen(INVALIDATION_CHANNEL, (payload) => subscribers.dispatch(payload));
  let live = true;
  return {
    isLive: () => live,
    subscribe: subscribers.add,
    listenerPid: () => undefined,
    async close() {
      live = false;
      subscribers.clearAll();
      if (!pglite.closed) await unlisten().catch(() => {});
    },
  };
}

/**
 * A `pg.Client` of its own (knex's pool would hand the session back), kept
 * connected with backoff. A `SELECT 1` every `heartbeatMs` finds a connection
 * that died without telling (a dropped network path) sooner than keepalive.
 */
function postgresChannel(options: {
  connection: pg.ClientConfig;
  logger?: Logger;
  retryMs?: { first: number; max: number };
  heartbeatMs?: number;
}): InvalidationChannel {
  const { logger } = options;
  const retry = options.retryMs ?? { first: 250, max: 10_000 };
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const subscribers = createSubscribers(logger);
  let listener: pg.Client | undefined;
  let live = false;
  let closed = false;
  let stop = () => {};
  let ending = Promise.resolve();

  /** One connection's life, from connecting until it is lost or the channel closes; whether it was live. */
  async function listenOnce(): Promise<boolean> {
    const client = new pg.Client({
      ...options.connection,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      application_name: 'sesame-invalidation',
    });
    listener = client;
    let reason: unknown;
    let lose = () => {};
    const lost = new Promise<void>((resolve) => (lose = resolve));
    stop = lose;
    client.on('error', (error) => {
      reason = error;
      lose();
    });
    client.on('end', lose);
    client.on('notification', (message) => {
      if (message.payload) subscribers.dispatch(message.payload);
    });
    let heartbeat: NodeJS.Timeout | undefined;
    let wasLive = false;
    try {
      await client.connect();
      await client.query(`LISTEN ${INVALIDATION_CHANNEL}`);
      if (closed) return false;
      // Notices sent before LISTEN took effect were missed: whatever is cached may be stale.
      subscribers.clearAll();
      live = wasLive = true;
      logger?.info('cache invalidation listener: listening');
      heartbeat = setInterval(() => {
        const timeout = setTimeout(() => {
          reason = new Error(`no answer to a heartbeat within ${heartbeatMs} ms`);
          lose();
        }, heartbeatMs).unref();
        client.query('SELECT 1').then(
          () => clearTimeout(timeout),
          (error: unknown) => {
            clearTimeout(timeout);
            reason = error;
            lose();
          },
        );
      }, heartbeatMs).unref();
      await lost;
    } catch (error) {
      reason = error;
    } finally {
      clearInterval(heartbeat);
      live = false;
      listener = undefined;
      subscribers.clearAll();
      ending = client.end().catch(() => {});
      if (!closed) {
        const message = wasLive ? 'connection lost, caches bypassed until it is back' : 'could not listen, caches bypassed';
        logger?.warn({ err: reason }, `cache invalidation listener: ${message}`);
      }
    }
    return wasLive;
  }

  let wake = () => {};
  const running = (async () => {
    let delay = retry.first;
    while (!closed) {
      // After a connection that was up, the backoff starts over.
      if (await listenOnce()) delay = retry.first;
      if (closed) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay).unref();
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      delay = Math.min(delay * 2, retry.max);
    }
  })();

  return {
    isLive: () => live,
    subscribe: subscribers.add,
    listenerPid: () => (live ? (listener as unknown as { processID?: number } | undefined)?.processID : undefined),
    async close() {
      closed = true;
      live = false;
      stop();
      wake();
      await running;
      // A polite goodbye, but not waiting forever on a dead socket.
      await Promise.race([ending, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    },
  };
}

/**
 * A TtlCache that answers from memory only while `channel` is live, and
 * forgets the rows the channel names. `id` notices delete that key, `'*'`
 * clears everything, so a cache keyed by something else (hooks: by event)
 * should be notified with `'*'` only.
 */
export function invalidatedCache<V>(
  channel: InvalidationChannel,
  topic: InvalidationTopic,
  options: { ttlMs: number; maxEntries?: number },
): TtlCache<string, V> {
  const cache = createTtlCache<string, V>(options);
  channel.subscribe(topic, (id) => (id === '*' ? cache.clear() : cache.delete(id)));
  return {
    get: (key, load) => (channel.isLive() ? cache.get(key, load) : load()),
    delete: (key) => cache.delete(key),
    clear: () => cache.clear(),
    mark: () => cache.mark(),
    // Going down or coming back clears the cache, which moves the mark: a write that straddled it is not kept.
    put: (key, value, mark) => {
      if (channel.isLive()) return cache.put(key, value, mark);
      cache.delete(key);
      return false;
    },
  };
}
