import { AppError } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import { generateId } from '../lib/ids.ts';
import { consumeFailure, generateOneTimeToken, hashOneTimeToken, normalizeEmail, type TokenContext, type TokenRecord } from './core.ts';
import type { TokenConsumption, TokenFilter, TokenRepository } from './repository.ts';

export type TokenService = ReturnType<typeof createTokenService>;

export const MIN_EXPIRES_IN = 60;

export type TokenLimits = { defaultExpiresIn: number; maxExpiresIn: number };

export function createTokenService(deps: {
  repository: TokenRepository;
  clock: () => Date;
  events: EventBus;
  limits: TokenLimits;
  /** Returns the ids among `ids` that do not name an organization. */
  unknownOrganizationIds: (ids: string[]) => Promise<string[]>;
}) {
  const { repository, clock, events, limits } = deps;

  /**
   * Consumes a token as `consume` does, through `statement`: the consumption
   * with more work in the same statement (the one-time-token sign-in's
   * account upsert, src/users), answering undefined when no token was
   * consumed. Then throws as `consume` does.
   */
  async function consumeWith<R extends { token: TokenRecord }>(
    input: { token: string; email: string; interactionUid?: string },
    statement: (consumption: TokenConsumption) => Promise<R | undefined>,
  ): Promise<R> {
    const consumption: TokenConsumption = { hash: hashOneTimeToken(input.token), email: normalizeEmail(input.email), now: clock(), interactionUid: input.interactionUid };
    const consumed = await statement(consumption);
    if (consumed) return consumed;
    throw new AppError(consumeFailure(await repository.findByHash(consumption.hash), consumption.email, consumption.now));
  }
  return {
    limits,

    /** Mints a token; the plaintext is in the result and nowhere else, ever. */
    async mint(input: {
      email: string;
      expiresIn?: number;
      context?: TokenContext;
      revokePrevious?: boolean;
    }): Promise<TokenRecord & { token: string }> {
      const expiresIn = input.expiresIn ?? limits.defaultExpiresIn;
      if (!Number.isInteger(expiresIn) || expiresIn < MIN_EXPIRES_IN || expiresIn > limits.maxExpiresIn) {
        throw new AppError('INVALID_INPUT', `expiresIn must be a whole number of seconds from ${MIN_EXPIRES_IN} to ${limits.maxExpiresIn}.`);
      }
      const context: TokenContext = {};
      const organizationIds = [...new Set(input.context?.jitOrganizationIds ?? [])];
      if (organizationIds.length > 0) {
        const unknown = await deps.unknownOrganizationIds(organizationIds);
        if (unknown.length > 0) {
          throw new AppError('INVALID_INPUT', `Unknown organization ids: ${unknown.join(', ')}.`, { unknownOrganizationIds: unknown });
        }
        context.jitOrganizationIds = organizationIds;
      }
      const now = clock();
      const { token, hash } = generateOneTimeToken();
      const record = await repository.insert(
        {
          id: generateId(),
          email: normalizeEmail(input.email),
          hash,
          context,
          createdAt: now,
          expiresAt: new Date(now.getTime() + expiresIn * 1000),
        },
        { revokePrevious: input.revokePrevious },
      );
      // Shares the audit log's INSERT with the Management API's ManagementApi.Write; the answer still waits for both.
      await events.publishLater('OneTimeToken.Created', {
        tokenId: record.id,
        email: record.email,
        expiresAt: record.expiresAt.toISOString(),
        ...(context.jitOrganizationIds && { organizationIds: context.jitOrganizationIds }),
      });
      return { ...record, token };
    },

    list(filter: TokenFilter, page: { page: number; pageSize: number }) {
      return repository.list({ ...filter, email: filter.email ? normalizeEmail(filter.email) : undefined }, page, clock());
    },

    /** Revokes an active token; revoking a revoked token changes nothing. Used tokens cannot be revoked. */
    async revoke(id: string): Promise<TokenRecord> {
      const revoked = await repository.revoke(id, clock());
      if (revoked) {
        await events.publish('OneTimeToken.Revoked', { tokenId: revoked.id, email: revoked.email });
        return revoked;
      }
      const record = await repository.findById(id);
      if (!record) throw new AppError('NOT_FOUND', 'No one-time token has this id.');
      if (record.status === 'revoked') return record;
      throw new AppError('INVALID_INPUT', 'This token was already used; only active tokens can be revoked.');
    },

    async delete(id: string): Promise<void> {
      if (!(await repository.delete(id))) throw new AppError('NOT_FOUND', 'No one-time token has this id.');
    },

    get(id: string) {
      return repository.findById(id);
    },

    /**
     * Consumes a token for `email` (compared case-insensitively) or throws
     * TOKEN_INVALID / TOKEN_EXPIRED / TOKEN_ALREADY_USED.
     */
    async consume(input: { token: string; email: string; interactionUid?: string }): Promise<TokenRecord> {
      const consumed = await consumeWith(input, async (consumption) => {
        const token = await repository.consume(consumption);
        return token && { token };
      });
      return consumed.token;
    },

    consumeWith,
  };
}
