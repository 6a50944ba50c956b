/**
 * Group commit: items that arrive while a write is in flight are written
 * together by the next one, and each caller's promise settles once its own
 * item is written, with its own result. Alone, an item is written at once
 * (on the next turn of the event loop); under load concurrent requests share
 * statements, which on PostgreSQL cost more to send than to run. If a batch
 * fails because of its data (`isItemError`: by default PostgreSQL's data
 * exceptions and integrity violations, SQLSTATE classes 22 and 23), its items
 * are written one by one, so a bad item fails only itself; any other failure
 * (the database unreachable, a timeout) fails the whole batch at once rather
 * than trying each item against a database that is not answering.
 *
 * `writeMany` must answer one result per item, in the items' order.
 */
export function createGroupCommit<T, R>(
  writeMany: (items: T[]) => Promise<R[]>,
  options: { maxBatch: number; isItemError?: (error: unknown) => boolean },
): (item: T) => Promise<R> {
  const isItemError = options.isItemError ?? isDataError;
  let queue: Array<{ item: T; resolve: (result: R) => void; reject: (error: unknown) => void }> = [];
  let running = false;

  const writeOne = async (item: T): Promise<R> => {
    const [result] = await writeMany([item]);
    return result as R;
  };

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, options.maxBatch);
      queue = queue.slice(batch.length);
      try {
        const results = await writeMany(batch.map((pending) => pending.item));
        batch.forEach((pending, index) => pending.resolve(results[index] as R));
      } catch (error) {
        if (batch.length === 1 || !isItemError(error)) {
          for (const pending of batch) pending.reject(error);
          continue;
        }
        for (const pending of batch) await writeOne(pending.item).then(pending.resolve, pending.reject);
      }
    }
    running = false;
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (!running) {
        running = true;
        setImmediate(() => void drain());
      }
    });
}

/** A PostgreSQL error caused by the values written (SQLSTATE class 22 or 23), not by the database's state. */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23]/.test(code);
}

/**
 * Splits a batch into runs, in its order, in which each key occurs once: for
 * statements that cannot touch one row twice. A later item of a key goes in
 * a later run, so it sees the earlier one's outcome (and a later write wins).
 */
export function runsOfUniqueKeys<T>(items: T[], keyOf: (item: T) => string): T[][] {
  const runs: T[][] = [[]];
  let keys = new Set<string>();
  for (const item of items) {
    const key = keyOf(item);
    if (keys.has(key)) {
      runs.push([]);
      keys = new Set();
    }
    keys.add(key);
    runs.at(-1)!.push(item);
  }
  return runs;
}
