import type { Knex } from 'knex';
import type { Database } from '../db/index.ts';

export type Hook = { id: string; name: string; url: string; events: string[]; enabled: boolean; createdAt: Date; updatedAt: Date };
export type HookWithSecret = Hook & { secretSealed: string };

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';
export type Delivery = {
  id: string;
  hookId: string;
  event: string;
  status: DeliveryStatus;
  attempts: number;
  responseStatus: number | null;
  error: string | null;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  createdAt: Date;
  completedAt: Date | null;
};
/** A delivery claimed by the worker, with what it needs to send it. */
export type DueDelivery = Delivery & { bodySealed: string; url: string; secretSealed: string };

type HookRow = { id: string; name: string; url: string; events: string[]; enabled: boolean; secret_sealed: string; created_at: Date; updated_at: Date };
type DeliveryRow = {
  id: string;
  hook_id: string;
  event: string;
  status: DeliveryStatus;
  body_sealed: string | null;
  attempts: number;
  next_attempt_at: Date | null;
  locked_until: Date | null;
  last_attempt_at: Date | null;
  response_status: number | null;
  error: string | null;
  created_at: Date;
  completed_at: Date | null;
};

const date = (value: Date | null) => (value ? new Date(value) : null);

const toHook = (row: HookRow): HookWithSecret => ({
  id: row.id,
  name: row.name,
  url: row.url,
  events: row.events,
  enabled: row.enabled,
  secretSealed: row.secret_sealed,
  createdAt: new Date(row.created_at),
  updatedAt: new Date(row.updated_at),
});

const toDelivery = (row: DeliveryRow): Delivery => ({
  id: row.id,
  hookId: row.hook_id,
  event: row.event,
  status: row.status,
  attempts: row.attempts,
  responseStatus: row.response_status,
  error: row.error,
  nextAttemptAt: date(row.next_attempt_at),
  lastAttemptAt: date(row.last_attempt_at),
  createdAt: new Date(row.created_at),
  completedAt: date(row.completed_at),
});

export type HookRepository = ReturnType<typeof createHookRepository>;

export function createHookRepository(db: Database) {
  const hooks = () => db<HookRow>('hooks');
  const deliveries = () => db<DeliveryRow>('hook_deliveries');
  const page = <T extends object>(query: Knex.QueryBuilder<T>, p: { page: number; pageSize: number }) =>
    query.limit(p.pageSize).offset((p.page - 1) * p.pageSize);

  return {
    async insert(hook: HookWithSecret): Promise<HookWithSecret> {
      const [row] = await hooks()
        .insert({
          id: hook.id,
          name: hook.name,
          url: hook.url,
          events: JSON.stringify(hook.events) as never,
          enabled: hook.enabled,
          secret_sealed: hook.secretSealed,
          created_at: hook.createdAt,
          updated_at: hook.updatedAt,
        })
        .returning('*');
      return toHook(row as HookRow);
    },

    async findById(id: string) {
      const row = await hooks().where({ id }).first();
      return row ? toHook(row) : undefined;
    },

    async list(p: { page: number; pageSize: number }) {
      const [{ count }] = (await hooks().count({ count: '*' })) as [{ count: number | string }];
      const rows = await page(hooks().orderBy('created_at', 'desc').orderBy('id'), p);
      return { items: (rows as HookRow[]).map(toHook), total: Number(count) };
    },

    /** The enabled hooks subscribed to `event`. */
    async subscribedTo(event: string) {
      const rows = await hooks().where({ enabled: true }).whereRaw('events @> ?::jsonb', [JSON.stringify([event])]);
      return (rows as HookRow[]).map(toHook);
    },

    async update(id: string, changes: { name?: string; url?: string; events?: string[]; enabled?: boolean; secretSealed?: string }, now: Date) {
      const [row] = await hooks()
        .where({ id })
        .update({
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.url === undefined ? {} : { url: changes.url }),
          ...(changes.events === undefined ? {} : { events: JSON.stringify(changes.events) as never }),
          ...(changes.enabled === undefined ? {} : { enabled: changes.enabled }),
          ...(changes.secretSealed === undefined ? {} : { secret_sealed: changes.secretSealed }),
          updated_at: now,
        })
        .returning('*');
      return row ? toHook(row as HookRow) : undefined;
    },

    async delete(id: string) {
      return (await hooks().where({ id }).delete()) > 0;
    },

    async enqueue(rows: Array<{ id: string; hookId: string; event: string; bodySealed: string; now: Date }>) {
      if (rows.length === 0) return;
      await deliveries().insert(
        rows.map((row) => ({
          id: row.id,
          hook_id: row.hookId,
          event: row.event,
          status: 'pending' as const,
          body_sealed: row.bodySealed,
          attempts: 0,
          next_attempt_at: row.now,
          created_at: row.now,
        })),
      );
    },

    async listDeliveries(hookId: string, p: { page: number; pageSize: number }) {
      const [{ count }] = (await deliveries().where({ hook_id: hookId }).count({ count: '*' })) as [{ count: number | string }];
      const rows = await page(deliveries().where({ hook_id: hookId }).orderBy('created_at', 'desc').orderBy('id'), p);
      return { items: (rows as DeliveryRow[]).map(toDelivery), total: Number(count) };
    },

    /**
     * Claims up to `limit` due deliveries for `leaseMs` and counts the attempt.
     * SKIP LOCKED and the lease let several instances' workers share the queue:
     * a delivery is sent by one at a time, and one whose worker died is taken
     * up again when its lease ends.
     */
    async claimDue(now: Date, leaseMs: number, limit: number): Promise<DueDelivery[]> {
      const { rows } = (await db.raw(
        `UPDATE hook_deliveries AS d
            SET attempts = d.attempts + 1, locked_until = ?, last_attempt_at = ?
           FROM hooks AS h
          WHERE d.id IN (
                  SELECT id FROM hook_deliveries
                   WHERE status = 'pending' AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until < ?)
                   ORDER BY next_attempt_at
                   LIMIT ?
                   FOR UPDATE SKIP LOCKED)
            AND h.id = d.hook_id
        RETURNING d.*, h.url AS hook_url, h.secret_sealed AS hook_secret_sealed`,
        [new Date(now.getTime() + leaseMs), now, now, now, limit],
      )) as { rows: Array<DeliveryRow & { hook_url: string; hook_secret_sealed: string }> };
      return rows.map((row) => ({ ...toDelivery(row), bodySealed: row.body_sealed ?? '', url: row.hook_url, secretSealed: row.hook_secret_sealed }));
    },

    /** Records an attempt: done (succeeded or failed for good, body cleared) or pending again at `nextAttemptAt`. */
    async recordAttempt(
      id: string,
      outcome: { status: DeliveryStatus; responseStatus: number | null; error: string | null; nextAttemptAt: Date | null; now: Date },
    ) {
      const done = outcome.status !== 'pending';
      await deliveries()
        .where({ id })
        .update({
          status: outcome.status,
          response_status: outcome.responseStatus,
          error: outcome.error,
          next_attempt_at: outcome.nextAttemptAt,
          locked_until: null,
          ...(done ? { completed_at: outcome.now, body_sealed: null } : {}),
        });
    },
  };
}
