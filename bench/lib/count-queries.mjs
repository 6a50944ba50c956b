import { appendFileSync } from 'node:fs';
import pg from 'pg';

/**
 * Preloaded into a Sesame server under test (`--import ./bench/lib/count-queries.mjs`):
 * counts the SQL statements sent through `pg`, by statement text. On SIGUSR2
 * it appends the counts so far as one JSON line to BENCH_QUERY_LOG; the bench
 * signals at the start and the end of a measured window and divides the
 * difference by the operations in between. Costs two Map lookups and a Set lookup per query.
 * Plain JavaScript, so the measured process needs no TypeScript loader: it
 * patches the same `pg` from node_modules that the bundle loads.
 *
 * After each snapshot it also appends to BENCH_QUERY_LOG.plans, as one JSON
 * line, how often each prepared statement was planned with its values
 * (custom) and how often its generic plan was used, summed over the
 * connections (`pg_prepared_statements`): a hot statement whose custom
 * plans keep growing is planned anew on every execution.
 */
const file = process.env.BENCH_QUERY_LOG;
const models = new Set(['Session', 'Interaction', 'Grant', 'AccessToken', 'AuthorizationCode', 'RefreshToken', 'ClientCredentials', 'ReplayDetection', 'PushedAuthorizationRequest']);
if (file) {
  // Counted by the statement's own text and its first bind value when that names a provider model
  // (provider rows share one table); texts are tidied only when written out, to keep the count cheap.
  /** @type {Map<string, Map<string, number>>} */
  const counts = new Map();
  /** The connections that sent a query (for `recordPlans`). @type {Set<unknown>} */
  const clients = new Set();
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
    if (!clients.has(this)) {
      clients.add(this);
      /** @type {{ once: (event: string, listener: () => void) => void }} */ (/** @type {unknown} */ (this)).once('end', () => clients.delete(this));
    }
    return query.apply(this, args);
  };
  const recordPlans = async () => {
    /** @type {Record<string, [generic: number, custom: number]>} */
    const plans = {};
    for (const client of [...clients]) {
      try {
        const result = /** @type {{ rows: Array<{ name: string, generic_plans: string, custom_plans: string }> }} */ (
          await query.call(client, 'SELECT name, generic_plans, custom_plans FROM pg_prepared_statements')
        );
        for (const row of result.rows) {
          const sum = (plans[row.name] ??= [0, 0]);
          sum[0] += Number(row.generic_plans);
          sum[1] += Number(row.custom_plans);
        }
      } catch {
        // A connection closing meanwhile: its statements are gone with it.
      }
    }
    appendFileSync(`${file}.plans`, `${JSON.stringify(plans)}\n`);
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
    void recordPlans();
  });
}
