import { appendFileSync } from 'node:fs';
import pg from 'pg';

/**
 * Preloaded into a Sesame server under test (`--import ./bench/lib/count-queries.mjs`):
 * counts the SQL statements sent through `pg`, by statement text. On SIGUSR2
 * it appends the counts so far as one JSON line to BENCH_QUERY_LOG; the bench
 * signals at the start and the end of a measured window and divides the
 * difference by the operations in between. Costs a Map increment per query.
 * Plain JavaScript, so the measured process needs no TypeScript loader: it
 * patches the same `pg` from node_modules that the bundle loads.
 */
const file = process.env.BENCH_QUERY_LOG;
const models = new Set(['Session', 'Interaction', 'Grant', 'AccessToken', 'AuthorizationCode', 'RefreshToken', 'ClientCredentials', 'ReplayDetection', 'PushedAuthorizationRequest']);
if (file) {
  /** @type {Map<string, number>} */
  const counts = new Map();
  const prototype = /** @type {{ query: (...args: unknown[]) => unknown }} */ (/** @type {unknown} */ (pg.Client.prototype));
  const query = prototype.query;
  prototype.query = function countedQuery(/** @type {unknown[]} */ ...args) {
    const config = /** @type {{ text?: unknown, values?: unknown[] } | string | undefined} */ (args[0]);
    const text = typeof config === 'string' ? config : config?.text;
    if (typeof text === 'string') {
      let key = text.replace(/\s+/g, ' ').trim().slice(0, 200);
      // Provider rows share one table: name the model (a bind value) so reads and writes can be told apart.
      if (text.includes('oidc_model_instances')) {
        const values = (typeof config === 'object' ? config.values : undefined) ?? (Array.isArray(args[1]) ? args[1] : []);
        const model = values.find((value) => typeof value === 'string' && models.has(value));
        if (model) key = `${key} -- ${model}`;
      }
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return query.apply(this, args);
  };
  process.on('SIGUSR2', () => appendFileSync(file, `${JSON.stringify(Object.fromEntries(counts))}\n`));
}
