import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind } from '../helpers/db.ts';
import { api, startTestSesame, type TestSesame } from '../helpers/server.ts';

describe(`the cleanup job in a running server (${databaseKind})`, () => {
  let t: TestSesame;

  beforeAll(async () => {
    t = await startTestSesame();
  });

  afterAll(async () => {
    await t?.close();
  });

  it('runs on the database of the server and reports in /metrics', async () => {
    const id = `cleanup-${randomBytes(6).toString('hex')}`;
    await t.db('oidc_model_instances').insert({ model_name: 'Session', id, payload: {}, expires_at: new Date(Date.now() - 3600_000) });
    // On the shared PostgreSQL database another test server may be running it right now: try again then.
    for (let attempt = 0; attempt < 50; attempt += 1) {
      if (!(await t.sesame.cleanup.runOnce()).skipped) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await t.db('oidc_model_instances').where({ model_name: 'Session', id }).first()).toBeUndefined();

    const metrics = await api(t, 'GET', '/metrics');
    expect(metrics.text).toContain('# TYPE sesame_cleanup_deleted_total counter');
  });
});
