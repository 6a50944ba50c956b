/**
 * A small per-process read-through cache with a time to live, for rows read
 * on every request that change rarely (applications, webhooks, accounts).
 * Changes made through this process call `delete`/`clear` and are seen at
 * once; another process's (another instance, the CLI) reach it through the
 * invalidation channel (`invalidatedCache` in src/db/invalidation.ts), or
 * within the TTL for a cache used without one.
 *
 * Concurrent misses of one key share a single load. A load that started
 * before a `delete` of its key (or a `put` of it, or a `clear`) is answered
 * to its caller but not kept, so an invalidation is never undone by a slow
 * read. `undefined` (not found) is not kept either: something created
 * elsewhere is found at once.
 */
export type TtlCache<K, V> = {
  get(key: K, load: () => Promise<V | undefined>): Promise<V | undefined>;
  delete(key: K): void;
  clear(): void;
  /** A mark to pass to `put`: taken before a write whose result will be kept. */
  mark(): number;
  /**
   * Keeps `value` (what a write just returned) unless the key was deleted or
   * written, or the cache cleared, since `mark` was taken: an invalidation
   * that arrived while the write was in flight may be newer than the write's
   * answer. A load of the key still in flight is not kept over it. When it
   * is not kept, the key is dropped as after any write. Answers whether it was kept.
   */
  put(key: K, value: V, mark: number): boolean;
};

export function createTtlCache<K, V>(options: { ttlMs: number; maxEntries?: number; now?: () => number }): TtlCache<K, V> {
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 1_000;
  const entries = new Map<K, { value: V; expiresAt: number }>();
  const loading = new Map<K, Promise<V | undefined>>();
  // Every delete, clear and put moves `generation`; `changedAt` remembers when each key last changed
  // and `clearedAt` the last clear, so a load or a put can tell whether *its* key changed meanwhile.
  let generation = 0;
  let clearedAt = 0;
  const changedAt = new Map<K, number>();
  const changedSince = (key: K, since: number) => clearedAt > since || (changedAt.get(key) ?? 0) > since;
  const changed = (key: K) => {
    generation += 1;
    changedAt.set(key, generation);
    // Bounded: past the limit, forget the stamps and count it as a clear (in-flight loads and puts are then not kept).
    if (changedAt.size > maxEntries * 2) {
      changedAt.clear();
      clearedAt = generation;
    }
  };

  return {
    async get(key, load) {
      if (options.ttlMs <= 0) return load();
      const entry = entries.get(key);
      if (entry && entry.expiresAt > now()) return entry.value;
      if (entry) entries.delete(key);
      const pending = loading.get(key);
      if (pending) return pending;
      const startedIn = generation;
      const promise = load().then(
        (value) => {
          if (loading.get(key) === promise) loading.delete(key);
          if (value !== undefined && !changedSince(key, startedIn)) {
            if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as K);
            entries.set(key, { value, expiresAt: now() + options.ttlMs });
          }
          return value;
        },
        (error: unknown) => {
          if (loading.get(key) === promise) loading.delete(key);
          throw error;
        },
      );
      loading.set(key, promise);
      return promise;
    },
    delete(key) {
      changed(key);
      entries.delete(key);
      loading.delete(key);
    },
    clear() {
      generation += 1;
      clearedAt = generation;
      changedAt.clear();
      entries.clear();
      loading.clear();
    },
    mark: () => generation,
    put(key, value, mark) {
      const keep = options.ttlMs > 0 && !changedSince(key, mark);
      changed(key);
      loading.delete(key);
      entries.delete(key);
      if (!keep) return false;
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as K);
      entries.set(key, { value, expiresAt: now() + options.ttlMs });
      return true;
    },
  };
}
