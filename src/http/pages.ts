import type { Context } from 'koa';

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (char) => escapes[char] ?? char);
}

/** Tagged template that escapes every interpolation unless it is `raw(...)`. */
export class RawHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}
export const raw = (value: string) => new RawHtml(value);

export function html(strings: TemplateStringsArray, ...values: unknown[]): RawHtml {
  let out = strings[0] ?? '';
  values.forEach((value, index) => {
    const rendered = Array.isArray(value)
      ? value.map((item) => (item instanceof RawHtml ? item.value : escapeHtml(item))).join('')
      : value instanceof RawHtml
        ? value.value
        : escapeHtml(value);
    out += rendered + (strings[index + 1] ?? '');
  });
  return new RawHtml(out);
}

/**
 * Headers every hosted page sends: no caching (pages carry per-interaction
 * state), no referrer (URLs can carry tokens), a strict CSP without scripts.
 */
export function setPageHeaders(ctx: Context): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set(
    'Content-Security-Policy',
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
  );
}

export function renderPage(ctx: Context, title: string, body: RawHtml, status = 200): void {
  setPageHeaders(ctx);
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.body = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Sesame</title>
<link rel="stylesheet" href="/static/sesame.css">
</head>
<body>
<main class="card">
${body}
</main>
</body>
</html>
`.value;
}

export function renderErrorPage(
  ctx: Context,
  page: { title: string; message: string; code?: string; backTo?: string; backLabel?: string },
  status?: number,
): void {
  renderPage(
    ctx,
    page.title,
    html`<h1>${page.title}</h1>
<p class="message" role="alert">${page.message}</p>
${page.code ? html`<p class="code">Error code: <code>${page.code}</code></p>` : ''}
${page.backTo ? html`<p><a class="button" href="${page.backTo}">${page.backLabel ?? 'Back to the app'}</a></p>` : ''}`,
    status ?? ctx.status,
  );
}

export const stylesheet = `
:root { color-scheme: light dark; --accent: #3b5bdb; --fg: #1c1e21; --muted: #5f6368; --bg: #f5f6f8; --card: #fff; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8eaed; --muted: #a0a4ab; --bg: #141518; --card: #1f2125; --accent: #7c95ff; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.card { width: min(420px, 92vw); background: var(--card); padding: 2rem; border-radius: 12px; box-shadow: 0 2px 16px rgba(0,0,0,.08); }
h1 { font-size: 1.35rem; margin: 0 0 1rem; }
p { margin: .5rem 0 1rem; }
.muted, .code { color: var(--muted); font-size: .9rem; }
.email { font-weight: 600; overflow-wrap: anywhere; }
form { margin: 0; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input[type=email], input[type=text] { width: 100%; padding: .6rem .7rem; border: 1px solid #c6c9cf; border-radius: 8px; font: inherit; margin-bottom: 1rem; background: transparent; color: inherit; }
button, .button { display: inline-block; width: 100%; text-align: center; padding: .7rem 1rem; border: 0; border-radius: 8px;
  background: var(--accent); color: #fff; font: inherit; font-weight: 600; cursor: pointer; text-decoration: none; }
button.secondary, .button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--accent); margin-top: .5rem; }
button:focus-visible, .button:focus-visible, input:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
pre { white-space: pre-wrap; word-break: break-all; background: rgba(127,127,127,.1); padding: .75rem; border-radius: 8px; font-size: .85rem; }
[role=alert] { border-left: 4px solid #d9480f; padding-left: .75rem; }
`;
