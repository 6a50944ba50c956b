/**
 * The guides in docs/guides: every code block is either run here as written
 * (`<!-- example:NAME -->`), quoted from an example app that has its own e2e
 * test (`<!-- quote:PATH -->`, checked against the file), or run by another
 * named test (`<!-- tested-by:PATH -->`). The guides' claims that no other
 * test covers are checked here too.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient, findForm } from '../helpers/browser-client.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, freePort, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const guidesDir = `${root}docs/guides/`;
const guideFiles = readdirSync(guidesDir).filter((name) => name.endsWith('.md'));

/** The example blocks this file runs; each must appear exactly once in the guides. */
const EXAMPLES = ['quickstart-register', 'quickstart-run', 'quickstart-link', 'resend-link', 'scanner', 'organizations', 'logto-one-time-token'];

type Block = { file: string; line: number; marker?: { kind: string; value: string }; body: string };

function codeBlocks(file: string): Block[] {
  const lines = readFileSync(`${guidesDir}${file}`, 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (!lines[i]!.startsWith('```')) continue;
    const start = i;
    let previous = start - 1;
    while (previous >= 0 && lines[previous]!.trim() === '') previous -= 1;
    const marker = /^<!-- (example|quote|tested-by):(\S+) -->$/.exec(lines[previous]?.trim() ?? '');
    do i += 1;
    while (i < lines.length && lines[i] !== '```');
    blocks.push({
      file,
      line: start + 1,
      marker: marker ? { kind: marker[1]!, value: marker[2]! } : undefined,
      body: `${lines.slice(start + 1, i).join('\n')}\n`,
    });
  }
  return blocks;
}

const allBlocks = guideFiles.flatMap(codeBlocks);

function example(name: string): string {
  const found = allBlocks.filter((block) => block.marker?.kind === 'example' && block.marker.value === name);
  if (found.length !== 1) throw new Error(`expected one example:${name} block in docs/guides, found ${found.length}`);
  return found[0]!.body;
}

const meaningfulLines = (text: string) =>
  text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);

describe('docs/guides: every code block is tested', () => {
  it('marks each block as run here, quoted from a tested example, or run by a named test', () => {
    expect(guideFiles.sort()).toEqual(['invite-links.md', 'landing-page.md', 'migrating-from-logto.md', 'organizations.md', 'quick-start.md']);
    for (const block of allBlocks) {
      const where = `docs/guides/${block.file}:${block.line}`;
      expect(block.marker, `${where} has no <!-- example|quote|tested-by --> marker`).toBeDefined();
      const { kind, value } = block.marker!;
      if (kind === 'example') expect(EXAMPLES, `${where}: example:${value} is not run by tests/e2e/guides.test.ts`).toContain(value);
      if (kind === 'tested-by') expect(existsSync(`${root}${value}`), `${where}: ${value} does not exist`).toBe(true);
      if (kind === 'quote') {
        const exampleName = /^examples\/([^/]+)\//.exec(value)?.[1];
        expect(exampleName, `${where}: quotes must come from examples/`).toBeTruthy();
        expect(existsSync(`${root}tests/e2e/example-${exampleName}.test.ts`), `${where}: examples/${exampleName} has no e2e test`).toBe(true);
        const source = meaningfulLines(readFileSync(`${root}${value}`, 'utf8')).join('\n');
        expect(source, `${where}: the quote no longer matches ${value}`).toContain(meaningfulLines(block.body).join('\n'));
      }
    }
    for (const name of EXAMPLES) expect(() => example(name)).not.toThrow();
  });

  it('are linked from the README', () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    for (const file of guideFiles) expect(readme).toContain(`(docs/guides/${file})`);
    expect(readme).toContain('(docs/reference/management-api.md)');
  });
});

describe(`docs/guides: the examples, run as written (${databaseKind})`, () => {
  let t: TestSesame;
  let adminToken: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    t = await startTestSesame();
    adminToken = await managementToken(t);
    env = { ...process.env, SESAME: t.baseUrl, CLIENT_ID: t.m2m.id, CLIENT_SECRET: t.m2m.secret, ACCESS_TOKEN: adminToken } as Record<string, string>;
  });
  afterAll(async () => {
    await t?.close();
  });

  async function runExample(name: string, extraEnv: Record<string, string> = {}): Promise<string[]> {
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', example(name)], { cwd: root, env: { ...env, ...extraEnv } });
    return stdout.trim().split('\n');
  }

  async function deleteUsers(email: string) {
    const found = await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: adminToken });
    for (const user of found.body as { id: string; primaryEmail: string }[]) {
      if (user.primaryEmail === email) await api(t, 'DELETE', `/api/users/${user.id}`, { token: adminToken });
    }
  }

  /** Opens a demo-app link in a fresh browser and clicks Continue; answers where it ended. */
  async function clickLink(link: string) {
    const browser = new CookieClient(t.baseUrl);
    const page = await browser.follow(link);
    return browser.submitForm(await page.response.text(), 'one-time-token');
  }

  describe('quick-start.md', () => {
    let browser: Browser;
    let child: ChildProcess | undefined;
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(async () => {
      // Our own child's process group (bash, npx, tsx), by its id.
      if (child?.pid) process.kill(-child.pid, 'SIGTERM');
      await browser?.close();
    });

    it('takes a running Sesame to a signed-in SPA: register, start the example, open the link', async () => {
      const spaUrl = `http://localhost:${await freePort()}`;
      const [clientId] = await runExample('quickstart-register', { SPA_URL: spaUrl });
      expect(clientId).toMatch(/^[A-Za-z0-9_-]+$/);
      const registered = await api(t, 'GET', `/api/applications/${clientId}`, { token: adminToken });
      expect(registered.body).toMatchObject({ type: 'SPA', oidcClientMetadata: { redirectUris: [`${spaUrl}/callback`] } });

      // Step 3 as written, with the printed id in place of the placeholder.
      const command = example('quickstart-run').replace('<the id printed above>', clientId!);
      expect(command).toBe(`SPA_CLIENT_ID=${clientId} npx tsx examples/spa/main.ts\n`);
      child = spawn('bash', ['-c', command], {
        cwd: root,
        env: { ...env, PORT: new URL(spaUrl).port, SESAME_URL: t.baseUrl },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await new Promise<void>((resolve, reject) => {
        let output = '';
        const timer = setTimeout(() => reject(new Error(`the SPA example did not start:\n${output}`)), 30_000);
        const read = (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('SPA example on')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child!.stdout!.on('data', read);
        child!.stderr!.on('data', read);
        child!.once('exit', (code) => reject(new Error(`the SPA example exited (${code}):\n${output}`)));
      });

      const [link] = await runExample('quickstart-link', { SPA_URL: spaUrl });
      expect(link).toMatch(new RegExp(`^${spaUrl}/landing\\?token=[A-Za-z0-9_-]+&email=ada%40example.com$`));

      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(link!);
        await page.waitForURL((url) => url.pathname.startsWith('/interaction/'));
        await page.getByRole('button', { name: 'Continue' }).click();
        await page.waitForURL(`${spaUrl}/`);
        await expect.poll(() => page.locator('#status').textContent()).toBe('Signed in as ada@example.com');
      } finally {
        await context.close();
      }
    });
  });

  it('invite-links.md: minting with revokePrevious revokes the earlier link', async () => {
    expect(await runExample('resend-link')).toEqual(['revoked']);
  });

  it('landing-page.md: a scanner that follows the link reaches the Continue page and consumes nothing', async () => {
    const [fetched, status] = await runExample('scanner');
    expect(fetched).toMatch(new RegExp(`^200 ${t.baseUrl}/interaction/[A-Za-z0-9_-]+$`));
    expect(status).toBe('active');
  });

  it('organizations.md: the token’s organizations and the email domain add both people with the JIT role', async () => {
    // hank@globex.example must be new for the email domain to apply (a shared database may know him).
    await deleteUsers('hank@globex.example');
    const [adaLink, hankLink, organizationId] = await runExample('organizations');
    for (const [link, email] of [
      [adaLink!, 'ada@example.com'],
      [hankLink!, 'hank@globex.example'],
    ] as const) {
      const done = await clickLink(link);
      expect(done.url.pathname, link).toBe('/demo/callback');
      const user = (await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: adminToken })).body.find(
        (candidate: { primaryEmail: string }) => candidate.primaryEmail === email,
      );
      const organizations = (await api(t, 'GET', `/api/users/${user.id}/organizations`, { token: adminToken })).body as {
        id: string;
        organizationRoles: { name: string }[];
      }[];
      const joined = organizations.find((organization) => organization.id === organizationId);
      expect(joined, email).toBeDefined();
      expect(joined!.organizationRoles.map((role) => role.name)).toEqual([`viewer-${organizationId}`]);
    }
  });

  it('migrating-from-logto.md: Logto’s one-time-token request body works and verify consumes', async () => {
    expect(await runExample('logto-one-time-token')).toEqual(['consumed']);
  });

  describe('landing-page.md: the already-signed-in table', () => {
    const demoLink = (token: string, email: string) => `${t.baseUrl}/demo/landing?${new URLSearchParams({ token, email })}`;

    it('a double click on Continue does not fail with TOKEN_ALREADY_USED', async () => {
      const email = uniqueEmail('double-click');
      const minted = await mintToken(t, adminToken, { email });
      const browser = new CookieClient(t.baseUrl);
      const page = await browser.follow(demoLink(minted.token, email));
      const form = findForm(await page.response.text(), 'one-time-token');
      const post = () =>
        browser.request(form.action, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
          body: new URLSearchParams(form.hidden),
        });
      const [first, second] = await Promise.all([post(), post()]);
      for (const answer of [first, second]) {
        expect(answer.status).toBe(303);
        expect(new URL(answer.headers.get('location')!, t.baseUrl).pathname).toMatch(/^\/oidc\/auth\//);
      }
      const done = await browser.follow(second.headers.get('location')!);
      expect(done.url.pathname).toBe('/demo/callback');
      expect(done.url.searchParams.get('code') ?? (await done.response.text())).not.toContain('error');
    });

    it('“Back to the app” ends with access_denied, leaves the token active and the current session alone', async () => {
      const browser = new CookieClient(t.baseUrl);
      const ada = uniqueEmail('back-ada');
      const signedIn = await browser.follow(demoLink((await mintToken(t, adminToken, { email: ada })).token, ada));
      const done = await browser.submitForm(await signedIn.response.text(), 'one-time-token');
      expect(done.url.pathname).toBe('/demo/callback');
      const adaUser = (await api(t, 'GET', `/api/users?search=${encodeURIComponent(ada)}`, { token: adminToken })).body[0];
      const sessionUids = async () =>
        ((await api(t, 'GET', `/api/users/${adaUser.id}/sessions`, { token: adminToken })).body as { uid: string }[]).map((session) => session.uid);
      const sessionsBefore = await sessionUids();
      expect(sessionsBefore).toHaveLength(1);

      const bob = uniqueEmail('back-bob');
      const bobToken = await mintToken(t, adminToken, { email: bob });
      const page = await browser.follow(demoLink(bobToken.token, bob));
      const html = await page.response.text();
      expect(html).toContain(`You are signed in as <span class="email">${ada}</span>`);
      const back = await browser.submitForm(html, 'abort');
      expect(back.url.pathname).toBe('/demo/callback');
      expect(back.url.searchParams.get('error')).toBe('access_denied');

      expect((await api(t, 'GET', `/api/one-time-tokens/${bobToken.id}`, { token: adminToken })).body.status).toBe('active');
      expect(await sessionUids()).toEqual(sessionsBefore);
    });
  });
});
