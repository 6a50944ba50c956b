import type Router from '@koa/router';
import { z } from 'zod';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';
import {
  createOrganizationRoleSchema,
  createOrganizationSchema,
  emailDomainsBodySchema,
  idSchema,
  listOrganizationsQuery,
  memberSchema,
  organizationRoleSchema,
  organizationSchema,
  paginationQuery,
  roleIdsBodySchema,
  roleRefSchema,
  toPage,
  totalHeader,
  updateOrganizationRoleSchema,
  updateOrganizationSchema,
  userIdsBodySchema,
} from '../schemas.ts';

export function registerOrganizationRoutes(router: Router, { organizationService: orgs }: ManagementApiDeps): void {
  const byId = z.strictObject({ id: idSchema });
  const member = z.strictObject({ id: idSchema, userId: idSchema });
  const memberRole = z.strictObject({ id: idSchema, userId: idSchema, organizationRoleId: idSchema });
  const roleRefs = (roles: { id: string; name: string }[]) => roles.map(({ id, name }) => ({ id, name }));

  router.post(
    '/organizations',
    route({ body: createOrganizationSchema, response: organizationSchema, status: 201, errors: [400], summary: 'Create an organization' }, async ({ body }) => ({
      body: await orgs.create(body),
    })),
  );
  router.get(
    '/organizations',
    route(
      { query: listOrganizationsQuery, response: z.array(organizationSchema), status: 200, errors: [400], summary: 'List organizations', description: '`q` matches the name.' },
      async ({ query }) => {
        const { items, total } = await orgs.list({ search: query.q }, toPage(query));
        return { body: items, headers: totalHeader(total) };
      },
    ),
  );
  router.get(
    '/organizations/:id',
    route({ params: byId, response: organizationSchema, status: 200, errors: [404], summary: 'Get an organization' }, async ({ params }) => ({
      body: await orgs.mustExist(params.id),
    })),
  );
  router.patch(
    '/organizations/:id',
    route(
      { params: byId, body: updateOrganizationSchema, response: organizationSchema, status: 200, errors: [400, 404], summary: 'Update an organization' },
      async ({ params, body }) => ({ body: await orgs.update(params.id, body) }),
    ),
  );
  router.delete(
    '/organizations/:id',
    route({ params: byId, status: 204, errors: [404], summary: 'Delete an organization (and its memberships and invitations)' }, async ({ params }) => {
      await orgs.delete(params.id);
      return {};
    }),
  );

  // Members
  router.get(
    '/organizations/:id/users',
    route(
      { params: byId, query: paginationQuery, response: z.array(memberSchema), status: 200, errors: [400, 404], summary: 'List members with their organization roles' },
      async ({ params, query }) => {
        const { members, total } = await orgs.listMembers(params.id, toPage(query));
        return { body: members.map(({ user, roles }) => ({ ...user, organizationRoles: roleRefs(roles) })), headers: totalHeader(total) };
      },
    ),
  );
  router.post(
    '/organizations/:id/users',
    route(
      { params: byId, body: userIdsBodySchema, status: 201, errors: [400, 404, 409], summary: 'Add members', description: 'Unknown users give 400, existing members 409; then nobody is added.' },
      async ({ params, body }) => {
        await orgs.addMembers(params.id, body.userIds);
        return {};
      },
    ),
  );
  router.delete(
    '/organizations/:id/users/:userId',
    route({ params: member, status: 204, errors: [404], summary: 'Remove a member (and their roles)' }, async ({ params }) => {
      await orgs.removeMember(params.id, params.userId);
      return {};
    }),
  );
  router.get(
    '/organizations/:id/users/:userId/roles',
    route({ params: member, response: z.array(organizationRoleSchema), status: 200, errors: [404], summary: 'List a member’s roles' }, async ({ params }) => ({
      body: await orgs.rolesOfMember(params.id, params.userId),
    })),
  );
  router.post(
    '/organizations/:id/users/:userId/roles',
    route(
      { params: member, body: roleIdsBodySchema, response: z.array(organizationRoleSchema), status: 201, errors: [400, 404], summary: 'Give a member roles' },
      async ({ params, body }) => ({ body: await orgs.addMemberRoles(params.id, params.userId, body.organizationRoleIds) }),
    ),
  );
  router.put(
    '/organizations/:id/users/:userId/roles',
    route(
      { params: member, body: roleIdsBodySchema, response: z.array(organizationRoleSchema), status: 200, errors: [400, 404], summary: 'Replace a member’s roles' },
      async ({ params, body }) => ({ body: await orgs.replaceMemberRoles(params.id, params.userId, body.organizationRoleIds) }),
    ),
  );
  router.delete(
    '/organizations/:id/users/:userId/roles/:organizationRoleId',
    route({ params: memberRole, status: 204, errors: [404], summary: 'Take a role from a member' }, async ({ params }) => {
      await orgs.removeMemberRole(params.id, params.userId, params.organizationRoleId);
      return {};
    }),
  );

  // Just-in-time provisioning
  router.get(
    '/organizations/:id/jit/roles',
    route({ params: byId, response: z.array(roleRefSchema), status: 200, errors: [404], summary: 'Default roles for users who join just in time' }, async ({ params }) => ({
      body: roleRefs(await orgs.jitRoles(params.id)),
    })),
  );
  router.put(
    '/organizations/:id/jit/roles',
    route(
      { params: byId, body: roleIdsBodySchema, response: z.array(roleRefSchema), status: 200, errors: [400, 404], summary: 'Replace the just-in-time default roles' },
      async ({ params, body }) => {
        await orgs.replaceJitRoles(params.id, body.organizationRoleIds);
        return { body: roleRefs(await orgs.jitRoles(params.id)) };
      },
    ),
  );
  router.get(
    '/organizations/:id/jit/email-domains',
    route(
      { params: byId, response: z.array(z.string()), status: 200, errors: [404], summary: 'Email domains whose new users join just in time' },
      async ({ params }) => ({ body: await orgs.jitEmailDomains(params.id) }),
    ),
  );
  router.put(
    '/organizations/:id/jit/email-domains',
    route(
      { params: byId, body: emailDomainsBodySchema, response: z.array(z.string()), status: 200, errors: [400, 404], summary: 'Replace the just-in-time email domains' },
      async ({ params, body }) => {
        await orgs.replaceJitEmailDomains(params.id, body.emailDomains);
        return { body: await orgs.jitEmailDomains(params.id) };
      },
    ),
  );

  // Organization roles (shared by all organizations)
  const byRoleId = z.strictObject({ id: idSchema });
  router.post(
    '/organization-roles',
    route({ body: createOrganizationRoleSchema, response: organizationRoleSchema, status: 201, errors: [400, 409], summary: 'Create an organization role' }, async ({ body }) => ({
      body: await orgs.createRole(body),
    })),
  );
  router.get(
    '/organization-roles',
    route({ query: paginationQuery, response: z.array(organizationRoleSchema), status: 200, errors: [400], summary: 'List organization roles' }, async ({ query }) => {
      const { items, total } = await orgs.listRoles(toPage(query));
      return { body: items, headers: totalHeader(total) };
    }),
  );
  router.get(
    '/organization-roles/:id',
    route({ params: byRoleId, response: organizationRoleSchema, status: 200, errors: [404], summary: 'Get an organization role' }, async ({ params }) => ({
      body: await orgs.roleMustExist(params.id),
    })),
  );
  router.patch(
    '/organization-roles/:id',
    route(
      { params: byRoleId, body: updateOrganizationRoleSchema, response: organizationRoleSchema, status: 200, errors: [400, 404, 409], summary: 'Update an organization role' },
      async ({ params, body }) => ({ body: await orgs.updateRole(params.id, body) }),
    ),
  );
  router.delete(
    '/organization-roles/:id',
    route({ params: byRoleId, status: 204, errors: [404], summary: 'Delete an organization role (members lose it)' }, async ({ params }) => {
      await orgs.deleteRole(params.id);
      return {};
    }),
  );
}
