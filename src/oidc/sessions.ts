import type { Database } from '../db/index.ts';
import type { ModelCache } from './model-cache.ts';

const TABLE = 'oidc_model_instances';

export type SessionSummary = {
  /** The session's public uid (never the session id, which is the cookie value). */
  uid: string;
  loginAt: Date | null;
  expiresAt: Date | null;
  amr: string[];
  clientIds: string[];
};

/**
 * A user's provider sessions, read and ended through the JSONB model table.
 * Ending them also revokes every grant of the account, and with the grants
 * every token issued under them (codes, access and refresh tokens).
 */
export function createSessionStore(db: Database, deps: { models?: Pick<ModelCache, 'dropping'> } = {}) {
  // This instance forgets the grants and tokens at once; the others when the triggers' notices arrive.
  const droppingModels = <T>(write: () => Promise<T>) => (deps.models ? deps.models.dropping('Grant', undefined, write) : write());
  return {
    async listForAccount(accountId: string, now: Date): Promise<SessionSummary[]> {
      const rows = await db(TABLE)
        .where({ model_name: 'Session' })
        .where('account_id', accountId)
        .andWhere((where) => where.whereNull('expires_at').orWhere('expires_at', '>', now))
        .orderBy('expires_at', 'desc')
        .select('payload', 'expires_at');
      return rows.map((row: { payload: Record<string, unknown>; expires_at: Date | null }) => ({
        uid: String(row.payload.uid),
        loginAt: typeof row.payload.loginTs === 'number' ? new Date(row.payload.loginTs * 1000) : null,
        expiresAt: row.expires_at ? new Date(row.expires_at) : null,
        amr: Array.isArray(row.payload.amr) ? (row.payload.amr as string[]) : [],
        clientIds: Object.keys((row.payload.authorizations as Record<string, unknown> | undefined) ?? {}),
      }));
    },

    /** Ends every session and revokes every grant of the account; answers how many sessions ended. */
    async endForAccount(accountId: string): Promise<number> {
      return droppingModels(() => db.transaction(async (trx) => {
        const grantIds = (
          await trx(TABLE).where({ model_name: 'Grant' }).where('account_id', accountId).select('id')
        ).map((row: { id: string }) => row.id);
        if (grantIds.length > 0) {
          await trx(TABLE).whereIn('grant_id', grantIds).delete();
          await trx(TABLE).where({ model_name: 'Grant' }).whereIn('id', grantIds).delete();
        }
        // Tokens a grant lookup could miss (e.g. issued without a grant id) still carry the account.
        await trx(TABLE)
          .whereIn('model_name', ['AccessToken', 'RefreshToken', 'AuthorizationCode'])
          .where('account_id', accountId)
          .delete();
        return Number(await trx(TABLE).where({ model_name: 'Session' }).where('account_id', accountId).delete());
      }));
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
