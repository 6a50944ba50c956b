import type { Rate } from '../config.ts';
import type { CounterState } from './rules.ts';

/**
 * Leased counters: an instance takes `size` points from the shared store in
 * one write and hands them out from memory, one per request, until they are
 * used up or the store's window ends; then it takes the next lease. A high
 * quota (Management API minting, 600/min) then costs a fraction of a store
 * write per request.
 *
 * Never more than `points` per window, whatever the number of instances: the
 * store counts every lease whole, and an instance hands out only what fitted
 * under the limit. The price: points left in other instances' leases count as
 * used, so with N instances up to (N − 1)·(size − 1) points of a window may go
 * unused, and a client can be refused that much before the limit (≤ 1.5 % of
 * it per extra instance with `leaseSize`). For quotas, not for security
 * limits, which stay exact.
 */

/** Pure: the points an instance reserves at once: 1 (no lease, every request asks the store) below 200 a window, at most 10. */
export function leaseSize(points: number): number {
  return Math.max(1, Math.min(10, Math.floor(points / 100)));
}

/** Pure: how many of a lease's `size` points this instance may hand out, when the store counts `consumed` in its window including them. */
export function grantedPoints(points: number, size: number, consumed: number): number {
  return Math.max(0, Math.min(size, points - (consumed - size)));
}

/** One key's lease: the store's count when it was granted, the points still to hand out, and when the store's window ends (epoch ms). */
export type Lease = { consumed: number; left: number; short: boolean; endsAt: number };

/**
 * Pure: the state the headers show after handing out a point or refusing:
 * remaining = the store's unclaimed points + what this lease still holds
 * (other instances' unused leases count as used).
 */
export function leaseState(rate: Rate, lease: Lease, nowMs: number, refused: boolean): CounterState {
  const remaining = Math.max(0, rate.points - lease.consumed) + lease.left;
  return { rate, consumed: refused ? lease.consumed : rate.points - remaining, msBeforeNext: Math.max(0, lease.endsAt - nowMs) };
}

export type LeasedCounter = ReturnType<typeof createLeasedCounter>;

/**
 * The leases of one counter in this process, by key. `reserve` takes points
 * in the store and answers its count and window (a refusal is an answer, a
 * store failure a rejection). At most one reservation per key is in flight:
 * requests that find the lease empty meanwhile wait for it and share its
 * points, its refusal or its failure.
 */
export function createLeasedCounter(deps: {
  rate: Rate;
  size: number;
  reserve: (key: string, points: number) => Promise<CounterState>;
  clock?: () => number;
}) {
  const { rate, size, reserve } = deps;
  const clock = deps.clock ?? Date.now;
  /** Leases with points left (possibly past their window: dropped when next asked; one per client at most). */
  const leases = new Map<string, Lease>();
  const reservations = new Map<string, Promise<Lease>>();

  function handOut(key: string, lease: Lease): CounterState {
    lease.left -= 1;
    if (lease.left === 0 && leases.get(key) === lease) leases.delete(key);
    return leaseState(rate, lease, clock(), false);
  }

  function reservation(key: string): Promise<Lease> {
    const pending = reservations.get(key);
    if (pending) return pending;
    const next = (async () => {
      // The store measures the rest of its window after this moment: counted from here, the lease ends no later than the window.
      const asked = clock();
      const answer = await reserve(key, size);
      const granted = grantedPoints(rate.points, size, answer.consumed);
      // Fewer than asked: the store's window is used up, so whoever finds this lease empty is refused with its answer.
      const lease = { consumed: answer.consumed, left: granted, short: granted < size, endsAt: asked + answer.msBeforeNext };
      if (granted > 0) leases.set(key, lease);
      return lease;
    })().finally(() => reservations.delete(key));
    reservations.set(key, next);
    return next;
  }

  return {
    /** Takes one point for `key`: the counter's state after it, over the limit when refused. */
    async take(key: string): Promise<CounterState> {
      const held = leases.get(key);
      if (held) {
        if (clock() < held.endsAt) return handOut(key, held);
        leases.delete(key); // its window is over: its points were counted there, never in the next one
      }
      for (;;) {
        const lease = await reservation(key);
        // The store counted these points in the window it answered for: they are handed out even if it ended meanwhile.
        if (lease.left > 0) return handOut(key, lease);
        if (lease.short) return leaseState(rate, lease, clock(), true);
        // Concurrent requests took all of a full lease: wait for the next one.
      }
    },

    /** Drops this process's lease of `key` (its counter was reset in the store). */
    forget(key: string): void {
      leases.delete(key);
    },
  };
}
