import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { openInvalidationChannel, withoutInvalidation, type InvalidationChannel } from '../../src/db/invalidation.ts';
import { createAdapterFactory } from '../../src/oidc/adapter.ts';
import { createModelCache } from '../../src/oidc/model-cache.ts';
import { createSessionStore } from '../../src/oidc/sessions.ts';
import { countQueries, databaseKind, openTestDatabase } from '../helpers/db.ts';
import { within } from '../helpers/wait.ts';

const unique = (label: string) => `${label}-${randomBytes(8).toString('hex')}`;

/** Far below the 60 s TTL: a pass is the notice's doing. */
const soon = <T>(read: () => Promise<T>, done: (value: T) => boolean) => within(2_000, read, done);

/** Live, but deaf: only this instance's own forgetting can drop a grant. */
const deaf: InvalidationChannel = { isLive: () => true, subscribe: () => {}, listenerPid: () => undefined, close: async () => {} };

describe(`oidc-provider grants and access tokens kept across requests (${databaseKind})`, () => {
  let db: Database;
  let channel: InvalidationChannel;
  const adapterWith = (invalidation: InvalidationChannel) => {
    const models = createModelCache({ invalidation });
    return { models, Adapter: createAdapterFactory(db, { findClient: async () => undefined, models }) };
  };
  const grantPayload = (id: string, scope = 'openid') => ({ jti: id, kind: 'Grant', accountId: 'acc', clientId: 'app', openid: { scope } });
  const rowOf = (id: string) => db('oidc_model_instances').where({ model_name: 'Grant', id });

  beforeAll(async () => {
    db = await openTestDatabase();
    channel = await openInvalidationChannel(db);
    await soon(async () => channel.isLive(), Boolean);
  });

  afterAll(async () => {
    await channel?.close();
    await db?.destroy();
  });

  it('answers a saved grant from memory in later requests, as copies', async () => {
    const { Adapter } = adapterWith(channel);
    const grants = new Adapter('Grant');
    const id = unique('grant');
    await grants.upsert(id, grantPayload(id), 600);
    const queries = await countQueries(db, async () => {
      const first = await grants.find(id);
      (first!.openid as { scope: string }).scope = 'changed by the caller';
      expect(await grants.find(id)).toEqual(grantPayload(id));
      expect(await new Adapter('Grant').find(id)).toEqual(grantPayload(id));
    });
    expect(queries).toBe(0);
  });

  it('reads a grant it did not write once, then from memory; other models are read every time', async () => {
    const { Adapter } = adapterWith(channel);
    const id = unique('grant');
    await db('oidc_model_instances').insert({ model_name: 'Grant', id, payload: JSON.stringify(grantPayload(id)), expires_at: new Date(Date.now() + 600_000) });
    await db('oidc_model_instances').insert({ model_name: 'Session', id, payload: JSON.stringify({ jti: id }), expires_at: new Date(Date.now() + 600_000) });
    expect(await countQueries(db, async () => {
      for (let i = 0; i < 3; i += 1) expect(await new Adapter('Grant').find(id)).toEqual(grantPayload(id));
    })).toBe(1);
    expect(await countQueries(db, async () => {
      for (let i = 0; i < 3; i += 1) expect(await new Adapter('Session').find(id)).toEqual({ jti: id });
    })).toBe(3);
  });

  it('does not keep a miss: a grant inserted elsewhere right after is found', async () => {
    const { Adapter } = adapterWith(channel);
    const id = unique('grant');
    expect(await new Adapter('Grant').find(id)).toBeUndefined();
    await db('oidc_model_instances').insert({ model_name: 'Grant', id, payload: JSON.stringify(grantPayload(id)), expires_at: new Date(Date.now() + 600_000) });
    expect(await new Adapter('Grant').find(id)).toEqual(grantPayload(id));
  });

  it('drops a grant another writer changes or deletes (plain SQL), when its notice arrives', async () => {
    const { Adapter } = adapterWith(channel);
    const grants = new Adapter('Grant');
    const id = unique('grant');
    await grants.upsert(id, grantPayload(id), 600);
    expect(await grants.find(id)).toEqual(grantPayload(id));

    await rowOf(id).update({ payload: JSON.stringify(grantPayload(id, 'openid email')) });
    const changed = await soon(() => grants.find(id), (grant) => (grant?.openid as { scope?: string } | undefined)?.scope === 'openid email');
    expect(changed).toEqual(grantPayload(id, 'openid email'));

    await rowOf(id).delete();
    expect(await soon(() => grants.find(id), (grant) => grant === undefined)).toBeUndefined();
  });

  it("serves this instance's own update, destroy and ended sessions at once, before (or without) a notice", async () => {
    const { models, Adapter } = adapterWith(deaf);
    const grants = new Adapter('Grant');
    const id = unique('grant');
    await grants.upsert(id, grantPayload(id), 600);
    await grants.upsert(id, grantPayload(id, 'openid profile'), 600);
    expect(await grants.find(id)).toEqual(grantPayload(id, 'openid profile'));
    await grants.destroy(id);
    expect(await grants.find(id)).toBeUndefined();

    const accountId = unique('account');
    const other = unique('grant');
    await grants.upsert(other, { ...grantPayload(other), accountId }, 600);
    expect(await grants.find(other)).toMatchObject({ accountId });
    await createSessionStore(db, { models }).endForAccount(accountId);
    expect(await grants.find(other)).toBeUndefined();
  });

  it('keeps an access token from its save to the userinfo call, and drops it when revoked here or deleted elsewhere', async () => {
    const { Adapter } = adapterWith(channel);
    const tokens = new Adapter('AccessToken');
    const id = unique('at');
    const payload = { jti: id, kind: 'AccessToken', accountId: 'acc', clientId: 'app', grantId: 'g', scope: 'openid' };
    await tokens.upsert(id, payload, 600);
    expect(await countQueries(db, async () => expect(await new Adapter('AccessToken').find(id)).toEqual(payload))).toBe(0);
    await tokens.destroy(id);
    expect(await tokens.find(id)).toBeUndefined();

    const other = unique('at');
    await tokens.upsert(other, { ...payload, jti: other }, 600);
    expect(await tokens.find(other)).toMatchObject({ jti: other });
    await db('oidc_model_instances').where({ model_name: 'AccessToken', id: other }).delete();
    expect(await soon(() => tokens.find(other), (token) => token === undefined)).toBeUndefined();
  });

  it("drops every token of a grant this instance revokes (oidc-provider's revokeByGrantId)", async () => {
    const { Adapter } = adapterWith(deaf);
    const tokens = new Adapter('AccessToken');
    const grantId = unique('grant');
    const id = unique('at');
    await tokens.upsert(id, { jti: id, kind: 'AccessToken', grantId }, 600);
    expect(await tokens.find(id)).toMatchObject({ grantId });
    await tokens.revokeByGrantId(grantId);
    expect(await tokens.find(id)).toBeUndefined();
  });

  it('does not serve a cached grant past its expiry', async () => {
    const { Adapter } = adapterWith(deaf);
    const grants = new Adapter('Grant');
    const id = unique('grant');
    await grants.upsert(id, grantPayload(id), 1);
    expect(await grants.find(id)).toEqual(grantPayload(id));
    await sleep(1_100);
    expect(await grants.find(id)).toBeUndefined();
  });

  it('reads the database every time while the channel is not live', async () => {
    const { Adapter } = adapterWith(withoutInvalidation());
    const grants = new Adapter('Grant');
    const id = unique('grant');
    await grants.upsert(id, grantPayload(id), 600);
    expect(await countQueries(db, async () => {
      for (let i = 0; i < 3; i += 1) expect(await grants.find(id)).toEqual(grantPayload(id));
    })).toBe(3);
    await rowOf(id).update({ payload: JSON.stringify(grantPayload(id, 'openid email')) });
    expect(await grants.find(id)).toEqual(grantPayload(id, 'openid email'));
  });
});
