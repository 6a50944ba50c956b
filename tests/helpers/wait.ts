/**
 * Calls `read` every 10 ms until `check` accepts its answer or `ms` have
 * passed; answers the last value (the caller's expect says what it wanted).
 * For what arrives asynchronously, such as a trigger's notice.
 */
export async function within<T>(ms: number, read: () => T | Promise<T>, check: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
