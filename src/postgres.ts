/**
 * Internal: what every PostgreSQL-backed store shares (the suppression list, the preferences): a pool that is the caller's or the store's own, node-postgres loaded only when a store
 * makes its own pool, table names checked and quoted, and a table created once if it is missing.
 * Each store keeps its own table and its own SQL; they can share one pool.
 */
import { ConfigError } from './errors.js';
import { lazyRequire } from './lazy-deps.js';

/** What a store needs of a pool: node-postgres's `Pool` (or `Client`) `query`, values always as parameters. */
export interface PostgresPoolLike {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** How a PostgreSQL store reaches its database: the caller's pool, or a URL it opens its own pool for. */
export interface PostgresConnectionOptions {
  /**
   * A node-postgres `Pool` (`new Pool({ … })`) the store queries and never ends; share it with your
   * app and other stores. Give this or `connectionString`.
   */
  pool?: PostgresPoolLike;
  /**
   * `postgres://user:password@host:5432/database` (`postgresql://` too; libpq's `sslmode` and other
   * parameters as node-postgres reads them): the store opens its own pool (needs the `pg` package)
   * and `close()` ends it. Never logged or repeated in an error.
   */
  connectionString?: string;
  /**
   * With `connectionString`: how long connecting, and then each query, may take before it fails,
   * in ms. Default 5 000. (With your own `pool`, its settings decide.)
   */
  timeoutMs?: number;
  /**
   * Create the table when it is missing (`CREATE TABLE IF NOT EXISTS`, on first use). Default true.
   * When it exists nothing is created, so a database user without the right to create tables works
   * once a DBA has run the SQL in the README; `false` never issues DDL at all.
   */
  createTable?: boolean;
}

/** The part of node-postgres used here. */
interface PgModule {
  Pool: new (
    config: Record<string, unknown>,
  ) => PostgresPoolLike & {
    end(): Promise<void>;
    on(event: 'error', listener: (error: Error) => void): unknown;
  };
}

const loadPg = lazyRequire<PgModule>('pg');

/** A pool and how to let it go: `end` is a no-op for the caller's pool. */
export interface PostgresConnection {
  readonly pool: PostgresPoolLike;
  end(): Promise<void>;
}

/**
 * The caller's pool, or a new one for `connectionString` (pg required now, a `ConfigError` naming
 * `pg` when it is not installed). A `ConfigError` names `pool` or `connectionString` when neither
 * or both is usable; the URL itself is never in a message.
 */
function postgresConnection(factory: string, options: PostgresConnectionOptions): PostgresConnection {
  const { pool, connectionString } = options;
  if (pool !== undefined && connectionString !== undefined)
    throw new ConfigError('pool', 'give pool or connectionString, not both');
  if (pool !== undefined) {
    if (typeof pool?.query !== 'function')
      throw new ConfigError('pool', 'must be a node-postgres Pool (new Pool({ … }))');
    return { pool, end: async () => {} };
  }
  if (connectionString === undefined)
    throw new ConfigError('connectionString', 'required: a postgres:// URL, or give pool');
  checkConnectionString(connectionString, 'connectionString');
  const timeoutMs = options.timeoutMs ?? 5_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new ConfigError('timeoutMs', 'must be a positive whole number of milliseconds');
  let pg: PgModule;
  try {
    pg = loadPg();
  } catch (error) {
    if ((error as NodeJS.ErrnoException)?.code !== 'MODULE_NOT_FOUND') throw error;
    throw new ConfigError('pg', `${factory} needs the pg package (node-postgres): npm install pg`);
  }
  const own = new pg.Pool({
    connectionString,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    // An idle pool does not keep a command-line run alive; a server keeps running for its own reasons.
    allowExitOnIdle: true,
  });
  // An idle client the server drops (a restart, a failover) is reported here; without a listener
  // it would crash the process. The pool replaces it on the next query, which fails if the server is gone.
  own.on('error', () => {});
  let ended: Promise<void> | undefined;
  return {
    pool: own,
    end: () => {
      ended ??= own.end();
      return ended;
    },
  };
}

/**
 * Throws a `ConfigError` naming `name` unless `value` is a `postgres://` or `postgresql://` URL.
 * The value is never repeated: it may hold a password.
 */
export function checkConnectionString(value: unknown, name: string): void {
  if (
    typeof value !== 'string' ||
    !URL.canParse(value) ||
    !/^postgres(?:ql)?:$/i.test(new URL(value).protocol)
  )
    throw new ConfigError(name, 'must be a postgres:// (or postgresql://) URL');
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * `name` (`table` or `schema.table`, each an identifier: a letter or `_`, then letters, digits or
 * `_`, at most 63 characters, PostgreSQL's limit) quoted for SQL: `"schema"."table"`. Quoted, the
 * name is used exactly as written (case included). Anything else is a `ConfigError` naming `option`.
 */
export function quoteTable(name: unknown, option: string): string {
  const parts = typeof name === 'string' ? name.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part)))
    throw new ConfigError(
      option,
      'must be a table name, optionally schema-qualified (schema.table): letters, digits and _, not starting with a digit, at most 63 characters each',
    );
  return parts.map((part) => `"${part}"`).join('.');
}

/**
 * A function that makes sure `table` exists before the first query, once: when it is missing,
 * `ddl` (CREATE TABLE IF NOT EXISTS …) runs; when it exists, nothing is created, so a user without
 * the right to create tables works against a table a DBA made. Two processes creating it at once
 * both succeed. A failure is not remembered: the next call tries again.
 */
function tableOnce(pool: PostgresPoolLike, table: string, ddl: string): () => Promise<void> {
  let done: Promise<void> | undefined;
  const ensure = async () => {
    const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS "exists"', [table]);
    if ((rows[0] as { exists?: boolean } | undefined)?.exists) return;
    try {
      await pool.query(ddl);
    } catch (error) {
      // A concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalogue.
      const code = (error as { code?: string })?.code;
      if (code !== '42P07' && code !== '23505') throw error;
    }
  };
  return () => {
    done ??= ensure().catch((error: unknown) => {
      done = undefined;
      throw error;
    });
    return done;
  };
}

/** What a store is built on: its quoted table, the table check, a query that makes sure of the table first, and close. */
export interface PostgresTable {
  /** The table, quoted as the SQL uses it (`"mailroom_suppressions"`). */
  readonly table: string;
  ensureTable(): Promise<void>;
  query(text: string, values: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
  /** Ends the pool the store opened for `connectionString`; a `pool` you gave is left open. */
  close(): Promise<void>;
}

/**
 * Internal: the part every PostgreSQL store shares. Checks `options` (a `TypeError` naming
 * `factory` when they are not an object), quotes the table (`defaultTable` when none is given),
 * opens the connection, and creates the table with `ddl(quotedTable)` on first use unless
 * `createTable: false`.
 */
export function postgresTable(
  factory: string,
  options: PostgresConnectionOptions & { table?: string },
  defaultTable: string,
  ddl: (quoted: string) => string,
): PostgresTable {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${factory}: expected options { pool } or { connectionString }`);
  const table = quoteTable(options.table ?? defaultTable, 'table');
  const connection = postgresConnection(factory, options);
  const { pool } = connection;
  const ensureTable = options.createTable === false ? async () => {} : tableOnce(pool, table, ddl(table));
  return {
    table,
    ensureTable,
    async query(text, values) {
      await ensureTable();
      return pool.query(text, values);
    },
    close: connection.end,
  };
}

/**
 * Internal: marks a store `configFromEnv()` opened itself, so `EmailService.close()` ends its pool
 * too (a store the caller built is the caller's to close). A registry symbol, so the ESM and the
 * CJS build agree.
 */
const CLOSES_WITH_SERVICE: unique symbol = Symbol.for('mailroom.closesWithService') as never;

/** Internal: `store`, marked as closed by the service it is given to. */
export function closesWithService<T extends { close(): Promise<void> }>(store: T): T {
  Object.defineProperty(store, CLOSES_WITH_SERVICE, { value: true });
  return store;
}

/** Internal: `close()` of a store marked by `closesWithService`, else nothing. */
export async function closeIfOwned(store: unknown): Promise<void> {
  if (
    typeof store === 'object' &&
    store !== null &&
    (store as Record<symbol, unknown>)[CLOSES_WITH_SERVICE] === true
  )
    await (store as { close(): Promise<void> }).close();
}
