import type { Logger } from '../logger.ts';

/** How often a start that has not finished says which step it is on. */
export const START_WATCH_MS = 15_000;

/**
 * Says, every `everyMs` until `stop`, which step of the start has been
 * running that long: a start that waits (a database that answers nothing, an
 * embedded database slow to open) names the step instead of staying silent.
 * The timer does not keep the process alive.
 */
export function watchStart(logger: Pick<Logger, 'warn'>, everyMs = START_WATCH_MS) {
  let current = 'opening the database';
  let since = Date.now();
  const started = since;
  const timer = setInterval(() => {
    const now = Date.now();
    logger.warn(
      { step: current, stepSeconds: Math.round((now - since) / 1000), startSeconds: Math.round((now - started) / 1000) },
      `still starting: ${current}`,
    );
  }, everyMs);
  timer.unref();
  return {
    /** The step the start is on from now. */
    step(name: string): void {
      current = name;
      since = Date.now();
    },
    stop(): void {
      clearInterval(timer);
    },
  };
}
