import type { Context, Middleware } from 'koa';
import { requestSlot } from '../lib/request-store.ts';
import type { Logger } from '../logger.ts';
import { requestContextOf } from './context.ts';
import { defaultResult, type EventName, type EventPayloads, type EventResult, type RequestContext, type SesameEvent } from './types.ts';

export { deviceFingerprint, requestContextOf } from './context.ts';
export * from './types.ts';

/**
 * A subscriber accepts an event quickly (an INSERT at most) and does slow
 * work elsewhere: webhooks queue a delivery row that a worker sends later.
 */
export type Subscriber = (event: SesameEvent) => void | Promise<void>;

export type PublishOptions = {
  /** The request's context; by default the one of the request in progress (see `middleware()`). */
  context?: RequestContext;
  /** Overrides the result derived from the name (`*.Failed`, `*.Locked`, … are failures). */
  result?: EventResult;
};

export type EventBus = ReturnType<typeof createEventBus>;

/**
 * What the event bus keeps for the request in progress: its context, worked
 * out at the first event (most requests publish none, and the device
 * fingerprint is a SHA-256), and what its answer still waits for
 * (`publishLater`).
 */
type RequestEvents = { ctx: Context; context: RequestContext | undefined; held: Array<Promise<void>> };

const contextOf = (request: RequestEvents | undefined): RequestContext | undefined =>
  request && (request.context ??= requestContextOf(request.ctx));

/**
 * The in-process event bus. `publish` never throws into its caller: a
 * subscriber's error is logged and swallowed. Its promise resolves once every
 * subscriber has accepted the event (audit row written, deliveries queued),
 * or after `acceptWaitMs` (2 s) if they are slow, whichever comes first;
 * await it so a following read sees the row, or drop it (`void`) when even
 * that should not wait. Never await it inside a database transaction: on the
 * embedded database (one connection) the subscriber's INSERT would wait for
 * the transaction forever.
 */
export function createEventBus(deps: { logger: Logger; clock?: () => Date; acceptWaitMs?: number }) {
  const clock = deps.clock ?? (() => new Date());
  const acceptWaitMs = deps.acceptWaitMs ?? 2_000;
  const log = deps.logger.child({ component: 'events' });
  const subscribers = new Set<Subscriber>();
  const storage = requestSlot<RequestEvents>('event context');
  // Events some subscriber has not accepted yet, and what `flush()` waits on until there are none.
  let inFlight = 0;
  const idle: Array<() => void> = [];

  const failed = (error: unknown, event: SesameEvent) =>
    log.error({ err: error, event: event.name }, 'an event subscriber failed; the event is lost for it');

  /**
   * Publishes `name`; resolves when every subscriber has accepted it, never rejects.
   * Counted rather than built from `Promise.all` and `Promise.race`: an event
   * makes one promise here, and one per subscriber that answers with a promise.
   */
  function publish<N extends EventName>(name: N, data: EventPayloads[N], options: PublishOptions = {}): Promise<void> {
    let event: SesameEvent;
    try {
      event = {
        name,
        data,
        createdAt: clock(),
        // Not `{ ...a, ...b }`: on Node 20 a property added after a leading spread costs ~0.5 µs (docs/performance.md).
        context: Object.assign({}, contextOf(storage.get()), options.context),
        result: options.result ?? defaultResult(name, data),
      } as SesameEvent;
    } catch (error) {
      log.error({ err: error, event: name }, 'an event could not be built');
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      let waiting = subscribers.size;
      let timer: NodeJS.Timeout | undefined;
      const accepted = () => {
        waiting -= 1;
        if (waiting > 0) return;
        clearTimeout(timer);
        resolve();
        inFlight -= 1;
        if (inFlight === 0) for (const wake of idle.splice(0)) wake();
      };
      const refused = (error: unknown) => {
        failed(error, event);
        accepted();
      };
      inFlight += 1;
      waiting += 1; // held until every subscriber has been called, so none settles the event early
      for (const subscriber of [...subscribers]) {
        try {
          const answer = subscriber(event);
          if (answer && typeof answer.then === 'function') answer.then(accepted, refused);
          else accepted();
        } catch (error) {
          refused(error);
        }
      }
      if (waiting > 1) {
        // A subscriber stuck on a slow database holds the caller `acceptWaitMs` at most; it goes on in the background.
        timer = setTimeout(() => {
          log.warn({ event: name, waitedMs: acceptWaitMs }, 'event subscribers are slow; the caller goes on without them');
          resolve();
        }, acceptWaitMs);
        timer.unref();
      }
      accepted();
    });
  }

  return {
    publish,

    /**
     * Publishes `name` now, but inside a request resolves at once: the
     * request's answer waits for it instead (see `middleware()`), so events
     * published in the same turn of the event loop share the audit log's
     * INSERT (the mint's `OneTimeToken.Created` and the Management API's
     * `ManagementApi.Write` go as one). Outside a request it is `publish`.
     * For events nothing later in the request reads back.
     */
    publishLater<N extends EventName>(name: N, data: EventPayloads[N], options: PublishOptions = {}): Promise<void> {
      const published = publish(name, data, options);
      const request = storage.get();
      if (!request) return published;
      request.held.push(published);
      return Promise.resolve();
    },

    /** Adds a subscriber for every event; returns its removal. */
    subscribe(subscriber: Subscriber): () => void {
      subscribers.add(subscriber);
      return () => subscribers.delete(subscriber);
    },

    /**
     * Koa middleware: events published while the request is handled (from any
     * service it calls) carry its IP, user agent, device fingerprint and id;
     * the request answers once those published with `publishLater` are
     * accepted too.
     */
    middleware(): Middleware {
      return (ctx, next) => {
        // Koa keeps the address once read: read it while the connection is surely open, for an event
        // published after the answer has gone (work the request left running).
        void ctx.ip;
        const request: RequestEvents = { ctx, context: undefined, held: [] };
        return storage.enter(ctx, request, async () => {
          try {
            await next();
          } finally {
            // publish never rejects.
            while (request.held.length > 0) await Promise.all(request.held.splice(0));
          }
        });
      };
    },

    /** Adds to the current request's context (the Management API client once its token is checked). */
    annotate(extra: Partial<RequestContext>): void {
      const request = storage.get();
      if (request) Object.assign(contextOf(request)!, extra);
    },

    /** Resolves when every event published so far has been accepted by its subscribers. */
    flush(): Promise<void> {
      return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idle.push(resolve));
    },
  };
}
