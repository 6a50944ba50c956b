import { createHmac } from 'node:crypto';
import type Router from '@koa/router';
import { createRouter } from '../../../src/http/routing.ts';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { AppError, type ErrorCode } from '../../../src/errors.ts';
import { readFormBody } from '../../../src/http/body.ts';
import { emailSchema, route } from '../../../src/http/guard.ts';
import { isSameOriginRequest } from '../../../src/http/middleware.ts';
import { experienceScript, stylesheet, themeStylesheet } from '../../../src/http/pages.ts';
import { negotiateLanguage, translator, type Language } from '../../../src/i18n/index.ts';
import { constantTimeEqual } from '../../../src/lib/crypto.ts';
import {
  abortInteraction,
  appHomeOf,
  completeConsent,
  completeLogin,
  isThirdPartyInteraction,
  loadInteraction,
  type InteractionDetails,
} from '../../../src/oidc/interactions.ts';
import type { EventBus } from '../../../src/events/index.ts';
import type { SignInMethod } from '../../../src/events/types.ts';
import type { MfaService } from '../../../src/mfa/index.ts';
import { ACR_MFA, mfaNeeded, SECOND_FACTOR_AMR } from '../../../src/oidc/policy.ts';
import type { RateLimits } from '../../../src/ratelimit/index.ts';
import type { SettingsService, SignInSettings } from '../../../src/settings/index.ts';
import type { CodePurpose, SignInCode } from '../../../src/signin/codes.ts';
import type { EmailSignIn } from '../../../src/signin/email.ts';
import type { SignInResult, SignInService } from '../../../src/signin/index.ts';
import { assertPasswordPolicy, MAX_PASSWORD_LENGTH } from '../../../src/signin/password.ts';
import { hashPassword } from '../../../src/users/service.ts';
import { matchTotp, MAX_FACTOR_FAILURES } from '../../../src/mfa/index.ts';
import type { UserRepository } from '../../../src/users/index.ts';
import {
  backupCodesPage,
  backupUsedPage,
  mfaEnrollIntroPage,
  mfaEnrollPage,
  mfaVerifyPage,
  totpOnlyPage,
  consentPage,
  continueAsPage,
  failurePage,
  linkContinuePage,
  linkOtherBrowserPage,
  linkResentPage,
  passwordPage,
  registerPage,
  sentPage,
  startPage,
  type FieldError,
  type View,
} from './pages.ts';

export type ExperienceDeps = {
  /** The current provider (it is rebuilt when keys rotate). */
  provider: () => Provider;
  signIn: SignInService;
  emailSignIn: EmailSignIn;
  settings: SettingsService;
  users: UserRepository;
  /** Our own origin: state-changing requests from anywhere else are refused. */
  origin: string;
  /** Key for the forms' CSRF tokens (derived from SESAME_SECRET). */
  csrfKey: Buffer;
  /** Mail sending, code and token verification and passwords are rate-limited. */
  limits: RateLimits;
  mfa: MfaService;
  /** Sign-ins, failures and second factors go to the audit log and webhooks. */
  events: EventBus;
};

const param = (interaction: InteractionDetails, name: string) => {
  const value = (interaction.params as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
};

/** `prompt=login` asks for a fresh sign-in: no "keep the current account" question. */
const forcesLogin = (interaction: InteractionDetails) => (param(interaction, 'prompt') ?? '').split(' ').includes('login');

/** Logto's first_screen values that open on registration. */
const registerScreens = new Set(['register', 'identifierRegister']);

/** Errors a form shows next to its field rather than as a page of their own. */
const fieldOf: Partial<Record<ErrorCode, FieldError['field']>> = {
  EMAIL_INVALID: 'email',
  INVALID_CREDENTIALS: 'form',
  PASSWORD_TOO_WEAK: 'password',
  OTP_INVALID: 'code',
  OTP_EXPIRED: 'form',
  OTP_LOCKED: 'form',
  TOKEN_SUPERSEDED: 'form',
  RATE_LIMITED: 'form',
  MAIL_NOT_SENT: 'form',
  SIGN_IN_METHOD_DISABLED: 'form',
  REGISTRATION_DISABLED: 'form',
  TOTP_INVALID: 'code',
};

const emailInput = z.string().max(320);

/** The email OTP after a link: valid 5 minutes (the seeds' `otpExpiresIn: 300`). */
const EMAIL_OTP_SECONDS = 300;

/** A first factor that needs the email OTP step before the sign-in completes. */
type OtpRequired = { requiresOtp: true; magicLinkId: string; otpExpiresIn: number };

/** The "check your inbox" page of the interaction's latest mail, with that mail's own lifetime. */
const sentInput = (latest: SignInCode) => ({
  email: latest.email,
  purpose: latest.purpose,
  reference: latest.reference,
  minutes: Math.round((latest.expiresAt.getTime() - latest.createdAt.getTime()) / 60_000),
});

/** A refusal rendered as a page still tells when to come back. */
function setRetryAfter(ctx: Context, error: AppError): void {
  if (error.code === 'RATE_LIMITED' && error.details?.retryAfter !== undefined) ctx.set('Retry-After', String(error.details.retryAfter));
}

function parseEmail(value: unknown): string {
  const parsed = emailSchema.safeParse(typeof value === 'string' ? value : '');
  if (!parsed.success) throw new AppError('EMAIL_INVALID');
  return parsed.data;
}

/**
 * The hosted sign-in pages (server-rendered, usable without JavaScript) and
 * the JSON Experience API for custom UIs. Both are bound to the interaction
 * cookie oidc-provider set when the app sent the user to /oidc/auth, and both
 * call the same steps below.
 */
export function createExperienceRouter(deps: ExperienceDeps): Router {
  const { provider, signIn, emailSignIn, settings, users, origin, csrfKey, limits, mfa, events } = deps;
  const router = createRouter();

  const csrfFor = (uid: string) => createHmac('sha256', csrfKey).update(`csrf:${uid}`).digest('base64url');

  /** Form posts must come from our own pages, with the interaction's CSRF token. */
  async function readForm(ctx: Context, uid: string | undefined): Promise<Record<string, string>> {
    if (!isSameOriginRequest(ctx, origin, { requireOrigin: false })) throw new AppError('INVALID_ORIGIN');
    const form = await readFormBody(ctx);
    if (uid !== undefined && !constantTimeEqual(form.csrf ?? '', csrfFor(uid))) throw new AppError('INVALID_ORIGIN');
    return form;
  }

  /** The app's own origin (see appHomeOf). */
  const appHome = async (clientId: string | null) => appHomeOf(clientId ? await provider().Client.find(clientId) : undefined);

  async function appName(clientId: unknown, fallback: string): Promise<string> {
    const client = typeof clientId === 'string' ? await provider().Client.find(clientId) : undefined;
    return client?.clientName ?? fallback;
  }

  async function viewOf(ctx: Context, input: { interaction?: InteractionDetails; clientId?: string | null; language?: string }): Promise<View & { settings: SignInSettings }> {
    const current = await settings.get();
    const lang = negotiateLanguage({
      uiLocales: input.interaction ? param(input.interaction, 'ui_locales') : input.language,
      acceptLanguage: ctx.get('Accept-Language'),
      fallback: current.defaultLanguage,
    });
    const t = translator(lang);
    const uid = input.interaction?.uid;
    return {
      t,
      lang,
      brand: current.branding,
      appName: await appName(input.interaction?.params.client_id ?? input.clientId ?? undefined, t('common.theApp')),
      uid,
      csrf: uid ? csrfFor(uid) : undefined,
      settings: current,
    };
  }

  /** The interaction of this browser, or a failure page when there is none (answers undefined then). */
  async function interactionOrPage(ctx: Context, uid: string): Promise<InteractionDetails | undefined> {
    try {
      return await loadInteraction(provider(), ctx, uid);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      failurePage(ctx, await viewOf(ctx, {}), { code: error.code });
      return undefined;
    }
  }

  /** The interaction bound to this browser's cookie, whichever it is, or undefined. */
  async function currentInteraction(ctx: Context): Promise<InteractionDetails | undefined> {
    try {
      return await loadInteraction(provider(), ctx);
    } catch (error) {
      if (error instanceof AppError) return undefined;
      throw error;
    }
  }

  // --- The steps, shared by the pages and the JSON API ---------------------------------------

  async function requestMail(
    ctx: Context,
    interaction: InteractionDetails,
    email: string,
    purpose: CodePurpose,
    language: Language,
    passwordHash?: string,
    expiresIn?: number,
  ) {
    const current = await settings.get();
    if (purpose === 'magic_link' && !current.methods.magicLink) throw new AppError('SIGN_IN_METHOD_DISABLED');
    if (purpose === 'email_code' && !current.methods.emailCode) throw new AppError('SIGN_IN_METHOD_DISABLED');
    if (purpose === 'register' && !(current.registration && current.methods.password)) throw new AppError('REGISTRATION_DISABLED');
    // Per address and per client, known or unknown address alike (the answer must not differ).
    await limits.consume(ctx, 'emailSend', { email });
    const clientId = String(interaction.params.client_id);
    return emailSignIn.request({
      interactionUid: interaction.uid,
      clientId,
      appName: await appName(clientId, translator(language)('common.theApp')),
      email,
      purpose,
      language,
      passwordHash,
      expiresIn,
    });
  }

  /** The password is checked (and hashed) before any mail goes out. */
  async function requestRegistration(ctx: Context, interaction: InteractionDetails, email: string, password: string, language: Language) {
    assertPasswordPolicy(password, email);
    return requestMail(ctx, interaction, email, 'register', language, await hashPassword(password));
  }

  /** A new mail like the interaction's latest one (same address and purpose). */
  async function resend(ctx: Context, interaction: InteractionDetails, latest: SignInCode) {
    const language = (latest.context.locale as Language | undefined) ?? 'en';
    return requestMail(ctx, interaction, latest.email, latest.purpose, language, latest.context.passwordHash);
  }

  /**
   * Runs a first factor and finishes the login prompt with its result,
   * publishing SignIn.Succeeded (and User.Created for a new account) or
   * SignIn.Failed with the error code. A second factor may still follow.
   *
   * The step's events are published in order but not awaited one by one: the
   * audit rows of one step share one INSERT (group commit batches what
   * arrives in the same turn of the event loop), written while the
   * interaction is saved, and the step answers once all of them are accepted,
   * as before. `run` hands its own events to `defer`.
   */
  async function firstFactor(
    ctx: Context,
    interaction: InteractionDetails,
    method: SignInMethod,
    email: string | undefined,
    run: (defer: (published: Promise<void>) => void) => Promise<SignInResult>,
  ): Promise<string | OtpRequired> {
    const applicationId = String(interaction.params.client_id);
    const pending: Array<Promise<void>> = [];
    const defer = (published: Promise<void>) => void pending.push(published);
    try {
      let result: SignInResult;
      try {
        result = await run(defer);
      } catch (error) {
        if (error instanceof AppError) defer(events.publish('SignIn.Failed', { method, code: error.code, email: email ?? null, applicationId }));
        throw error;
      }
      const userEmail = result.user.primaryEmail;
      if (result.created) defer(events.publish('User.Created', { userId: result.user.id, email: userEmail, source: 'sign_in', applicationId }));
      // The seeds' "link + email OTP": after a link, a code by mail (5 minutes) finishes the sign-in.
      if ((method === 'magic_link' || method === 'one_time_token') && userEmail && (await settings.get()).mfa.afterMagicLink === 'email_otp') {
        const sent = await requestMail(ctx, interaction, userEmail, 'email_code', await languageOf(ctx, interaction), undefined, EMAIL_OTP_SECONDS);
        return { requiresOtp: true, magicLinkId: sent.id, otpExpiresIn: sent.expiresIn };
      }
      defer(events.publish('SignIn.Succeeded', { userId: result.user.id, email: userEmail, applicationId, method, amr: result.amr, newUser: result.created }));
      return await completeLogin(provider(), ctx, interaction, { accountId: result.user.id, amr: result.amr });
    } finally {
      // publish never rejects.
      await Promise.all(pending);
    }
  }

  const codeMethod = (record: SignInCode): SignInMethod => (record.purpose === 'magic_link' ? 'magic_link' : 'email_code');

  /** The page after a step: the app (a redirect), or the code page when an email OTP follows. */
  function goOn(ctx: Context, interaction: InteractionDetails, result: string | OtpRequired) {
    ctx.status = 303;
    ctx.redirect(typeof result === 'string' ? result : `/interaction/${interaction.uid}/code`);
  }

  /** Steps that never ask for the email OTP afterwards. */
  async function redirectOnly(result: Promise<string | OtpRequired>): Promise<string> {
    const settled = await result;
    if (typeof settled !== 'string') throw new Error('an email OTP step after a step that never asks for one');
    return settled;
  }

  // Verifications count only when they fail: a 6-digit code takes its point first (limits.attempt gives it
  // back on success); an unguessable 256-bit link token only pays on failure (limits.countFailures).
  async function finishCode(ctx: Context, interaction: InteractionDetails, code: string) {
    const latest = await emailSignIn.latest(interaction.uid);
    return redirectOnly(firstFactor(ctx, interaction, latest ? codeMethod(latest) : 'email_code', latest?.email, async () =>
      signIn.withEmailCode(await limits.attempt(ctx, 'verification', {}, () => emailSignIn.consumeCode(interaction.uid, code))),
    ));
  }

  async function finishLink(ctx: Context, interaction: InteractionDetails, token: string) {
    return firstFactor(ctx, interaction, 'magic_link', undefined, async () =>
      signIn.withEmailCode(await limits.countFailures(ctx, 'verification', {}, () => emailSignIn.consumeLink(token, interaction.uid))),
    );
  }

  async function finishPassword(ctx: Context, interaction: InteractionDetails, email: string, password: string) {
    return redirectOnly(firstFactor(ctx, interaction, 'password', email, () => limits.attempt(ctx, 'password', { email }, () => signIn.withPassword({ email, password }))));
  }

  async function finishOneTimeToken(ctx: Context, interaction: InteractionDetails, input: { token?: string; email?: string } = {}) {
    const email = input.email ?? param(interaction, 'login_hint') ?? '';
    return firstFactor(ctx, interaction, 'one_time_token', email, async (defer) => {
      try {
        const result = await limits.countFailures(ctx, 'verification', {}, () =>
          signIn.withOneTimeToken({ token: input.token ?? param(interaction, 'one_time_token') ?? '', email, interactionUid: interaction.uid }),
        );
        defer(events.publish('OneTimeToken.Consumed', { tokenId: result.tokenId ?? '', email, userId: result.user.id, source: 'sign_in' }));
        return result;
      } catch (error) {
        if (error instanceof AppError && error.code !== 'RATE_LIMITED') {
          defer(events.publish('OneTimeToken.Failed', { reason: error.code, email, source: 'sign_in' }));
        }
        throw error;
      }
    });
  }

  /**
   * "Keep the current account": the session's account goes back to the app,
   * with its original authentication time and methods; the token stays unused.
   */
  async function keepCurrent(ctx: Context, interaction: InteractionDetails) {
    const sessionId = interaction.session?.cookie;
    const session = sessionId ? await provider().Session.find(sessionId) : undefined;
    const accountId = session?.accountId;
    if (!session || !accountId) throw new AppError('INTERACTION_NOT_FOUND');
    const user = await users.findById(accountId);
    if (!user || user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
    return completeLogin(provider(), ctx, interaction, {
      accountId,
      amr: (session.amr as string[] | undefined) ?? ['email'],
      ts: session.loginTs,
      acr: session.acr,
    });
  }

  // --- Second factors ----------------------------------------------------------------------

  /** What the mfa prompt asks of this sign-in: verify a factor, enrol one, or offer enrolment. */
  async function mfaMode(interaction: InteractionDetails) {
    if (interaction.prompt.name !== 'mfa') throw new AppError('INTERACTION_NOT_FOUND');
    const mode = await mfaNeeded({ mfa, settings }, interaction.session ?? {}, param(interaction, 'acr_values'));
    if (!mode) throw new AppError('INTERACTION_NOT_FOUND');
    return { mode, accountId: interaction.session!.accountId as string };
  }

  /** The second factor is done: the login now says so (amr otp + mfa, acr mfa); consent stays as granted. */
  function completeMfa(ctx: Context, interaction: InteractionDetails) {
    const accountId = interaction.session?.accountId as string;
    const amr = [...new Set([...((interaction.session?.amr as string[] | undefined) ?? []), SECOND_FACTOR_AMR, 'mfa'])];
    return provider().interactionResult(
      ctx.req,
      ctx.res,
      { login: { accountId, amr, acr: ACR_MFA, remember: true }, mfa: { completed: true } },
      { mergeWithLastSubmission: true },
    );
  }

  /**
   * Checks an authenticator or backup code in the mfa prompt. Five wrong
   * codes lock the factors for this sign-in (FACTOR_LOCKED).
   */
  async function verifySecondFactor(ctx: Context, interaction: InteractionDetails, input: { code?: string; backupCode?: string }) {
    const { mode, accountId } = await mfaMode(interaction);
    if (mode !== 'verify') throw new AppError('MFA_REQUIRED', 'Set up an authenticator first.');
    if (await mfa.isLocked(interaction.uid)) throw new AppError('FACTOR_LOCKED');
    const factor = input.backupCode ? 'backup_code' : 'totp';
    const subject = { userId: accountId, applicationId: String(interaction.params.client_id), factor };
    await events.publish('Mfa.Challenged', subject);
    let remaining: number | undefined;
    try {
      await limits.attempt(ctx, 'verification', {}, async () => {
        if (input.backupCode) remaining = (await mfa.useBackupCode(accountId, input.backupCode)).remaining;
        else await mfa.verifyTotp(accountId, input.code ?? '');
      });
    } catch (error) {
      if (error instanceof AppError && error.code === 'TOTP_INVALID') {
        await events.publish('Mfa.Failed', { ...subject, code: error.code });
        if ((await mfa.recordFailure(interaction.uid)) >= MAX_FACTOR_FAILURES) {
          await events.publish('Factor.Locked', { userId: accountId, applicationId: subject.applicationId, factor });
          throw new AppError('FACTOR_LOCKED');
        }
      }
      throw error;
    }
    await mfa.resetFailures(interaction.uid);
    return { redirectTo: await completeMfa(ctx, interaction), backupCodesLeft: remaining };
  }

  async function accountName(accountId: string) {
    return (await users.findById(accountId))?.primaryEmail ?? accountId;
  }

  async function startEnrollment(interaction: InteractionDetails) {
    const { mode, accountId } = await mfaMode(interaction);
    if (mode === 'verify') throw new AppError('CONFLICT', 'An authenticator is already set up.');
    return mfa.startTotp(accountId, await accountName(accountId));
  }

  async function confirmEnrollment(ctx: Context, interaction: InteractionDetails, code: string) {
    const { mode, accountId } = await mfaMode(interaction);
    if (mode === 'verify') throw new AppError('CONFLICT', 'An authenticator is already set up.');
    if (await mfa.isLocked(interaction.uid)) throw new AppError('FACTOR_LOCKED');
    try {
      const { backupCodes } = await limits.attempt(ctx, 'verification', {}, () => mfa.confirmTotp(accountId, code));
      await events.publish('Mfa.Enrolled', { userId: accountId, applicationId: String(interaction.params.client_id), factor: 'totp' });
      await mfa.markOffered(accountId);
      await mfa.markPassed(interaction.uid);
      return { backupCodes };
    } catch (error) {
      if (error instanceof AppError && error.code === 'TOTP_INVALID' && (await mfa.recordFailure(interaction.uid)) >= MAX_FACTOR_FAILURES) {
        throw new AppError('FACTOR_LOCKED');
      }
      throw error;
    }
  }

  async function skipEnrollment(ctx: Context, interaction: InteractionDetails) {
    const { mode, accountId } = await mfaMode(interaction);
    if (mode !== 'offer') throw new AppError('MFA_REQUIRED');
    await mfa.markOffered(accountId);
    return provider().interactionResult(ctx.req, ctx.res, { mfa: { skipped: true } }, { mergeWithLastSubmission: true });
  }

  /**
   * TOTP-only sign-in: email + authenticator code, no mail. Unknown
   * addresses and accounts without an authenticator answer TOTP_INVALID like
   * a wrong code.
   */
  async function finishTotpOnly(ctx: Context, interaction: InteractionDetails, email: string, code: string) {
    if (!(await settings.get()).mfa.totpOnlySignIn) throw new AppError('SIGN_IN_METHOD_DISABLED');
    return redirectOnly(firstFactor(ctx, interaction, 'totp', email, async () => {
      const user = await limits.attempt(ctx, 'verification', {}, async () => {
        const found = await users.findByEmail(email);
        if (!found) {
          matchTotp('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', code, new Date());
          throw new AppError('TOTP_INVALID');
        }
        await mfa.verifyTotp(found.id, code);
        return found;
      });
      if (user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
      return { user, created: false, amr: [SECOND_FACTOR_AMR], jitOrganizationIds: [] };
    }));
  }

  async function decideConsent(ctx: Context, interaction: InteractionDetails, decision: 'accept' | 'deny') {
    if (interaction.prompt.name !== 'consent') throw new AppError('INTERACTION_NOT_FOUND');
    if (decision === 'deny') return abortInteraction(provider(), ctx, 'The user did not allow access.');
    return completeConsent(provider(), ctx, interaction);
  }

  // --- Static assets -------------------------------------------------------------------------

  router.get('/favicon.ico', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.status = 204;
  });

  router.get('/static/sesame.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = stylesheet;
  });

  router.get('/static/theme.css', (ctx) => {
    const css = themeStylesheet(String(ctx.query.accent ?? ''));
    if (!css) throw new AppError('NOT_FOUND');
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = css;
  });

  router.get('/static/experience.js', (ctx) => {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = experienceScript;
  });

  // --- Hosted pages --------------------------------------------------------------------------

  /** Renders a step's failure on the page it belongs to; unexpected errors go to the error handler. */
  async function onPageError(ctx: Context, interaction: InteractionDetails, error: unknown, render: (view: View & { settings: SignInSettings }, failure: FieldError) => void) {
    if (!(error instanceof AppError) || error.status >= 500 && error.code !== 'MAIL_NOT_SENT') throw error;
    setRetryAfter(ctx, error);
    const view = await viewOf(ctx, { interaction });
    const field = fieldOf[error.code];
    if (!field) return failurePage(ctx, view, { code: error.code });
    render(view, { field, code: error.code });
    ctx.status = error.status;
  }

  // GET and HEAD only show pages: mail scanners prefetch links, so nothing is consumed here.
  router.get('/interaction/:uid', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const view = await viewOf(ctx, { interaction });
    if (interaction.prompt.name === 'mfa') {
      try {
        const { mode } = await mfaMode(interaction);
        if (mode === 'verify') return mfaVerifyPage(ctx, view, {});
        return mfaEnrollIntroPage(ctx, view, { required: mode === 'enroll' });
      } catch (error) {
        if (error instanceof AppError) return failurePage(ctx, view, { code: error.code });
        throw error;
      }
    }
    if (interaction.prompt.name === 'consent') {
      if (!(await isThirdPartyInteraction(provider(), interaction))) {
        return ctx.redirect(await completeConsent(provider(), ctx, interaction));
      }
      const user = interaction.session?.accountId ? await users.findById(interaction.session.accountId) : undefined;
      const scopes = (param(interaction, 'scope') ?? 'openid').split(' ').filter(Boolean);
      return consentPage(ctx, view, { email: user?.primaryEmail ?? '', scopes });
    }
    const token = param(interaction, 'one_time_token');
    const loginHint = param(interaction, 'login_hint');
    if (token) {
      if (!loginHint) return failurePage(ctx, view, { code: 'TOKEN_INVALID' });
      const current = interaction.session?.accountId && !forcesLogin(interaction) ? await users.findById(interaction.session.accountId) : undefined;
      return continueAsPage(ctx, view, {
        email: loginHint,
        signedInAs: current?.primaryEmail,
        autoSubmit: view.settings.autoContinueOneTimeToken,
      });
    }
    const hint = loginHint && emailSchema.safeParse(loginHint).success ? loginHint : undefined;
    if (registerScreens.has(param(interaction, 'first_screen') ?? '') && view.settings.registration && view.settings.methods.password) {
      return registerPage(ctx, view, { email: hint });
    }
    startPage(ctx, view, { email: hint, settings: view.settings });
  });

  router.post('/interaction/:uid/email', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const form = await readForm(ctx, interaction.uid);
    try {
      const email = parseEmail(form.email);
      const view = await viewOf(ctx, { interaction });
      if (form.method === 'password') {
        if (!view.settings.methods.password) throw new AppError('SIGN_IN_METHOD_DISABLED');
        return passwordPage(ctx, view, { email, settings: view.settings });
      }
      if (form.method === 'totp') {
        if (!view.settings.mfa.totpOnlySignIn) throw new AppError('SIGN_IN_METHOD_DISABLED');
        return totpOnlyPage(ctx, view, { email });
      }
      const purpose: CodePurpose = form.method === 'email_code' ? 'email_code' : 'magic_link';
      await requestMail(ctx, interaction, email, purpose, view.lang);
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}/code`);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) =>
        startPage(ctx, view, { email: form.email, settings: view.settings, error: failure }),
      );
    }
  });

  router.get('/interaction/:uid/code', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const latest = await emailSignIn.latest(interaction.uid);
    if (!latest) return ctx.redirect(`/interaction/${interaction.uid}`);
    const view = await viewOf(ctx, { interaction });
    sentPage(ctx, view, sentInput(latest));
  });

  router.post('/interaction/:uid/code', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const form = await readForm(ctx, interaction.uid);
    try {
      const redirectTo = await finishCode(ctx, interaction, String(form.code ?? '').slice(0, 32));
      ctx.status = 303;
      ctx.redirect(redirectTo);
    } catch (error) {
      const latest = await emailSignIn.latest(interaction.uid);
      if (!latest) throw error;
      await onPageError(ctx, interaction, error, (view, failure) =>
        sentPage(ctx, view, { ...sentInput(latest), error: failure }),
      );
    }
  });

  router.post('/interaction/:uid/resend', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    await readForm(ctx, interaction.uid);
    const latest = await emailSignIn.latest(interaction.uid);
    if (!latest) return ctx.redirect(`/interaction/${interaction.uid}`);
    try {
      await resend(ctx, interaction, latest);
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}/code`);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) =>
        sentPage(ctx, view, { ...sentInput(latest), error: failure }),
      );
    }
  });

  /** After a failed one-time token: a self-serve link to the same address, for this interaction. */
  router.post('/interaction/:uid/new-link', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    await readForm(ctx, interaction.uid);
    try {
      const view = await viewOf(ctx, { interaction });
      const email = parseEmail(param(interaction, 'login_hint'));
      await requestMail(ctx, interaction, email, view.settings.methods.magicLink ? 'magic_link' : 'email_code', view.lang);
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}/code`);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) => failurePage(ctx, view, { code: failure.code }));
    }
  });

  router.get('/interaction/:uid/password', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const view = await viewOf(ctx, { interaction });
    if (!view.settings.methods.password) return failurePage(ctx, view, { code: 'SIGN_IN_METHOD_DISABLED' });
    passwordPage(ctx, view, { email: param(interaction, 'login_hint'), settings: view.settings });
  });

  router.post('/interaction/:uid/password', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const form = await readForm(ctx, interaction.uid);
    try {
      const email = parseEmail(form.email);
      const password = String(form.password ?? '');
      if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) throw new AppError('INVALID_CREDENTIALS');
      const redirectTo = await finishPassword(ctx, interaction, email, password);
      ctx.status = 303;
      ctx.redirect(redirectTo);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) =>
        passwordPage(ctx, view, { email: form.email, settings: view.settings, error: failure }),
      );
    }
  });

  router.get('/interaction/:uid/register', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const view = await viewOf(ctx, { interaction });
    if (!(view.settings.registration && view.settings.methods.password)) return failurePage(ctx, view, { code: 'REGISTRATION_DISABLED' });
    registerPage(ctx, view, { email: param(interaction, 'login_hint') });
  });

  router.post('/interaction/:uid/register', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const form = await readForm(ctx, interaction.uid);
    try {
      const view = await viewOf(ctx, { interaction });
      const email = parseEmail(form.email);
      await requestRegistration(ctx, interaction, email, String(form.password ?? ''), view.lang);
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}/code`);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) => registerPage(ctx, view, { email: form.email, error: failure }));
    }
  });

  router.post('/interaction/:uid/one-time-token', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    await readForm(ctx, interaction.uid);
    try {
      goOn(ctx, interaction, await finishOneTimeToken(ctx, interaction));
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      setRetryAfter(ctx, error);
      const view = await viewOf(ctx, { interaction });
      const email = param(interaction, 'login_hint');
      const canResend = email && emailSchema.safeParse(email).success && (view.settings.methods.magicLink || view.settings.methods.emailCode);
      const dead = ['TOKEN_EXPIRED', 'TOKEN_ALREADY_USED', 'TOKEN_INVALID'].includes(error.code);
      failurePage(ctx, view, {
        code: error.code,
        ...(canResend && dead
          ? { resend: { action: `/interaction/${interaction.uid}/new-link`, fields: { csrf: csrfFor(interaction.uid) }, email } }
          : {}),
      });
    }
  });

  router.post('/interaction/:uid/totp', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const form = await readForm(ctx, interaction.uid);
    try {
      const email = parseEmail(form.email);
      const redirectTo = await finishTotpOnly(ctx, interaction, email, String(form.code ?? '').slice(0, 32));
      ctx.status = 303;
      ctx.redirect(redirectTo);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) =>
        totpOnlyPage(ctx, view, { email: form.email, error: failure.code === 'TOTP_INVALID' ? { field: 'code', code: failure.code } : failure }),
      );
    }
  });

  router.post('/interaction/:uid/mfa', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const form = await readForm(ctx, interaction.uid);
    const backupCode = form.backupCode ? String(form.backupCode).slice(0, 64) : undefined;
    try {
      const done = await verifySecondFactor(ctx, interaction, { code: String(form.code ?? '').slice(0, 32), backupCode });
      if (done.backupCodesLeft !== undefined) {
        return backupUsedPage(ctx, await viewOf(ctx, { interaction }), { remaining: done.backupCodesLeft, redirectTo: done.redirectTo });
      }
      ctx.status = 303;
      ctx.redirect(done.redirectTo);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) =>
        mfaVerifyPage(ctx, view, { error: failure.code === 'TOTP_INVALID' ? { field: backupCode ? 'password' : 'code', code: failure.code } : failure }),
      );
    }
  });

  router.post('/interaction/:uid/mfa/enroll', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    await readForm(ctx, interaction.uid);
    try {
      const enrollment = await startEnrollment(interaction);
      mfaEnrollPage(ctx, await viewOf(ctx, { interaction }), enrollment);
    } catch (error) {
      await onPageError(ctx, interaction, error, (view, failure) => failurePage(ctx, view, { code: failure.code }));
    }
  });

  router.post('/interaction/:uid/mfa/confirm', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    const form = await readForm(ctx, interaction.uid);
    try {
      const { backupCodes } = await confirmEnrollment(ctx, interaction, String(form.code ?? '').slice(0, 32));
      backupCodesPage(ctx, await viewOf(ctx, { interaction }), { codes: backupCodes });
    } catch (error) {
      const accountId = interaction.session?.accountId;
      const pending = accountId ? await mfa.pendingTotp(accountId, await accountName(accountId)) : undefined;
      if (!pending || !(error instanceof AppError) || error.code !== 'TOTP_INVALID') {
        return onPageError(ctx, interaction, error, (view, failure) => failurePage(ctx, view, { code: failure.code }));
      }
      await onPageError(ctx, interaction, error, (view, failure) => mfaEnrollPage(ctx, view, { ...pending, error: { field: 'code', code: failure.code } }));
    }
  });

  /** After the backup codes were shown: on to the app (only once this sign-in confirmed an authenticator). */
  router.post('/interaction/:uid/mfa/continue', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    await readForm(ctx, interaction.uid);
    if (!(await mfa.hasPassed(interaction.uid))) return failurePage(ctx, await viewOf(ctx, { interaction }), { code: 'MFA_REQUIRED' });
    ctx.status = 303;
    ctx.redirect(await completeMfa(ctx, interaction));
  });




  /** A form whose step ends at the app (or the code page); a failure is a page of its own. */
  function formStep(path: string, run: (ctx: Context, interaction: InteractionDetails, form: Record<string, string>) => Promise<string | OtpRequired>) {
    router.post(path, async (ctx) => {
      const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
      if (!interaction) return;
      const form = await readForm(ctx, interaction.uid);
      try {
        goOn(ctx, interaction, await run(ctx, interaction, form));
      } catch (error) {
        await onPageError(ctx, interaction, error, (view, failure) => failurePage(ctx, view, { code: failure.code }));
      }
    });
  }

  formStep('/interaction/:uid/mfa/skip', (ctx, interaction) => skipEnrollment(ctx, interaction));
  formStep('/interaction/:uid/keep', (ctx, interaction) => keepCurrent(ctx, interaction));
  formStep('/interaction/:uid/consent', (ctx, interaction, form) => decideConsent(ctx, interaction, form.decision === 'accept' ? 'accept' : 'deny'));

  router.post('/interaction/:uid/abort', async (ctx) => {
    const interaction = await interactionOrPage(ctx, ctx.params.uid ?? '');
    if (!interaction) return;
    await readForm(ctx, interaction.uid);
    ctx.status = 303;
    ctx.redirect(await abortInteraction(provider(), ctx, 'The user went back without signing in.'));
  });

  // --- Self-serve links (from the mail) ------------------------------------------------------

  /**
   * A link's landing. In the browser that asked for it: "Continue as EMAIL"
   * (a POST signs in). Anywhere else: type the code where you started. A dead
   * link says why and offers a fresh one.
   */
  router.get('/sign-in/link', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token.slice(0, 256) : '';
    const found = token ? await emailSignIn.inspectLink(token) : undefined;
    const interaction = await currentInteraction(ctx);
    const sameBrowser = found && interaction?.uid === found.record.interactionUid ? interaction : undefined;
    const view = await viewOf(ctx, { interaction: sameBrowser, clientId: found?.record.clientId, language: found?.record.context.locale });
    if (!found) return failurePage(ctx, view, { code: 'TOKEN_INVALID' });
    const { record, state } = found;
    if (state !== 'active') {
      const alive = await provider().Interaction.find(record.interactionUid);
      return failurePage(ctx, view, {
        code: state === 'expired' ? 'TOKEN_EXPIRED' : state === 'consumed' ? 'TOKEN_ALREADY_USED' : state === 'superseded' ? 'TOKEN_SUPERSEDED' : 'OTP_LOCKED',
        // While its sign-in is going on, a fresh link for it; once that is over, back to the app to start again.
        ...(alive ? { resend: { action: '/sign-in/link/resend', fields: { token }, email: record.email } } : { home: await appHome(record.clientId) }),
      });
    }
    // Another sign-in is open in this browser (started again while waiting for the mail): offer a link for that one.
    if (!sameBrowser) return linkOtherBrowserPage(ctx, view, { reference: record.reference, token, hereCsrf: interaction ? csrfFor(interaction.uid) : undefined });
    linkContinuePage(ctx, view, { email: record.email, token });
  });

  router.post('/sign-in/link', async (ctx) => {
    const interaction = await currentInteraction(ctx);
    if (!interaction) return failurePage(ctx, await viewOf(ctx, {}), { code: 'INTERACTION_NOT_FOUND' });
    const form = await readForm(ctx, interaction.uid);
    const token = String(form.token ?? '').slice(0, 256);
    try {
      goOn(ctx, interaction, await finishLink(ctx, interaction, token));
    } catch (error) {
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      setRetryAfter(ctx, error);
      const found = await emailSignIn.inspectLink(token);
      failurePage(ctx, await viewOf(ctx, { interaction }), {
        code: error.code,
        ...(found && error.code !== 'ACCOUNT_DISABLED' ? { resend: { action: '/sign-in/link/resend', fields: { token }, email: found.record.email } } : {}),
      });
    }
  });

  /**
   * A fresh link for a dead one, to the same address and for the same
   * interaction (it may have started in another browser). Holding the old
   * link is the proof; the new one goes to the mailbox, not to this page.
   */
  router.post('/sign-in/link/resend', async (ctx) => {
    // The sign-in open in this browser, if any (its CSRF token proves the form is ours); else the link's own sign-in.
    const here = await currentInteraction(ctx);
    const form = await readForm(ctx, undefined);
    if (here && form.csrf !== undefined && !constantTimeEqual(form.csrf, csrfFor(here.uid))) throw new AppError('INVALID_ORIGIN');
    const found = await emailSignIn.inspectLink(String(form.token ?? '').slice(0, 256));
    const interaction = found ? (here && form.csrf !== undefined ? here : await provider().Interaction.find(found.record.interactionUid)) : undefined;
    const view = await viewOf(ctx, { clientId: found?.record.clientId, language: found?.record.context.locale });
    if (!found || !interaction) return failurePage(ctx, view, { code: found ? 'INTERACTION_NOT_FOUND' : 'TOKEN_INVALID' });
    try {
      const sent = await resend(ctx, { uid: interaction.uid, params: interaction.params } as InteractionDetails, found.record);
      linkResentPage(ctx, view, { email: sent.email, reference: sent.reference });
    } catch (error) {
      if (!(error instanceof AppError) || (error.status >= 500 && error.code !== 'MAIL_NOT_SENT')) throw error;
      failurePage(ctx, view, { code: error.code });
    }
  });

  // --- JSON Experience API -------------------------------------------------------------------

  const api = createRouter();
  api.use(async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD' && !isSameOriginRequest(ctx, origin, { requireOrigin: true })) {
      throw new AppError('INVALID_ORIGIN');
    }
    ctx.set('Cache-Control', 'no-store');
    await next();
  });
  const redirect = z.object({ redirectTo: z.string() });
  const sentSchema = z.object({
    message: z.string(),
    magicLinkId: z.string(),
    reference: z.string(),
    expiresIn: z.number().int(),
  });
  const languageOf = async (ctx: Context, interaction: InteractionDetails) =>
    negotiateLanguage({
      uiLocales: param(interaction, 'ui_locales'),
      acceptLanguage: ctx.get('Accept-Language'),
      fallback: (await settings.get()).defaultLanguage,
    });

  api.get(
    '/',
    route(
      {
        response: z.object({
          uid: z.string(),
          prompt: z.string(),
          client: z.object({ id: z.string(), name: z.string() }),
          loginHint: z.string().nullable(),
          oneTimeToken: z.boolean(),
          signedInAs: z.string().nullable(),
          language: z.string(),
          methods: z.object({ magicLink: z.boolean(), emailCode: z.boolean(), password: z.boolean() }),
          registration: z.boolean(),
          branding: z.object({ name: z.string(), logoUrl: z.string().nullable(), primaryColor: z.string() }),
          pending: z.object({ email: z.string(), purpose: z.string(), reference: z.string(), expiresAt: z.string() }).nullable(),
          mfa: z.object({ mode: z.enum(['verify', 'enroll', 'offer']) }).nullable(),
          totpOnlySignIn: z.boolean(),
        }),
        status: 200,
        errors: [400],
      },
      async (_input, ctx) => {
        const interaction = await loadInteraction(provider(), ctx);
        const view = await viewOf(ctx, { interaction });
        const current = interaction.session?.accountId ? await users.findById(interaction.session.accountId) : undefined;
        const latest = await emailSignIn.latest(interaction.uid);
        return {
          body: {
            uid: interaction.uid,
            prompt: interaction.prompt.name,
            client: { id: String(interaction.params.client_id), name: view.appName },
            loginHint: param(interaction, 'login_hint') ?? null,
            oneTimeToken: Boolean(param(interaction, 'one_time_token')),
            signedInAs: current?.primaryEmail ?? null,
            language: view.lang,
            methods: view.settings.methods,
            registration: view.settings.registration && view.settings.methods.password,
            branding: view.settings.branding,
            pending: latest
              ? { email: latest.email, purpose: latest.purpose, reference: latest.reference, expiresAt: latest.expiresAt.toISOString() }
              : null,
            mfa: interaction.prompt.name === 'mfa' ? { mode: (await mfaMode(interaction)).mode } : null,
            totpOnlySignIn: view.settings.mfa.totpOnlySignIn,
          },
        };
      },
    ),
  );

  for (const [path, purpose, message] of [
    ['/magic-link', 'magic_link', 'Magic link sent'],
    ['/email-code', 'email_code', 'Code sent'],
  ] as const) {
    api.post(
      path,
      route(
        { body: z.strictObject({ email: emailInput }), response: sentSchema, status: 200, errors: [400, 403, 415, 429, 502] },
        async ({ body }, ctx) => {
          const interaction = await loadInteraction(provider(), ctx);
          const sent = await requestMail(ctx, interaction, parseEmail(body.email), purpose, await languageOf(ctx, interaction));
          return { body: { message, magicLinkId: sent.id, reference: sent.reference, expiresIn: sent.expiresIn } };
        },
      ),
    );
  }

  api.post(
    '/register',
    route(
      {
        body: z.strictObject({ email: emailInput, password: z.string().max(MAX_PASSWORD_LENGTH) }),
        response: sentSchema,
        status: 200,
        errors: [400, 403, 415, 429, 502],
      },
      async ({ body }, ctx) => {
        const interaction = await loadInteraction(provider(), ctx);
        const sent = await requestRegistration(ctx, interaction, parseEmail(body.email), body.password, await languageOf(ctx, interaction));
        return { body: { message: 'Code sent', magicLinkId: sent.id, reference: sent.reference, expiresIn: sent.expiresIn } };
      },
    ),
  );

  api.post(
    '/resend',
    route({ response: sentSchema, status: 200, errors: [400, 403, 415, 429, 502] }, async (_input, ctx) => {
      const interaction = await loadInteraction(provider(), ctx);
      const latest = await emailSignIn.latest(interaction.uid);
      if (!latest) throw new AppError('OTP_INVALID', 'Nothing was sent for this sign-in yet.');
      const sent = await resend(ctx, interaction, latest);
      return { body: { message: latest.purpose === 'magic_link' ? 'Magic link sent' : 'Code sent', magicLinkId: sent.id, reference: sent.reference, expiresIn: sent.expiresIn } };
    }),
  );

  // A finishing step answers {redirectTo}, or after a link (when the settings ask) {requiresOtp, magicLinkId, otpExpiresIn}.
  const stepResponse = z.union([redirect, z.object({ requiresOtp: z.literal(true), magicLinkId: z.string(), otpExpiresIn: z.number().int() })]);
  const step = <S extends z.ZodType>(
    path: string,
    body: S,
    finish: (ctx: Context, interaction: InteractionDetails, body: z.infer<S>) => Promise<string | OtpRequired>,
  ) =>
    api.post(
      path,
      route({ body, response: stepResponse, status: 200, errors: [400, 401, 403, 410, 415, 429] }, async (input, ctx) => {
        const interaction = await loadInteraction(provider(), ctx);
        const result = await finish(ctx, interaction, input.body as z.infer<S>);
        return { body: typeof result === 'string' ? { redirectTo: result } : result };
      }),
    );

  step('/magic-link/verify', z.strictObject({ token: z.string().min(1).max(256) }), (ctx, interaction, body) => finishLink(ctx, interaction, body.token));
  step('/code', z.strictObject({ code: z.string().min(1).max(32) }), (ctx, interaction, body) => finishCode(ctx, interaction, body.code));
  // Password: `requiresTotp` tells a custom UI that the redirect leads to the mfa step (Strapi's shape).
  api.post(
    '/password',
    route(
      {
        body: z.strictObject({ email: emailInput, password: z.string().min(1).max(MAX_PASSWORD_LENGTH) }),
        response: z.object({ redirectTo: z.string(), requiresTotp: z.boolean() }),
        status: 200,
        errors: [400, 401, 403, 415, 429],
      },
      async ({ body }, ctx) => {
        const interaction = await loadInteraction(provider(), ctx);
        const email = parseEmail(body.email);
        const redirectTo = await finishPassword(ctx, interaction, email, body.password);
        const user = await users.findByEmail(email);
        return { body: { redirectTo, requiresTotp: user ? await mfa.hasTotp(user.id) : false } };
      },
    ),
  );
  step('/totp', z.strictObject({ email: emailInput, code: z.string().min(1).max(32) }), (ctx, interaction, body) =>
    finishTotpOnly(ctx, interaction, parseEmail(body.email), body.code),
  );
  api.post(
    '/mfa',
    route(
      {
        body: z.union([z.strictObject({ code: z.string().min(1).max(32) }), z.strictObject({ backupCode: z.string().min(1).max(64) })]),
        response: z.object({ redirectTo: z.string(), backupCodesLeft: z.number().int().optional() }),
        status: 200,
        errors: [400, 403, 415, 429],
      },
      async ({ body }, ctx) => {
        const interaction = await loadInteraction(provider(), ctx);
        return { body: await verifySecondFactor(ctx, interaction, body) };
      },
    ),
  );
  api.post(
    '/mfa/enroll',
    route(
      {
        response: z.object({ qrCodeUri: z.string(), qrCodeDataUri: z.string(), secret: z.string() }),
        status: 200,
        errors: [400, 403, 409],
      },
      async (_input, ctx) => {
        const enrollment = await startEnrollment(await loadInteraction(provider(), ctx));
        return { body: { qrCodeUri: enrollment.otpauthUri, qrCodeDataUri: enrollment.qrCodeDataUri, secret: enrollment.secret } };
      },
    ),
  );
  api.post(
    '/mfa/confirm',
    route(
      {
        body: z.strictObject({ code: z.string().min(1).max(32) }),
        response: z.object({ backupCodes: z.array(z.string()), redirectTo: z.string() }),
        status: 200,
        errors: [400, 403, 409, 415, 429],
      },
      async ({ body }, ctx) => {
        const interaction = await loadInteraction(provider(), ctx);
        const { backupCodes } = await confirmEnrollment(ctx, interaction, body.code);
        return { body: { backupCodes, redirectTo: await completeMfa(ctx, interaction) } };
      },
    ),
  );
  step('/mfa/skip', z.strictObject({}), (ctx, interaction) => skipEnrollment(ctx, interaction));
  step(
    '/one-time-token',
    z.strictObject({ token: z.string().min(1).max(512).optional(), email: z.string().min(1).max(254).optional() }),
    (ctx, interaction, body) => finishOneTimeToken(ctx, interaction, body),
  );
  step('/account-switch', z.strictObject({ decision: z.enum(['switch', 'keep']) }), (ctx, interaction, body) =>
    body.decision === 'keep' ? keepCurrent(ctx, interaction) : finishOneTimeToken(ctx, interaction),
  );
  step('/consent', z.strictObject({ decision: z.enum(['accept', 'deny']) }), (ctx, interaction, body) => decideConsent(ctx, interaction, body.decision));
  step('/abort', z.strictObject({}), (ctx) => abortInteraction(provider(), ctx, 'The user went back without signing in.'));

  // Mounted at its path (not a prefix of its own), so its allowedMethods is under that path too (see src/http/routing.ts).
  router.use('/api/experience', api.routes(), api.allowedMethods());
  return router;
}
