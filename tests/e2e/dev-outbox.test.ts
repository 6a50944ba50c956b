import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient } from '../helpers/browser-client.ts';
import { uniqueEmail } from '../helpers/db.ts';
import { startTestSesame, type TestSesame } from '../helpers/server.ts';

const link = 'https://app.example.com/landing?one_time_token=tok_123&login_hint=ada%40example.com';

describe('the dev outbox (no SMTP_URL, development)', () => {
  let t: TestSesame;
  beforeAll(async () => {
    t = await startTestSesame();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('shows mail Sesame would have sent, escaped, with its links clickable, and lists it as JSON', async () => {
    await t.sesame.services.mailer.send({
      to: 'ada@example.com',
      subject: 'Join <b>Acme</b>',
      text: `Accept the invitation:\n${link}.\n<script>alert(1)</script>`,
      html: `<p>Accept: <a href="${link}">here</a></p><script>alert(2)</script>`,
    });

    const page = await fetch(`${t.baseUrl}/dev/outbox`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('cache-control')).toBe('no-store');
    const body = await page.text();
    expect(body).toContain('Join &lt;b&gt;Acme&lt;/b&gt;');
    expect(body).toContain('ada@example.com');
    const escapedLink = link.replaceAll('&', '&amp;');
    expect(body).toContain(`<a href="${escapedLink}" rel="noreferrer">${escapedLink}</a>.`);
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(body).not.toContain('<script>');
    expect(body).not.toContain('alert(2)'); // the HTML body is not rendered inline

    const json = await fetch(`${t.baseUrl}/dev/outbox.json`);
    expect(json.status).toBe(200);
    const { mails } = (await json.json()) as { mails: Array<Record<string, string>> };
    expect(mails[0]).toMatchObject({ to: 'ada@example.com', subject: 'Join <b>Acme</b>', from: t.config.emailFrom });
    expect(mails[0]!.text).toContain(link);
    expect(new Date(mails[0]!.sentAt!).toISOString()).toBe(mails[0]!.sentAt);

    const single = await fetch(`${t.baseUrl}/dev/outbox/${mails[0]!.id}.html`);
    expect(single.status).toBe(200);
    expect(single.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; img-src data:");
    expect(single.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await single.text()).toContain('<script>alert(2)</script>'); // served as is, but no script may run
    expect(body).toContain(`href="/dev/outbox/${mails[0]!.id}.html"`);

    expect((await fetch(`${t.baseUrl}/dev/outbox/no-such-mail.html`)).status).toBe(404);
  });

  it('lists the newest mail first', async () => {
    await t.sesame.services.mailer.send({ to: 'b@example.com', subject: 'older', text: 'older', html: '<p>older</p>' });
    await t.sesame.services.mailer.send({ to: 'b@example.com', subject: 'newer', text: 'newer', html: '<p>newer</p>' });
    const { mails } = (await (await fetch(`${t.baseUrl}/dev/outbox.json`)).json()) as { mails: Array<{ subject: string }> };
    expect(mails.slice(0, 2).map((mail) => mail.subject)).toEqual(['newer', 'older']);
    const body = await (await fetch(`${t.baseUrl}/dev/outbox`)).text();
    expect(body.indexOf('<h2>newer</h2>')).toBeLessThan(body.indexOf('<h2>older</h2>'));
  });
});

describe('the demo’s self-serve sign-in with the dev outbox', () => {
  let t: TestSesame;
  beforeAll(async () => {
    t = await startTestSesame();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('signs in through Sesame’s own page: the mail waits in the outbox, its link finishes at the demo app', async () => {
    const email = uniqueEmail('demo');
    await t.sesame.services.users.findOrCreateVerifiedByEmail(email, new Date());
    const browser = new CookieClient(t.baseUrl);
    const start = await browser.follow('/demo/sign-in');
    expect(start.url.pathname).toMatch(/^\/interaction\//);
    const sent = await browser.submitForm(await start.response.text(), '/email', { email, method: 'magic_link' });
    expect(sent.response.status).toBe(200);
    const { mails } = (await (await fetch(`${t.baseUrl}/dev/outbox.json`)).json()) as { mails: Array<{ to: string; text: string }> };
    const mail = mails.find((candidate) => candidate.to === email);
    const link = /http\S+\/sign-in\/link\?token=\S+/.exec(mail?.text ?? '')?.[0];
    expect(link).toBeDefined();
    const landing = await browser.follow(link!);
    const done = await browser.submitForm(await landing.response.text(), '/sign-in/link');
    expect(done.url.pathname).toBe('/demo/callback');
    expect(await done.response.text()).toContain(`Signed in as ${email}`);
  });
});

describe('the dev outbox in production', () => {
  let t: TestSesame;
  beforeAll(async () => {
    t = await startTestSesame({ NODE_ENV: 'production' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('does not exist', async () => {
    expect(t.sesame.outbox).toBeUndefined();
    // Without SMTP_URL a production mailer refuses to send rather than dropping mail.
    await expect(
      t.sesame.services.mailer.send({ to: 'ada@example.com', subject: 'Hi', text: 'secret', html: '<p>secret</p>' }),
    ).rejects.toThrow(/SMTP_URL/);
    for (const path of ['/dev/outbox', '/dev/outbox.json']) {
      expect((await fetch(`${t.baseUrl}${path}`)).status).toBe(404);
    }
  });
});
