import type Router from '@koa/router';
import { z } from 'zod';
import { route } from '../../../../src/http/guard.ts';
import type { Invitation } from '../../../../src/invitations/index.ts';
import type { ManagementApiDeps } from '../index.ts';
import { createdInvitationSchema, createInvitationSchema, idSchema, invitationSchema, listInvitationsQuery, toPage, totalHeader } from '../schemas.ts';

export function registerInvitationRoutes(router: Router, { invitations }: ManagementApiDeps): void {
  const byId = z.strictObject({ id: idSchema });
  const present = (invitation: Invitation) => ({ ...invitation, roles: invitation.organizationRoleIds, status: invitations.status(invitation) });

  router.post(
    '/organization-invitations',
    route(
      {
        body: createInvitationSchema,
        response: createdInvitationSchema,
        status: 201,
        errors: [400, 404, 502],
        summary: 'Invite an email address to an organization',
        description:
          'Mints a one-time token carrying the organization, records the invitation and, with `sendEmail`, mails `landingUri?token=…&email=…`. ' +
          'The link and token are in this response only. Signing in with the token accepts the invitation: the user joins with the JIT default roles and `roles`. ' +
          'If the mail cannot be sent, nothing is created (502 MAIL_NOT_SENT).',
      },
      async ({ body }, ctx) => {
        const { invitation, link, token } = await invitations.create({
          email: body.email,
          organizationId: body.organizationId,
          organizationRoleIds: body.roles,
          expiresIn: body.expiresIn,
          landingUri: body.landingUri,
          sendEmail: body.sendEmail,
          inviterClientId: typeof ctx.state.managementClientId === 'string' ? ctx.state.managementClientId : undefined,
        });
        return { body: { ...present(invitation), link, token } };
      },
    ),
  );

  router.get(
    '/organization-invitations',
    route(
      { query: listInvitationsQuery, response: z.array(invitationSchema), status: 200, errors: [400], summary: 'List invitations' },
      async ({ query }) => {
        const { items, total } = await invitations.list(
          { organizationId: query.organizationId, email: query.email, status: query.status },
          toPage(query),
        );
        return { body: items.map(present), headers: totalHeader(total) };
      },
    ),
  );

  router.get(
    '/organization-invitations/:id',
    route({ params: byId, response: invitationSchema, status: 200, errors: [404], summary: 'Get an invitation' }, async ({ params }) => ({
      body: present(await invitations.mustExist(params.id)),
    })),
  );

  router.put(
    '/organization-invitations/:id/status',
    route(
      {
        params: byId,
        body: z.strictObject({ status: z.literal('Revoked', { message: 'status can only be set to "Revoked"' }) }),
        response: invitationSchema,
        status: 200,
        errors: [400, 404],
        summary: 'Revoke an invitation (and its link)',
      },
      async ({ params }) => ({ body: present(await invitations.revoke(params.id)) }),
    ),
  );

  router.delete(
    '/organization-invitations/:id',
    route({ params: byId, status: 204, errors: [404], summary: 'Delete an invitation (a pending one’s link stops working)' }, async ({ params }) => {
      await invitations.delete(params.id);
      return {};
    }),
  );
}
