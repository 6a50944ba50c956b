import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind } from '../helpers/db.ts';
import { api, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const run = promisify(execFile);

/** The shell block that follows `<!-- example:NAME -->` in a guide, as a reader copies it. */
function example(file: string, name: string): string {
  const text = readFileSync(new URL(`../../docs/${file}`, import.meta.url), 'utf8');
  const block = new RegExp(`<!-- example:${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(text);
  if (!block?.[1]) throw new Error(`docs/${file} has no example:${name} block`);
  return block[1];
}

describe(`the guides' examples (${databaseKind})`, () => {
  let t: TestSesame;
  beforeAll(async () => {
    t = await startTestSesame();
  });
  afterAll(async () => {
    await t?.close();
  });

  async function runExample(file: string, name: string, extra: { env?: Record<string, string>; cwd?: string } = {}) {
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', example(file, name)], {
      env: { ...process.env, SESAME: t.baseUrl, CLIENT_ID: t.m2m.id, CLIENT_SECRET: t.m2m.secret, ...extra.env },
      cwd: extra.cwd,
    });
    return stdout.trim().split('\n');
  }

  it('docs/management-api.md: creates, suspends and unsuspends a user and reads the total', async () => {
    // The example creates grace@example.com; on a shared database a previous run may have.
    const existing = await api(t, 'GET', '/api/users?search=grace@example.com', { token: await managementToken(t) });
    for (const user of existing.body) await api(t, 'DELETE', `/api/users/${user.id}`, { token: await managementToken(t) });

    const lines = await runExample('management-api.md', 'management');
    expect(JSON.parse(lines[0]!)).toMatchObject({ primaryEmail: 'grace@example.com', isSuspended: true });
    expect(JSON.parse(lines[1]!)).toMatchObject({ primaryEmail: 'grace@example.com', isSuspended: false });
    expect(lines[2]).toMatch(/^total-number: [1-9]\d*\r?$/i);
  });

  it('docs/invitations.md: prints an invite link that signs Ada in as a member of Acme', async () => {
    const lines = await runExample('invitations.md', 'invitations');
    const link = lines.at(-1)!;
    expect(link).toMatch(new RegExp(`^${t.baseUrl}/demo/landing\\?token=[A-Za-z0-9_-]+&email=ada%40example.com$`));

    const browser = new CookieClient(t.baseUrl);
    const landing = await browser.follow(link);
    const done = await browser.submitForm(await landing.response.text(), 'one-time-token');
    expect(done.url.pathname).toBe('/demo/callback');
    const users = await api(t, 'GET', '/api/users?search=ada@example.com', { token: await managementToken(t) });
    const orgs = await api(t, 'GET', `/api/users/${users.body[0].id}/organizations`, { token: await managementToken(t) });
    expect(orgs.body.map((o: { name: string }) => o.name)).toContain('Acme');
  });

  it('docs/experience-api.md: a custom UI signs Lin in with an email code, as JSON', async () => {
    const token = await managementToken(t);
    const redirectUri = 'http://127.0.0.1:5999/callback';
    const app = await api(t, 'POST', '/api/applications', { token, body: { name: 'Custom UI', type: 'Traditional', oidcClientMetadata: { redirectUris: [redirectUri] } } });
    await api(t, 'POST', '/api/users', { token, body: { primaryEmail: 'lin@example.com' } }); // 201, or 409 on a shared database
    const cwd = mkdtempSync(join(tmpdir(), 'sesame-experience-'));
    const env = { APP_ID: app.body.id, REDIRECT_URI: redirectUri };
    const started = await runExample('experience-api.md', 'experience-start', { env, cwd });
    expect(JSON.parse(started.at(-1)!)).toMatchObject({ message: 'Code sent', expiresIn: 600 });
    const mail = t.sesame.outbox!.list().find((candidate) => candidate.to === 'lin@example.com');
    const code = /^\s*(\d{3}) (\d{3})\s*$/m.exec(mail!.text)!;
    const finished = await runExample('experience-api.md', 'experience-finish', { env: { ...env, CODE: `${code[1]}${code[2]}` }, cwd });
    const callback = new URL(finished.at(-1)!);
    expect(callback.origin + callback.pathname).toBe(redirectUri);
    expect(callback.searchParams.get('code')).toBeTruthy();
  });
});
