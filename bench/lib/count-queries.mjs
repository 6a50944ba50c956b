import { appendFileSync } from 'node:fs';
import pg from 'pg';

/**
 * Preloaded into a Sesame server under test (`--import ./bench/lib/count-queries.mjs`):
 * counts the SQL statements sent through `pg`, by statement text. On SIGUSR2
 * it appends the counts so far as one JSON line to BENCH_QUERY_LOG; the bench
 * signals at the start and the end of a measured window and divides the
 * difference by the operations in between. Costs two Map lookups per query.
 * Plain JavaScript, so the measured process needs no TypeScript loader: it
 * patches the same `pg` from node_modules that the bundle loads.
 */
const file = process.env.BENCH_QUERY_LOG;
const models = new Set(['Session', 'Interaction', 'Grant', 'AccessToken', 'AuthorizationCode', 'RefreshToken', 'ClientCredentials', 'ReplayDetection', 'PushedAuthorizationRequest']);
if (file) {
  // Counted by the statement's own text and its first bind value when that names a provider model
  // (provider rows share one table); texts are tidied only when written out, to keep the count cheap.
  /** @type {Map<string, Map<string, number>>} */
  const counts = new Map();
  const prototype = /** @type {{ query: (...args: unknown[]) => unknown }} */ (/** @type {unknown} */ (pg.Client.prototype));
  const query = prototype.query;
  prototype.query = function countedQuery(/** @type {unknown[]} */ ...args) {
    const config = /** @type {{ text?: unknown, values?: unknown[] } | string | undefined} */ (args[0]);
    const text = typeof config === 'string' ? config : config?.text;
    if (typeof text === 'string') {
      const values = (typeof config === 'object' ? config.values : undefined) ?? (Array.isArray(args[1]) ? args[1] : undefined);
      const first = values?.[0];
      const model = typeof first === 'string' && models.has(first) ? first : '';
      let byModel = counts.get(text);
      if (!byModel) counts.set(text, (byModel = new Map()));
      byModel.set(model, (byModel.get(model) ?? 0) + 1);
    }
    return query.apply(this, args);
  };
  process.on('SIGUSR2', () => {
    /** @type {Record<string, number>} */
    const tidy = {};
    for (const [text, byModel] of counts) {
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 200);
      for (const [model, n] of byModel) {
        const name = model ? `${key} -- ${model}` : key;
        tidy[name] = (tidy[name] ?? 0) + n;
      }
    }
    appendFileSync(file, `${JSON.stringify(tidy)}\n`);
  });
}
