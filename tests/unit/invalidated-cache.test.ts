import { describe, expect, it } from 'vitest';
import { invalidatedCache, type InvalidationChannel, type InvalidationTopic } from '../../src/db/invalidation.ts';

/**
 * A channel the test drives by hand, with the contract the real ones keep:
 * every subscriber hears `'*'` when the channel goes down and again when it is back.
 */
function manualChannel(live = true) {
  const subscribers: Array<[InvalidationTopic, (id: string) => void]> = [];
  const all = (id: string) => subscribers.forEach(([, onInvalidate]) => onInvalidate(id));
  const channel: InvalidationChannel = {
    isLive: () => live,
    subscribe: (topic, onInvalidate) => void subscribers.push([topic, onInvalidate]),
    listenerPid: () => undefined,
    close: async () => {},
  };
  return {
    channel,
    notice: (topic: InvalidationTopic, id: string) => subscribers.filter(([t]) => t === topic).forEach(([, on]) => on(id)),
    goDown: () => {
      live = false;
      all('*');
    },
    comeBack: () => {
      all('*');
      live = true;
    },
  };
}

/** A load that counts, answering `<key>#<n>`, so a test sees whether memory or the database answered. */
function counter() {
  let loads = 0;
  return { load: (key: string) => async () => `${key}#${++loads}`, loads: () => loads };
}

describe('a cache invalidated through the channel', () => {
  it('reads the database every time while the channel is not live, and keeps rows once it is', async () => {
    const manual = manualChannel(false);
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    const db = counter();
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#1');
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#2');
    manual.comeBack();
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#3');
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#3');
  });

  it('forgets the row a notice names, everything on "*", and ignores other topics', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    const db = counter();
    await cache.get('u1', db.load('u1'));
    await cache.get('u2', db.load('u2'));
    manual.notice('applications', 'u1');
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#1');
    manual.notice('users', 'u1');
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#3');
    expect(await cache.get('u2', db.load('u2'))).toBe('u2#2');
    manual.notice('users', '*');
    expect(await cache.get('u2', db.load('u2'))).toBe('u2#4');
  });

  it('serves nothing it kept before the channel went down, neither while down nor after it is back', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    const db = counter();
    await cache.get('u1', db.load('u1'));
    manual.goDown();
    // Notices sent now are lost: a suspension made meanwhile must still be seen.
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#2');
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#3');
    manual.comeBack();
    expect(await cache.get('u1', db.load('u1'))).toBe('u1#4');
  });

  it('does not keep a row read while live when the channel went down before the read came back', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    let answer = (_value: string) => {};
    const slow = cache.get('u1', () => new Promise<string>((resolve) => (answer = resolve)));
    manual.goDown();
    manual.comeBack();
    answer('read before the drop');
    expect(await slow).toBe('read before the drop');
    expect(await cache.get('u1', async () => 'fresh')).toBe('fresh');
  });

  it('does not keep a row whose notice arrived while it was being read', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    let answer = (_value: string) => {};
    const slow = cache.get('u1', () => new Promise<string>((resolve) => (answer = resolve)));
    manual.notice('users', 'u1');
    answer('old row');
    expect(await slow).toBe('old row');
    expect(await cache.get('u1', async () => 'new row')).toBe('new row');
  });

  it('keeps what a write answered, so the next read needs no query', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    expect(await cache.get('u1', async () => 'before the write')).toBe('before the write');
    const mark = cache.mark();
    expect(cache.put('u1', 'written', mark)).toBe(true);
    expect(await cache.get('u1', async () => 'from the database')).toBe('written');
  });

  it('does not keep what a write answered when a notice arrived while it was in flight (the notice may be newer)', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    const mark = cache.mark();
    manual.notice('users', 'u1'); // e.g. a suspension committed right after the write, announced before its answer came back
    expect(cache.put('u1', 'not suspended', mark)).toBe(false);
    expect(await cache.get('u1', async () => 'suspended')).toBe('suspended');
  });

  it('keeps nothing a write answered while the channel is down, nor across its return', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    const before = cache.mark();
    manual.goDown();
    expect(cache.put('u1', 'written while down', cache.mark())).toBe(false);
    manual.comeBack();
    expect(cache.put('u1', 'written across the return', before)).toBe(false);
    expect(await cache.get('u1', async () => 'from the database')).toBe('from the database');
  });

  it('does not let a read that started before the write overwrite what the write answered', async () => {
    const manual = manualChannel();
    const cache = invalidatedCache<string>(manual.channel, 'users', { ttlMs: 60_000 });
    let answer = (_value: string) => {};
    const slow = cache.get('u1', () => new Promise<string>((resolve) => (answer = resolve)));
    expect(cache.put('u1', 'written', cache.mark())).toBe(true);
    answer('read before the write');
    await slow;
    expect(await cache.get('u1', async () => 'from the database')).toBe('written');
  });
});
