import { unseal } from '../lib/crypto.ts';
import { isDatabaseUnavailable } from '../db/index.ts';
import type { Logger } from '../logger.ts';
import { retryDelayMs, signatureHeader } from './core.ts';
import type { DueDelivery, HookRepository } from './repository.ts';

export type HookDeliveryOptions = {
  /** Per attempt, connection to last byte. */
  timeoutMs: number;
  /** Attempts in all, the first included; then the delivery is `failed`. */
  maxAttempts: number;
  /** The wait after the first failure; it doubles after each, up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs?: number;
  /** How often to look for due deliveries (queued ones wake the worker at once). */
  pollIntervalMs: number;
  /** Deliveries sent at the same time. */
  concurrency?: number;
};

export type HookWorker = ReturnType<typeof createHookWorker>;

const MAX_ERROR_LENGTH = 500;

/**
 * A signal that aborts after `ms` (a TimeoutError) or when `also` aborts,
 * and `clear` to call once the request is over. Not
 * `AbortSignal.any([AbortSignal.timeout(ms), also])`: on Node 20 a fetch
 * given that signal is never aborted once a garbage collection ran while it
 * waited (the combined signal is only weakly held, and the timeout's with
 * it), so a receiver that never answered kept its sending slot and its
 * delivery until the claim's lease ran out. Here the timer holds the
 * controller.
 */
function abortAfter(ms: number, also: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
  const onAbort = () => controller.abort(also.reason);
  if (also.aborted) onAbort();
  else also.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      also.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Sends queued deliveries: signs each body with its hook's secret, POSTs it
 * with a timeout, and records the outcome: `succeeded` on a 2xx, otherwise a
 * retry after an exponential backoff until `maxAttempts`, then `failed`.
 * Redirects are not followed (a 3xx is a failure). Every instance runs one;
 * claims are leased rows, so they share the queue.
 */
export function createHookWorker(deps: { repository: HookRepository; sealKey: Buffer; clock: () => Date; logger: Logger } & HookDeliveryOptions) {
  const { repository, sealKey, clock, timeoutMs, maxAttempts, retryBaseMs } = deps;
  const concurrency = deps.concurrency ?? 4;
  const log = deps.logger.child({ component: 'hooks' });
  let shutdown = new AbortController();

  async function send(delivery: DueDelivery): Promise<void> {
    let responseStatus: number | null = null;
    let error: string | null = null;
    const deadline = abortAfter(timeoutMs, shutdown.signal);
    try {
      const body = unseal(sealKey, delivery.bodySealed);
      const secret = unseal(sealKey, delivery.secretSealed);
      const response = await fetch(delivery.url, {
        method: 'POST',
        redirect: 'manual',
        signal: deadline.signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Sesame-Hooks',
          'sesame-event': delivery.event,
          'sesame-delivery': delivery.id,
          'sesame-signature': signatureHeader(secret, body, Math.floor(clock().getTime() / 1000)),
        },
        body,
      });
      responseStatus = response.status;
      await response.body?.cancel().catch(() => undefined);
      if (response.status < 200 || response.status > 299) error = `the receiver answered ${response.status}`;
    } catch (caught) {
      if (shutdown.signal.aborted) {
        // Not the receiver's fault: due again at once, for the next worker.
        await repository.recordAttempt(delivery.id, { status: 'pending', responseStatus: null, error: 'interrupted by shutdown', nextAttemptAt: clock(), now: clock() });
        return;
      }
      const reason = caught as { name?: string; message?: string; cause?: { code?: string; message?: string } };
      error =
        reason.name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : [reason.message, reason.cause?.code ?? reason.cause?.message].filter(Boolean).join(': ') || 'the request failed';
    } finally {
      deadline.clear();
    }
    const now = clock();
    if (error === null) {
      await repository.recordAttempt(delivery.id, { status: 'succeeded', responseStatus, error: null, nextAttemptAt: null, now });
      return;
    }
    const final = delivery.attempts >= maxAttempts;
    const nextAttemptAt = final ? null : new Date(now.getTime() + retryDelayMs(delivery.attempts, retryBaseMs, deps.retryMaxMs));
    await repository.recordAttempt(delivery.id, { status: final ? 'failed' : 'pending', responseStatus, error: error.slice(0, MAX_ERROR_LENGTH), nextAttemptAt, now });
    log[final ? 'warn' : 'debug']({ delivery: delivery.id, hook: delivery.hookId, attempts: delivery.attempts, responseStatus, error }, final ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry');
  }

  const sending = new Set<Promise<void>>();
  const sendLogged = (delivery: DueDelivery) =>
    send(delivery).catch((error: unknown) => log.error({ err: error, delivery: delivery.id }, 'recording a webhook delivery failed'));

  /** Claims the due deliveries (one batch) and sends them; answers how many. */
  async function runOnce(): Promise<number> {
    const due = await repository.claimDue(clock(), timeoutMs + 30_000, concurrency);
    await Promise.all(due.map(sendLogged));
    return due.length;
  }

  let active = false;
  let timer: NodeJS.Timeout | undefined;
  let claiming: Promise<void> | undefined;
  let again = false;

  /**
   * Fills the free sending slots with due deliveries. Each send frees its slot
   * when it ends, so one slow receiver holds one slot, not the queue.
   */
  function pump(): void {
    if (!active) return;
    if (claiming) {
      again = true;
      return;
    }
    const free = concurrency - sending.size;
    if (free <= 0) return;
    again = false;
    claiming = repository
      .claimDue(clock(), timeoutMs + 30_000, free)
      .then(
        (due) => {
          for (const delivery of due) {
            const sent = sendLogged(delivery).finally(() => {
              sending.delete(sent);
              pump();
            });
            sending.add(sent);
          }
          if (due.length === free) again = true;
        },
        (error: unknown) => {
          if (isDatabaseUnavailable(error)) log.warn({ reason: String((error as Error).message) }, 'webhooks: the database is unreachable; trying again');
          else log.error({ err: error }, 'webhooks: claiming deliveries failed; trying again');
        },
      )
      .finally(() => {
        claiming = undefined;
        if (again) setImmediate(pump);
      });
  }

  function poll(): void {
    pump();
    timer = setTimeout(poll, deps.pollIntervalMs);
    timer.unref();
  }

  return {
    runOnce,

    start(): void {
      if (active) return;
      active = true;
      if (shutdown.signal.aborted) shutdown = new AbortController();
      poll();
    },

    /** Deliveries were queued: send them now rather than at the next poll. */
    wake(): void {
      pump();
    },

    /** Stops polling, interrupts sends in flight (they are due again at once) and waits for them to be recorded. */
    async stop(): Promise<void> {
      active = false;
      clearTimeout(timer);
      timer = undefined;
      shutdown.abort();
      await claiming;
      await Promise.all([...sending]);
    },
  };
}
