import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { AppError } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import { generateId } from '../lib/ids.ts';
import type { SessionStore } from '../oidc/sessions.ts';
import type { OrganizationRepository } from '../organizations/index.ts';
import { normalizeEmail } from '../tokens/index.ts';
import type { User, UserRepository } from './index.ts';

/** argon2id with the OWASP-recommended minimum (19 MiB, 2 passes, 1 lane). */
// Algorithm.Argon2id is 2 (a const enum, which isolated modules cannot import).
const argon2Options = { algorithm: 2 as const, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export const hashPassword = (password: string) => argon2Hash(password, argon2Options);

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2Verify(hash, password);
  } catch {
    return false;
  }
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505';

export type UserService = ReturnType<typeof createUserService>;

export function createUserService(deps: {
  users: UserRepository;
  organizations: OrganizationRepository;
  sessions: SessionStore;
  clock: () => Date;
  events: EventBus;
}) {
  const { users, organizations, sessions, clock, events } = deps;

  async function mustExist(id: string): Promise<User> {
    const user = await users.findById(id);
    if (!user) throw new AppError('NOT_FOUND', 'No user has this id.');
    return user;
  }

  /** Unique-email violations become EMAIL_ALREADY_IN_USE (409), whichever request won the race. */
  async function guardEmail<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (isUniqueViolation(error)) throw new AppError('EMAIL_ALREADY_IN_USE');
      throw error;
    }
  }

  return {
    mustExist,

    /** `source` says who asked, for the audit log and webhooks (`cli` from the CLI). */
    async create(input: { primaryEmail?: string | null; name?: string | null; avatar?: string | null; password?: string }, source = 'management_api') {
      const passwordHash = input.password ? await hashPassword(input.password) : null;
      const user = await guardEmail(() =>
        users.insert({
          id: generateId(),
          primaryEmail: input.primaryEmail ? normalizeEmail(input.primaryEmail) : null,
          name: input.name ?? null,
          avatar: input.avatar ?? null,
          passwordHash,
          // An admin-provided address is not proven until the user signs in with it.
          emailVerified: false,
          now: clock(),
        }),
      );
      await events.publish('User.Created', { userId: user.id, email: user.primaryEmail, source });
      return user;
    },

    list: (filter: { search?: string }, page: { page: number; pageSize: number }) => users.list(filter, page),

    async update(id: string, changes: { primaryEmail?: string | null; name?: string | null; avatar?: string | null }) {
      const current = await mustExist(id);
      const email = changes.primaryEmail === undefined ? undefined : changes.primaryEmail ? normalizeEmail(changes.primaryEmail) : null;
      const emailChanged = email !== undefined && email !== current.primaryEmail;
      const updated = await guardEmail(() =>
        users.update(id, { ...changes, primaryEmail: email, ...(emailChanged ? { emailVerified: false } : {}) }, clock()),
      );
      if (!updated) throw new AppError('NOT_FOUND', 'No user has this id.');
      return updated;
    },

    async setPassword(id: string, password: string) {
      await mustExist(id);
      return (await users.update(id, { passwordHash: await hashPassword(password) }, clock()))!;
    },

    async delete(id: string) {
      await mustExist(id);
      await sessions.endForAccount(id);
      await users.delete(id);
    },

    /** Suspending also ends the user's sessions and revokes their tokens. */
    async setSuspended(id: string, isSuspended: boolean) {
      await mustExist(id);
      const updated = (await users.update(id, { isSuspended }, clock()))!;
      if (isSuspended) await sessions.endForAccount(id);
      await events.publish('User.Suspended', { userId: id, email: updated.primaryEmail, isSuspended }, { result: 'success' });
      return updated;
    },

    async organizationsOf(id: string) {
      await mustExist(id);
      return organizations.membershipsOfUser(id);
    },

    async sessionsOf(id: string) {
      await mustExist(id);
      return sessions.listForAccount(id, clock());
    },

    async endSessions(id: string) {
      await mustExist(id);
      return sessions.endForAccount(id);
    },
  };
}
