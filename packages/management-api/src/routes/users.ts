import type Router from '@koa/router';
import { z } from 'zod';
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

export function registerUserRoutes(router: Router, { userService: users }: ManagementApiDeps): void {
  const byId = z.strictObject({ id: idSchema });

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
