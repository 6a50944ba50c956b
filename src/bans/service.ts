import { performance } from 'node:perf_hooks';
import type { InvalidationChannel } from '../db/invalidation.ts';
import type { Logger } from '../logger.ts';
import type { BanRecord, BanRepository } from './repository.ts';

export type BanService = ReturnType<typeof createBanService>;

/** More active bans than this are not held in memory (they would be a sign of something else going on). */
const MAX_CACHED = 100_000;

/**
 * IP bans, read on every request of the sign-in and API surfaces from an
 * in-memory copy of the active bans: no query per request. The copy is
 * re-read at most every `cacheMs` (0: on every check), by the first request
 * after it went stale, and at once after a ban or an unban made anywhere
 * (another instance, the CLI, SQL by hand) while the invalidation channel is
 * live (migration 20261128010000_settings_bans_invalidation); while it is
 * not, such a change applies here within `cacheMs`. Changes made through
 * this instance apply at once. When a re-read fails (database down) the last
 * copy stays in use and the next check after `cacheMs` tries again.
 */
export function createBanService(deps: { repository: BanRepository; clock: () => Date; cacheMs: number; logger: Logger; invalidation?: InvalidationChannel }) {
  const { repository, clock, cacheMs, logger } = deps;
  let cached: Map<string, number | null> | undefined; // ip → end in epoch ms, null: until lifted
  let readAt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;
  // Notices heard so far: a re-read that a notice overtook is used, but stale at once (it may predate the change).
  let changes = 0;
  deps.invalidation?.subscribe('banned_ips', () => {
    changes += 1;
    readAt = Number.NEGATIVE_INFINITY;
    // Checks from now on wait for a read that starts after the change, not for one already in flight.
    reading = undefined;
  });

  async function reread(): Promise<void> {
    const seen = changes;
    try {
      const rows = await repository.activeAddresses(clock(), MAX_CACHED);
      if (rows.length === MAX_CACHED) logger.warn({ limit: MAX_CACHED }, 'more active IP bans than the in-memory list holds; some are not enforced');
      // A read that a notice overtook replaces no copy: a later one, started after the change, may have landed first.
      if (seen === changes || !cached) cached = new Map(rows.map((row) => [row.ip, row.expiresAt?.getTime() ?? null]));
    } catch (error) {
      if (!cached) throw error;
      logger.warn({ reason: String((error as Error).message) }, 'the IP ban list could not be re-read; using the last copy');
    }
    readAt = seen === changes ? performance.now() : Number.NEGATIVE_INFINITY;
  }

  /** The in-memory copy when it is fresh, else undefined (a re-read is due). */
  const freshBans = (): Map<string, number | null> | undefined => (cached && performance.now() - readAt < cacheMs ? cached : undefined);

  const banned = (bans: Map<string, number | null>, ip: string): boolean => {
    const until = bans.get(ip);
    return until === null || (until !== undefined && until > clock().getTime());
  };

  async function activeBans(): Promise<Map<string, number | null>> {
    if (!freshBans()) {
      const started = (reading ??= reread().finally(() => {
        if (reading === started) reading = undefined;
      }));
      await started;
    }
    return cached!;
  }

  const remember = (ban: BanRecord) => cached?.set(ban.ip, ban.expiresAt?.getTime() ?? null);

  return {
    async isBanned(ip: string): Promise<boolean> {
      return banned(await activeBans(), ip);
    },

    /**
     * `isBanned` without waiting when the in-memory copy is fresh (nearly
     * every request): true or false, or undefined when a re-read is due and
     * `isBanned` must be awaited. Saves the request middleware its promises.
     */
    isBannedNow(ip: string): boolean | undefined {
      const bans = freshBans();
      return bans ? banned(bans, ip) : undefined;
    },

    list: (page: { page: number; pageSize: number }) => repository.list(clock(), page),

    get: (ip: string) => repository.get(ip, clock()),

    /** A manual ban: replaces any ban the address has. `expiresIn` in seconds; without it the ban lasts until lifted. */
    async ban(input: { ip: string; reason: string; expiresIn?: number; createdBy?: string }): Promise<BanRecord> {
      const now = clock();
      const ban = await repository.replace({
        ip: input.ip,
        reason: input.reason,
        source: 'manual',
        createdBy: input.createdBy ?? null,
        createdAt: now,
        expiresAt: input.expiresIn === undefined ? null : new Date(now.getTime() + input.expiresIn * 1000),
      });
      remember(ban);
      return ban;
    },

    /** An automatic ban for `seconds`; it never shortens a ban already in force. */
    async autoBan(ip: string, reason: string, seconds: number): Promise<BanRecord> {
      const now = clock();
      const ban = await repository.extend(
        { ip, reason, source: 'automatic', createdBy: null, createdAt: now, expiresAt: new Date(now.getTime() + seconds * 1000) },
        now,
      );
      remember(ban);
      return ban;
    },

    /** Lifts a ban; false when the address had no active ban. */
    async unban(ip: string): Promise<boolean> {
      const lifted = await repository.delete(ip, clock());
      cached?.delete(ip);
      return lifted;
    },
  };
}
