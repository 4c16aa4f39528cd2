/**
 * `mailroom suppressions` and `mailroom send` with the built CLI against a real PostgreSQL, reached
 * as a user with a password (scram-sha-256) through MAILROOM_SUPPRESSIONS_URL: add, list, lift, and
 * a send to a suppressed address held back. The password never appears in anything printed.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgresServer } from '../helpers/postgres-server.js';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
const PASSWORD = 's3cret-Pässw0rd/@';
let server: PostgresServer;
let admin: pg.Pool;
let dir: string;
let url: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  server = await startPostgresServer({ hba: ['host all mailroom_app 127.0.0.1/32 scram-sha-256'] });
  admin = new pg.Pool({ connectionString: server.url() });
  admin.on('error', () => {});
  await admin.query(`CREATE ROLE mailroom_app LOGIN PASSWORD '${PASSWORD}'`);
  await admin.query('GRANT USAGE, CREATE ON SCHEMA public TO mailroom_app');
  url = server.url('postgres', 'mailroom_app', PASSWORD);
  dir = await mkdtemp(join(tmpdir(), 'mailroom-cli-suppressions-'));
});
afterAll(async () => {
  await admin?.end();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the built CLI with only these mailroom variables set (none inherited from this process). */
async function mailroom(args: string[], extra: Record<string, string | undefined> = {}) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(MAILROOM_|SMTP_|MAILGUN_|POSTMARK_|RESEND_|SENDGRID_|APP_NAME)/.test(k),
    ),
  );
  const env = Object.fromEntries(
    Object.entries({
      ...inherited,
      MAILROOM_SUPPRESSIONS_URL: url,
      MAILROOM_SANDBOX_DIR: join(dir, 'outbox'),
      ...extra,
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  let result: { code: number; stdout: string; stderr: string };
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      env,
      encoding: 'utf8',
      cwd: dir,
    });
    result = { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    result = { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
  for (const secret of [PASSWORD, encodeURIComponent(PASSWORD)])
    expect(result.stdout + result.stderr).not.toContain(secret);
  return result;
}

const emls = () =>
  existsSync(join(dir, 'outbox')) ? readdirSync(join(dir, 'outbox')).filter((f) => f.endsWith('.eml')) : [];

async function sendWelcome(...to: string[]) {
  return mailroom(['send', 'welcome', ...to.flatMap((t) => ['--to', t]), '--data', '{"username":"Jane"}']);
}

describe('mailroom suppressions', () => {
  it('adds, lists, keeps the first reason, holds back a send, lifts, and sends again', async () => {
    expect(await mailroom(['suppressions', 'list'])).toMatchObject({
      code: 0,
      stdout: 'No address is suppressed.\n',
    });

    const added = await mailroom([
      'suppressions',
      'add',
      'Jane@Example.com',
      '--reason',
      'complaint',
      '--detail',
      'reported by phone, ticket 4121',
    ]);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(
      /^Suppressed jane@example\.com {2}complaint {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}reported by phone, ticket 4121\n$/,
    );

    const again = await mailroom(['suppressions', 'add', 'jane@example.com']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(
      'jane@example.com was already suppressed, kept as it was: jane@example.com  complaint',
    );

    await mailroom(['suppressions', 'add', 'bounced@example.com', '--reason', 'hard-bounce']);
    const listed = await mailroom(['suppressions', 'list']);
    expect(
      listed.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('  ').slice(0, 2)),
    ).toEqual([
      ['jane@example.com', 'complaint'],
      ['bounced@example.com', 'hard-bounce'],
    ]);
    const json = JSON.parse((await mailroom(['suppressions', 'list', '--json'])).stdout);
    expect(json).toEqual([
      {
        address: 'jane@example.com',
        reason: 'complaint',
        since: expect.stringMatching(/Z$/),
        detail: 'reported by phone, ticket 4121',
      },
      { address: 'bounced@example.com', reason: 'hard-bounce', since: expect.stringMatching(/Z$/) },
    ]);

    // A send to the suppressed address is held back: nothing captured, exit 1 naming why.
    const held = await sendWelcome('jane@example.com');
    expect(held.code).toBe(1);
    expect(held.stdout).toBe('');
    expect(held.stderr).toContain('not sent to jane@example.com (suppressed: complaint;');
    expect(emls()).toEqual([]);
    // With another recipient, that one gets it.
    const partly = await sendWelcome('john@example.com', 'JANE@example.com');
    expect(partly.code).toBe(1);
    expect(partly.stdout).toContain('Captured "welcome" for john@example.com');
    expect(partly.stderr).toContain('not sent to jane@example.com (suppressed: complaint;');
    expect(emls()).toHaveLength(1);

    const lifted = await mailroom(['suppressions', 'lift', 'JANE@example.com']);
    expect(lifted).toMatchObject({ code: 0, stdout: 'Lifted jane@example.com: it may be mailed again\n' });
    const twice = await mailroom(['suppressions', 'lift', 'jane@example.com', 'bounced@example.com']);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toBe(
      'jane@example.com: was not suppressed\nLifted bounced@example.com: it may be mailed again\n',
    );

    const sent = await sendWelcome('jane@example.com');
    expect(sent.code).toBe(0);
    expect(sent.stdout).toContain('Captured "welcome" for jane@example.com');
    expect(emls()).toHaveLength(2);
    expect((await mailroom(['suppressions', 'list', '--json'])).stdout.trim()).toBe('[]');
  });

  it('names the flag or the address that is wrong, and changes nothing', async () => {
    const reason = await mailroom(['suppressions', 'add', 'x@example.com', '--reason', 'spam']);
    expect(reason.code).toBe(1);
    expect(reason.stderr).toMatch(
      /^mailroom: --reason: must be one of hard-bounce, complaint, unsubscribe, manual/,
    );
    const address = await mailroom(['suppressions', 'add', 'not-an-address']);
    expect(address.code).toBe(1);
    expect(address.stderr).toMatch(/^mailroom: address: /);
    for (const args of [
      ['suppressions'],
      ['suppressions', 'drop', 'x@example.com'],
      ['suppressions', 'add'],
      ['suppressions', 'add', 'a@example.com', 'b@example.com'],
      ['suppressions', 'lift'],
      ['suppressions', 'list', '--reason', 'manual'],
    ]) {
      const usage = await mailroom(args);
      expect(usage.code, args.join(' ')).toBe(2);
      expect(usage.stderr).toContain("Run 'mailroom suppressions --help' for usage.");
    }
    expect((await mailroom(['suppressions', 'list', '--json'])).stdout.trim()).toBe('[]');
  });

  it('needs MAILROOM_SUPPRESSIONS_URL to be a postgres:// URL, and never prints its password', async () => {
    const unset = await mailroom(['suppressions', 'list'], { MAILROOM_SUPPRESSIONS_URL: undefined });
    expect(unset.code).toBe(1);
    expect(unset.stderr).toMatch(
      /^mailroom: MAILROOM_SUPPRESSIONS_URL: is required by mailroom suppressions/,
    );
    for (const command of [
      ['suppressions', 'list'],
      ['send', 'welcome', '--to', 'a@example.com'],
    ]) {
      const wrong = await mailroom(command, { MAILROOM_SUPPRESSIONS_URL: `mysql://app:${PASSWORD}@db/app` });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/^mailroom: MAILROOM_SUPPRESSIONS_URL: must be a postgres:\/\//);
    }
    const badPassword = await mailroom(['suppressions', 'list'], {
      MAILROOM_SUPPRESSIONS_URL: server.url('postgres', 'mailroom_app', `${PASSWORD}x`),
    });
    expect(badPassword.code).toBe(1);
    expect(badPassword.stderr).toContain('password authentication failed for user "mailroom_app"');
  });

  it('refuses a look-alike of the variable rather than sending without the list', async () => {
    const result = await mailroom(['send', 'welcome', '--to', 'a@example.com'], {
      MAILROOM_SUPPRESSIONS_URL: undefined,
      MAILROOM_SUPPRESSION_URL: url,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('did you mean MAILROOM_SUPPRESSIONS_URL?');
  });
});
