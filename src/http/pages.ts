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

/** How a page is branded (the sign-in settings' branding). */
export type PageBrand = { name: string; logoUrl: string | null; primaryColor: string };

export const defaultBrand: PageBrand = { name: 'Sesame', logoUrl: null, primaryColor: '#3b5bdb' };

export type PageOptions = {
  /** The page's language (the `lang` attribute). */
  lang?: string;
  brand?: PageBrand;
  /** Load the progressive-enhancement script (/static/experience.js). */
  script?: boolean;
};

/**
 * Headers every hosted page sends: no caching (pages carry per-interaction
 * state), no referrer (URLs can carry tokens), a strict CSP: scripts and
 * styles only from this origin, never inline, images also from the
 * configured logo's origin, no framing.
 */
export function setPageHeaders(ctx: Context, options: { imageOrigin?: string } = {}): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set(
    'Content-Security-Policy',
    `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:${options.imageOrigin ? ` ${options.imageOrigin}` : ''}; base-uri 'none'; frame-ancestors 'none'`,
  );
}

const originOf = (url: string | null) => {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
};

export function renderPage(ctx: Context, title: string, body: RawHtml, status = 200, options: PageOptions = {}): void {
  const brand = options.brand ?? defaultBrand;
  const logoOrigin = originOf(brand.logoUrl);
  setPageHeaders(ctx, { imageOrigin: logoOrigin });
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  const theme = brand.primaryColor.toLowerCase() !== defaultBrand.primaryColor ? brand.primaryColor.slice(1) : undefined;
  ctx.body = html`<!doctype html>
<html lang="${options.lang ?? 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${brand.name}</title>
<link rel="stylesheet" href="/static/sesame.css">
${theme ? html`<link rel="stylesheet" href="/static/theme.css?accent=${theme}">` : ''}
${options.script ? html`<script src="/static/experience.js" defer></script>` : ''}
</head>
<body>
<main class="card">
<header class="brand">${logoOrigin ? html`<img src="${brand.logoUrl}" alt="${brand.name}" class="logo">` : html`<span class="brand-name">${brand.name}</span>`}</header>
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
  options?: PageOptions,
): void {
  renderPage(
    ctx,
    page.title,
    html`<h1>${page.title}</h1>
<p class="message" role="alert">${page.message}</p>
${page.code ? html`<p class="code">Error code: <code>${page.code}</code></p>` : ''}
${page.backTo ? html`<p><a class="button" href="${page.backTo}">${page.backLabel ?? 'Back to the app'}</a></p>` : ''}`,
    status ?? ctx.status,
    options,
  );
}

export const stylesheet = `
:root { color-scheme: light dark; --accent: #3b5bdb; --on-accent: #fff; --fg: #1c1e21; --muted: #5f6368; --bg: #f5f6f8; --card: #fff; --border: #8a8f98; --error: #c92a2a; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8eaed; --muted: #a0a4ab; --bg: #141518; --card: #1f2125; --accent: #9fb0ff; --on-accent: #10131a; --border: #80868b; --error: #ff8787; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; padding: 1.5rem 0; }
.card { width: min(420px, 92vw); background: var(--card); padding: 2rem; border-radius: 12px; box-shadow: 0 2px 16px rgba(0,0,0,.08); }
h1 { font-size: 1.35rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
p { margin: .5rem 0 1rem; }
.muted, .code { color: var(--muted); font-size: .9rem; }
.email { font-weight: 600; overflow-wrap: anywhere; }
form { margin: 0; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input[type=email], input[type=text] { width: 100%; padding: .6rem .7rem; border: 1px solid var(--border); border-radius: 8px; font: inherit; margin-bottom: 1rem; background: transparent; color: inherit; }
button, .button { display: inline-block; width: 100%; text-align: center; padding: .7rem 1rem; border: 0; border-radius: 8px;
  background: var(--accent); color: var(--on-accent); font: inherit; font-weight: 600; cursor: pointer; text-decoration: none; }
button.secondary, .button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--accent); margin-top: .5rem; }
button:focus-visible, .button:focus-visible, input:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
pre { white-space: pre-wrap; word-break: break-all; background: rgba(127,127,127,.1); padding: .75rem; border-radius: 8px; font-size: .85rem; }
[role=alert] { border-left: 4px solid #d9480f; padding-left: .75rem; }
.brand { margin-bottom: 1.25rem; }
.brand-name { font-weight: 700; color: var(--accent); }
.logo { max-height: 40px; max-width: 160px; }
input[type=password] { width: 100%; padding: .6rem .7rem; border: 1px solid var(--border); border-radius: 8px; font: inherit; margin-bottom: 1rem; background: transparent; color: inherit; }
input.code { font-size: 1.5rem; letter-spacing: .3em; text-align: center; font-variant-numeric: tabular-nums; }
input[aria-invalid=true] { border-color: #d9480f; }
.field-error { color: var(--error); font-size: .9rem; margin: -.75rem 0 1rem !important; }
.stack > * + * { margin-top: .5rem; }
.divider { text-align: center; color: var(--muted); font-size: .9rem; margin: 1rem 0; }
.reference { font-family: ui-monospace, Menlo, Consolas, monospace; font-weight: 600; letter-spacing: .05em; white-space: nowrap; }
.links { margin-top: 1.25rem; font-size: .95rem; }
.links a { color: var(--accent); }
ul.scopes { padding-left: 1.2rem; }
.qr { text-align: center; }
.qr img { background: #fff; padding: 8px; border-radius: 8px; max-width: 100%; height: auto; }
code.secret { overflow-wrap: anywhere; }
ul.backup-codes { columns: 2; padding-left: 1.2rem; font-family: ui-monospace, Menlo, Consolas, monospace; }
@media (max-width: 360px) { .card { padding: 1.25rem; border-radius: 0; width: 100vw; } body { place-items: start; } }
`;

/** The brand colour, as a stylesheet (CSP forbids inline styles). Answers undefined for anything but #rrggbb. */
export function themeStylesheet(accent: string): string | undefined {
  return /^[0-9a-fA-F]{6}$/.test(accent) ? `:root { --accent: #${accent}; --on-accent: #fff; }\n` : undefined;
}

/**
 * Progressive enhancement, never required: submit-once buttons, and the
 * auto-continue of forms marked data-auto-submit (a one-time-token landing
 * when the settings ask for it).
 */
export const experienceScript = `'use strict';
document.addEventListener('submit', function (event) {
  var form = event.target;
  if (form.dataset.submitted) { event.preventDefault(); return; }
  form.dataset.submitted = '1';
  setTimeout(function () { form.querySelectorAll('button').forEach(function (b) { b.disabled = true; }); }, 0);
});
document.addEventListener('DOMContentLoaded', function () {
  var auto = document.querySelector('form[data-auto-submit]');
  if (auto) auto.requestSubmit ? auto.requestSubmit() : auto.submit();
});
`;
