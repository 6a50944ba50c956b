import type { Database } from '../db/index.ts';

export type StoredInvitationStatus = 'Pending' | 'Accepted' | 'Revoked';
export type InvitationStatus = StoredInvitationStatus | 'Expired';

export type Invitation = {
  id: string;
  email: string;
  organizationId: string;
  organizationRoleIds: string[];
  status: StoredInvitationStatus;
  oneTimeTokenId: string | null;
  landingUri: string;
  expiresAt: Date;
  createdAt: Date;
  acceptedAt: Date | null;
  acceptedUserId: string | null;
  inviterClientId: string | null;
};

type Row = {
  id: string;
  email: string;
  organization_id: string;
  role_ids: string[];
  status: StoredInvitationStatus;
  one_time_token_id: string | null;
  landing_uri: string;
  expires_at: Date;
  created_at: Date;
  accepted_at: Date | null;
  accepted_user_id: string | null;
  inviter_client_id: string | null;
};

const toInvitation = (row: Row): Invitation => ({
  id: row.id,
  email: row.email,
  organizationId: row.organization_id,
  organizationRoleIds: row.role_ids ?? [],
  status: row.status,
  oneTimeTokenId: row.one_time_token_id,
  landingUri: row.landing_uri,
  expiresAt: new Date(row.expires_at),
  createdAt: new Date(row.created_at),
  acceptedAt: row.accepted_at ? new Date(row.accepted_at) : null,
  acceptedUserId: row.accepted_user_id,
  inviterClientId: row.inviter_client_id,
});

export type InvitationFilter = { organizationId?: string; email?: string; status?: InvitationStatus };

export type InvitationRepository = ReturnType<typeof createInvitationRepository>;

export function createInvitationRepository(db: Database) {
  const table = () => db<Row>('organization_invitations');
  const filtered = (filter: InvitationFilter, now: Date) =>
    table().modify((query) => {
      if (filter.organizationId) query.where('organization_id', filter.organizationId);
      if (filter.email) query.where('email', filter.email);
      if (filter.status === 'Pending') query.where('status', 'Pending').andWhere('expires_at', '>', now);
      else if (filter.status === 'Expired') query.where('status', 'Pending').andWhere('expires_at', '<=', now);
      else if (filter.status) query.where('status', filter.status);
    });

  return {
    async insert(invitation: Omit<Invitation, 'status' | 'acceptedAt' | 'acceptedUserId'>) {
      const [row] = await table()
        .insert({
          id: invitation.id,
          email: invitation.email,
          organization_id: invitation.organizationId,
          role_ids: JSON.stringify(invitation.organizationRoleIds) as unknown as string[],
          one_time_token_id: invitation.oneTimeTokenId,
          landing_uri: invitation.landingUri,
          expires_at: invitation.expiresAt,
          created_at: invitation.createdAt,
          inviter_client_id: invitation.inviterClientId,
        })
        .returning('*');
      return toInvitation(row as Row);
    },
    async findById(id: string) {
      const row = await table().where({ id }).first();
      return row ? toInvitation(row) : undefined;
    },
    async list(filter: InvitationFilter, page: { page: number; pageSize: number }, now: Date) {
      const [{ count }] = (await filtered(filter, now).count({ count: '*' })) as [{ count: number | string }];
      const rows = (await filtered(filter, now)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(page.pageSize)
        .offset((page.page - 1) * page.pageSize)) as Row[];
      return { items: rows.map(toInvitation), total: Number(count) };
    },
    async revoke(id: string) {
      const [row] = await table().where({ id, status: 'Pending' }).update({ status: 'Revoked' }).returning('*');
      return row ? toInvitation(row as Row) : undefined;
    },
    async delete(id: string) {
      return (await table().where({ id }).delete()) > 0;
    },
    /** Accepts the pending invitation behind a consumed token, once; answers it, or undefined. */
    async acceptByToken(tokenId: string, userId: string, now: Date) {
      const [row] = await table()
        .where({ one_time_token_id: tokenId, status: 'Pending' })
        .update({ status: 'Accepted', accepted_at: now, accepted_user_id: userId })
        .returning('*');
      return row ? toInvitation(row as Row) : undefined;
    },
  };
}
