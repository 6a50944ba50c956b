import { AppError } from '../errors.ts';
import type { EventBus, SesameEvent } from '../events/index.ts';
import { randomToken, seal } from '../lib/crypto.ts';
import { generateId } from '../lib/ids.ts';
import { invalidatedCache, type InvalidationChannel } from '../db/invalidation.ts';
import type { Logger } from '../logger.ts';
import { deliveryBody, isHookEvent } from './core.ts';
import type { Hook, HookRepository, HookWithSecret } from './repository.ts';

export type HookService = ReturnType<typeof createHookService>;

/** A hook as the API shows it: never its secret, sealed or not. */
const present = ({ secretSealed: _, ...hook }: HookWithSecret): Hook => hook;

/** `whsec_` and 32 random bytes, url-safe. */
const newSecret = () => `whsec_${randomToken(32)}`;

/**
 * Webhooks: CRUD, and the bus subscriber that queues a delivery row per
 * subscribed hook. Sending is the worker's job (worker.ts), so a slow or
 * failing receiver never slows the request that caused the event.
 */
export function createHookService(deps: {
  repository: HookRepository;
  events: EventBus;
  sealKey: Buffer;
  clock: () => Date;
  logger: Logger;
  /** Called after deliveries are queued: the worker sends them now instead of at its next poll. */
  onQueued?: () => void;
  /** How long the hooks subscribed to an event are kept in memory (default 5 s). */
  cacheTtlMs?: number;
  /** Announces hook changes made anywhere (`hooks:*`); while it is down, nothing is kept. */
  invalidation: InvalidationChannel;
}) {
  const { repository, sealKey, clock } = deps;
  /**
   * Every event asks which enabled hooks want it, nearly always none: the
   * answer is kept per event name. Changes through this instance clear it at
   * once; any other writer's (another instance, the CLI) as soon as the
   * database trigger's notice arrives. The TTL is a backstop.
   */
  const subscribed = invalidatedCache<Hook[]>(deps.invalidation, 'hooks', { ttlMs: deps.cacheTtlMs ?? 5_000, maxEntries: 100 });
  const changed = <T>(result: T): T => {
    subscribed.clear();
    return result;
  };

  async function mustExist(id: string): Promise<HookWithSecret> {
    const hook = await repository.findById(id);
    if (!hook) throw new AppError('NOT_FOUND', 'No hook has this id.');
    return hook;
  }

  async function queue(event: SesameEvent): Promise<void> {
    if (!isHookEvent(event.name)) return;
    const hooks = (await subscribed.get(event.name, () => repository.subscribedTo(event.name))) ?? [];
    if (hooks.length === 0) return;
    const body = deliveryBody(event.name, event.createdAt, event.data);
    const now = clock();
    await repository.enqueue(
      hooks.map((hook) => ({ id: generateId(), hookId: hook.id, event: event.name, bodySealed: seal(sealKey, body), now })),
    );
    deps.onQueued?.();
  }
  deps.events.subscribe(queue);

  return {
    /** The secret is in this answer only. */
    async create(input: { name: string; url: string; events: string[]; enabled?: boolean }) {
      const secret = newSecret();
      const now = clock();
      const hook = changed(await repository.insert({
        id: generateId(),
        name: input.name,
        url: input.url,
        events: [...new Set(input.events)],
        enabled: input.enabled ?? true,
        secretSealed: seal(sealKey, secret),
        createdAt: now,
        updatedAt: now,
      }));
      return { ...present(hook), secret };
    },

    list: async (page: { page: number; pageSize: number }) => {
      const { items, total } = await repository.list(page);
      return { items: items.map(present), total };
    },

    get: async (id: string) => present(await mustExist(id)),

    async update(id: string, changes: { name?: string; url?: string; events?: string[]; enabled?: boolean }) {
      const updated = changed(await repository.update(id, { ...changes, ...(changes.events && { events: [...new Set(changes.events)] }) }, clock()));
      if (!updated) throw new AppError('NOT_FOUND', 'No hook has this id.');
      return present(updated);
    },

    /** A new secret, in this answer only; the old one stops signing at once. */
    async rotateSecret(id: string) {
      const secret = newSecret();
      const updated = changed(await repository.update(id, { secretSealed: seal(sealKey, secret) }, clock()));
      if (!updated) throw new AppError('NOT_FOUND', 'No hook has this id.');
      return { ...present(updated), secret };
    },

    async delete(id: string) {
      if (!changed(await repository.delete(id))) throw new AppError('NOT_FOUND', 'No hook has this id.');
    },

    async deliveries(id: string, page: { page: number; pageSize: number }) {
      await mustExist(id);
      return repository.listDeliveries(id, page);
    },
  };
}
