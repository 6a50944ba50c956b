import { html } from '../http/pages.ts';

/** A rendered mail: the subject and two equivalent bodies. */
export type RenderedMail = { subject: string; text: string; html: string };

export type MailAction = { label: string; url: string };

export type MailLayout = {
  title: string;
  /** Plain-text paragraphs (escaped in the HTML body). */
  paragraphs: string[];
  /** The one thing the mail asks for: a button in HTML, a labelled link in text. */
  action?: MailAction;
  /** A one-time code shown large (after the action, when both are given). */
  code?: { intro: string; value: string };
  /** Small print under the action: expiry, "ignore this mail if…". */
  footer: string | string[];
  productName?: string;
  /** The mail's language (the `lang` attribute). */
  lang?: string;
  /** "If the button does not work, copy this link…", in the mail's language. */
  copyLinkLabel?: string;
  /** The brand colour of the product name and the button (#rrggbb). */
  accent?: string;
};

// The hosted pages' palette (src/http/pages.ts), inlined: mail clients drop <style> and classes.
const colors = { accent: '#3b5bdb', text: '#1c1e21', muted: '#5f6368', background: '#f5f6f8', card: '#ffffff', rule: '#e3e5e8' };
const font = 'font-family:-apple-system,BlinkMacSystemFont,Segoe UI,Roboto,Helvetica,Arial,sans-serif;';

/**
 * The shared layout of every Sesame mail: a title, a few paragraphs, one
 * button (repeated as a copyable link), and a footer. Every value is escaped.
 */
export function layoutMail({
  title,
  paragraphs,
  action,
  code,
  footer,
  productName = 'Sesame',
  lang = 'en',
  copyLinkLabel = 'If the button does not work, copy this link into your browser:',
  accent = colors.accent,
}: MailLayout): { text: string; html: string } {
  if (action) assertWebUrl(action.url);
  const footerParagraphs = typeof footer === 'string' ? [footer] : footer;

  const text = [
    title,
    '',
    ...paragraphs.flatMap((paragraph) => [paragraph, '']),
    ...(action ? [`${action.label}:`, action.url, ''] : []),
    ...(code ? [code.intro, '', `    ${code.value}`, ''] : []),
    '--',
    ...footerParagraphs.flatMap((paragraph, index) => (index === 0 ? [paragraph] : ['', paragraph])),
    '',
  ].join('\n');

  const body = html`<!doctype html>
<html lang="${lang}" dir="ltr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="supported-color-schemes" content="light">
<title>${title}</title>
</head>
<body style="margin:0;padding:0;background-color:${colors.background};">
<div style="display:none;max-height:0;overflow:hidden;mso-hide:all;">${paragraphs[0] ?? title}</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:${colors.background};">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:560px;background-color:${colors.card};border-radius:12px;">
<tr><td style="padding:28px 32px 0;${font}font-size:16px;font-weight:700;color:${accent};">${productName}</td></tr>
<tr><td style="padding:12px 32px 8px;${font}font-size:16px;line-height:1.5;color:${colors.text};">
<h1 style="margin:0 0 16px;font-size:24px;line-height:1.3;font-weight:700;color:${colors.text};">${title}</h1>
${paragraphs.map((paragraph) => html`<p style="margin:0 0 16px;">${paragraph}</p>\n`)}
${action ? actionBlock(action, copyLinkLabel, accent) : ''}${code ? codeBlock(code) : ''}</td></tr>
<tr><td style="padding:16px 32px 28px;border-top:1px solid ${colors.rule};${font}font-size:13px;line-height:1.5;color:${colors.muted};">
${footerParagraphs.map((paragraph) => html`<p style="margin:0 0 8px;">${paragraph}</p>\n`)}</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
`;
  return { text, html: body.value };
}

function actionBlock(action: MailAction, copyLinkLabel: string, accent: string) {
  return html`<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:24px 0;">
<tr><td align="center" style="border-radius:8px;background-color:${accent};">
<a href="${action.url}" target="_blank" style="display:inline-block;padding:14px 28px;${font}font-size:16px;font-weight:600;line-height:1.2;color:#ffffff;text-decoration:none;border-radius:8px;">${action.label}</a>
</td></tr>
</table>
<p style="margin:0 0 4px;font-size:14px;color:${colors.muted};">${copyLinkLabel}</p>
<p style="margin:0 0 24px;font-size:14px;word-break:break-all;"><a href="${action.url}" target="_blank" style="color:${accent};">${action.url}</a></p>
`;
}

function codeBlock(code: { intro: string; value: string }) {
  return html`<p style="margin:0 0 8px;">${code.intro}</p>
<p style="margin:0 0 24px;font-size:32px;font-weight:700;letter-spacing:6px;font-family:ui-monospace,Menlo,Consolas,monospace;">${code.value}</p>
`;
}

export type InvitationMailInput = {
  organizationName: string;
  inviteeEmail: string;
  /** The invitation (one-time token) link. */
  link: string;
  expiresAt: Date;
  productName?: string;
  /** When given, the expiry is also said relatively ("in 7 days"). */
  now?: Date;
};

/** The mail inviting someone to join an organization by a one-time link. */
export function renderInvitationMail({
  organizationName,
  inviteeEmail,
  link,
  expiresAt,
  productName = 'Sesame',
  now,
}: InvitationMailInput): RenderedMail {
  const organization = oneLine(organizationName);
  const product = oneLine(productName);
  const subject = `You're invited to join ${organization} on ${product}`;
  const body = layoutMail({
    title: `Join ${organization}`,
    paragraphs: [
      `You have been invited to join ${organization} on ${product} as ${inviteeEmail}.`,
      'Accept the invitation to sign in: no password is needed.',
    ],
    action: { label: 'Accept the invitation', url: link },
    footer: [
      `This invitation expires ${expiryInWords(expiresAt, now)} and works once. Do not forward it: anyone with the link can sign in as you.`,
      'If you were not expecting this invitation, you can ignore this mail: nothing happens unless the link is used.',
    ],
    productName: product,
  });
  return { subject, ...body };
}

/** "in 7 days, on Wednesday, 1 January 2025 at 12:00 UTC (2025-01-01T12:00:00.000Z)" */
export function expiryInWords(expiresAt: Date, now?: Date): string {
  const absolute = `on ${dateFormat.format(expiresAt)} UTC (${expiresAt.toISOString()})`;
  return now ? `${relativeDuration(expiresAt.getTime() - now.getTime())}, ${absolute}` : absolute;
}

const dateFormat = new Intl.DateTimeFormat('en-GB', { dateStyle: 'full', timeStyle: 'short', timeZone: 'UTC' });

function relativeDuration(ms: number): string {
  const minutes = Math.max(1, Math.round(ms / 60_000));
  if (minutes < 90) return `in ${plural(minutes, 'minute')}`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `in ${plural(hours, 'hour')}`;
  return `in ${plural(Math.round(hours / 24), 'day')}`;
}

const plural = (count: number, unit: string) => `${count} ${unit}${count === 1 ? '' : 's'}`;

/** Subjects and titles are single lines: control characters (CR/LF) become spaces. */
function oneLine(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** A mail's button must open a web page: no javascript:, data: or relative URLs. */
function assertWebUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new TypeError('a mail action needs an absolute http(s) URL');
  }
  if (protocol !== 'https:' && protocol !== 'http:') throw new TypeError('a mail action needs an absolute http(s) URL');
}
