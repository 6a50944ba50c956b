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
    try {
      const body = unseal(sealKey, delivery.bodySealed);
      const secret = unseal(sealKey, delivery.secretSealed);
      const response = await fetch(delivery.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), shutdown.signal]),
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

  /** Claims the due deliveries (one batch) and sends them; answers how many. */
  async function runOnce(): Promise<number> {
    const due = await repository.claimDue(clock(), timeoutMs + 30_000, concurrency);
    await Promise.all(due.map((delivery) => send(delivery).catch((error: unknown) => log.error({ err: error, delivery: delivery.id }, 'recording a webhook delivery failed'))));
    return due.length;
  }

  let active = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let wakeRequested = false;

  function schedule(delayMs: number) {
    clearTimeout(timer);
    timer = setTimeout(loop, delayMs);
    timer.unref();
  }

  function loop() {
    timer = undefined;
    if (!active || running) return;
    wakeRequested = false;
    let full = false;
    running = runOnce()
      .then(
        (count) => {
          full = count === concurrency;
        },
        (error: unknown) => {
          if (isDatabaseUnavailable(error)) log.warn({ reason: String((error as Error).message) }, 'webhooks: the database is unreachable; trying again');
          else log.error({ err: error }, 'webhooks: claiming deliveries failed; trying again');
        },
      )
      .finally(() => {
        running = undefined;
        if (active) schedule(full || wakeRequested ? 0 : deps.pollIntervalMs);
      });
  }

  return {
    runOnce,

    start(): void {
      if (active) return;
      active = true;
      if (shutdown.signal.aborted) shutdown = new AbortController();
      schedule(0);
    },

    /** Deliveries were queued: send them now rather than at the next poll. */
    wake(): void {
      if (!active) return;
      if (running) wakeRequested = true;
      else schedule(0);
    },

    /** Stops polling, interrupts sends in flight (they are due again at once) and waits for the run to end. */
    async stop(): Promise<void> {
      active = false;
      clearTimeout(timer);
      timer = undefined;
      shutdown.abort();
      await running;
    },
  };
}
