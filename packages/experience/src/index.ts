import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { AppError } from '../../../src/errors.ts';
import { stylesheet } from '../../../src/http/pages.ts';
import { route } from '../../../src/http/guard.ts';
import { isSameOriginRequest } from '../../../src/http/middleware.ts';
import type { RateLimits } from '../../../src/ratelimit/index.ts';
import { abortInteraction, completeConsent, completeLogin, loadInteraction, type InteractionDetails } from '../../../src/oidc/interactions.ts';
import type { SignInService } from '../../../src/signin/index.ts';
import type { UserRepository } from '../../../src/users/index.ts';
import { continueAsPage, linkFailurePage, signInInfoPage } from './pages.ts';

export type ExperienceDeps = {
  /** The current provider (it is rebuilt when keys rotate). */
  provider: () => Provider;
  signIn: SignInService;
  users: UserRepository;
  /** Our own origin: state-changing requests from anywhere else are refused. */
  origin: string;
  limits: RateLimits;
};

const param = (interaction: InteractionDetails, name: string) => {
  const value = (interaction.params as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
};

/**
 * The hosted sign-in pages (server-rendered, no JavaScript needed) and the
 * JSON Experience API for custom UIs. Both are bound to the interaction cookie
 * oidc-provider set when the app sent the user to /oidc/auth.
 */
export function createExperienceRouter(deps: ExperienceDeps): Router {
  const { provider, signIn, users, origin, limits } = deps;
  const router = new Router();

  /** Form posts must come from our own pages. */
  function checkFormOrigin(ctx: Context): void {
    if (!isSameOriginRequest(ctx, origin, { requireOrigin: false })) throw new AppError('INVALID_ORIGIN');
  }

  async function appName(interaction: InteractionDetails): Promise<string> {
    const client = await provider().Client.find(String(interaction.params.client_id));
    return client?.clientName ?? 'the app';
  }

  router.get('/favicon.ico', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.status = 204;
  });

  router.get('/static/sesame.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = stylesheet;
  });

  // GET and HEAD only show the page: mail scanners prefetch links, so nothing is consumed here.
  router.get('/interaction/:uid', async (ctx) => {
    let interaction: InteractionDetails;
    try {
      interaction = await loadInteraction(provider(), ctx, ctx.params.uid);
    } catch (error) {
      if (error instanceof AppError) return linkFailurePage(ctx, error.code);
      throw error;
    }
    if (interaction.prompt.name === 'consent') {
      return ctx.redirect(await completeConsent(provider(), ctx, interaction));
    }
    const token = param(interaction, 'one_time_token');
    const email = param(interaction, 'login_hint');
    if (!token) return signInInfoPage(ctx, { uid: interaction.uid, appName: await appName(interaction) });
    if (!email) return linkFailurePage(ctx, 'TOKEN_INVALID', interaction.uid);
    const current = interaction.session?.accountId ? await users.findById(interaction.session.accountId) : undefined;
    continueAsPage(ctx, {
      uid: interaction.uid,
      email,
      appName: await appName(interaction),
      signedInAs: current?.primaryEmail,
    });
  });

  router.post('/interaction/:uid/one-time-token', async (ctx) => {
    checkFormOrigin(ctx);
    // Failed verifications count per client address (a success gives its point back): 429 page when over.
    await limits.consume(ctx, 'verification', {});
    let interaction: InteractionDetails | undefined;
    try {
      interaction = await loadInteraction(provider(), ctx, ctx.params.uid);
      const result = await signIn.withOneTimeToken({
        token: param(interaction, 'one_time_token') ?? '',
        email: param(interaction, 'login_hint') ?? '',
        interactionUid: interaction.uid,
      });
      await limits.reward(ctx, 'verification', {});
      ctx.status = 303;
      ctx.redirect(await completeLogin(provider(), ctx, interaction, { accountId: result.user.id, amr: result.amr }));
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return linkFailurePage(ctx, error.code, interaction?.uid);
      throw error;
    }
  });

  router.post('/interaction/:uid/abort', async (ctx) => {
    checkFormOrigin(ctx);
    try {
      await loadInteraction(provider(), ctx, ctx.params.uid);
    } catch (error) {
      if (error instanceof AppError) return linkFailurePage(ctx, error.code);
      throw error;
    }
    ctx.status = 303;
    ctx.redirect(await abortInteraction(provider(), ctx, 'The user went back without signing in.'));
  });

  // JSON Experience API: the same step for custom sign-in UIs.
  router.post(
    '/api/experience/one-time-token',
    async (ctx, next) => {
      if (!isSameOriginRequest(ctx, origin, { requireOrigin: true })) throw new AppError('INVALID_ORIGIN');
      await next();
    },
    route(
      {
        body: z.strictObject({
          token: z.string().min(1).max(512).optional(),
          email: z.string().min(1).max(254).optional(),
        }),
        response: z.object({ redirectTo: z.string() }),
        status: 200,
        errors: [400, 403, 410, 415, 429],
      },
      async ({ body }, ctx) => {
        const interaction = await loadInteraction(provider(), ctx);
        await limits.consume(ctx, 'verification', {});
        const result = await signIn.withOneTimeToken({
          token: body.token ?? param(interaction, 'one_time_token') ?? '',
          email: body.email ?? param(interaction, 'login_hint') ?? '',
          interactionUid: interaction.uid,
        });
        await limits.reward(ctx, 'verification', {});
        return { body: { redirectTo: await completeLogin(provider(), ctx, interaction, { accountId: result.user.id, amr: result.amr }) } };
      },
    ),
  );

  return router;
}
