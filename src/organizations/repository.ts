import type { Knex } from 'knex';
import { escapeLike, type Database } from '../db/index.ts';

export type Organization = {
  id: string;
  name: string;
  description: string | null;
  customData: Record<string, unknown>;
  createdAt: Date;
};

export type OrganizationRole = { id: string; name: string; description: string | null; createdAt: Date };

type OrganizationRow = { id: string; name: string; description: string | null; custom_data: Record<string, unknown>; created_at: Date };
type RoleRow = { id: string; name: string; description: string | null; created_at: Date };

const toOrganization = (row: OrganizationRow): Organization => ({
  id: row.id,
  name: row.name,
  description: row.description,
  customData: row.custom_data ?? {},
  createdAt: new Date(row.created_at),
});

const toRole = (row: RoleRow): OrganizationRole => ({
  id: row.id,
  name: row.name,
  description: row.description,
  createdAt: new Date(row.created_at),
});

export type Page = { page: number; pageSize: number };

/** Serializes list replacements (delete + insert) of one organization. */
async function lockOrganization(trx: Knex.Transaction, organizationId: string) {
  await trx('organizations').where({ id: organizationId }).forUpdate().first();
}

export type OrganizationRepository = ReturnType<typeof createOrganizationRepository>;

/** SQL for organizations, their roles, memberships and just-in-time rules. */
export function createOrganizationRepository(db: Database) {
  const paginate = <T extends object>(query: Knex.QueryBuilder<T>, page: Page) =>
    query.limit(page.pageSize).offset((page.page - 1) * page.pageSize);

  return {
    // Organizations
    async insert(org: Omit<Organization, 'createdAt'>) {
      const [row] = await db('organizations')
        .insert({ id: org.id, name: org.name, description: org.description, custom_data: org.customData })
        .returning('*');
      return toOrganization(row as OrganizationRow);
    },
    async findById(id: string) {
      const row = await db<OrganizationRow>('organizations').where({ id }).first();
      return row ? toOrganization(row) : undefined;
    },
    async list(filter: { search?: string }, page: Page) {
      const base = db<OrganizationRow>('organizations').modify((query) => {
        if (filter.search) query.whereILike('name', `%${escapeLike(filter.search)}%`);
      });
      const [{ count }] = (await base.clone().count({ count: '*' })) as [{ count: number | string }];
      const rows = await paginate(base.clone().orderBy('created_at', 'desc').orderBy('id'), page);
      return { items: rows.map(toOrganization), total: Number(count) };
    },
    async update(id: string, changes: Partial<Pick<Organization, 'name' | 'description' | 'customData'>>) {
      const [row] = await db('organizations')
        .where({ id })
        .update({
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.description === undefined ? {} : { description: changes.description }),
          ...(changes.customData === undefined ? {} : { custom_data: changes.customData }),
        })
        .returning('*');
      return row ? toOrganization(row as OrganizationRow) : undefined;
    },
    async delete(id: string) {
      return (await db('organizations').where({ id }).delete()) > 0;
    },
    /** The ids among `ids` that name no organization. */
    async unknownIds(ids: string[]) {
      const found = new Set((await db('organizations').whereIn('id', ids).select('id')).map((row: { id: string }) => row.id));
      return ids.filter((id) => !found.has(id));
    },

    // Roles
    async insertRole(role: Omit<OrganizationRole, 'createdAt'>) {
      const [row] = await db('organization_roles').insert({ id: role.id, name: role.name, description: role.description }).returning('*');
      return toRole(row as RoleRow);
    },
    async findRoleById(id: string) {
      const row = await db<RoleRow>('organization_roles').where({ id }).first();
      return row ? toRole(row) : undefined;
    },
    async listRoles(page: Page) {
      const [{ count }] = (await db('organization_roles').count({ count: '*' })) as [{ count: number | string }];
      const rows = await paginate(db<RoleRow>('organization_roles').orderBy('created_at', 'asc').orderBy('id'), page);
      return { items: rows.map(toRole), total: Number(count) };
    },
    async updateRole(id: string, changes: Partial<Pick<OrganizationRole, 'name' | 'description'>>) {
      const [row] = await db('organization_roles')
        .where({ id })
        .update({
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.description === undefined ? {} : { description: changes.description }),
        })
        .returning('*');
      return row ? toRole(row as RoleRow) : undefined;
    },
    async deleteRole(id: string) {
      return (await db('organization_roles').where({ id }).delete()) > 0;
    },
    async unknownRoleIds(ids: string[]) {
      const found = new Set((await db('organization_roles').whereIn('id', ids).select('id')).map((row: { id: string }) => row.id));
      return ids.filter((id) => !found.has(id));
    },

    // Memberships
    /** Adds members; returns the user ids that were already members (nothing changes for them). */
    async addMembers(organizationId: string, userIds: string[], trx: Knex | Knex.Transaction = db) {
      if (userIds.length === 0) return [];
      const inserted = await trx('organization_user_relations')
        .insert(userIds.map((userId) => ({ organization_id: organizationId, user_id: userId })))
        .onConflict(['organization_id', 'user_id'])
        .ignore()
        .returning('user_id');
      const added = new Set(inserted.map((row: { user_id: string }) => row.user_id));
      return userIds.filter((id) => !added.has(id));
    },
    async removeMember(organizationId: string, userId: string) {
      return (await db('organization_user_relations').where({ organization_id: organizationId, user_id: userId }).delete()) > 0;
    },
    async isMember(organizationId: string, userId: string) {
      return Boolean(await db('organization_user_relations').where({ organization_id: organizationId, user_id: userId }).first());
    },
    async listMembers(organizationId: string, page: Page) {
      const base = db('organization_user_relations as r').join('users as u', 'u.id', 'r.user_id').where('r.organization_id', organizationId);
      const [{ count }] = (await base.clone().count({ count: '*' })) as [{ count: number | string }];
      const rows = await paginate(base.clone().select('u.id').orderBy('r.created_at', 'asc').orderBy('u.id'), page);
      return { userIds: (rows as Array<{ id: string }>).map((row) => row.id), total: Number(count) };
    },
    async rolesOfMember(organizationId: string, userId: string) {
      const rows = await db<RoleRow>('organization_role_user_relations as rr')
        .join('organization_roles as r', 'r.id', 'rr.organization_role_id')
        .where({ 'rr.organization_id': organizationId, 'rr.user_id': userId })
        .orderBy('r.name')
        .select('r.*');
      return rows.map(toRole);
    },
    async assignRoles(organizationId: string, userId: string, roleIds: string[], trx: Knex | Knex.Transaction = db) {
      if (roleIds.length === 0) return;
      await trx('organization_role_user_relations')
        .insert(roleIds.map((roleId) => ({ organization_id: organizationId, user_id: userId, organization_role_id: roleId })))
        .onConflict(['organization_id', 'user_id', 'organization_role_id'])
        .ignore();
    },
    async replaceRoles(organizationId: string, userId: string, roleIds: string[]) {
      await db.transaction(async (trx) => {
        // Replacing is delete + insert: lock the membership so parallel replaces run one after another.
        await trx('organization_user_relations').where({ organization_id: organizationId, user_id: userId }).forUpdate().first();
        await trx('organization_role_user_relations').where({ organization_id: organizationId, user_id: userId }).delete();
        if (roleIds.length > 0) {
          await trx('organization_role_user_relations').insert(
            roleIds.map((roleId) => ({ organization_id: organizationId, user_id: userId, organization_role_id: roleId })),
          );
        }
      });
    },
    async removeRole(organizationId: string, userId: string, roleId: string) {
      return (
        (await db('organization_role_user_relations')
          .where({ organization_id: organizationId, user_id: userId, organization_role_id: roleId })
          .delete()) > 0
      );
    },
    /** Every organization of a user with the names of their roles in it (for tokens and the users API). */
    async membershipsOfUser(userId: string) {
      const rows = await db('organization_user_relations as m')
        .join('organizations as o', 'o.id', 'm.organization_id')
        .leftJoin('organization_role_user_relations as rr', function joinRoles() {
          this.on('rr.organization_id', '=', 'm.organization_id').andOn('rr.user_id', '=', 'm.user_id');
        })
        .leftJoin('organization_roles as r', 'r.id', 'rr.organization_role_id')
        .where('m.user_id', userId)
        .orderBy('m.created_at', 'asc')
        .orderBy('o.id')
        .orderBy('r.name')
        .select('o.id as org_id', 'o.name as org_name', 'o.description as org_description', 'o.custom_data', 'o.created_at', 'r.id as role_id', 'r.name as role_name');
      const byOrg = new Map<string, { organization: Organization; roles: { id: string; name: string }[] }>();
      for (const row of rows as Array<Record<string, unknown>>) {
        const id = row.org_id as string;
        let entry = byOrg.get(id);
        if (!entry) {
          entry = {
            organization: toOrganization({
              id,
              name: row.org_name as string,
              description: row.org_description as string | null,
              custom_data: row.custom_data as Record<string, unknown>,
              created_at: row.created_at as Date,
            }),
            roles: [],
          };
          byOrg.set(id, entry);
        }
        if (row.role_id) entry.roles.push({ id: row.role_id as string, name: row.role_name as string });
      }
      return [...byOrg.values()];
    },

    // Just-in-time provisioning
    async jitRoleIds(organizationId: string) {
      return (await db('organization_jit_roles').where({ organization_id: organizationId }).select('organization_role_id')).map(
        (row: { organization_role_id: string }) => row.organization_role_id,
      );
    },
    async replaceJitRoles(organizationId: string, roleIds: string[]) {
      await db.transaction(async (trx) => {
        await lockOrganization(trx, organizationId);
        await trx('organization_jit_roles').where({ organization_id: organizationId }).delete();
        if (roleIds.length > 0) {
          await trx('organization_jit_roles').insert(roleIds.map((roleId) => ({ organization_id: organizationId, organization_role_id: roleId })));
        }
      });
    },
    async jitEmailDomains(organizationId: string) {
      return (await db('organization_jit_email_domains').where({ organization_id: organizationId }).orderBy('email_domain').select('email_domain')).map(
        (row: { email_domain: string }) => row.email_domain,
      );
    },
    async replaceJitEmailDomains(organizationId: string, domains: string[]) {
      await db.transaction(async (trx) => {
        await lockOrganization(trx, organizationId);
        await trx('organization_jit_email_domains').where({ organization_id: organizationId }).delete();
        if (domains.length > 0) {
          await trx('organization_jit_email_domains').insert(domains.map((domain) => ({ organization_id: organizationId, email_domain: domain })));
        }
      });
    },
    async organizationIdsForEmailDomain(domain: string) {
      return (await db('organization_jit_email_domains').where({ email_domain: domain }).select('organization_id')).map(
        (row: { organization_id: string }) => row.organization_id,
      );
    },
    /**
     * Joins the user to an organization with its JIT default roles plus
     * `extraRoleIds`, in one transaction; joining twice changes nothing but
     * adds missing roles. Answers whether the membership is new.
     */
    async provision(organizationId: string, userId: string, extraRoleIds: string[] = []): Promise<boolean> {
      return db.transaction(async (trx) => {
        const inserted = await trx('organization_user_relations')
          .insert({ organization_id: organizationId, user_id: userId })
          .onConflict(['organization_id', 'user_id'])
          .ignore()
          .returning('user_id');
        const jit = (await trx('organization_jit_roles').where({ organization_id: organizationId }).select('organization_role_id')).map(
          (row: { organization_role_id: string }) => row.organization_role_id,
        );
        const roleIds = [...new Set([...jit, ...extraRoleIds])];
        if (roleIds.length > 0) {
          await trx('organization_role_user_relations')
            .insert(roleIds.map((roleId) => ({ organization_id: organizationId, user_id: userId, organization_role_id: roleId })))
            .onConflict(['organization_id', 'user_id', 'organization_role_id'])
            .ignore();
        }
        return inserted.length > 0;
      });
    },
  };
}
