import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind } from '../helpers/db.ts';
import { startTestSesame, type TestSesame } from '../helpers/server.ts';

const run = promisify(execFile);

/** The README's tour, exactly as a newcomer copies it. */
function tourScript(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = /<!-- tour:start -->\s*```sh\n([\s\S]*?)```\s*<!-- tour:end -->/.exec(readme);
  if (!section?.[1]) throw new Error('README.md has no tour block between the tour markers');
  return section[1];
}

describe(`the README tour (${databaseKind})`, () => {
  let t: TestSesame;
  beforeAll(async () => {
    t = await startTestSesame();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('mints a link with curl that signs Ada in through the demo app, once', async () => {
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', tourScript()], {
      env: { ...process.env, SESAME: t.baseUrl, CLIENT_ID: t.m2m.id, CLIENT_SECRET: t.m2m.secret },
    });
    const lines = stdout.trim().split('\n');
    const minted = JSON.parse(lines[0]!);
    expect(minted).toMatchObject({ email: 'ada@example.com', status: 'active' });
    const link = lines.at(-1)!;
    expect(link).toMatch(new RegExp(`^${t.baseUrl}/demo/landing\\?token=[A-Za-z0-9_-]+&email=ada%40example.com$`));

    const browser = new CookieClient(t.baseUrl);
    const landing = await browser.follow(link);
    const page = await landing.response.text();
    expect(page).toContain('Continue as <span class="email">ada@example.com</span>');
    const done = await browser.submitForm(page, 'one-time-token');
    expect(done.url.pathname).toBe('/demo/callback');
    const result = await done.response.text();
    expect(result).toContain('Signed in as ada@example.com');
    expect(result).toContain('&quot;email_verified&quot;: true');

    // Opening the link again, in any browser, explains that it was used.
    const other = new CookieClient(t.baseUrl);
    const again = await other.follow(link);
    const refused = await other.submitForm(await again.response.text(), 'one-time-token');
    expect(refused.response.status).toBe(410);
    expect(await refused.response.text()).toContain('TOKEN_ALREADY_USED');
  });
});
