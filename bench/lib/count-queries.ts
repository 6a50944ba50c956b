import { appendFileSync } from 'node:fs';
import pg from 'pg';

/**
 * Preloaded into a Sesame server under test (`--import bench/lib/count-queries.ts`):
 * counts the SQL statements sent through `pg`, by statement text. On SIGUSR2
 * it appends the counts so far as one JSON line to BENCH_QUERY_LOG; the bench
 * signals at the start and the end of a measured window and divides the
 * difference by the operations in between. Costs a Map increment per query.
 */
const file = process.env.BENCH_QUERY_LOG;
const models = new Set(['Session', 'Interaction', 'Grant', 'AccessToken', 'AuthorizationCode', 'RefreshToken', 'ClientCredentials', 'ReplayDetection', 'PushedAuthorizationRequest']);
if (file) {
  const counts = new Map<string, number>();
  const prototype = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = prototype.query;
  prototype.query = function countedQuery(this: unknown, ...args: unknown[]) {
    const config = args[0];
    const text = typeof config === 'string' ? config : (config as { text?: unknown } | undefined)?.text;
    if (typeof text === 'string') {
      let key = text.replace(/\s+/g, ' ').trim().slice(0, 200);
      // Provider rows share one table: name the model (a bind value) so reads and writes can be told apart.
      if (text.includes('oidc_model_instances')) {
        const values = (config as { values?: unknown[] } | undefined)?.values ?? (Array.isArray(args[1]) ? (args[1] as unknown[]) : []);
        const model = values.find((value) => typeof value === 'string' && models.has(value));
        if (model) key = `${key} -- ${model as string}`;
      }
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return query.apply(this, args);
  };
  process.on('SIGUSR2', () => appendFileSync(file, `${JSON.stringify(Object.fromEntries(counts))}\n`));
}
