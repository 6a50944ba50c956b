import type { Context } from 'koa';
import { errorTable, type ErrorCode } from '../../../src/errors.ts';
import { hasMessage, type Language, type MessageKey, type Translate } from '../../../src/i18n/index.ts';
import { escapeHtml, html, raw, renderPage, type PageBrand, type RawHtml } from '../../../src/http/pages.ts';
import type { SignInSettings } from '../../../src/settings/index.ts';

/** What every page of one interaction knows: language, brand, the app, the CSRF token. */
export type View = {
  t: Translate;
  lang: Language;
  brand: PageBrand;
  appName: string;
  /** Absent on pages shown without the interaction (a link opened in another browser). */
  uid?: string;
  csrf?: string;
};

/** A failed field: which input, which code; the message comes from the catalog. */
export type FieldError = { field: 'email' | 'password' | 'code' | 'form'; code: ErrorCode };

/**
 * A message with some placeholders set off in markup: `{email}` becomes
 * `<span class="email">…</span>`, `{reference}` a reference label. Every
 * part is escaped.
 */
export function rich(t: Translate, key: MessageKey, vars: Record<string, string | number>): RawHtml {
  const classes: Record<string, string> = { email: 'email', current: 'email', next: 'email', reference: 'reference' };
  const template = t(key);
  let out = '';
  let last = 0;
  for (const match of template.matchAll(/\{(\w+)\}/g)) {
    const name = match[1] ?? '';
    out += escapeHtml(template.slice(last, match.index));
    const value = name in vars ? escapeHtml(vars[name]) : escapeHtml(match[0]);
    out +=
      !(name in vars) ? value
      : name === 'code' ? `<code>${value}</code>`
      : classes[name] ? `<span class="${classes[name]}"${name === 'reference' ? ' data-reference' : ''}>${value}</span>`
      : value;
    last = (match.index ?? 0) + match[0].length;
  }
  return raw(out + escapeHtml(template.slice(last)));
}

const page = (ctx: Context, view: View, title: string, body: RawHtml, status = 200, script = true) =>
  renderPage(ctx, title, body, status, { lang: view.lang, brand: view.brand, script });

const csrfField = (view: View) => (view.csrf ? html`<input type="hidden" name="csrf" value="${view.csrf}">` : '');

/** Every interaction page offers a way back to the app (access_denied to the app). */
export const backForm = (view: View) =>
  view.uid
    ? html`<form method="post" action="/interaction/${view.uid}/abort">
${csrfField(view)}<button type="submit" class="secondary">${view.t('common.back')}</button>
</form>`
    : '';

export function errorMessage(t: Translate, code: ErrorCode): string {
  const key = `error.${code}`;
  return hasMessage(key) ? t(key) : errorTable[code].message;
}

/** An input with its label and, when it failed, the error tied to it (aria-describedby). */
function field(input: {
  id: string;
  name: string;
  type: 'email' | 'password' | 'text';
  label: string;
  value?: string;
  autocomplete: string;
  error?: string;
  autofocus?: boolean;
  extra?: RawHtml;
  hint?: string;
}) {
  const describedBy = [input.error ? `${input.id}-error` : '', input.hint ? `${input.id}-hint` : ''].filter(Boolean).join(' ');
  return html`<label for="${input.id}">${input.label}</label>
${input.hint ? html`<p id="${input.id}-hint" class="muted">${input.hint}</p>` : ''}
<input id="${input.id}" name="${input.name}" type="${input.type}" autocomplete="${input.autocomplete}" required${input.value ? html` value="${input.value}"` : ''}${input.autofocus ? html` autofocus` : ''}${input.error ? html` aria-invalid="true"` : ''}${describedBy ? html` aria-describedby="${describedBy}"` : ''}${input.extra ?? ''}>
${input.error ? html`<p id="${input.id}-error" class="field-error" role="alert">${input.error}</p>` : ''}`;
}

const formError = (view: View, error?: FieldError) =>
  error?.field === 'form' ? html`<p class="message" role="alert">${errorMessage(view.t, error.code)}</p>` : '';

const fieldError = (view: View, error: FieldError | undefined, name: FieldError['field']) =>
  error?.field === name ? errorMessage(view.t, error.code) : undefined;

/** The first screen: the email, then the methods the settings turn on. */
export function startPage(
  ctx: Context,
  view: View,
  input: { email?: string; settings: SignInSettings; error?: FieldError; status?: number },
): void {
  const { t } = view;
  const { methods } = input.settings;
  const anyEmailMethod = methods.magicLink || methods.emailCode;
  const title = t('signIn.title', { app: view.appName });
  if (!anyEmailMethod && !methods.password && !input.settings.mfa.totpOnlySignIn) {
    return page(ctx, view, title, html`<h1>${title}</h1><p>${t('signIn.noMethods')}</p>${backForm(view)}`, input.status);
  }
  page(
    ctx,
    view,
    title,
    html`<h1>${title}</h1>
${formError(view, input.error)}
${anyEmailMethod ? html`<p>${methods.magicLink ? t('signIn.intro') : t('signIn.introCode')}</p>` : ''}
<form method="post" action="/interaction/${view.uid}/email" class="stack" novalidate>
${csrfField(view)}
${field({ id: 'email', name: 'email', type: 'email', label: t('common.email'), value: input.email, autocomplete: 'username email', error: fieldError(view, input.error, 'email'), autofocus: true })}
${methods.magicLink ? html`<button type="submit" name="method" value="magic_link">${t('signIn.sendLink')}</button>` : ''}
${methods.emailCode ? html`<button type="submit" name="method" value="email_code"${methods.magicLink ? html` class="secondary"` : ''}>${methods.magicLink ? t('signIn.sendCode') : t('signIn.sendCodeOnly')}</button>` : ''}
${methods.password ? html`<button type="submit" name="method" value="password"${anyEmailMethod ? html` class="secondary"` : ''}>${t('signIn.usePassword')}</button>` : ''}
${input.settings.mfa.totpOnlySignIn ? html`<button type="submit" name="method" value="totp" class="secondary">${t('signIn.useTotp')}</button>` : ''}
</form>
${methods.password && input.settings.registration ? html`<p class="links"><a href="/interaction/${view.uid}/register">${t('signIn.register')}</a></p>` : ''}
${backForm(view)}`,
    input.status,
  );
}

/** "Check your inbox": the reference of the current mail, the code form, resend. */
export function sentPage(
  ctx: Context,
  view: View,
  input: { email: string; purpose: 'magic_link' | 'email_code' | 'register'; reference: string; minutes: number; error?: FieldError; status?: number },
): void {
  const { t } = view;
  const vars = { email: input.email, reference: input.reference, minutes: input.minutes };
  const intro = rich(t, input.purpose === 'magic_link' ? 'sent.link' : input.purpose === 'register' ? 'sent.register' : 'sent.code', vars);
  page(
    ctx,
    view,
    t('sent.title'),
    html`<h1>${t('sent.title')}</h1>
<p>${intro}</p>
<p class="muted">${rich(t, 'sent.reference', vars)}</p>
${formError(view, input.error)}
<form method="post" action="/interaction/${view.uid}/code" novalidate>
${csrfField(view)}
${field({ id: 'code', name: 'code', type: 'text', label: t('common.code'), autocomplete: 'one-time-code', error: fieldError(view, input.error, 'code'), autofocus: true, extra: html` inputmode="numeric" pattern="[0-9 ]*" maxlength="7" class="code"`, hint: t('sent.expires', vars) })}
<button type="submit">${t('sent.verify')}</button>
</form>
<p class="muted">${t('sent.noMail')}</p>
<form method="post" action="/interaction/${view.uid}/resend">
${csrfField(view)}<button type="submit" class="secondary">${t('sent.resend')}</button>
</form>
<p class="links"><a href="/interaction/${view.uid}">${t('sent.otherEmail')}</a></p>
${backForm(view)}`,
    input.status,
  );
}

export function passwordPage(ctx: Context, view: View, input: { email?: string; settings: SignInSettings; error?: FieldError; status?: number }): void {
  const { t } = view;
  const title = t('password.title', { app: view.appName });
  page(
    ctx,
    view,
    title,
    html`<h1>${title}</h1>
${formError(view, input.error)}
<form method="post" action="/interaction/${view.uid}/password" novalidate>
${csrfField(view)}
${field({ id: 'email', name: 'email', type: 'email', label: t('common.email'), value: input.email, autocomplete: 'username email', error: fieldError(view, input.error, 'email'), autofocus: !input.email })}
${field({ id: 'password', name: 'password', type: 'password', label: t('common.password'), autocomplete: 'current-password', error: fieldError(view, input.error, 'password'), autofocus: Boolean(input.email) })}
<button type="submit">${t('password.submit')}</button>
</form>
<p class="links">${input.settings.methods.magicLink || input.settings.methods.emailCode ? html`<a href="/interaction/${view.uid}">${t('password.useLink')}</a>` : ''}
${input.settings.registration ? html` · <a href="/interaction/${view.uid}/register">${t('signIn.register')}</a>` : ''}</p>
${backForm(view)}`,
    input.status,
  );
}

export function registerPage(ctx: Context, view: View, input: { email?: string; error?: FieldError; status?: number }): void {
  const { t } = view;
  page(
    ctx,
    view,
    t('register.title'),
    html`<h1>${t('register.title')}</h1>
<p>${t('register.intro')}</p>
${formError(view, input.error)}
<form method="post" action="/interaction/${view.uid}/register" novalidate>
${csrfField(view)}
${field({ id: 'email', name: 'email', type: 'email', label: t('common.email'), value: input.email, autocomplete: 'username email', error: fieldError(view, input.error, 'email'), autofocus: true })}
${field({ id: 'password', name: 'password', type: 'password', label: t('common.password'), autocomplete: 'new-password', error: fieldError(view, input.error, 'password'), hint: t('register.passwordHint'), extra: html` minlength="8"` })}
<button type="submit">${t('register.submit')}</button>
</form>
<p class="links"><a href="/interaction/${view.uid}">${t('signIn.haveAccount')}</a></p>
${backForm(view)}`,
    input.status,
  );
}

/**
 * The one-time-token landing. Signed in as someone else: continue as the
 * link's address, or keep the current account (the token stays unused).
 */
export function continueAsPage(
  ctx: Context,
  view: View,
  input: { email: string; signedInAs?: string | null; autoSubmit: boolean },
): void {
  const { t } = view;
  const same = input.signedInAs && input.signedInAs.toLowerCase() === input.email.toLowerCase();
  if (input.signedInAs && !same) {
    return page(
      ctx,
      view,
      t('token.switchTitle'),
      html`<h1>${t('token.switchTitle')}</h1>
<p>${rich(t, 'token.switchIntro', { current: input.signedInAs, next: input.email })}</p>
<form method="post" action="/interaction/${view.uid}/one-time-token">
${csrfField(view)}<button type="submit" autofocus>${rich(t, 'token.switchContinue', { email: input.email })}</button>
</form>
<form method="post" action="/interaction/${view.uid}/keep">
${csrfField(view)}<button type="submit" class="secondary">${rich(t, 'token.switchKeep', { email: input.signedInAs })}</button>
</form>
${backForm(view)}`,
    );
  }
  const title = t('link.title', { app: view.appName });
  page(
    ctx,
    view,
    title,
    html`<h1>${title}</h1>
<p>${rich(t, 'token.continueAs', { email: input.email })}</p>
${same ? html`<p class="muted">${rich(t, 'token.alreadySignedIn', { email: input.signedInAs ?? '' })}</p>` : ''}
<form method="post" action="/interaction/${view.uid}/one-time-token"${input.autoSubmit ? html` data-auto-submit` : ''}>
${csrfField(view)}<button type="submit" autofocus>${t('common.continue')}</button>
</form>
${backForm(view)}`,
  );
}

/** A self-serve link opened in the browser that asked for it: one click signs in. */
export function linkContinuePage(ctx: Context, view: View, input: { email: string; token: string }): void {
  const { t } = view;
  const title = t('link.title', { app: view.appName });
  page(
    ctx,
    view,
    title,
    html`<h1>${title}</h1>
<p>${rich(t, 'link.continueAs', { email: input.email })}</p>
<form method="post" action="/sign-in/link">
${csrfField(view)}<input type="hidden" name="token" value="${input.token}">
<button type="submit" autofocus>${t('common.continue')}</button>
</form>
${backForm(view)}`,
  );
}

/** A self-serve link opened elsewhere: the code finishes the sign-in where it started. */
export function linkOtherBrowserPage(ctx: Context, view: View, input: { reference: string; token: string; hereCsrf?: string }): void {
  const { t } = view;
  page(
    ctx,
    view,
    t('link.otherBrowserTitle'),
    html`<h1>${t('link.otherBrowserTitle')}</h1>
<p>${rich(t, 'link.otherBrowser', { reference: input.reference })}</p>
${input.hereCsrf
  ? html`<p class="muted">${t('link.sendHere')}</p>
<form method="post" action="/sign-in/link/resend">
<input type="hidden" name="token" value="${input.token}"><input type="hidden" name="csrf" value="${input.hereCsrf}">
<button type="submit" class="secondary">${t('link.sendHereButton')}</button>
</form>`
  : ''}`,
  );
}

/**
 * What went wrong with a link, token or interaction, in plain words, and the
 * ways on: a fresh link to the same address (when there is one to offer) and
 * back to the app.
 */
export function failurePage(
  ctx: Context,
  view: View,
  input: {
    code: ErrorCode;
    resend?: { action: string; fields: Record<string, string>; email: string };
    /** Without an interaction: the app's own address (from its registered redirect URI), to start again there. */
    home?: string;
  },
): void {
  const { t } = view;
  const titleKey = `error.${input.code}.title`;
  const title = hasMessage(titleKey) ? t(titleKey) : t('error.title');
  page(
    ctx,
    view,
    title,
    html`<h1>${title}</h1>
<p class="message" role="alert">${errorMessage(t, input.code)}</p>
${input.resend
  ? html`<p>${rich(t, 'error.newLinkHint', { email: input.resend.email })}</p>
<form method="post" action="${input.resend.action}">
${Object.entries(input.resend.fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<button type="submit" autofocus>${t('error.getNewLink')}</button>
</form>`
  : ''}
${backForm(view)}
${!view.uid && input.home ? html`<p><a class="button secondary" href="${input.home}">${t('common.back')}</a></p>` : ''}
<p class="code">${rich(t, 'common.errorCode', { code: input.code })}</p>`,
    errorTable[input.code].status,
  );
}

/** A third-party application asks for access: the scopes in words, allow or deny. */
export function consentPage(ctx: Context, view: View, input: { email: string; scopes: string[] }): void {
  const { t } = view;
  const title = t('consent.title', { app: view.appName });
  const describe = (scope: string) => {
    const key = `consent.scope.${scope}`;
    return hasMessage(key) ? t(key) : t('consent.scope.other', { scope });
  };
  page(
    ctx,
    view,
    title,
    html`<h1>${title}</h1>
<p>${rich(t, 'consent.intro', { app: view.appName, email: input.email })}</p>
<ul class="scopes">${input.scopes.map((scope) => html`<li>${describe(scope)}</li>`)}</ul>
<form method="post" action="/interaction/${view.uid}/consent">
${csrfField(view)}<button type="submit" name="decision" value="accept" autofocus>${t('consent.allow')}</button>
<button type="submit" name="decision" value="deny" class="secondary">${t('consent.deny')}</button>
</form>`,
  );
}

export function linkResentPage(ctx: Context, view: View, input: { email: string; reference: string }): void {
  const { t } = view;
  page(
    ctx,
    view,
    t('sent.title'),
    html`<h1>${t('sent.title')}</h1>
<p>${rich(t, 'link.resent', { email: input.email })}</p>
<p class="muted">${rich(t, 'common.reference', { reference: input.reference })}</p>
${backForm(view)}`,
  );
}

// --- Second factors ------------------------------------------------------------------------------

/** The authenticator code, or a backup code when the phone is lost. */
export function mfaVerifyPage(ctx: Context, view: View, input: { error?: FieldError; status?: number }): void {
  const { t } = view;
  const codeError = input.error?.field === 'code' ? errorMessage(t, input.error.code) : undefined;
  const backupError = input.error?.field === 'password' ? errorMessage(t, input.error.code) : undefined;
  page(
    ctx,
    view,
    t('mfa.title'),
    html`<h1>${t('mfa.title')}</h1>
<p>${t('mfa.intro', { app: view.appName })}</p>
${formError(view, input.error)}
<form method="post" action="/interaction/${view.uid}/mfa" novalidate>
${csrfField(view)}
${field({ id: 'code', name: 'code', type: 'text', label: t('mfa.code'), autocomplete: 'one-time-code', error: codeError, autofocus: true, extra: html` inputmode="numeric" pattern="[0-9 ]*" maxlength="7" class="code"` })}
<button type="submit">${t('mfa.verify')}</button>
</form>
<p class="muted">${t('mfa.useBackup')}</p>
<form method="post" action="/interaction/${view.uid}/mfa" novalidate>
${csrfField(view)}
${field({ id: 'backup-code', name: 'backupCode', type: 'text', label: t('mfa.backupCode'), autocomplete: 'off', error: backupError })}
<button type="submit" class="secondary">${t('mfa.useBackupSubmit')}</button>
</form>
${backForm(view)}`,
    input.status,
  );
}

/** Enrolment, required (inside the sign-in) or offered once (skippable). */
export function mfaEnrollIntroPage(ctx: Context, view: View, input: { required: boolean }): void {
  const { t } = view;
  page(
    ctx,
    view,
    t('mfa.enrollTitle'),
    html`<h1>${t('mfa.enrollTitle')}</h1>
<p>${input.required ? t('mfa.enrollRequired', { app: view.appName }) : t('mfa.enrollOffer')}</p>
<form method="post" action="/interaction/${view.uid}/mfa/enroll">
${csrfField(view)}<button type="submit" autofocus>${t('mfa.enrollStart')}</button>
</form>
${input.required
  ? backForm(view)
  : html`<form method="post" action="/interaction/${view.uid}/mfa/skip">
${csrfField(view)}<button type="submit" class="secondary">${t('mfa.skip')}</button>
</form>`}`,
  );
}

/** The QR code (server-rendered SVG), the key to type by hand, and the code that turns it on. */
export function mfaEnrollPage(
  ctx: Context,
  view: View,
  input: { qrCodeDataUri: string; secret: string; error?: FieldError; status?: number },
): void {
  const { t } = view;
  const grouped = input.secret.replace(/(.{4})/g, '$1 ').trim();
  page(
    ctx,
    view,
    t('mfa.enrollTitle'),
    html`<h1>${t('mfa.enrollTitle')}</h1>
<p>${t('mfa.scan')}</p>
<p class="qr"><img src="${input.qrCodeDataUri}" alt="${t('mfa.qrAlt')}" width="200" height="200"></p>
<p class="muted">${t('mfa.secret')}: <code class="secret" data-secret>${grouped}</code></p>
<form method="post" action="/interaction/${view.uid}/mfa/confirm" novalidate>
${csrfField(view)}
${field({ id: 'code', name: 'code', type: 'text', label: t('mfa.code'), autocomplete: 'one-time-code', error: input.error ? errorMessage(t, input.error.code) : undefined, autofocus: true, extra: html` inputmode="numeric" pattern="[0-9 ]*" maxlength="7" class="code"` })}
<button type="submit">${t('mfa.confirm')}</button>
</form>
${backForm(view)}`,
    input.status,
  );
}

/** Backup codes, shown once, then on to the app. */
export function backupCodesPage(ctx: Context, view: View, input: { codes: string[] }): void {
  const { t } = view;
  page(
    ctx,
    view,
    t('mfa.backupTitle'),
    html`<h1>${t('mfa.backupTitle')}</h1>
<p>${t('mfa.backupIntro')}</p>
<ul class="backup-codes">${input.codes.map((code) => html`<li><code>${code}</code></li>`)}</ul>
<form method="post" action="/interaction/${view.uid}/mfa/continue">
${csrfField(view)}<button type="submit" autofocus>${t('mfa.backupSaved')}</button>
</form>`,
  );
}

/** After a backup code: how many are left, then on to the app. */
export function backupUsedPage(ctx: Context, view: View, input: { remaining: number; redirectTo: string }): void {
  const { t } = view;
  page(
    ctx,
    view,
    t('mfa.backupUsedTitle'),
    html`<h1>${t('mfa.backupUsedTitle')}</h1>
<p role="status">${t('mfa.backupUsed', { count: input.remaining })}</p>
<p><a class="button" href="${input.redirectTo}" autofocus>${t('common.continue')}</a></p>`,
  );
}

/** TOTP-only sign-in: email and authenticator code on one page, no mail. */
export function totpOnlyPage(ctx: Context, view: View, input: { email?: string; error?: FieldError; status?: number }): void {
  const { t } = view;
  page(
    ctx,
    view,
    t('totp.title'),
    html`<h1>${t('totp.title')}</h1>
<p>${t('totp.intro')}</p>
${formError(view, input.error)}
<form method="post" action="/interaction/${view.uid}/totp" novalidate>
${csrfField(view)}
${field({ id: 'email', name: 'email', type: 'email', label: t('common.email'), value: input.email, autocomplete: 'username email', error: fieldError(view, input.error, 'email'), autofocus: !input.email })}
${field({ id: 'code', name: 'code', type: 'text', label: t('mfa.code'), autocomplete: 'one-time-code', error: fieldError(view, input.error, 'code'), autofocus: Boolean(input.email), extra: html` inputmode="numeric" pattern="[0-9 ]*" maxlength="7" class="code"` })}
<button type="submit">${t('totp.submit')}</button>
</form>
<p class="links"><a href="/interaction/${view.uid}">${t('sent.otherEmail')}</a></p>
${backForm(view)}`,
    input.status,
  );
}
