import { invalidatedCache, type InvalidationChannel } from '../db/invalidation.ts';
import type { User, UserRepository } from './index.ts';

export type AccountCache = ReturnType<typeof createAccountCache>;

/** How long an instance keeps a user row for oidc-provider's `findAccount`. */
export const ACCOUNT_CACHE_MS = 60_000;

/**
 * The user rows behind oidc-provider's `findAccount` (read at every resume,
 * token, userinfo and refresh), kept while the invalidation channel is live
 * and dropped the moment any writer's change is announced on it (a database
 * trigger: suspension, email, name, avatar, deletion). While the channel is
 * down every call reads the database, so a suspension is never served stale;
 * the TTL is only a backstop.
 *
 * For `findAccount` only: services deciding something (Management API,
 * sign-in) read the repository directly.
 */
export function createAccountCache(deps: { users: UserRepository; invalidation: InvalidationChannel; ttlMs?: number; maxEntries?: number }) {
  const rows = invalidatedCache<User>(deps.invalidation, 'users', { ttlMs: deps.ttlMs ?? ACCOUNT_CACHE_MS, maxEntries: deps.maxEntries ?? 5_000 });
  return {
    find: (id: string) => rows.get(id, () => deps.users.findById(id)),
    /** Drops one row: this instance's own writes, before their notice arrives. */
    forget: (id: string) => rows.delete(id),
    /**
     * Runs a write that answers the whole row, and keeps that row, unless an
     * invalidation arrived while it was in flight (then it only drops it).
     */
    async writeThrough<R extends { user: User } | undefined>(write: () => Promise<R>): Promise<R> {
      const mark = rows.mark();
      const result = await write();
      if (result) rows.put(result.user.id, result.user, mark);
      return result;
    },
  };
}

/**
 * `users` whose writes drop the changed row from `accounts` as soon as they
 * return, so this instance never serves its own change stale while the
 * trigger's notice is on its way (it comes asynchronously, after the commit).
 * The SQL is the repository's, unchanged.
 */
export function forgettingWrites(users: UserRepository, accounts: Pick<AccountCache, 'forget' | 'writeThrough'>): UserRepository {
  const forgetting = <A extends [string, ...unknown[]], R>(write: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await write(...args);
      } finally {
        accounts.forget(args[0]);
      }
    };
  return {
    ...users,
    update: forgetting(users.update.bind(users)),
    delete: forgetting(users.delete.bind(users)),
    // Proving the mailbox may verify the email: a claim.
    recordSignIn: async (id, now, emailVerified) => {
      try {
        await users.recordSignIn(id, now, emailVerified);
      } finally {
        if (emailVerified) accounts.forget(id);
      }
    },
    // The sign-in's upsert answers the row as committed: the account read right after (resume) needs no query.
    signInVerifiedEmail: (email, now) => accounts.writeThrough(() => users.signInVerifiedEmail(email, now)),
    signInWithToken: (consumption) => accounts.writeThrough(() => users.signInWithToken(consumption)),
  };
}
