import providerStorage from 'oidc-provider/lib/helpers/als.js';

/**
 * Per-request state (the events' request context, the adapter's request
 * scope), kept on the request's Koa context and found through the
 * AsyncLocalStorage oidc-provider already keeps for it: the one behind
 * `Provider.ctx`, which the provider enters with the same context for its
 * own routes (its app is mounted, so it shares the context).
 *
 * Why not one AsyncLocalStorage of our own: while any is in use, Node runs
 * an init hook on every promise the process creates, and each storage copies
 * its store onto every new promise. A sign-in creates about 1,300 promises;
 * Sesame's two storages besides the provider's cost about 40 ns on each,
 * some 2% of the server's CPU per sign-in (bench/RESULTS.md, tenth round).
 *
 * The storage is imported from oidc-provider's own module, not through its
 * main entry, so the CLI (which loads the event bus) does not load the
 * provider. tests/unit/request-store.test.ts fails if `Provider.ctx` ever
 * stops reading this storage.
 */
type Carrier = { [SLOTS]?: Map<symbol, unknown> };
const SLOTS = Symbol('sesame.requestSlots');

/** The request being handled, as the innermost `enter` (or the provider) set it; undefined outside a request. */
function current(): Carrier | undefined {
  const store = providerStorage.getStore();
  return typeof store === 'object' && store !== null ? (store as Carrier) : undefined;
}

export type RequestSlot<T> = {
  /** This slot's value for the request being handled, if any. */
  get(): T | undefined;
  /**
   * Runs `next` as part of request `ctx` with `value` in this slot (Koa
   * middleware calls it). What `next` starts sees the value, also work it
   * leaves running after the request has ended, as with an AsyncLocalStorage
   * of its own.
   */
  enter<R>(ctx: object, value: T, next: () => Promise<R>): Promise<R>;
};

/** A named place for one kind of per-request state; `name` only shows in debuggers. */
export function requestSlot<T>(name: string): RequestSlot<T> {
  const key = Symbol(name);
  return {
    get() {
      return current()?.[SLOTS]?.get(key) as T | undefined;
    },
    enter(ctx, value, next) {
      ((ctx as Carrier)[SLOTS] ??= new Map()).set(key, value);
      return providerStorage.getStore() === ctx ? next() : providerStorage.run(ctx, next);
    },
  };
}
