import type { Knex } from 'knex';
import type { Database } from '../db/index.ts';

/** Why a self-serve sign-in mail was sent. */
export type CodePurpose = 'magic_link' | 'email_code' | 'register';
export type CodeStatus = 'active' | 'consumed' | 'superseded' | 'locked';

export type CodeContext = {
  /** The language the mail was written in (pages that follow use it too). */
  locale?: string;
  /** Registration: the chosen password's argon2id hash, applied once the code proves the mailbox. */
  passwordHash?: string;
  /** Whether an account may be created for this email when the code is used. */
  allowSignUp?: boolean;
};

export type SignInCode = {
  id: string;
  interactionUid: string;
  clientId: string | null;
  email: string;
  purpose: CodePurpose;
  reference: string;
  status: CodeStatus;
  attempts: number;
  context: CodeContext;
  expiresAt: Date;
  createdAt: Date;
  consumedAt: Date | null;
};

type Row = {
  id: string;
  interaction_uid: string;
  client_id: string | null;
  email: string;
  purpose: CodePurpose;
  token_hash: string | null;
  code_hash: string;
  reference: string;
  status: CodeStatus;
  attempts: number;
  context: CodeContext;
  expires_at: Date;
  created_at: Date;
  consumed_at: Date | null;
};

const toCode = (row: Row): SignInCode & { codeHash: string } => ({
  id: row.id,
  interactionUid: row.interaction_uid,
  clientId: row.client_id,
  email: row.email,
  purpose: row.purpose,
  reference: row.reference,
  status: row.status,
  attempts: Number(row.attempts),
  context: row.context ?? {},
  expiresAt: new Date(row.expires_at),
  createdAt: new Date(row.created_at),
  consumedAt: row.consumed_at ? new Date(row.consumed_at) : null,
  codeHash: row.code_hash,
});

export type NewSignInCode = Omit<SignInCode, 'status' | 'attempts' | 'consumedAt'> & { tokenHash: string | null; codeHash: string };

export type SignInCodeRepository = ReturnType<typeof createSignInCodeRepository>;

export function createSignInCodeRepository(db: Database) {
  const table = (trx: Knex = db) => trx<Row>('sign_in_codes');
  return {
    async insert(code: NewSignInCode): Promise<SignInCode & { codeHash: string }> {
      const [row] = await table()
        .insert({
          id: code.id,
          interaction_uid: code.interactionUid,
          client_id: code.clientId,
          email: code.email,
          purpose: code.purpose,
          token_hash: code.tokenHash,
          code_hash: code.codeHash,
          reference: code.reference,
          context: code.context,
          expires_at: code.expiresAt,
          created_at: code.createdAt,
        })
        .returning('*');
      return toCode(row as Row);
    },

    /**
     * Once a record's mail went out, the email's earlier active records stop
     * working. "Earlier" is a total order (time, then id), so of two parallel
     * requests exactly the later one survives.
     */
    async supersedeOlder(code: Pick<SignInCode, 'id' | 'email' | 'createdAt'>) {
      await table()
        .where({ email: code.email, status: 'active' })
        .andWhere((where) =>
          where.where('created_at', '<', code.createdAt).orWhere((tie) => tie.where('created_at', '=', code.createdAt).andWhere('id', '<', code.id)),
        )
        .update({ status: 'superseded' });
    },

    async delete(id: string) {
      await table().where({ id }).delete();
    },

    async findByTokenHash(hash: string) {
      const row = await table().where({ token_hash: hash }).first();
      return row ? toCode(row) : undefined;
    },

    async findById(id: string) {
      const row = await table().where({ id }).first();
      return row ? toCode(row) : undefined;
    },

    /** The most recent mail an interaction asked for. */
    async latestForInteraction(interactionUid: string) {
      const row = await table().where({ interaction_uid: interactionUid }).orderBy('created_at', 'desc').orderBy('id').first();
      return row ? toCode(row) : undefined;
    },

    /**
     * Single use by one conditional UPDATE. The interaction that consumed a
     * record may consume it again (a double click); nothing else can.
     */
    async consume(id: string, interactionUid: string, now: Date) {
      const [row] = await table()
        .update({ status: 'consumed', consumed_at: db.raw('coalesce(consumed_at, ?)', [now]) })
        .where({ id, interaction_uid: interactionUid })
        .andWhere('expires_at', '>', now)
        .andWhere((where) => where.where({ status: 'active' }).orWhere({ status: 'consumed' }))
        .andWhere('attempts', '<', db.raw('?', [MAX_CODE_ATTEMPTS]))
        .returning('*');
      return row ? toCode(row as Row) : undefined;
    },

    /** Counts a wrong code; the fifth locks the record. Answers the attempts made. */
    async recordFailure(id: string) {
      const [row] = await table()
        .update({
          attempts: db.raw('attempts + 1'),
          status: db.raw(`CASE WHEN attempts + 1 >= ? THEN 'locked' ELSE status END`, [MAX_CODE_ATTEMPTS]),
        })
        .where({ id, status: 'active' })
        .returning('*');
      return row ? toCode(row as Row) : undefined;
    },
  };
}

/** Wrong codes a record accepts before it locks. */
export const MAX_CODE_ATTEMPTS = 5;
