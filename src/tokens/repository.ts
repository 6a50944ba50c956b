import type { Database } from '../db/index.ts';
import type { StoredStatus, TokenContext, TokenRecord } from './core.ts';

type Row = {
  id: string;
  email: string;
  token_hash: string;
  status: StoredStatus;
  context: TokenContext;
  expires_at: Date;
  created_at: Date;
  consumed_at: Date | null;
  consumed_interaction_uid: string | null;
  revoked_at: Date | null;
};

const toRecord = (row: Row): TokenRecord => ({
  id: row.id,
  email: row.email,
  status: row.status,
  context: row.context ?? {},
  expiresAt: new Date(row.expires_at),
  createdAt: new Date(row.created_at),
  consumedAt: row.consumed_at ? new Date(row.consumed_at) : null,
  consumedInteractionUid: row.consumed_interaction_uid,
  revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
});

export type TokenRepository = ReturnType<typeof createTokenRepository>;

export function createTokenRepository(db: Database) {
  const table = () => db<Row>('one_time_tokens');
  return {
    async insert(token: { id: string; email: string; hash: string; context: TokenContext; expiresAt: Date; createdAt: Date }) {
      const [row] = await table()
        .insert({
          id: token.id,
          email: token.email,
          token_hash: token.hash,
          status: 'active',
          context: token.context,
          expires_at: token.expiresAt,
          created_at: token.createdAt,
        })
        .returning('*');
      return toRecord(row as Row);
    },

    async findById(id: string) {
      const row = await table().where({ id }).first();
      return row ? toRecord(row) : undefined;
    },

    async findByHash(hash: string) {
      const row = await table().where({ token_hash: hash }).first();
      return row ? toRecord(row) : undefined;
    },

    /**
     * Single use, decided by one conditional UPDATE: of any number of parallel
     * attempts exactly one flips `active → consumed`. The interaction that
     * consumed a token may present it again (a double click, a later MFA step)
     * without another interaction being able to.
     */
    async consume(input: { hash: string; email: string; now: Date; interactionUid?: string }) {
      const rows = await table()
        .update({
          status: 'consumed',
          consumed_at: db.raw('coalesce(consumed_at, ?)', [input.now]),
          consumed_interaction_uid: input.interactionUid ?? null,
        })
        .where({ token_hash: input.hash, email: input.email })
        .andWhere('expires_at', '>', input.now)
        .andWhere((where) => {
          where.where({ status: 'active' });
          if (input.interactionUid) {
            where.orWhere({ status: 'consumed', consumed_interaction_uid: input.interactionUid });
          }
        })
        .returning('*');
      const row = rows[0] as Row | undefined;
      return row ? toRecord(row) : undefined;
    },
  };
}
