import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { summarize, type LatencySummary } from './stats.ts';

/**
 * Two ways to drive load, both bounded in time and in count:
 * - closed loop: N virtual users, each starting its next operation when the
 *   previous one ends (finds the peak throughput);
 * - open loop: operations start on a fixed schedule whatever the answers do
 *   (steady load; latency is measured from the scheduled start, so a slow
 *   server cannot hide its queueing: no coordinated omission).
 * A warm-up runs first and is not measured. `window` hooks let the caller
 * read CPU and memory exactly around the measured part.
 */
export type Window = { onStart?: () => void; onEnd?: () => void };

export type LoadResult = {
  ops: number;
  seconds: number;
  throughput: number;
  latency: LatencySummary;
  errors: number;
  warmupErrors: number;
  errorSamples: string[];
};

export class ErrorLog {
  count = 0;
  warmup = 0;
  readonly samples: string[] = [];

  add(error: unknown, measuring: boolean): void {
    if (measuring) this.count += 1;
    else this.warmup += 1;
    const message = error instanceof Error ? error.message : String(error);
    if (this.samples.length < 5 && !this.samples.includes(message)) this.samples.push(message.slice(0, 300));
  }
}

export type Op = (vu: number, iteration: number, measuring: boolean) => Promise<void>;

export async function closedLoop(options: {
  vus: number;
  warmupMs: number;
  durationMs: number;
  /** Hard cap on operations started (a safety bound). */
  maxOps: number;
  op: Op;
  window?: Window;
}): Promise<LoadResult> {
  const begin = performance.now();
  const measureFrom = begin + options.warmupMs;
  const stopAt = measureFrom + options.durationMs;
  const latencies: number[] = [];
  const errors = new ErrorLog();
  let started = 0;
  let lastEnd = measureFrom;
  let windowStarted = false;
  const startWindow = () => {
    if (windowStarted) return;
    windowStarted = true;
    options.window?.onStart?.();
  };
  const timer = setTimeout(startWindow, options.warmupMs);

  async function virtualUser(vu: number): Promise<void> {
    for (let iteration = 0; started < options.maxOps; iteration += 1) {
      const t0 = performance.now();
      if (t0 >= stopAt) return;
      started += 1;
      const measuring = t0 >= measureFrom;
      try {
        await options.op(vu, iteration, measuring);
        const t1 = performance.now();
        if (measuring) {
          latencies.push(t1 - t0);
          lastEnd = Math.max(lastEnd, t1);
        }
      } catch (error) {
        errors.add(error, measuring);
        if (measuring) lastEnd = Math.max(lastEnd, performance.now());
        // A failing server answers fast: do not spin on it.
        await sleep(5);
      }
    }
  }

  await Promise.all(Array.from({ length: options.vus }, (_, vu) => virtualUser(vu)));
  clearTimeout(timer);
  startWindow();
  options.window?.onEnd?.();
  const seconds = Math.max(0.001, (lastEnd - measureFrom) / 1000);
  return {
    ops: latencies.length,
    seconds,
    throughput: latencies.length / seconds,
    latency: summarize(latencies),
    errors: errors.count,
    warmupErrors: errors.warmup,
    errorSamples: errors.samples,
  };
}

export async function openLoop(options: {
  /** Operations started per second. */
  rate: number;
  warmupMs: number;
  durationMs: number;
  /** Operations allowed in flight at once; a schedule slot finding none free counts as an error. */
  maxInFlight: number;
  op: Op;
  window?: Window;
}): Promise<LoadResult & { dropped: number }> {
  const begin = performance.now();
  const measureFrom = begin + options.warmupMs;
  const stopAt = measureFrom + options.durationMs;
  const interval = 1000 / options.rate;
  const latencies: number[] = [];
  const errors = new ErrorLog();
  const inFlight = new Set<Promise<void>>();
  let dropped = 0;
  let windowStarted = false;
  let next = 0;

  while (true) {
    const now = performance.now();
    if (now >= stopAt) break;
    if (!windowStarted && now >= measureFrom) {
      windowStarted = true;
      options.window?.onStart?.();
    }
    // Start every operation whose scheduled time has come.
    while (next < Math.floor((now - begin) / interval) + 1) {
      const scheduled = begin + next * interval;
      const iteration = next;
      next += 1;
      if (scheduled >= stopAt) break;
      const measuring = scheduled >= measureFrom;
      if (inFlight.size >= options.maxInFlight) {
        dropped += 1;
        errors.add(new Error('open loop: too many operations in flight (server not keeping up)'), measuring);
        continue;
      }
      const run = options
        .op(iteration % options.maxInFlight, iteration, measuring)
        .then(
          () => {
            if (measuring) latencies.push(performance.now() - scheduled);
          },
          (error: unknown) => errors.add(error, measuring),
        )
        .finally(() => inFlight.delete(run));
      inFlight.add(run);
    }
    await sleep(Math.max(1, begin + next * interval - performance.now()));
  }
  await Promise.all(inFlight);
  if (!windowStarted) options.window?.onStart?.();
  options.window?.onEnd?.();
  const seconds = options.durationMs / 1000;
  return {
    ops: latencies.length,
    seconds,
    throughput: latencies.length / seconds,
    latency: summarize(latencies),
    errors: errors.count,
    warmupErrors: errors.warmup,
    errorSamples: errors.samples,
    dropped,
  };
}

/** Runs `op` over a fixed list of inputs with N workers (each input once); the first `warmup` inputs are not measured. */
export async function drain<T>(options: {
  inputs: T[];
  workers: number;
  warmup: number;
  op: (input: T, worker: number) => Promise<void>;
  window?: Window;
}): Promise<LoadResult> {
  const latencies: number[] = [];
  const errors = new ErrorLog();
  let index = 0;
  let measureFrom = 0;
  let lastEnd = 0;
  const warmupInputs = options.inputs.slice(0, options.warmup);
  const measuredInputs = options.inputs.slice(options.warmup);

  async function worker(id: number, inputs: T[], measuring: boolean): Promise<void> {
    while (index < inputs.length) {
      const input = inputs[index]!;
      index += 1;
      const t0 = performance.now();
      try {
        await options.op(input, id);
        if (measuring) latencies.push(performance.now() - t0);
      } catch (error) {
        errors.add(error, measuring);
      }
      lastEnd = performance.now();
    }
  }

  await Promise.all(Array.from({ length: options.workers }, (_, id) => worker(id, warmupInputs, false)));
  index = 0;
  options.window?.onStart?.();
  measureFrom = performance.now();
  await Promise.all(Array.from({ length: options.workers }, (_, id) => worker(id, measuredInputs, true)));
  options.window?.onEnd?.();
  const seconds = Math.max(0.001, (lastEnd - measureFrom) / 1000);
  return {
    ops: latencies.length,
    seconds,
    throughput: latencies.length / seconds,
    latency: summarize(latencies),
    errors: errors.count,
    warmupErrors: errors.warmup,
    errorSamples: errors.samples,
  };
}
