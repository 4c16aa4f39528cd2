/**
 * Notification preferences in PostgreSQL (node-postgres), shared by every process that sends: the
 * web app's settings page and unsubscribe handler that record choices, the Kafka workers that
 * check them. One row per address and category; every statement parameterised. `pg` is loaded only
 * when the store opens its own pool.
 */

import { type PostgresConnectionOptions, postgresTable, quoteTable } from './postgres.js';
import {
  type ChoosableCategory,
  checkChoosable,
  makeChoice,
  type PreferenceChoice,
  type PreferenceStore,
} from './preferences.js';
import { normalise } from './suppression.js';

/** Options of {@link postgresPreferenceStore}: a `pool` or a `connectionString`, and the table. */
export interface PostgresPreferenceStoreOptions extends PostgresConnectionOptions {
  /**
   * The table, `name` or `schema.name` (letters, digits and `_`, used exactly as written: it is
   * quoted). Default `mailroom_preferences`. Anything else is a `ConfigError` naming `table`.
   */
  table?: string;
}

/** A {@link PreferenceStore} on PostgreSQL. */
export interface PostgresPreferenceStore extends PreferenceStore {
  /** The table, quoted as the SQL uses it (`"mailroom_preferences"`). */
  readonly table: string;
  /** Creates the table when it is missing (what the first call of any other method does, unless `createTable: false`). */
  ensureTable(): Promise<void>;
  /** Ends the pool the store opened for `connectionString`; a `pool` you gave is left open. */
  close(): Promise<void>;
}

/**
 * The SQL that creates the store's table, for a DBA or a migration tool: what the store runs on
 * first use when the table is missing. `table` as in {@link PostgresPreferenceStoreOptions.table}.
 */
export function preferenceTableSql(table = 'mailroom_preferences'): string {
  return createTable(quoteTable(table, 'table'));
}

function createTable(quoted: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoted} (
  address  text NOT NULL,
  category text NOT NULL CHECK (category IN ('product', 'marketing')),
  allowed  boolean NOT NULL,
  at       timestamptz NOT NULL,
  source   text,
  PRIMARY KEY (address, category)
);`;
}

interface Row {
  address: string;
  category: ChoosableCategory;
  allowed: boolean;
  at: Date | string;
  source: string | null;
}

/**
 * A {@link PreferenceStore} in a PostgreSQL table, with the memory store's guarantees across every
 * process that uses the table: addresses compared lower-cased; the latest choice per address and
 * category wins by its `at`, decided in one atomic statement (`INSERT … ON CONFLICT DO UPDATE …
 * WHERE stored.at <= new.at`), so a delayed or replayed older choice never overrides a newer one,
 * whichever process writes first. A query that fails (the server down, no answer within
 * `timeoutMs`, default 5 000 ms with `connectionString`) rejects with node-postgres's error, so the
 * send that asked fails rather than going to someone who may have said no.
 *
 * The table (`table`, default `mailroom_preferences`) is created on first use when it is missing
 * (see `createTable`; {@link preferenceTableSql} gives its SQL). Bad options are a `ConfigError`
 * naming the option (`table`, `pool`, `connectionString`, `timeoutMs`), or `pg` when the package
 * is not installed and the store would open its own pool.
 *
 * @example
 * ```ts
 * import { EmailService, postgresPreferenceStore } from 'mailroom-js';
 *
 * const preferences = postgresPreferenceStore({ connectionString: process.env.DATABASE_URL });
 * await preferences.set('jane@example.com', 'marketing', true, { source: 'signup-form' });
 * const mail = new EmailService({ transport, from, preferences });
 * ```
 */
export function postgresPreferenceStore(options: PostgresPreferenceStoreOptions): PostgresPreferenceStore {
  const { table, ensureTable, query, close } = postgresTable(
    'postgresPreferenceStore',
    options,
    'mailroom_preferences',
    createTable,
  );
  const columns = 'address, category, allowed, at, source';

  return {
    table,
    ensureTable,
    async get(address, category) {
      const normal = normalise(address);
      checkChoosable(category);
      const { rows } = await query(`SELECT ${columns} FROM ${table} WHERE address = $1 AND category = $2`, [
        normal,
        category,
      ]);
      return rows.length ? fromRow(rows[0] as Row) : undefined;
    },
    async set(address, category, allowed, choiceOptions = {}) {
      const choice = makeChoice(address, category, allowed, choiceOptions);
      await query(
        `INSERT INTO ${table} AS stored (${columns}) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (address, category) DO UPDATE
         SET allowed = EXCLUDED.allowed, at = EXCLUDED.at, source = EXCLUDED.source
         WHERE stored.at <= EXCLUDED.at`,
        [choice.address, choice.category, choice.allowed, choice.at, choice.source ?? null],
      );
    },
    async list(address) {
      const { rows } = await query(
        `SELECT ${columns} FROM ${table} WHERE address = $1 ORDER BY CASE category WHEN 'product' THEN 0 ELSE 1 END`,
        [normalise(address)],
      );
      return (rows as Row[]).map(fromRow);
    },
    close,
  };
}

function fromRow(row: Row): PreferenceChoice {
  return Object.freeze({
    address: row.address,
    category: row.category,
    allowed: row.allowed,
    // A pool whose type parsers return text gives a string.
    at: row.at instanceof Date ? row.at : new Date(row.at),
    ...(row.source ? { source: row.source } : {}),
  });
}
