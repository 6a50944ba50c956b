/** Latency samples in milliseconds, summarised by nearest-rank percentiles. */
export type LatencySummary = { count: number; mean: number; p50: number; p95: number; p99: number; max: number };

export function summarize(samples: number[]): LatencySummary {
  if (samples.length === 0) return { count: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    mean: round(sum / sorted.length),
    p50: round(rank(50)),
    p95: round(rank(95)),
    p99: round(rank(99)),
    max: round(sorted[sorted.length - 1]!),
  };
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The middle value (the mean of the two middle ones for an even count). */
export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Named latency series (one per step of a flow), recorded only while `active`. */
export class StepRecorder {
  active = false;
  readonly steps = new Map<string, number[]>();

  record(step: string, ms: number): void {
    if (!this.active) return;
    let samples = this.steps.get(step);
    if (!samples) this.steps.set(step, (samples = []));
    samples.push(ms);
  }

  summaries(): Record<string, LatencySummary> {
    return Object.fromEntries([...this.steps].map(([step, samples]) => [step, summarize(samples)]));
  }

  /** Every request of every step together: the per-request latency of a flow scenario. */
  allRequests(): LatencySummary {
    return summarize([...this.steps.values()].flat());
  }
}
