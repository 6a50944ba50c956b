import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchStart } from '../../src/lib/start-watch.ts';

describe('watchStart', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('names the step a start has been on, every interval, until stopped', () => {
    const warnings: Array<[Record<string, unknown>, string]> = [];
    const watch = watchStart({ warn: ((fields: Record<string, unknown>, message: string) => void warnings.push([fields, message])) as never }, 1000);
    vi.advanceTimersByTime(999);
    expect(warnings).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(warnings).toEqual([[{ step: 'opening the database', stepSeconds: 1, startSeconds: 1 }, 'still starting: opening the database']]);

    // The step changes 0.2 s after that warning; the next names it, with its own time.
    vi.advanceTimersByTime(200);
    watch.step('loading the keys');
    vi.advanceTimersByTime(800);
    expect(warnings[1]).toEqual([{ step: 'loading the keys', stepSeconds: 1, startSeconds: 2 }, 'still starting: loading the keys']);
    vi.advanceTimersByTime(2000);
    expect(warnings[3]).toEqual([{ step: 'loading the keys', stepSeconds: 3, startSeconds: 4 }, 'still starting: loading the keys']);

    watch.stop();
    vi.advanceTimersByTime(10_000);
    expect(warnings).toHaveLength(4);
  });
});
