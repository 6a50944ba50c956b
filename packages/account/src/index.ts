import type Router from '@koa/router';
import { createRouter } from '../../../src/http/routing.ts';
import type { JSONWebKeySet } from 'jose';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../../../src/errors.ts';
import type { EventBus } from '../../../src/events/index.ts';
import { createAccessTokenVerifier, requireScope } from '../../../src/http/access-token.ts';
import { route } from '../../../src/http/guard.ts';
import type { MfaService } from '../../../src/mfa/index.ts';
import type { UserRepository } from '../../../src/users/index.ts';

export type AccountApiDeps = {
  issuer: string;
  /** `${BASE_URL}/api/my-account`: the audience of the user's access token. */
  resource: string;
  scope: string;
  jwks: () => JSONWebKeySet;
  users: UserRepository;
  mfa: MfaService;
  events: EventBus;
};

/** A code from the authenticator, or a backup code, proving the factor before it changes. */
const proofSchema = z.union([z.strictObject({ code: z.string().min(1).max(32) }), z.strictObject({ backupCode: z.string().min(1).max(64) })]);

/**
 * The signed-in user's own account API, `/api/my-account`, called with the
 * user's access token for the my-account resource (scope `account`): set up
 * and remove an authenticator, and renew backup codes. Changing a factor
 * needs a code from it.
 */
export function createAccountApiRouter(deps: AccountApiDeps): Router {
  const { users, mfa, events } = deps;
  const router = createRouter({ prefix: '/api/my-account' });
  const verify = createAccessTokenVerifier({ issuer: deps.issuer, audience: deps.resource, jwks: deps.jwks });

  router.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    const payload = await verify(ctx);
    requireScope(payload, deps.scope);
    const user = typeof payload.sub === 'string' ? await users.findById(payload.sub) : undefined;
    if (!user) throw new AppError('UNAUTHORIZED');
    if (user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
    ctx.state.accountUser = user;
    await next();
  });

  const userOf = (ctx: Context) => ctx.state.accountUser as { id: string; primaryEmail: string | null };

  async function prove(userId: string, proof: z.infer<typeof proofSchema>) {
    if ('backupCode' in proof) await mfa.useBackupCode(userId, proof.backupCode);
    else await mfa.verifyTotp(userId, proof.code);
  }

  router.get(
    '/mfa',
    route(
      { response: z.object({ totp: z.boolean(), backupCodesLeft: z.number().int() }), status: 200, errors: [401, 403] },
      async (_input, ctx) => ({ body: await mfa.status(userOf(ctx).id) }),
    ),
  );

  router.post(
    '/mfa/totp/enroll',
    route(
      {
        response: z.object({ qrCodeUri: z.string(), qrCodeDataUri: z.string(), secret: z.string(), backupCodes: z.array(z.string()) }),
        status: 200,
        errors: [401, 403, 409],
      },
      async (_input, ctx) => {
        const user = userOf(ctx);
        const enrollment = await mfa.startTotp(user.id, user.primaryEmail ?? user.id);
        // Issued now (as Strapi's enrol answers them), valid once the authenticator is confirmed.
        const backupCodes = await mfa.regenerateBackupCodes(user.id);
        return { body: { qrCodeUri: enrollment.otpauthUri, qrCodeDataUri: enrollment.qrCodeDataUri, secret: enrollment.secret, backupCodes } };
      },
    ),
  );

  router.post(
    '/mfa/totp/confirm',
    route(
      { body: z.strictObject({ code: z.string().min(1).max(32) }), response: z.object({ enabled: z.boolean() }), status: 200, errors: [400, 401, 403, 404, 409, 415] },
      async ({ body }, ctx) => {
        const user = userOf(ctx);
        await mfa.confirmTotp(user.id, body.code, { issueBackupCodes: false });
        await events.publish('Mfa.Enrolled', { userId: user.id, email: user.primaryEmail, factor: 'totp' });
        return { body: { enabled: true } };
      },
    ),
  );

  router.post(
    '/mfa/totp/disable',
    route({ body: proofSchema, response: z.object({ disabled: z.boolean() }), status: 200, errors: [400, 401, 403, 415] }, async ({ body }, ctx) => {
      const user = userOf(ctx);
      if (!(await mfa.hasTotp(user.id))) throw new AppError('NOT_FOUND', 'No authenticator is set up.');
      await prove(user.id, body);
      await mfa.removeTotp(user.id);
      await events.publish('Mfa.Removed', { userId: user.id, email: user.primaryEmail, factor: 'totp' });
      return { body: { disabled: true } };
    }),
  );

  router.post(
    '/mfa/backup-codes/regenerate',
    route(
      { body: proofSchema, response: z.object({ backupCodes: z.array(z.string()) }), status: 200, errors: [400, 401, 403, 415] },
      async ({ body }, ctx) => {
        const user = userOf(ctx);
        if (!(await mfa.hasTotp(user.id))) throw new AppError('NOT_FOUND', 'No authenticator is set up.');
        await prove(user.id, body);
        return { body: { backupCodes: await mfa.regenerateBackupCodes(user.id) } };
      },
    ),
  );

  return router;
}
