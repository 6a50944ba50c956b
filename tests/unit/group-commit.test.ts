import { describe, expect, it } from 'vitest';
import { createGroupCommit, runsOfUniqueKeys } from '../../src/lib/group-commit.ts';

describe('group commit', () => {
  it('writes one item alone, and items arriving while a write is in flight together in the next one, each with its own result', async () => {
    const batches: number[][] = [];
    let release = () => {};
    const write = createGroupCommit(async (items: number[]) => {
      batches.push(items);
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return items.map((item) => item * 10);
    }, { maxBatch: 3 });
    const first = write(1);
    await new Promise((resolve) => setImmediate(resolve));
    const rest = [2, 3, 4, 5].map(write);
    release();
    expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
  });

  /** A unique violation, as PostgreSQL reports it. */
  const uniqueViolation = () => Object.assign(new Error('refused'), { code: '23505' });

  it('retries a batch the database refused for its data one item at a time, so only the bad item fails', async () => {
    const batches: string[][] = [];
    const write = createGroupCommit(async (items: string[]) => {
      batches.push(items);
      if (items.includes('bad')) throw uniqueViolation();
      return items.map((item) => item.toUpperCase());
    }, { maxBatch: 10 });
    const outcomes = await Promise.allSettled(['a', 'bad', 'c'].map(write));
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 'A' },
      { status: 'rejected', reason: uniqueViolation() },
      { status: 'fulfilled', value: 'C' },
    ]);
    expect(batches).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
  });

  it('fails a whole batch at once when the database itself fails (no item-by-item retries against it)', async () => {
    const batches: string[][] = [];
    const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const write = createGroupCommit(async (items: string[]) => {
      batches.push(items);
      throw down;
    }, { maxBatch: 10 });
    const outcomes = await Promise.allSettled(['a', 'b', 'c'].map(write));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(batches).toEqual([['a', 'b', 'c']]);
  });

  it('keeps going after a lone item fails', async () => {
    const write = createGroupCommit(async (items: string[]) => {
      if (items[0] === 'bad') throw uniqueViolation();
      return items;
    }, { maxBatch: 10 });
    await expect(write('bad')).rejects.toThrow('refused');
    expect(await write('good')).toBe('good');
  });

  it('fails only its batch when the writer throws before returning a promise, and writes the batches queued behind it', async () => {
    const batches: string[][] = [];
    const write = createGroupCommit((items: string[]) => {
      batches.push(items);
      if (items.includes('x')) throw new TypeError('not a promise');
      return Promise.resolve(items.map((item) => item.toUpperCase()));
    }, { maxBatch: 2 });
    const outcomes = await Promise.allSettled(['x', 'y', 'z'].map(write));
    expect(outcomes).toEqual([
      { status: 'rejected', reason: new TypeError('not a promise') },
      { status: 'rejected', reason: new TypeError('not a promise') },
      { status: 'fulfilled', value: 'Z' },
    ]);
    expect(batches).toEqual([['x', 'y'], ['z']]);
  });
});

describe('runsOfUniqueKeys', () => {
  it('keeps the order and starts a new run at each key seen before in the current run', () => {
    const keyOf = (item: string) => item.split(':')[0]!;
    expect(runsOfUniqueKeys(['a:1', 'b:1', 'c:1'], keyOf)).toEqual([['a:1', 'b:1', 'c:1']]);
    expect(runsOfUniqueKeys(['a:1', 'b:1', 'a:2', 'c:1', 'b:2', 'a:3'], keyOf)).toEqual([['a:1', 'b:1'], ['a:2', 'c:1', 'b:2'], ['a:3']]);
    expect(runsOfUniqueKeys(['x:1', 'x:2', 'x:3'], keyOf)).toEqual([['x:1'], ['x:2'], ['x:3']]);
  });
});
