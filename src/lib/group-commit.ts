/**
 * Group commit: items that arrive while a write is in flight are written
 * together by the next one, and each caller's promise settles once its own
 * item is written, with its own result. Alone, an item is written at once
 * (on the next turn of the event loop); under load concurrent requests share
 * statements, which on PostgreSQL cost more to send than to run. If a batch
 * fails, its items are written one by one, so a bad item fails only itself.
 *
 * `writeMany` must answer one result per item, in the items' order.
 */
export function createGroupCommit<T, R>(writeMany: (items: T[]) => Promise<R[]>, options: { maxBatch: number }): (item: T) => Promise<R> {
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
        if (batch.length === 1) {
          batch[0]!.reject(error);
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
