import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Database } from '../db/index.ts';

type Row = { payload: AdapterPayload; expires_at: Date | null; consumed_at: Date | null };

const TABLE = 'oidc_model_instances';

/**
 * Persists every oidc-provider model in one JSONB table. Clients are the
 * exception: they come from the applications table. `consume` is a
 * conditional UPDATE, so of two parallel redemptions of one code or refresh
 * token exactly one wins; the loser gets `invalid_grant`.
 */
export function createAdapterFactory(
  db: Database,
  deps: { findClient: (id: string) => Promise<Record<string, unknown> | undefined> },
) {
  const toPayload = (row: Row | undefined): AdapterPayload | undefined => {
    if (!row) return undefined;
    if (row.expires_at && new Date(row.expires_at).getTime() <= Date.now()) return undefined;
    return row.consumed_at
      ? { ...row.payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) }
      : row.payload;
  };

  return class DatabaseAdapter implements Adapter {
    constructor(readonly name: string) {}

    private rows() {
      return db(TABLE).where('model_name', this.name);
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      await db(TABLE)
        .insert({
          model_name: this.name,
          id,
          payload,
          expires_at: expiresAt,
          grant_id: payload.grantId ?? null,
          uid: payload.uid ?? null,
          user_code: payload.userCode ?? null,
        })
        .onConflict(['model_name', 'id'])
        .merge(['payload', 'expires_at', 'grant_id', 'uid', 'user_code']);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === 'Client') return (await deps.findClient(id)) as AdapterPayload | undefined;
      return toPayload(await this.rows().andWhere('id', id).first<Row>('payload', 'expires_at', 'consumed_at'));
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return toPayload(await this.rows().andWhere('uid', uid).first<Row>('payload', 'expires_at', 'consumed_at'));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return toPayload(await this.rows().andWhere('user_code', userCode).first<Row>('payload', 'expires_at', 'consumed_at'));
    }

    async consume(id: string): Promise<void> {
      const changed = await this.rows().andWhere('id', id).whereNull('consumed_at').update({ consumed_at: db.fn.now() });
      if (changed === 0) throw new errors.InvalidGrant(`${this.name} already consumed`);
    }

    async destroy(id: string): Promise<void> {
      await this.rows().andWhere('id', id).delete();
    }

    /**
     * oidc-provider calls this once per token model when a grant is revoked. Only
     * this model's rows go: an Interaction also records a grant id, and deleting
     * it would strand the sign-in that is replacing the old session.
     */
    async revokeByGrantId(grantId: string): Promise<void> {
      await this.rows().andWhere('grant_id', grantId).delete();
    }
  };
}
