import type Router from '@koa/router';
import { z } from 'zod';
import { AppError } from '../../../../src/errors.ts';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';
import {
  createUserSchema,
  idSchema,
  listUsersQuery,
  passwordBodySchema,
  sessionSchema,
  suspendBodySchema,
  toPage,
  totalHeader,
  updateUserSchema,
  userOrganizationSchema,
  userSchema,
} from '../schemas.ts';

export function registerUserRoutes(router: Router, { userService: users, mfa, events }: ManagementApiDeps): void {
  const byId = z.strictObject({ id: idSchema });

  const verificationSchema = z.object({
    id: z.string(),
    type: z.enum(['Totp', 'BackupCode']),
    createdAt: z.date().transform((date) => date.toISOString()).pipe(z.iso.datetime()),
    /** Backup codes: how many are left. */
    remainingCodes: z.number().int().optional(),
  });

  router.get(
    '/users/:id/mfa-verifications',
    route(
      {
        params: byId,
        response: z.array(verificationSchema),
        status: 200,
        errors: [404],
        summary: 'List a user’s second factors',
        description: 'The confirmed authenticator (`Totp`) and, when any are left, the backup codes (`BackupCode`, with `remainingCodes`). Secrets never leave Sesame.',
      },
      async ({ params }) => {
        await users.mustExist(params.id);
        const factors = (await mfa.listFactors(params.id)).filter((factor) => factor.confirmedAt);
        const { backupCodesLeft } = await mfa.status(params.id);
        return {
          body: [
            ...factors.map((factor) => ({ id: factor.id, type: 'Totp' as const, createdAt: factor.confirmedAt ?? factor.createdAt })),
            ...(factors.length > 0 && backupCodesLeft > 0
              ? [{ id: `${factors[0]!.id}-backup-codes`, type: 'BackupCode' as const, createdAt: factors[0]!.confirmedAt ?? factors[0]!.createdAt, remainingCodes: backupCodesLeft }]
              : []),
          ],
        };
      },
    ),
  );

  router.delete(
    '/users/:id/mfa-verifications/:verificationId',
    route(
      {
        params: z.strictObject({ id: idSchema, verificationId: z.string().min(1).max(100).regex(/^[A-Za-z0-9_-]+$/) }),
        status: 204,
        errors: [404],
        summary: 'Reset a user’s second factor',
        description: 'Removes the authenticator and its backup codes (either id): the user signs in with the first factor again, and sets up a new authenticator when MFA is required.',
      },
      async ({ params }) => {
        await users.mustExist(params.id);
        const factorId = params.verificationId.replace(/-backup-codes$/, '');
        if (!(await mfa.removeFactor(params.id, factorId))) throw new AppError('NOT_FOUND', 'The user has no such second factor.');
        await events.publish('Mfa.Removed', { userId: params.id, factor: 'totp' });
        return {};
      },
    ),
  );

  router.post(
    '/users',
    route({ body: createUserSchema, response: userSchema, status: 201, errors: [400, 409], summary: 'Create a user' }, async ({ body }) => ({
      body: await users.create(body),
    })),
  );

  router.get(
    '/users',
    route(
      { query: listUsersQuery, response: z.array(userSchema), status: 200, errors: [400], summary: 'List or search users', description: '`search` matches email or name (case-insensitive substring) or the exact id.' },
      async ({ query }) => {
        const { items, total } = await users.list({ search: query.search }, toPage(query));
        return { body: items, headers: totalHeader(total) };
      },
    ),
  );

  router.get(
    '/users/:id',
    route({ params: byId, response: userSchema, status: 200, errors: [404], summary: 'Get a user' }, async ({ params }) => ({
      body: await users.mustExist(params.id),
    })),
  );

  router.patch(
    '/users/:id',
    route({ params: byId, body: updateUserSchema, response: userSchema, status: 200, errors: [400, 404, 409], summary: 'Update a user' }, async ({ params, body }) => ({
      body: await users.update(params.id, body),
    })),
  );

  router.patch(
    '/users/:id/password',
    route({ params: byId, body: passwordBodySchema, response: userSchema, status: 200, errors: [400, 404], summary: 'Set a user’s password' }, async ({ params, body }) => ({
      body: await users.setPassword(params.id, body.password),
    })),
  );

  router.patch(
    '/users/:id/is-suspended',
    route(
      {
        params: byId,
        body: suspendBodySchema,
        response: userSchema,
        status: 200,
        errors: [400, 404],
        summary: 'Suspend or unsuspend a user',
        description: 'A suspended user cannot sign in by any method (ACCOUNT_DISABLED); suspending also ends their sessions and revokes their tokens.',
      },
      async ({ params, body }) => ({ body: await users.setSuspended(params.id, body.isSuspended) }),
    ),
  );

  router.delete(
    '/users/:id',
    route({ params: byId, status: 204, errors: [404], summary: 'Delete a user' }, async ({ params }) => {
      await users.delete(params.id);
      return {};
    }),
  );

  router.get(
    '/users/:id/organizations',
    route(
      { params: byId, response: z.array(userOrganizationSchema), status: 200, errors: [404], summary: 'List the user’s organizations with their roles' },
      async ({ params }) => ({
        body: (await users.organizationsOf(params.id)).map(({ organization, roles }) => ({ ...organization, organizationRoles: roles })),
      }),
    ),
  );

  router.get(
    '/users/:id/sessions',
    route({ params: byId, response: z.array(sessionSchema), status: 200, errors: [404], summary: 'List the user’s active sessions' }, async ({ params }) => ({
      body: await users.sessionsOf(params.id),
    })),
  );

  router.delete(
    '/users/:id/sessions',
    route(
      { params: byId, status: 204, errors: [404], summary: 'Force logout', description: 'Ends every session of the user and revokes their grants, refresh and access tokens.' },
      async ({ params }) => {
        await users.endSessions(params.id);
        return {};
      },
    ),
  );
}
