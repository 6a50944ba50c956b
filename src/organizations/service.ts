import type { Database } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import { generateId } from '../lib/ids.ts';
import type { UserRepository } from '../users/index.ts';
import type { Organization, OrganizationRepository, OrganizationRole, Page } from './repository.ts';

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505';

export type OrganizationService = ReturnType<typeof createOrganizationService>;

/** The rules around organizations: existence checks, conflicts, and just-in-time provisioning. */
export function createOrganizationService(deps: { db: Database; organizations: OrganizationRepository; users: UserRepository; events: EventBus }) {
  const { db, organizations: repo, users, events } = deps;

  /** Published after the change is committed (never inside a transaction: see EventBus.publish). */
  const membershipUpdated = (
    organizationId: string,
    userId: string,
    change: 'added' | 'removed' | 'roles_changed',
    extra: { organizationRoleIds?: string[]; source?: string } = {},
  ) => events.publish('Organization.Membership.Updated', { organizationId, userId, change, source: 'management_api', ...extra });

  async function mustExist(id: string): Promise<Organization> {
    const org = await repo.findById(id);
    if (!org) throw new AppError('NOT_FOUND', 'No organization has this id.');
    return org;
  }

  async function roleMustExist(id: string): Promise<OrganizationRole> {
    const role = await repo.findRoleById(id);
    if (!role) throw new AppError('NOT_FOUND', 'No organization role has this id.');
    return role;
  }

  async function knownRoles(ids: string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    const unknown = await repo.unknownRoleIds(unique);
    if (unknown.length > 0) {
      throw new AppError('INVALID_INPUT', `Unknown organization role ids: ${unknown.join(', ')}.`, { unknownOrganizationRoleIds: unknown });
    }
    return unique;
  }

  async function memberMustExist(organizationId: string, userId: string) {
    await mustExist(organizationId);
    if (!(await repo.isMember(organizationId, userId))) throw new AppError('NOT_FOUND', 'This user is not a member of the organization.');
  }

  /** The member's roles after a change, published with it. */
  async function rolesChanged(organizationId: string, userId: string) {
    const roles = await repo.rolesOfMember(organizationId, userId);
    await membershipUpdated(organizationId, userId, 'roles_changed', { organizationRoleIds: roles.map((role) => role.id) });
    return roles;
  }

  async function roleNameFree<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (isUniqueViolation(error)) throw new AppError('CONFLICT', 'An organization role with this name exists already.');
      throw error;
    }
  }

  return {
    mustExist,
    roleMustExist,
    knownRoles,

    create: (input: { name: string; description?: string | null; customData?: Record<string, unknown> }) =>
      repo.insert({ id: generateId(), name: input.name, description: input.description ?? null, customData: input.customData ?? {} }),
    list: (filter: { search?: string }, page: Page) => repo.list(filter, page),
    async update(id: string, changes: { name?: string; description?: string | null; customData?: Record<string, unknown> }) {
      const updated = await repo.update(id, changes);
      if (!updated) throw new AppError('NOT_FOUND', 'No organization has this id.');
      return updated;
    },
    async delete(id: string) {
      if (!(await repo.delete(id))) throw new AppError('NOT_FOUND', 'No organization has this id.');
    },

    // Roles
    createRole: (input: { name: string; description?: string | null }) =>
      roleNameFree(() => repo.insertRole({ id: generateId(), name: input.name, description: input.description ?? null })),
    listRoles: (page: Page) => repo.listRoles(page),
    async updateRole(id: string, changes: { name?: string; description?: string | null }) {
      const updated = await roleNameFree(() => repo.updateRole(id, changes));
      if (!updated) throw new AppError('NOT_FOUND', 'No organization role has this id.');
      return updated;
    },
    async deleteRole(id: string) {
      if (!(await repo.deleteRole(id))) throw new AppError('NOT_FOUND', 'No organization role has this id.');
    },

    // Members
    async listMembers(id: string, page: Page) {
      await mustExist(id);
      const { userIds, total } = await repo.listMembers(id, page);
      const members = await Promise.all(
        userIds.map(async (userId) => ({ user: (await users.findById(userId))!, roles: await repo.rolesOfMember(id, userId) })),
      );
      return { members, total };
    },
    /** Adds users; refuses unknown users (400) and existing members (409) without adding anyone. */
    async addMembers(id: string, userIds: string[]) {
      await mustExist(id);
      const unique = [...new Set(userIds)];
      const missing: string[] = [];
      for (const userId of unique) if (!(await users.findById(userId))) missing.push(userId);
      if (missing.length > 0) throw new AppError('INVALID_INPUT', `Unknown user ids: ${missing.join(', ')}.`, { unknownUserIds: missing });
      // The insert decides, in one transaction: of parallel adds of one user exactly one succeeds.
      await db.transaction(async (trx) => {
        const already = await repo.addMembers(id, unique, trx);
        if (already.length > 0) {
          throw new AppError('CONFLICT', `Already members of the organization: ${already.join(', ')}.`, { existingMemberIds: already });
        }
      });
      for (const userId of unique) await membershipUpdated(id, userId, 'added');
    },
    async removeMember(id: string, userId: string) {
      await mustExist(id);
      if (!(await repo.removeMember(id, userId))) throw new AppError('NOT_FOUND', 'This user is not a member of the organization.');
      await membershipUpdated(id, userId, 'removed');
    },
    async rolesOfMember(id: string, userId: string) {
      await memberMustExist(id, userId);
      return repo.rolesOfMember(id, userId);
    },
    async addMemberRoles(id: string, userId: string, roleIds: string[]) {
      await memberMustExist(id, userId);
      await repo.assignRoles(id, userId, await knownRoles(roleIds));
      return rolesChanged(id, userId);
    },
    async replaceMemberRoles(id: string, userId: string, roleIds: string[]) {
      await memberMustExist(id, userId);
      await repo.replaceRoles(id, userId, await knownRoles(roleIds));
      return rolesChanged(id, userId);
    },
    async removeMemberRole(id: string, userId: string, roleId: string) {
      await memberMustExist(id, userId);
      if (!(await repo.removeRole(id, userId, roleId))) throw new AppError('NOT_FOUND', 'The member does not have this role.');
      await rolesChanged(id, userId);
    },

    // Just-in-time provisioning
    async jitRoles(id: string) {
      await mustExist(id);
      return Promise.all((await repo.jitRoleIds(id)).map(async (roleId) => (await repo.findRoleById(roleId))!));
    },
    async replaceJitRoles(id: string, roleIds: string[]) {
      await mustExist(id);
      await repo.replaceJitRoles(id, await knownRoles(roleIds));
    },
    async jitEmailDomains(id: string) {
      await mustExist(id);
      return repo.jitEmailDomains(id);
    },
    async replaceJitEmailDomains(id: string, domains: string[]) {
      await mustExist(id);
      await repo.replaceJitEmailDomains(id, [...new Set(domains.map((domain) => domain.toLowerCase()))]);
    },

    /** Makes the user a member with the JIT default roles plus `roleIds` (idempotent); skips deleted organizations. */
    async provisionMember(organizationId: string, userId: string, roleIds: string[] = []) {
      if (!(await repo.findById(organizationId))) return;
      // Roles deleted since the invitation was made are skipped.
      const unknown = new Set(roleIds.length > 0 ? await repo.unknownRoleIds(roleIds) : []);
      const known = roleIds.filter((id) => !unknown.has(id));
      const added = await repo.provision(organizationId, userId, known);
      if (added || known.length > 0) {
        await membershipUpdated(organizationId, userId, added ? 'added' : 'roles_changed', { organizationRoleIds: known, source: 'invitation' });
      }
    },

    /**
     * Joins a user who just signed in: the token's organizations (those that
     * still exist), and, for a new account with a verified email, every
     * organization that provisions its email domain (looked up here unless
     * the caller already has them: `domainOrganizationIds`). Idempotent.
     */
    async provisionOnSignIn(input: { userId: string; tokenOrganizationIds: string[]; newUserEmail?: string; domainOrganizationIds?: string[] }) {
      const existing = new Set<string>();
      if (input.tokenOrganizationIds.length > 0) {
        const unknown = new Set(await repo.unknownIds(input.tokenOrganizationIds));
        for (const id of input.tokenOrganizationIds) if (!unknown.has(id)) existing.add(id);
      }
      const domain = input.newUserEmail?.split('@')[1];
      if (domain) for (const id of input.domainOrganizationIds ?? (await repo.organizationIdsForEmailDomain(domain))) existing.add(id);
      for (const id of existing) {
        if (await repo.provision(id, input.userId)) await membershipUpdated(id, input.userId, 'added', { source: 'sign_in' });
      }
      return [...existing];
    },
  };
}
