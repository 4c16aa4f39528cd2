/**
 * The suppression list in PostgreSQL (node-postgres), shared by every process that sends: the web
 * app whose webhook records bounces, the Kafka workers, `mailroom suppressions`. One table, one
 * row per address; every statement parameterised. `pg` is loaded only when the store opens its
 * own pool, so the package is needed by those who use it and nobody else.
 */
import { type PostgresConnectionOptions, postgresTable, quoteTable } from './postgres.js';
import {
  normalise,
  type Suppression,
  type SuppressionReason,
  type SuppressionStore,
  suppression,
} from './suppression.js';

/** Options of {@link postgresSuppressionStore}: a `pool` or a `connectionString`, and the table. */
export interface PostgresSuppressionStoreOptions extends PostgresConnectionOptions {
  /**
   * The table, `name` or `schema.name` (letters, digits and `_`, used exactly as written: it is
   * quoted). Default `mailroom_suppressions`. Anything else is a `ConfigError` naming `table`.
   */
  table?: string;
}

/** A {@link SuppressionStore} on PostgreSQL. */
export interface PostgresSuppressionStore extends SuppressionStore {
  /** The table, quoted as the SQL uses it (`"mailroom_suppressions"`). */
  readonly table: string;
  /**
   * Creates the table when it is missing (what the first call of any other method does, unless
   * `createTable: false`). Call it at start-up to find a missing right or a wrong URL early.
   */
  ensureTable(): Promise<void>;
  /** Ends the pool the store opened for `connectionString`; a `pool` you gave is left open. */
  close(): Promise<void>;
}

/**
 * The SQL that creates the store's table, for a DBA or a migration tool: what the store runs on
 * first use when the table is missing (`CREATE TABLE IF NOT EXISTS`). `table` as in
 * {@link PostgresSuppressionStoreOptions.table}; a bad one is a `ConfigError` naming `table`.
 */
export function suppressionTableSql(table = 'mailroom_suppressions'): string {
  return createTable(quoteTable(table, 'table'));
}

/** `seq` orders suppressions of the same instant by when they were made. */
function createTable(quoted: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoted} (
  address text PRIMARY KEY,
  reason  text NOT NULL,
  since   timestamptz NOT NULL,
  detail  text,
  seq     bigint GENERATED ALWAYS AS IDENTITY
);`;
}

interface Row {
  address: string;
  reason: SuppressionReason;
  since: Date | string;
  detail: string | null;
}

/**
 * A {@link SuppressionStore} in a PostgreSQL table, with the memory store's guarantees across
 * every process that uses the same table: addresses compared lower-cased; suppressing an address
 * again keeps the first reason, date and detail (`INSERT … ON CONFLICT DO NOTHING`, atomic, so of
 * two processes recording the same address at once the first write wins and the other changes
 * nothing); `list()` oldest `since` first. A query that fails (the server down, no answer within
 * `timeoutMs`) rejects with node-postgres's error, so the send that asked fails rather than going
 * to an address that may be suppressed.
 *
 * The table is created on first use when it is missing (see `createTable`); the README has its
 * SQL. Bad options are a `ConfigError` naming the option (`table`, `pool`, `connectionString`,
 * `timeoutMs`), or `pg` when the package is not installed.
 *
 * @example
 * ```ts
 * import { EmailService, postgresSuppressionStore, suppressFromEvents } from 'mailroom-js';
 *
 * const suppressions = postgresSuppressionStore({ connectionString: process.env.DATABASE_URL });
 * const mail = new EmailService({ transport, from, suppressions });
 * createWebhookHandler({ provider: 'postmark', …, onEvent: suppressFromEvents(suppressions) });
 * // or with your app's pool: postgresSuppressionStore({ pool, table: 'mail.suppressions' })
 * ```
 */
export function postgresSuppressionStore(options: PostgresSuppressionStoreOptions): PostgresSuppressionStore {
  const { table, ensureTable, query, close } = postgresTable(
    'postgresSuppressionStore',
    options,
    'mailroom_suppressions',
    createTable,
  );

  return {
    table,
    ensureTable,
    async isSuppressed(address) {
      const { rows } = await query(`SELECT address, reason, since, detail FROM ${table} WHERE address = $1`, [
        normalise(address),
      ]);
      return rows.length ? fromRow(rows[0] as Row) : undefined;
    },
    async suppress(address, reason, suppressOptions = {}) {
      const entry = suppression(normalise(address), reason, suppressOptions);
      await query(
        `INSERT INTO ${table} (address, reason, since, detail) VALUES ($1, $2, $3, $4) ON CONFLICT (address) DO NOTHING`,
        [entry.address, entry.reason, entry.since, entry.detail ?? null],
      );
    },
    async lift(address) {
      const { rowCount } = await query(`DELETE FROM ${table} WHERE address = $1`, [normalise(address)]);
      return (rowCount ?? 0) > 0;
    },
    async list() {
      const { rows } = await query(
        `SELECT address, reason, since, detail FROM ${table} ORDER BY since, seq`,
        [],
      );
      return (rows as Row[]).map(fromRow);
    },
    close,
  };
}

function fromRow(row: Row): Suppression {
  return Object.freeze({
    address: row.address,
    reason: row.reason,
    // A pool whose type parsers return text gives a string.
    since: row.since instanceof Date ? row.since : new Date(row.since),
    ...(row.detail ? { detail: row.detail } : {}),
  });
}
