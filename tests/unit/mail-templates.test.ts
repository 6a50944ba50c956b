import { describe, expect, it } from 'vitest';
import { expiryInWords, layoutMail, renderInvitationMail } from '../../src/mail/templates.ts';

const link = 'https://sesame.test/app/landing?one_time_token=abc_DEF-123&login_hint=ada%40example.com';
const expiresAt = new Date('2030-01-08T12:00:00.000Z');

describe('the invitation mail', () => {
  const mail = renderInvitationMail({ organizationName: 'Acme', inviteeEmail: 'ada@example.com', link, expiresAt });

  it('has a subject naming the organization', () => {
    expect(mail.subject).toBe("You're invited to join Acme on Sesame");
  });

  it('holds the link in both bodies: as a button and as copyable text in HTML', () => {
    expect(mail.text).toContain(link);
    const escaped = link.replaceAll('&', '&amp;');
    expect(mail.html).toContain(`<a href="${escaped}"`);
    expect(mail.html.split(`>${escaped}</a>`)).toHaveLength(2);
    expect(mail.html).toContain('>Accept the invitation</a>');
  });

  it('names the invitee and the expiry in words and as an ISO date, in both bodies', () => {
    for (const body of [mail.text, mail.html]) {
      expect(body).toContain('ada@example.com');
      expect(body).toContain('Tuesday, 8 January 2030 at 12:00 UTC');
      expect(body).toContain('2030-01-08T12:00:00.000Z');
    }
  });

  it('says how long is left when given the current time', () => {
    const relative = renderInvitationMail({
      organizationName: 'Acme',
      inviteeEmail: 'ada@example.com',
      link,
      expiresAt,
      now: new Date('2030-01-01T12:00:00.000Z'),
    });
    expect(relative.text).toContain('expires in 7 days, on Tuesday');
  });

  it('escapes a <script> in the organization name and keeps the subject one line', () => {
    const hostile = renderInvitationMail({
      organizationName: '<script>alert("x")</script>\r\nBcc: eve@example.com',
      inviteeEmail: 'ada@example.com',
      link,
      expiresAt,
    });
    expect(hostile.html).not.toContain('<script>');
    expect(hostile.html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(hostile.subject).not.toMatch(/[\r\n]/);
    expect(hostile.subject).toContain('<script>'); // the subject is plain text, shown as is
  });

  it('is a standalone, accessible HTML document with inline styles only', () => {
    expect(mail.html).toMatch(/^<!doctype html>\n<html lang="en"/);
    expect(mail.html).toContain('<title>Join Acme</title>');
    expect(mail.html).not.toMatch(/<style|<link|<script|class=/);
    expect(mail.html).toContain('role="presentation"');
  });

  it('uses the product name it is given', () => {
    const branded = renderInvitationMail({ organizationName: 'Acme', inviteeEmail: 'a@b.test', link, expiresAt, productName: 'Acme ID' });
    expect(branded.subject).toBe("You're invited to join Acme on Acme ID");
    expect(branded.html).toContain('>Acme ID</td>');
  });
});

describe('the mail layout', () => {
  it('renders title, paragraphs, action and footer in both bodies, escaped in HTML', () => {
    const mail = layoutMail({
      title: 'Sign in to Sesame',
      paragraphs: ['Use this link & code 123456.'],
      action: { label: 'Sign in', url: 'https://sesame.test/x?a=1&b=2' },
      footer: 'Not you? Ignore this mail.',
    });
    expect(mail.text).toBe(
      'Sign in to Sesame\n\nUse this link & code 123456.\n\nSign in:\nhttps://sesame.test/x?a=1&b=2\n\n--\nNot you? Ignore this mail.\n',
    );
    expect(mail.html).toContain('<p style="margin:0 0 16px;">Use this link &amp; code 123456.</p>');
    expect(mail.html).toContain('href="https://sesame.test/x?a=1&amp;b=2"');
    expect(mail.html).toContain('Not you? Ignore this mail.');
  });

  it('refuses an action that is not an http(s) URL', () => {
    for (const url of ['javascript:alert(1)', 'data:text/html,x', '/relative']) {
      expect(() => layoutMail({ title: 't', paragraphs: [], action: { label: 'Go', url }, footer: '' })).toThrow(TypeError);
    }
  });
});

describe('expiry in words', () => {
  it('says minutes, hours or days left', () => {
    const now = new Date('2030-01-01T00:00:00.000Z');
    const after = (ms: number) => expiryInWords(new Date(now.getTime() + ms), now);
    expect(after(10 * 60_000)).toMatch(/^in 10 minutes, on /);
    expect(after(60_000)).toMatch(/^in 1 minute, on /);
    expect(after(5 * 3600_000)).toMatch(/^in 5 hours, on /);
    expect(after(3 * 86_400_000)).toMatch(/^in 3 days, on /);
  });
});
