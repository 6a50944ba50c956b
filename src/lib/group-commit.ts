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
  type Pending = { item: T; resolve: (result: R) => void; reject: (error: unknown) => void };
  let queue: Pending[] = [];
  let running = false;

  // Async, so a writer that throws instead of rejecting fails only its item.
  const writeOne = async (item: T): Promise<R> => {
    const [result] = await writeMany([item]);
    return result as R;
  };

  /** A failed batch of data errors: each item alone, in order, so a bad item fails only itself. */
  const writeEach = async (batch: Pending[]): Promise<void> => {
    for (const pending of batch) await writeOne(pending.item).then(pending.resolve, pending.reject);
  };

  /**
   * Writes the queue batch by batch until it is empty. Chained rather than an
   * async loop: a batch makes no promise here beyond `writeMany`'s own and
   * the `then` that answers it.
   */
  function drain(): void {
    if (queue.length === 0) {
      running = false;
      return;
    }
    const batch = queue.slice(0, options.maxBatch);
    queue = queue.slice(batch.length);
    let writing: Promise<R[]>;
    try {
      writing = writeMany(batch.map((pending) => pending.item));
    } catch (error) {
      writing = Promise.reject(error);
    }
    writing.then(
      (results) => {
        batch.forEach((pending, index) => pending.resolve(results[index] as R));
        drain();
      },
      (error: unknown) => {
        if (batch.length > 1 && isItemError(error)) return writeEach(batch).then(drain);
        for (const pending of batch) pending.reject(error);
        drain();
      },
    );
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (!running) {
        running = true;
        setImmediate(drain);
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
