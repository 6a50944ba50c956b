import { heldConnections, type PoolClient } from './held-connections.ts';
import type { Database } from './index.ts';

/**
 * A hot statement with fixed text, run by `run` below: the few statements
 * every sign-in, token request and mint sends (provider rows, the account,
 * the one-time token, rate-limit counters).
 *
 * On PostgreSQL it runs as a named prepared statement: each connection
 * parses and plans it once and afterwards only binds and executes it, which
 * halves PostgreSQL's CPU per statement (0.12 → 0.06 ms measured on a
 * primary-key read, bench/RESULTS.md). `DATABASE_PREPARED_STATEMENTS=false`
 * sends it unnamed instead, for a pooler that cannot keep prepared statements
 * (PgBouncer before 1.21, or with `max_prepared_statements = 0`).
 *
 * A statement names its columns: a prepared `SELECT *` fails with "cached
 * plan must not change result type" on a connection that prepared it before a
 * migration added a column.
 */
export type Statement = { readonly name: string; readonly text: string; readonly pgText: string };

const names = new Set<string>();

/** Declares a statement; `text` uses `?` for its values (no `?` anywhere else). Names are unique per process. */
export function statement(name: string, text: string): Statement {
  if (names.has(name)) throw new Error(`statement ${name} is declared twice`);
  names.add(name);
  let position = 0;
  const compact = text.replace(/\s+/g, ' ').trim();
  return { name: `sesame_${name}`, text: compact, pgText: compact.replace(/\?/g, () => `$${++position}`) };
}

type PgQuery = { name?: string; text: string; values?: unknown[] };
type Client = PoolClient & { config: { client?: unknown } };

const preparedByDatabase = new WeakMap<Database, boolean>();

/** Whether `run` prepares statements on this database (set when it is opened; PostgreSQL only). */
export function usePreparedStatements(db: Database, prepared: boolean): void {
  preparedByDatabase.set(db, prepared);
}

const isPostgres = (db: Database) => (db.client as Client).config.client === 'pg';

/**
 * Runs a query on a connection of knex's pool, past knex's query builder and
 * its placeholder rewriting: for `statement`s and for libraries that bring
 * their own SQL (rate-limiter-flexible). `name` prepares it, when this
 * database allows prepared statements. The connection is one kept from the
 * pool between statements (./held-connections.ts). PostgreSQL only.
 */
export function runOnPool(db: Database, query: PgQuery): Promise<{ rows: unknown[]; rowCount: number | null }> {
  const held = heldConnections(db.client as Client);
  if (!held) return Promise.reject(new Error('Unable to acquire a connection'));
  const named = query.name !== undefined && preparedByDatabase.get(db) !== false;
  const sent = named ? query : { text: query.text, ...(query.values && { values: query.values }) };
  return held.use((connection) => connection.query(sent));
}

/**
 * Rows of values (each in the statement's column order) as the one array per
 * column that an `unnest(?::type[], …)` statement takes. At least one row.
 * For keys (short text); rows that carry JSON or longer text go as a
 * `recordset` instead.
 */
export function columnsOf(rows: ReadonlyArray<readonly unknown[]>): unknown[][] {
  return rows[0]!.map((_, column) => rows.map((values) => values[column]));
}

/**
 * Runs a statement and answers its rows. Inside a transaction, and on the
 * embedded database, it goes through knex like any query.
 */
export function run<R>(db: Database, { name, text, pgText }: Statement, values: unknown[]): Promise<R[]> {
  if (isPostgres(db) && !db.isTransaction) return runOnPool(db, { name, text: pgText, values }).then((result) => result.rows as R[]);
  return db.raw<{ rows: R[] }>(text, values as never[]).then((result) => result.rows);
}

type Column = readonly [name: string, type: 'text' | 'jsonb' | 'timestamptz'];

/** With the u flag a surrogate pair is one code point, so these match only the halves standing alone. */
const LONE_SURROGATE = /\p{Surrogate}/u;
const LONE_SURROGATES = /\p{Surrogate}/gu;

/** A value as JSON inside a recordset's rows; a `jsonb` column's value is already JSON text. */
function encodeValue(value: unknown, type: Column[1]): string {
  if (value === null || value === undefined) return 'null';
  if (type === 'jsonb') {
    if (typeof value !== 'string') throw new TypeError('a jsonb column of a recordset takes JSON text');
    return value;
  }
  // toISOString throws on an invalid date, as pg refuses one: such a row fails its statement instead of being stored as NULL.
  if (value instanceof Date) return `"${value.toISOString()}"`;
  // A lone surrogate would be escaped as \udXXX, which PostgreSQL's JSON refuses (failing the whole batch);
  // as a text parameter it became U+FFFD in UTF-8, and does here too.
  if (typeof value === 'string' && LONE_SURROGATE.test(value)) return JSON.stringify(value.replace(LONE_SURROGATES, '\ufffd'));
  return JSON.stringify(value);
}

/**
 * The rows of a batch statement as one JSON parameter, read back by
 * `jsonb_to_recordset`: for rows that carry JSON payloads (provider models,
 * audit data, token context). As `unnest` arrays, pg escaped every payload
 * into an array literal (each `"` and `\` escaped, a copy of the text per
 * replacement) and PostgreSQL unescaped and parsed it again: 30–50 µs of the
 * client's CPU per row against 18–30 µs this way, PostgreSQL's no more
 * (bench/RESULTS.md, thirteenth round).
 */
export function recordset(columns: readonly Column[]) {
  const keys = columns.map(([name]) => `${JSON.stringify(name)}:`);
  const definition = columns.map(([name, type]) => `${name} ${type}`).join(', ');
  return {
    /**
     * The `FROM` item reading the parameter as `alias(columns…)`; with
     * `ordinality`, the rows also carry their position (`n`, from 1).
     */
    from(alias: string, options: { ordinality?: boolean } = {}): string {
      return options.ordinality
        ? `ROWS FROM (jsonb_to_recordset(?::jsonb) AS (${definition})) WITH ORDINALITY AS ${alias}(${columns.map(([name]) => name).join(', ')}, n)`
        : `jsonb_to_recordset(?::jsonb) AS ${alias}(${definition})`;
    },
    /** The parameter: rows of values in the columns' order (a `jsonb` column's as JSON text). At least one row. */
    value(rows: ReadonlyArray<readonly unknown[]>): string {
      let json = '[';
      for (let row = 0; row < rows.length; row += 1) {
        const values = rows[row]!;
        json += row === 0 ? '{' : ',{';
        for (let column = 0; column < columns.length; column += 1) {
          json += (column === 0 ? '' : ',') + keys[column] + encodeValue(values[column], columns[column]![1]);
        }
        json += '}';
      }
      return `${json}]`;
    },
  };
}
