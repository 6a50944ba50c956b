import type { AdapterPayload } from 'oidc-provider';
import { invalidatedCache, type InvalidationChannel } from '../db/invalidation.ts';

export type GrantCache = ReturnType<typeof createGrantCache>;

/** How long an instance keeps a grant it read or wrote (a backstop: changes are announced). */
export const GRANT_CACHE_MS = 60_000;

/** A grant as its row says: the payload and when the row expires (ms, or null). */
export type CachedGrant = { payload: AdapterPayload; expiresAt: number | null };

/**
 * oidc-provider's Grant rows, read at every resume, code exchange, userinfo
 * and refresh, kept while the invalidation channel is live. A grant changes
 * only when a sign-in adds scopes to it or it is revoked (logout, ended
 * sessions, cleanup); the triggers of migration 20261127070000_grant_mfa_invalidation
 * announce every UPDATE and DELETE of a Grant row, whoever makes it. New
 * grants need no notice: a miss is never kept. While the channel is down
 * every read goes to the database.
 *
 * Callers get copies: oidc-provider changes the objects it is given.
 */
export function createGrantCache(deps: { invalidation: InvalidationChannel; ttlMs?: number; maxEntries?: number }) {
  const grants = invalidatedCache<CachedGrant>(deps.invalidation, 'grants', {
    ttlMs: deps.ttlMs ?? GRANT_CACHE_MS,
    maxEntries: deps.maxEntries ?? 10_000,
  });
  const live = (entry: CachedGrant | undefined): AdapterPayload | undefined =>
    entry && (entry.expiresAt === null || entry.expiresAt > Date.now()) ? structuredClone(entry.payload) : undefined;
  return {
    /** The grant `id`, from memory or through `load` (the row as the database has it now). */
    async find(id: string, load: () => Promise<CachedGrant | undefined>): Promise<AdapterPayload | undefined> {
      return live(await grants.get(id, load));
    },
    /**
     * Runs `write` (an upsert of the grant as `payload`) and keeps `payload`,
     * unless the grant was changed or announced while the write was in flight.
     */
    async writeThrough(id: string, payload: AdapterPayload, expiresAt: number | null, write: () => Promise<void>): Promise<void> {
      grants.delete(id);
      const mark = grants.mark();
      try {
        await write();
      } catch (error) {
        grants.delete(id);
        throw error;
      }
      if (!grants.put(id, { payload: structuredClone(payload), expiresAt }, mark)) grants.delete(id);
    },
    /** Runs `write` (a delete) and drops the grant before and after it, so no read in between is kept. */
    async dropping<T>(id: string | undefined, write: () => Promise<T>): Promise<T> {
      const drop = () => (id === undefined ? grants.clear() : grants.delete(id));
      drop();
      try {
        return await write();
      } finally {
        drop();
      }
    },
  };
}
