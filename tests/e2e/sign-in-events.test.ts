import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, openOwnDatabase, uniqueEmail } from '../helpers/db.ts';
import { startAuthorization } from '../helpers/sign-in.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const REDIRECT_URI = 'http://127.0.0.1:5992/callback';

describe(`sign-in events in the audit log and webhooks (${databaseKind})`, () => {
  let t: TestSesame;
  let own: Awaited<ReturnType<typeof openOwnDatabase>>;
  let admin: string;
  let appId: string;
  let config: oidc.Configuration;
  let receiver: Server;
  const delivered: Array<{ event: string; data: Record<string, unknown> }> = [];

  beforeAll(async () => {
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        delivered.push(JSON.parse(body) as { event: string; data: Record<string, unknown> });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    own = await openOwnDatabase();
    t = await startTestSesame({ HOOK_POLL_INTERVAL_MS: '50', CLEANUP_INTERVAL_SECONDS: '0' }, { db: own.db });
    admin = await managementToken(t);
    const app = await createTestApplication(t, admin, REDIRECT_URI);
    appId = app.id;
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
    const hook = await api(t, 'POST', '/api/hooks', {
      token: admin,
      body: { name: 'Mailer', url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, events: ['MagicLink.Requested', 'SignIn.Succeeded', 'SignIn.Failed'] },
    });
    expect(hook.status).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await own?.close();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  const start = (extra: Record<string, string> = {}) => startAuthorization(t, config, REDIRECT_URI, extra);


  const logs = async (query: Record<string, string>) =>
    (await api(t, 'GET', `/api/logs?${new URLSearchParams(query)}`, { token: admin })).body as Array<{
      event: string;
      result: string;
      email: string | null;
      userId: string | null;
      applicationId: string | null;
      ip: string | null;
      data: Record<string, unknown>;
    }>;

  async function until<T>(probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 200; i += 1) {
      const value = await probe();
      if (value) return value;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('timed out');
  }

  it('a magic-link sign-in: the link reaches the webhook but never the audit log; success and failure are logged', async () => {
    const email = uniqueEmail('events');
    await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: email } });
    const flow = await start();
    await flow.browser.submitForm(flow.html, '/email', { email, method: 'magic_link' });

    const requested = await until(() => delivered.find((d) => d.event === 'MagicLink.Requested' && d.data.email === email));
    expect(String(requested.data.link)).toMatch(new RegExp(`^${t.baseUrl}/sign-in/link\\?token=`));
    const [logged] = await until(async () => {
      const found = await logs({ event: 'MagicLink.Requested', email });
      return found.length ? found : undefined;
    });
    expect(logged!.applicationId).toBe(appId);
    expect(JSON.stringify(logged)).not.toContain('/sign-in/link');

    // A wrong code first: SignIn.Failed with the seeds' code.
    const inbox = await flow.browser.follow(`/interaction/${/\/interaction\/([^/]+)\//.exec(flow.html)![1]}/code`);
    await flow.browser.submitForm(await inbox.response.text(), '/code', { code: '000000' });
    const landing = await flow.browser.follow(String(requested.data.link));
    const done = await flow.browser.submitForm(await landing.response.text(), '/sign-in/link');
    expect(done.url.origin + done.url.pathname).toBe(REDIRECT_URI);

    const failed = await logs({ event: 'SignIn.Failed', email });
    // The code of a magic-link mail counts as the magic-link method; the wrong digits are never logged.
    expect(failed[0]).toMatchObject({ result: 'failure', data: { method: 'magic_link', code: 'OTP_INVALID' } });
    expect(JSON.stringify(failed)).not.toContain('000000');
    const succeeded = await logs({ event: 'SignIn.Succeeded', email });
    expect(succeeded[0]).toMatchObject({ result: 'success', applicationId: appId, data: { method: 'magic_link', amr: ['email'] } });
    expect(succeeded[0]!.userId).toBeTruthy();
    await until(() => delivered.find((d) => d.event === 'SignIn.Succeeded' && d.data.email === email));
  });

  it('a one-time-token sign-in of a new user: User.Created, OneTimeToken.Consumed, SignIn.Succeeded; a used token: OneTimeToken.Failed', async () => {
    const email = uniqueEmail('token-events');
    const minted = await mintToken(t, admin, { email });
    const flow = await start({ one_time_token: minted.token, login_hint: email });
    await flow.browser.submitForm(flow.html, 'one-time-token');
    expect((await logs({ event: 'User.Created', email }))[0]?.data).toMatchObject({ source: 'sign_in' });
    expect((await logs({ event: 'OneTimeToken.Consumed', email }))[0]?.data).toMatchObject({ tokenId: minted.id, source: 'sign_in' });
    expect((await logs({ event: 'SignIn.Succeeded', email }))[0]?.data).toMatchObject({ method: 'one_time_token', newUser: true });
    // The confirm step's rows are written together, in the order they were published (the list is newest first).
    const step = (await logs({ email })).map((entry) => entry.event).filter((event) => ['OneTimeToken.Consumed', 'User.Created', 'SignIn.Succeeded'].includes(event));
    expect(step.reverse()).toEqual(['OneTimeToken.Consumed', 'User.Created', 'SignIn.Succeeded']);

    const again = await start({ one_time_token: minted.token, login_hint: email });
    await again.browser.submitForm(again.html, 'one-time-token');
    const refused = await logs({ event: 'OneTimeToken.Failed', email });
    expect(refused[0]).toMatchObject({ result: 'failure', data: { reason: 'TOKEN_ALREADY_USED', source: 'sign_in' } });
  });
});
