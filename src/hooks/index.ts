import type { Database } from '../db/index.ts';
import type { InvalidationChannel } from '../db/invalidation.ts';
import type { EventBus } from '../events/index.ts';
import type { Logger } from '../logger.ts';
import { createHookRepository } from './repository.ts';
import { createHookService } from './service.ts';
import { createHookWorker, type HookDeliveryOptions } from './worker.ts';

export { deliveryBody, hookEvents, isHookEvent, retryDelayMs, signatureHeader, verifySignature, type HookEvent } from './core.ts';
export { createHookRepository, type Delivery, type DeliveryStatus, type Hook, type HookRepository } from './repository.ts';
export { createHookService, type HookService } from './service.ts';
export { createHookWorker, type HookDeliveryOptions, type HookWorker } from './worker.ts';

/** Webhooks over one database: the service (CRUD, queueing from the bus) and the worker that sends (started by the server only). */
export function createHooks(deps: { db: Database; events: EventBus; sealKey: Buffer; clock: () => Date; logger: Logger; delivery: HookDeliveryOptions; invalidation: InvalidationChannel }) {
  const repository = createHookRepository(deps.db);
  const worker = createHookWorker({ repository, sealKey: deps.sealKey, clock: deps.clock, logger: deps.logger, ...deps.delivery });
  const service = createHookService({ repository, events: deps.events, sealKey: deps.sealKey, clock: deps.clock, logger: deps.logger, onQueued: () => worker.wake(), invalidation: deps.invalidation });
  return { service, worker };
}
