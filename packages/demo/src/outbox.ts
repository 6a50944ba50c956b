import type Router from '@koa/router';
import { createRouter } from '../../../src/http/routing.ts';
import type { Context } from 'koa';
import type { DevOutbox, StoredMail } from '../../../src/mail/index.ts';
import { html, renderPage, setPageHeaders, type RawHtml } from '../../../src/http/pages.ts';

/**
 * The dev outbox: mail Sesame would have sent, when no SMTP_URL is set (never
 * in production; src/main.ts only mounts it then).
 *
 * - `GET /dev/outbox`: newest first, each mail's plain-text body with its links clickable.
 * - `GET /dev/outbox.json`: `{ mails: [{ id, from, to, subject, text, html, sentAt }] }`.
 * - `GET /dev/outbox/:id.html`: one mail's HTML body, under a CSP that allows no
 *   script, no fetch and no remote images (mail HTML is not trusted markup).
 */
export function createOutboxRouter(outbox: DevOutbox): Router {
  const router = createRouter();

  router.get('/dev/outbox', (ctx) => {
    const mails = outbox.list();
    renderPage(
      ctx,
      'Dev outbox',
      html`<h1>Dev outbox</h1>
<p class="muted">Mail Sesame would have sent. SMTP_URL is not set, so it is kept here (in memory, newest first, at most 100) and never sent. <a href="/dev/outbox.json">JSON</a></p>
${mails.length === 0 ? html`<p>No mail yet.</p>` : mails.map(renderMail)}`,
    );
  });

  router.get('/dev/outbox.json', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.body = { mails: outbox.list().map((mail) => ({ ...mail, sentAt: mail.sentAt.toISOString() })) };
  });

  router.get('/dev/outbox/:id.html', (ctx) => {
    const mail = outbox.list().find((candidate) => candidate.id === ctx.params.id);
    if (!mail) return notFound(ctx);
    setPageHeaders(ctx);
    ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = mail.html;
  });

  return router;
}

function renderMail(mail: StoredMail): RawHtml {
  return html`<article class="mail">
<h2>${mail.subject}</h2>
<p class="muted">To <strong>${mail.to}</strong> from ${mail.from}, <time datetime="${mail.sentAt.toISOString()}">${mail.sentAt.toISOString()}</time> · <a href="/dev/outbox/${encodeURIComponent(mail.id)}.html">HTML version</a></p>
<pre>${linkify(mail.text)}</pre>
</article>
`;
}

const urlPattern = /\bhttps?:\/\/[^\s<>"']+/g;

/** Escapes `text` and turns its http(s) URLs into links (trailing punctuation stays text). */
export function linkify(text: string): RawHtml {
  const parts: RawHtml[] = [];
  let last = 0;
  for (const match of text.matchAll(urlPattern)) {
    const url = match[0].replace(/[.,;:!?)\]]+$/, '');
    parts.push(html`${text.slice(last, match.index)}<a href="${url}" rel="noreferrer">${url}</a>`);
    last = match.index + url.length;
  }
  parts.push(html`${text.slice(last)}`);
  return html`${parts}`;
}

function notFound(ctx: Context): void {
  renderPage(ctx, 'Not found', html`<h1>Not found</h1><p>This mail is no longer in the outbox.</p><p><a href="/dev/outbox">Back to the outbox</a></p>`, 404);
}
