import type { AdapterPayload } from 'oidc-provider';
import { invalidatedCache, type InvalidationChannel } from '../db/invalidation.ts';
import { jsonCopy } from '../lib/json-copy.ts';

export type ModelCache = ReturnType<typeof createModelCache>;

/**
 * The oidc-provider models kept across requests: each is read soon after it
 * is written (a grant at the resume, code exchange and userinfo of the same
 * sign-in, and at every refresh; an access token at the userinfo call that
 * follows the code exchange) and changes rarely.
 */
export const CACHED_MODELS: ReadonlySet<string> = new Set(['Grant', 'AccessToken']);

/** How long an instance keeps a model it read or wrote (a backstop: changes are announced). */
export const MODEL_CACHE_MS = 30_000;

/** A model as its row says: the payload and when the row expires (ms, or null). */
export type CachedModel = { payload: AdapterPayload; expiresAt: number | null };

/**
 * Grant and AccessToken rows (`CACHED_MODELS`), kept while the invalidation
 * channel is live. The triggers of migration 20261127070000_model_mfa_invalidation
 * announce every UPDATE and DELETE of a live (unexpired) row of these
 * models as `models:<model>:<id>`, whoever makes it (logout, revocation,
 * ended sessions, a sign-in adding scopes to the grant it reuses, SQL by
 * hand). New rows need no notice: a miss is never kept. While the channel is
 * down every read goes to the database.
 *
 * Callers get copies (`jsonCopy`: what the database would answer), since
 * oidc-provider changes the objects it is given.
 */
export function createModelCache(deps: { invalidation: InvalidationChannel; ttlMs?: number; maxEntries?: number }) {
  const models = invalidatedCache<CachedModel>(deps.invalidation, 'models', {
    ttlMs: deps.ttlMs ?? MODEL_CACHE_MS,
    maxEntries: deps.maxEntries ?? 10_000,
  });
  const live = (entry: CachedModel | undefined): AdapterPayload | undefined =>
    entry && (entry.expiresAt === null || entry.expiresAt > Date.now()) ? jsonCopy(entry.payload) : undefined;
  const keyOf = (model: string, id: string) => `${model}:${id}`;
  return {
    keeps: (model: string) => CACHED_MODELS.has(model),
    /** The model `id`, from memory or through `load` (the row as the database has it now). */
    async find(model: string, id: string, load: () => Promise<CachedModel | undefined>): Promise<AdapterPayload | undefined> {
      return live(await models.get(keyOf(model, id), load));
    },
    /**
     * Runs `write` (an upsert of the model as `payload`) and keeps `payload`,
     * unless the row was changed or announced while the write was in flight.
     * `payload` is kept as given: pass a copy nothing else holds (the adapter
     * takes one when the provider saves, `jsonCopy`), so it is not copied twice.
     */
    async writeThrough(model: string, id: string, payload: AdapterPayload, expiresAt: number | null, write: () => Promise<void>): Promise<void> {
      const key = keyOf(model, id);
      models.delete(key);
      const mark = models.mark();
      try {
        await write();
      } catch (error) {
        models.delete(key);
        throw error;
      }
      models.put(key, { payload, expiresAt }, mark);
    },
    /**
     * Runs `write` (a delete or consumption) and drops the model `id` before
     * and after it, so no read in between is kept; without an id (a write of
     * several rows), everything.
     */
    async dropping<T>(model: string, id: string | undefined, write: () => Promise<T>): Promise<T> {
      const drop = () => (id === undefined ? models.clear() : models.delete(keyOf(model, id)));
      drop();
      try {
        return await write();
      } finally {
        drop();
      }
    },
  };
}
