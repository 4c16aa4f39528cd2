/**
 * postgresPreferenceStore against a real PostgreSQL server (Debian's, started here): the
 * PreferenceStore contract, the latest choice winning whichever process writes first, the table a
 * DBA creates, and the outcome of each category for a recipient who opted out, through EmailService.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv } from '../src/config.js';
import { isConfigError } from '../src/errors.js';
import { postgresPreferenceStore, preferenceTableSql } from '../src/preferences-postgres.js';
import { EmailService } from '../src/service.js';
import { memoryTransport } from '../src/transports/memory.js';
import { type PostgresServer, startPostgresServer, tableColumns } from './helpers/postgres-server.js';
import { preferenceStoreContract } from './preference-contract.js';

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
const freshTable = () => `preferences_${process.pid}_${++tables}`;

preferenceStoreContract('postgresPreferenceStore (its own pool)', async () => {
  const store = postgresPreferenceStore({ connectionString: server.url(), table: freshTable() });
  return { store, close: () => store.close() };
});

preferenceStoreContract('postgresPreferenceStore (the caller’s pool, schema-qualified table)', async () => {
  await admin.query('CREATE SCHEMA IF NOT EXISTS mail');
  return { store: postgresPreferenceStore({ pool: admin, table: `mail.${freshTable()}` }) };
});

describe('postgresPreferenceStore', () => {
  it('keeps the latest choice whichever of two processes writes first', async () => {
    const table = freshTable();
    const app = postgresPreferenceStore({ pool: admin, table });
    const worker = postgresPreferenceStore({ connectionString: server.url(), table });
    try {
      // The newer choice lands first; the older one (a delayed request) must not undo it.
      await app.set('jane@example.com', 'marketing', true, {
        at: new Date('2026-06-02'),
        source: 'settings',
      });
      await worker.set('jane@example.com', 'marketing', false, {
        at: new Date('2026-06-01'),
        source: 'old-link',
      });
      expect(await worker.get('jane@example.com', 'marketing')).toMatchObject({
        allowed: true,
        source: 'settings',
      });
      // Many writers at once, each with its own time: the latest time is what stays.
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? app : worker).set('sam@example.com', 'product', i % 3 === 0, {
            at: new Date(Date.UTC(2026, 0, 1 + ((i * 7) % 20))),
            source: `writer-${i}`,
          }),
        ),
      );
      const latest = Array.from({ length: 20 }, (_, i) => i).reduce((best, i) =>
        (i * 7) % 20 > (best * 7) % 20 ? i : best,
      );
      expect(await app.get('sam@example.com', 'product')).toMatchObject({
        source: `writer-${latest}`,
        allowed: latest % 3 === 0,
      });
    } finally {
      await worker.close();
    }
  });

  it('creates exactly the table the README gives a DBA', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(preferenceTableSql());
    const table = freshTable();
    await postgresPreferenceStore({ pool: admin, table }).ensureTable();
    expect(await tableColumns(admin, table)).toEqual([
      { column_name: 'address', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'category', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'allowed', data_type: 'boolean', is_nullable: 'NO' },
      { column_name: 'at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      { column_name: 'source', data_type: 'text', is_nullable: 'YES' },
    ]);
  });

  it('refuses a table name that is not an identifier, naming table, before any query', () => {
    for (const table of ['x; DROP TABLE users', '"quoted"', 'a.b.c']) {
      let error: unknown;
      try {
        postgresPreferenceStore({ pool: admin, table });
      } catch (caught) {
        error = caught;
      }
      expect(isConfigError(error) && error.option).toBe('table');
    }
  });
});

describe('each category to a recipient who opted out, with the preferences in PostgreSQL', () => {
  it('product and marketing are suppressed with the reason; transactional and security go', async () => {
    const table = freshTable();
    // The web app records the choices; another process (a worker) sends.
    const recorded = postgresPreferenceStore({ connectionString: server.url(), table });
    await recorded.set('jane@example.com', 'product', false, { source: 'one-click-unsubscribe' });
    await recorded.close();
    const preferences = postgresPreferenceStore({ connectionString: server.url(), table });
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from: 'Acme <no-reply@acme.example>', preferences });
    try {
      const outcome: Record<string, unknown> = {};
      for (const category of ['security', 'transactional', 'product', 'marketing'] as const) {
        const result = await mail.send({ to: 'jane@example.com', subject: category, text: 'x', category });
        outcome[category] = result.suppressed?.[0]?.reason ?? (result.accepted.length ? 'sent' : 'nothing');
      }
      expect(outcome).toEqual({
        security: 'sent',
        transactional: 'sent',
        product: 'opted-out',
        marketing: 'not-opted-in',
      });
      expect(transport.outbox.map((c) => c.message.subject)).toEqual(['security', 'transactional']);
    } finally {
      await preferences.close();
    }
  });
});

describe('closing the service', () => {
  it('ends the pools configFromEnv opened for both URLs, and leaves a store the caller built open', async () => {
    const env = {
      MAILROOM_TRANSPORT: 'memory',
      MAILROOM_SUPPRESSIONS_URL: server.url(),
      MAILROOM_PREFERENCES_URL: server.url(),
    };
    const options = configFromEnv(env);
    const mail = new EmailService(options);
    // Both pools are in use before the close.
    await options.suppressions!.suppress('gone@example.com', 'hard-bounce');
    await options.preferences!.set('jane@example.com', 'product', false);
    await mail.close();
    await expect(options.suppressions!.isSuppressed('gone@example.com')).rejects.toThrow(/end/i);
    await expect(options.preferences!.get('jane@example.com', 'product')).rejects.toThrow(/end/i);

    const mine = postgresPreferenceStore({ connectionString: server.url(), table: freshTable() });
    try {
      const other = new EmailService({
        transport: memoryTransport(),
        from: 'no-reply@example.com',
        preferences: mine,
      });
      await other.close();
      await mine.set('jane@example.com', 'marketing', true);
      expect(await mine.get('jane@example.com', 'marketing')).toMatchObject({ allowed: true });
    } finally {
      await mine.close();
    }
  });
});
