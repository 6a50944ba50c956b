import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { openInvalidationChannel, type InvalidationChannel, type InvalidationTopic } from '../../src/db/invalidation.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createAccountCache, forgettingWrites } from '../../src/users/account-cache.ts';
import { createUserRepository } from '../../src/users/index.ts';
import { databaseKind, openOwnDatabase, openTestDatabase, uniqueEmail, usingPostgres } from '../helpers/db.ts';
import { within } from '../helpers/wait.ts';

describe(`cache invalidation through database triggers (${databaseKind})`, () => {
  let db: Database;
  let channel: InvalidationChannel;
  const heard: string[] = [];

  beforeAll(async () => {
    db = await openTestDatabase();
    // A slow first retry leaves a window to look at the channel while it is down.
    channel = await openInvalidationChannel(db, { retryMs: { first: 1_000, max: 1_000 } });
    for (const topic of ['users', 'applications', 'hooks', 'models', 'mfa'] as InvalidationTopic[]) {
      channel.subscribe(topic, (id) => heard.push(`${topic}:${id}`));
    }
    await within(5_000, () => channel.isLive(), Boolean);
  });

  afterAll(async () => {
    await channel?.close();
    await db?.destroy();
  });

  /** Runs `write`, then a marker write, and answers what was heard up to the marker's notice (notices keep commit order). */
  async function heardDuring(write: () => Promise<unknown>): Promise<string[]> {
    const marker = `marker-${Math.random().toString(36).slice(2)}`;
    await db('applications').insert({ id: marker, name: 'marker', type: 'SPA' });
    const from = heard.length;
    await write();
    await db('applications').where({ id: marker }).delete();
    const all = await within(2_000, () => heard.slice(from), (got) => got.includes(`applications:${marker}`));
    expect(all).toContain(`applications:${marker}`);
    return all.slice(0, all.indexOf(`applications:${marker}`)).filter((notice) => !notice.startsWith('applications:marker-') && !notice.endsWith(':*'));
  }

  it('is live once listening', () => {
    expect(channel.isLive()).toBe(true);
  });

  it('announces a user when suspension, email, verification, name or avatar change, or the row goes; not on a sign-in timestamp', async () => {
    const id = `inv-${Math.random().toString(36).slice(2)}`;
    const user = () => db('users').where({ id });
    const mine = (notices: string[]) => notices.filter((notice) => notice === `users:${id}`);
    expect(mine(await heardDuring(() => db('users').insert({ id, primary_email: uniqueEmail('inv') })))).toEqual([]);
    expect(mine(await heardDuring(() => user().update({ last_sign_in_at: new Date(), updated_at: new Date() })))).toEqual([]);
    expect(mine(await heardDuring(() => user().update({ email_verified: false })))).toEqual([]);
    expect(mine(await heardDuring(() => user().update({ password_hash: 'x', mfa_offered_at: new Date() })))).toEqual([]);
    for (const change of [{ is_suspended: true }, { primary_email: uniqueEmail('moved') }, { email_verified: true }, { name: 'Ada' }, { avatar: 'https://example.test/a.png' }]) {
      expect(mine(await heardDuring(() => user().update(change))), JSON.stringify(change)).toEqual([`users:${id}`]);
    }
    expect(mine(await heardDuring(() => user().delete()))).toEqual([`users:${id}`]);
  });

  it('announces every change to an application, and any change to hooks as hooks:*', async () => {
    const id = `inv-app-${Math.random().toString(36).slice(2)}`;
    await db('applications').insert({ id, name: 'App', type: 'Traditional' });
    expect(await heardDuring(() => db('applications').where({ id }).update({ secret_sealed: 'rotated' }))).toContain(`applications:${id}`);
    expect(await heardDuring(() => db('applications').where({ id }).delete())).toContain(`applications:${id}`);

    const from = heard.length;
    const hookId = `inv-hook-${Math.random().toString(36).slice(2)}`;
    const now = new Date();
    await db('hooks').insert({ id: hookId, name: 'h', url: 'https://example.test/h', events: JSON.stringify([]), secret_sealed: 's', created_at: now, updated_at: now });
    await db('hooks').where({ id: hookId }).delete();
    const notices = await within(2_000, () => heard.slice(from).filter((notice) => notice === 'hooks:*'), (got) => got.length >= 2);
    expect(notices.length).toBeGreaterThanOrEqual(2);
  });

  it("announces a live Grant or AccessToken row's update and deletion; not their insertion, an expired row's deletion, or other models' writes", async () => {
    const id = `inv-model-${Math.random().toString(36).slice(2)}`;
    const row = (model: string) => db('oidc_model_instances').where({ model_name: model, id });
    const insert = (model: string, expiresAt: Date | null = new Date(Date.now() + 600_000)) =>
      db('oidc_model_instances').insert({ model_name: model, id, payload: '{}', expires_at: expiresAt });
    const mine = (notices: string[]) => notices.filter((notice) => notice.endsWith(id));
    for (const model of ['Session', 'RefreshToken', 'AuthorizationCode', 'Interaction']) {
      expect(mine(await heardDuring(async () => {
        await insert(model);
        await row(model).update({ payload: '{"changed":true}' });
        await row(model).delete();
      })), model).toEqual([]);
    }
    for (const model of ['Grant', 'AccessToken']) {
      expect(mine(await heardDuring(() => insert(model))), model).toEqual([]);
      expect(mine(await heardDuring(() => row(model).update({ payload: '{"changed":true}' }))), model).toEqual([`models:${model}:${id}`]);
      expect(mine(await heardDuring(() => row(model).delete())), model).toEqual([`models:${model}:${id}`]);
      await insert(model, null);
      expect(mine(await heardDuring(() => row(model).delete())), `${model} without expiry`).toEqual([`models:${model}:${id}`]);
      await insert(model, new Date(Date.now() - 1_000));
      expect(mine(await heardDuring(() => row(model).delete())), `expired ${model}`).toEqual([]);
    }
  });

  it("announces a user's authenticator when added, confirmed, moved or removed (also with the user), not on a verification's last_used_step", async () => {
    const userId = `inv-mfa-${Math.random().toString(36).slice(2)}`;
    await db('users').insert({ id: userId, primary_email: uniqueEmail('inv-mfa') });
    const factor = () => db('user_mfa_factors').where({ user_id: userId });
    const mine = (notices: string[]) => notices.filter((notice) => notice === `mfa:${userId}`);
    const id = `factor-${userId}`;
    expect(mine(await heardDuring(() => db('user_mfa_factors').insert({ id, user_id: userId, type: 'totp', secret_sealed: 'v1.x', created_at: new Date() })))).toEqual([`mfa:${userId}`]);
    expect(mine(await heardDuring(() => factor().update({ confirmed_at: new Date() })))).toEqual([`mfa:${userId}`]);
    expect(mine(await heardDuring(() => factor().update({ last_used_step: 42 })))).toEqual([]);
    expect(mine(await heardDuring(() => factor().delete()))).toEqual([`mfa:${userId}`]);
    await db('user_mfa_factors').insert({ id, user_id: userId, type: 'totp', secret_sealed: 'v1.x', created_at: new Date(), confirmed_at: new Date() });
    expect(mine(await heardDuring(() => db('users').where({ id: userId }).delete()))).toEqual([`mfa:${userId}`]);
  });

  it('announces a ban added, changed or lifted and a change of the sign-in settings as banned_ips:* and sign_in_settings:*, once per transaction, and nothing when no row changed', async () => {
    // A database of its own: other files' bans and settings changes would be heard here too.
    const own = await openOwnDatabase();
    const ownChannel = await openInvalidationChannel(own.db);
    try {
      const notices: string[] = [];
      for (const topic of ['banned_ips', 'sign_in_settings', 'applications'] as InvalidationTopic[]) ownChannel.subscribe(topic, (id) => notices.push(`${topic}:${id}`));
      await within(5_000, () => ownChannel.isLive(), Boolean);
      /** What `write` announced, up to a marker written after it (notices keep commit order). */
      const announced = async (write: () => Promise<unknown>) => {
        const from = notices.length;
        await write();
        const marker = `marker-${Math.random().toString(36).slice(2)}`;
        await own.db('applications').insert({ id: marker, name: 'marker', type: 'SPA' });
        await own.db('applications').where({ id: marker }).delete();
        const all = await within(2_000, () => notices.slice(from), (got) => got.includes(`applications:${marker}`));
        return all.slice(0, all.indexOf(`applications:${marker}`));
      };
      const bans = () => own.db('banned_ips');
      expect(await announced(() => bans().insert({ ip: '192.0.2.71', reason: 'x', source: 'manual' }))).toEqual(['banned_ips:*']);
      expect(await announced(() => bans().where({ ip: '192.0.2.71' }).update({ reason: 'y' }))).toEqual(['banned_ips:*']);
      expect(
        await announced(() =>
          own.db.transaction(async (trx) => {
            await trx('banned_ips').insert([
              { ip: '192.0.2.72', reason: 'x', source: 'automatic' },
              { ip: '192.0.2.73', reason: 'x', source: 'automatic' },
            ]);
            await trx('banned_ips').whereIn('ip', ['192.0.2.72', '192.0.2.73']).delete();
          }),
        ),
      ).toEqual(['banned_ips:*']);
      expect(await announced(() => bans().where({ ip: '192.0.2.99' }).delete())).toEqual([]);
      expect(await announced(() => bans().where({ ip: '192.0.2.71' }).delete())).toEqual(['banned_ips:*']);

      expect(await announced(() => own.db('sign_in_settings').insert({ id: 1, settings: {} }).onConflict('id').merge())).toEqual(['sign_in_settings:*']);
      expect(await announced(() => own.db('sign_in_settings').where({ id: 1 }).update({ settings: { linkLifetimeSeconds: 900 } }))).toEqual(['sign_in_settings:*']);
    } finally {
      await ownChannel.close();
      await own.close();
    }
  });

  it("serves this instance's own writes at once, before (or without) their notice", async () => {
    // Live, but deaf: only the local forgetting can drop a row here.
    const deaf: InvalidationChannel = { isLive: () => true, subscribe: () => {}, listenerPid: () => undefined, close: async () => {} };
    const rows = createUserRepository(db);
    const accounts = createAccountCache({ users: rows, invalidation: deaf });
    const users = forgettingWrites(rows, accounts);
    const email = uniqueEmail('own');
    const { user } = await users.findOrCreateVerifiedByEmail(email, new Date());
    const cached = await accounts.find(user.id);
    expect(await accounts.find(user.id)).toBe(cached);

    await users.update(user.id, { isSuspended: true }, new Date());
    expect(await accounts.find(user.id)).toMatchObject({ isSuspended: true });
    await users.update(user.id, { name: 'Renamed', emailVerified: false }, new Date());
    expect(await accounts.find(user.id)).toMatchObject({ name: 'Renamed', emailVerified: false });
    await users.recordSignIn(user.id, new Date(), true);
    expect(await accounts.find(user.id)).toMatchObject({ emailVerified: true });
    await users.update(user.id, { emailVerified: false, isSuspended: false }, new Date());
    await users.signInVerifiedEmail(email, new Date());
    expect(await accounts.find(user.id)).toMatchObject({ emailVerified: true });
    await users.delete(user.id);
    expect(await accounts.find(user.id)).toBeUndefined();
  });

  it.skipIf(!usingPostgres)(
    'bypasses the account cache while the listener connection is down, and serves no change made meanwhile once it is back',
    async () => {
      const users = createUserRepository(db);
      const accounts = createAccountCache({ users, invalidation: channel });
      const metrics = createMetrics({ db, invalidation: channel });
      const liveGauge = async () => /^sesame_cache_invalidation_live (\d)$/m.exec(await metrics.registry.metrics())?.[1];
      expect(await liveGauge()).toBe('1');
      const id = `inv-kill-${Math.random().toString(36).slice(2)}`;
      await db('users').insert({ id, primary_email: uniqueEmail('kill'), name: 'Before' });
      const cached = await accounts.find(id);
      expect(await accounts.find(id)).toBe(cached);

      const pid = channel.listenerPid();
      expect(pid).toBeTypeOf('number');
      await db.raw('SELECT pg_terminate_backend(?)', [pid!]);
      expect(await within(2_000, () => channel.isLive(), (live) => !live)).toBe(false);

      // Nobody listens now: this notice is lost.
      await db('users').where({ id }).update({ name: 'While down', is_suspended: true });
      const down = await accounts.find(id);
      expect(down).toMatchObject({ name: 'While down', isSuspended: true });
      expect(await accounts.find(id)).not.toBe(down);
      expect(channel.isLive()).toBe(false);
      expect(await liveGauge()).toBe('0');

      expect(await within(5_000, () => channel.isLive(), Boolean)).toBe(true);
      expect(channel.listenerPid()).not.toBe(pid);
      expect(await liveGauge()).toBe('1');
      const back = await accounts.find(id);
      expect(back).toMatchObject({ name: 'While down', isSuspended: true });
      expect(await accounts.find(id)).toBe(back);

      // And notices flow again on the new connection.
      await db('users').where({ id }).update({ is_suspended: false });
      expect(await within(2_000, () => accounts.find(id), (user) => user?.isSuspended === false)).toMatchObject({ isSuspended: false });
      await db('users').where({ id }).delete();
    },
  );
});
