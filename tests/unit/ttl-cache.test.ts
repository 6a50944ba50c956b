import { describe, expect, it } from 'vitest';
import { createTtlCache } from '../../src/lib/ttl-cache.ts';

/** A clock the test moves by hand: no timing in these tests. */
function manualClock() {
  let at = 1_000_000;
  return { now: () => at, advance: (ms: number) => (at += ms) };
}

describe('ttl cache', () => {
  it('answers from memory within the TTL and loads again after it', async () => {
    const clock = manualClock();
    const cache = createTtlCache<string, number>({ ttlMs: 5_000, now: clock.now });
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.get('a', load)).toBe(1);
    clock.advance(4_999);
    expect(await cache.get('a', load)).toBe(1);
    clock.advance(1);
    expect(await cache.get('a', load)).toBe(2);
  });

  it('forgets a key on delete and everything on clear', async () => {
    const cache = createTtlCache<string, number>({ ttlMs: 60_000 });
    let loads = 0;
    const load = async () => ++loads;
    await cache.get('a', load);
    await cache.get('b', load);
    cache.delete('a');
    expect(await cache.get('a', load)).toBe(3);
    expect(await cache.get('b', load)).toBe(2);
    cache.clear();
    expect(await cache.get('b', load)).toBe(4);
  });

  it('keeps no "not found": something created elsewhere is found at once', async () => {
    const cache = createTtlCache<string, string>({ ttlMs: 60_000 });
    let value: string | undefined;
    expect(await cache.get('a', async () => value)).toBeUndefined();
    value = 'created';
    expect(await cache.get('a', async () => value)).toBe('created');
  });

  it('shares one load between concurrent misses, and does not keep a load an invalidation overtook', async () => {
    const cache = createTtlCache<string, string>({ ttlMs: 60_000 });
    let release: (value: string) => void = () => {};
    let loads = 0;
    const slow = () => {
      loads += 1;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const first = cache.get('a', slow);
    const second = cache.get('a', slow);
    expect(loads).toBe(1);
    cache.delete('a');
    release('stale');
    expect(await first).toBe('stale');
    expect(await second).toBe('stale');
    expect(await cache.get('a', async () => 'fresh')).toBe('fresh');
  });

  it('does not keep a failed load', async () => {
    const cache = createTtlCache<string, string>({ ttlMs: 60_000 });
    await expect(cache.get('a', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.get('a', async () => 'up')).toBe('up');
  });

  it('with a TTL of 0 always loads', async () => {
    const cache = createTtlCache<string, number>({ ttlMs: 0 });
    let loads = 0;
    await cache.get('a', async () => ++loads);
    expect(await cache.get('a', async () => ++loads)).toBe(2);
  });

  it('judges a load or a write by its own key: another key\'s invalidation meanwhile does not stop it being kept', async () => {
    const cache = createTtlCache<string, string>({ ttlMs: 60_000 });
    let release: (value: string) => void = () => {};
    const slow = cache.get('a', () => new Promise<string>((resolve) => (release = resolve)));
    const mark = cache.mark();
    cache.delete('b');
    release('a, read');
    await slow;
    expect(await cache.get('a', async () => 'a, read again')).toBe('a, read');
    expect(cache.put('c', 'c, written', mark)).toBe(true);
    cache.delete('c');
    expect(await cache.get('c', async () => 'c, read after that delete')).toBe('c, read after that delete');
    expect(cache.put('c', 'c, written before that delete', mark)).toBe(false);
    // Refused, the write still drops the key, as any write does.
    expect(await cache.get('c', async () => 'c, read again')).toBe('c, read again');
    cache.clear();
    expect(cache.put('a', 'a, written before the clear', mark)).toBe(false);
  });

  it('keeps its per-key stamps bounded, refusing what was in flight when it forgets them', async () => {
    const cache = createTtlCache<string, string>({ ttlMs: 60_000, maxEntries: 2 });
    const mark = cache.mark();
    for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) cache.delete(key);
    expect(cache.put('other', 'written before the stamps were forgotten', mark)).toBe(false);
    expect(cache.put('other', 'written after', cache.mark())).toBe(true);
    expect(await cache.get('other', async () => 'loaded')).toBe('written after');
  });
});
