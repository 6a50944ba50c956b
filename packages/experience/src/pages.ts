import type { Context } from 'koa';
import { errorTable, type ErrorCode } from '../../../src/errors.ts';
import { html, renderPage } from '../../../src/http/pages.ts';

/** What each failure tells the person who clicked the link, in plain words. */
const linkFailures: Partial<Record<ErrorCode, { title: string; message: string }>> = {
  TOKEN_EXPIRED: {
    title: 'This link has expired',
    message: 'Sign-in links work for a limited time. Ask the app or the person who invited you for a new link.',
  },
  TOKEN_ALREADY_USED: {
    title: 'This link was already used',
    message: 'Each sign-in link works once. If it was not you who used it, ask for a new link and tell the app.',
  },
  TOKEN_INVALID: {
    title: 'This link is not valid',
    message: 'The link may be incomplete, revoked, or meant for another email address. Ask for a new link.',
  },
  ACCOUNT_DISABLED: {
    title: 'This account is disabled',
    message: 'Signing in to this account is not possible right now. Contact the app’s support.',
  },
  INTERACTION_NOT_FOUND: {
    title: 'This sign-in has ended',
    message: errorTable.INTERACTION_NOT_FOUND.message,
  },
};

const backForm = (uid: string) =>
  html`<form method="post" action="/interaction/${uid}/abort">
<button type="submit" class="secondary">Back to the app</button>
</form>`;

export function continueAsPage(
  ctx: Context,
  page: { uid: string; email: string; appName: string; signedInAs?: string | null },
): void {
  const switching = page.signedInAs && page.signedInAs.toLowerCase() !== page.email.toLowerCase();
  renderPage(
    ctx,
    `Sign in to ${page.appName}`,
    html`<h1>Sign in to ${page.appName}</h1>
<p>Continue as <span class="email">${page.email}</span></p>
${switching ? html`<p class="muted">You are signed in as <span class="email">${page.signedInAs}</span> on this device. Continuing signs you in as ${page.email} instead.</p>` : ''}
<form method="post" action="/interaction/${page.uid}/one-time-token">
<button type="submit" autofocus>Continue</button>
</form>
${backForm(page.uid)}`,
  );
}

export function signInInfoPage(ctx: Context, page: { uid: string; appName: string }): void {
  renderPage(
    ctx,
    `Sign in to ${page.appName}`,
    html`<h1>Sign in to ${page.appName}</h1>
<p>${page.appName} signs you in with a link sent to your email. Open the most recent sign-in or invitation link you received, or ask ${page.appName} for a new one.</p>
${backForm(page.uid)}`,
  );
}

export function linkFailurePage(ctx: Context, code: ErrorCode, uid?: string): void {
  const failure = linkFailures[code] ?? { title: 'Sign-in could not continue', message: errorTable[code].message };
  renderPage(
    ctx,
    failure.title,
    html`<h1>${failure.title}</h1>
<p class="message" role="alert">${failure.message}</p>
<p class="code">Error code: <code>${code}</code></p>
${uid ? backForm(uid) : ''}`,
    errorTable[code].status,
  );
}
