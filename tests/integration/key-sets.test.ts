import type Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, type Database } from '../../src/db/index.ts';
import { createLogger } from '../../src/logger.ts';
import { createProviderHolder } from '../../src/oidc/holder.ts';
import { ensureKeys, keySetVersion, listSigningKeys, loadKeySet, rotateCookieKeys, rotateSigningKeys, type KeySet } from '../../src/oidc/keys.ts';
import { databaseKind, openScratchDatabase } from '../helpers/db.ts';

const secret = 'key-sets-test-secret-0123456789abcdef';

describe(`key sets and their version (${databaseKind})`, () => {
  let db: Database;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    // One connection: statements run in the order they are asked for, so a change can be slipped in between two reads.
    ({ db, drop } = await openScratchDatabase({ poolMax: 1 }));
    await migrateToLatest(db);
    await ensureKeys(db, secret);
  });
  afterAll(() => drop());

  const kidsOf = (keySet: KeySet) => keySet.signing.map((key) => key.kid).sort();

  /** Runs `change` right after loadKeySet's read of `table`, before anything loadKeySet reads next. */
  async function loadWithChangeAfterReading(table: 'signing_keys' | 'cookie_keys', change: () => Promise<unknown>): Promise<KeySet> {
    let changing: Promise<unknown> | undefined;
    const onQuery = (query: { sql: string }) => {
      if (!changing && query.sql.startsWith(`select * from "${table}"`)) changing = Promise.resolve(change()); // a query builder runs once then()ed
    };
    db.on('query', onQuery);
    try {
      const keySet = await loadKeySet(db, secret);
      expect(changing, 'the change ran').toBeDefined();
      await changing;
      return keySet;
    } finally {
      db.off('query', onQuery);
    }
  }

  it('names exactly the keys it loaded, so the poll picks up a key retired while they were being read', async () => {
    await rotateSigningKeys(db, secret);
    const previous = (await listSigningKeys(db)).filter((key) => !key.current);
    expect(previous).toHaveLength(2);
    const retired = previous[0]!.kid;

    const keySet = await loadWithChangeAfterReading('signing_keys', () => db('signing_keys').where({ kid: retired }).update({ retired_at: new Date() }));
    // The load read the key before it was retired: its version must say so, or no poll would ever load the set again.
    expect(kidsOf(keySet)).toContain(retired);
    expect(await keySetVersion(db)).not.toBe(keySet.version);

    const holder = createProviderHolder({
      initial: keySet,
      build: (next) => ({ next }) as unknown as Provider,
      loadKeySet: () => loadKeySet(db, secret),
      keySetVersion: () => keySetVersion(db),
      logger: createLogger('silent'),
    });
    expect(await holder.refresh()).toBe(true);
    expect(kidsOf(holder.keySet())).not.toContain(retired);
    expect(kidsOf(holder.keySet())).toHaveLength(3);
    expect(holder.keySet().version).toBe(await keySetVersion(db));
    expect(await holder.refresh()).toBe(false);
  });

  it('names exactly the cookie keys it loaded, so the poll picks up a cookie key rotated in right after they were read', async () => {
    const before = await loadKeySet(db, secret);
    const keySet = await loadWithChangeAfterReading('cookie_keys', () => rotateCookieKeys(db, secret));
    expect(keySet.cookie).toEqual(before.cookie);
    const latest = await keySetVersion(db);
    expect(latest).not.toBe(keySet.version);
    const reloaded = await loadKeySet(db, secret);
    expect(reloaded.cookie).toHaveLength(before.cookie.length + 1);
    expect(reloaded.version).toBe(latest);
  });

  it('agrees with the poll when nothing changes, and changes with every rotation', async () => {
    const first = await loadKeySet(db, secret);
    expect(first.version).toBe(await keySetVersion(db));
    await rotateCookieKeys(db, secret);
    const second = await loadKeySet(db, secret);
    expect(second.version).not.toBe(first.version);
    expect(second.version).toBe(await keySetVersion(db));
  });
});
