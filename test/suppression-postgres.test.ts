import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConfigError } from '../src/errors.js';
import { EmailService, type SuppressedEvent } from '../src/service.js';
import { postgresSuppressionStore, suppressionTableSql } from '../src/suppression-postgres.js';
import { memoryTransport } from '../src/transports/memory.js';
import { type PostgresServer, startPostgresServer, tableColumns } from './helpers/postgres-server.js';
import { caught } from './helpers/thrown.js';
import { suppressionStoreContract } from './suppression-contract.js';

let server: PostgresServer;
let admin: pg.Pool;
beforeAll(async () => {
  server = await startPostgresServer();
  admin = new pg.Pool({ connectionString: server.url() });
  admin.on('error', () => {});
});
afterAll(async () => {
  await admin?.end();
  await server?.stop();
});

let tables = 0;
/** A table name no other test uses. */
const freshTable = () => `suppressions_${process.pid}_${++tables}`;

const tableExists = async (name: string) =>
  (await admin.query('SELECT to_regclass($1) IS NOT NULL AS e', [name])).rows[0].e as boolean;

suppressionStoreContract('postgresSuppressionStore (its own pool)', async () => {
  const store = postgresSuppressionStore({ connectionString: server.url(), table: freshTable() });
  return { store, close: () => store.close() };
});

suppressionStoreContract('postgresSuppressionStore (the caller’s pool, schema-qualified table)', async () => {
  await admin.query('CREATE SCHEMA IF NOT EXISTS mail');
  return { store: postgresSuppressionStore({ pool: admin, table: `mail.${freshTable()}` }) };
});

describe('postgresSuppressionStore', () => {
  it('creates its table on first use, once, and two stores on one table see each other', async () => {
    const table = freshTable();
    const a = postgresSuppressionStore({ pool: admin, table });
    const b = postgresSuppressionStore({ connectionString: server.url(), table });
    try {
      expect(await tableExists(table)).toBe(false);
      // Both create it at the same moment: neither fails.
      await Promise.all([a.ensureTable(), b.ensureTable(), a.list(), b.list()]);
      expect(await tableExists(table)).toBe(true);
      await a.suppress('jane@example.com', 'complaint', { detail: 'from the web app' });
      expect(await b.isSuppressed('JANE@example.com')).toMatchObject({ reason: 'complaint' });
      expect(await b.lift('jane@example.com')).toBe(true);
      expect(await a.isSuppressed('jane@example.com')).toBeUndefined();
    } finally {
      await b.close();
    }
  });

  it('creates exactly the table the README gives a DBA', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(suppressionTableSql());
    const table = freshTable();
    await postgresSuppressionStore({ pool: admin, table }).ensureTable();
    expect(await tableColumns(admin, table)).toEqual([
      { column_name: 'address', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'reason', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'since', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      { column_name: 'detail', data_type: 'text', is_nullable: 'YES' },
      { column_name: 'seq', data_type: 'bigint', is_nullable: 'NO' },
    ]);
  });

  it('works as a user who may not create tables, once a DBA has made the table', async () => {
    const table = freshTable();
    await admin.query(suppressionTableSql(table));
    await admin.query(`CREATE ROLE app_${table} LOGIN`);
    await admin.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    await admin.query(`GRANT SELECT, INSERT, DELETE ON ${table} TO app_${table}`);
    const store = postgresSuppressionStore({
      connectionString: server.url('postgres', `app_${table}`),
      table,
    });
    try {
      await store.suppress('jane@example.com', 'manual');
      expect(await store.list()).toMatchObject([{ address: 'jane@example.com' }]);
      // The same user against a missing table: the server's refusal, not a silent success.
      const missing = postgresSuppressionStore({
        connectionString: server.url('postgres', `app_${table}`),
        table: freshTable(),
      });
      await expect(missing.list()).rejects.toThrow(/permission denied for schema public/);
      await missing.close();
    } finally {
      await store.close();
    }
  });

  it('with createTable: false issues no DDL: a missing table is the server’s error', async () => {
    const table = freshTable();
    const store = postgresSuppressionStore({ pool: admin, table, createTable: false });
    await expect(store.list()).rejects.toThrow(/does not exist/);
    expect(await tableExists(table)).toBe(false);
  });

  it('refuses a table name that is not an identifier, naming table, before any query', async () => {
    for (const table of ['', 'x; DROP TABLE users', '"quoted"', '1st', 'a.b.c', 'sp ace', 'a'.repeat(64)]) {
      const error = caught(() => postgresSuppressionStore({ pool: admin, table }));
      expect(isConfigError(error) && error.option, table).toBe('table');
    }
    expect(() => suppressionTableSql('bad-name')).toThrow(/^table: /);
  });

  it('refuses a missing, doubled or malformed connection, naming the option and never the URL', async () => {
    const secretUrl = 'mysql://app:s3cret-pw@db.internal/app';
    const cases: [Parameters<typeof postgresSuppressionStore>[0], string][] = [
      [{}, 'connectionString'],
      [{ connectionString: secretUrl }, 'connectionString'],
      [{ connectionString: 'postgres://app:s3cret-pw@db/app', pool: admin }, 'pool'],
      [{ pool: {} as pg.Pool }, 'pool'],
      [{ connectionString: 'postgres://app:s3cret-pw@db/app', timeoutMs: 0 }, 'timeoutMs'],
    ];
    for (const [options, option] of cases) {
      const error = caught(() => postgresSuppressionStore(options));
      expect(isConfigError(error) && error.option).toBe(option);
      expect(String((error as Error).message)).not.toContain('s3cret-pw');
    }
  });

  it('fails, rather than answering "not suppressed", when the server is unreachable', async () => {
    const down = postgresSuppressionStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/postgres',
      timeoutMs: 2_000,
    });
    await expect(down.isSuppressed('jane@example.com')).rejects.toThrow();
    await down.close();
  });

  it('keeps a suppressed address from EmailService for product mail, never for security mail', async () => {
    const suppressions = postgresSuppressionStore({ pool: admin, table: freshTable() });
    await suppressions.suppress('jane@example.com', 'hard-bounce', {
      detail: 'postmark: inactive recipient',
    });
    const transport = memoryTransport();
    const mail = new EmailService({
      transport,
      from: 'Acme <no-reply@acme.example>',
      suppressions,
      retry: false,
    });
    const events: SuppressedEvent[] = [];
    mail.on('suppressed', (e) => void events.push(e));
    const update = await mail.send({
      to: ['Jane <JANE@example.com>', 'john@example.com'],
      subject: 'What is new',
      text: 'Hello',
      category: 'product',
    });
    expect(update.suppressed).toEqual([{ address: 'jane@example.com', reason: 'hard-bounce' }]);
    expect(transport.outbox.map((m) => m.message.to.map((a) => a.address))).toEqual([['john@example.com']]);
    expect(events).toMatchObject([{ sent: true }]);
    await mail.send({
      to: 'jane@example.com',
      subject: 'New sign-in',
      text: 'Was it you?',
      category: 'security',
    });
    expect(transport.outbox).toHaveLength(2);
    expect(transport.outbox[1]!.message.to[0]!.address).toBe('jane@example.com');
  });
});
