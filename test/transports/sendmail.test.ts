/**
 * sendmailTransport through real binaries: msmtp in sendmail mode relaying to the smtp-server peer
 * on loopback (so the peer's faults come back as msmtp's own exit statuses), and small shell
 * scripts for what msmtp cannot do (other sysexits codes, a hang, a crash, a missing binary).
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type EmailError, isConfigError, isEmailError, isMessageError } from '../../src/errors.js';
import { createMessage, type EmailMessage, type EmailMessageInput } from '../../src/message.js';
import { EmailService } from '../../src/service.js';
import { type SendmailTransportOptions, sendmailTransport } from '../../src/transports/sendmail.js';
import { fromMime } from '../helpers/received.js';
import { type SmtpFault, type SmtpPeer, type SmtpPeerOptions, startSmtpPeer } from '../helpers/smtp-peer.js';
import { type Fault, transportContract } from './contract.js';

const MSMTP = '/usr/bin/msmtp';
/** What a promise rejects with; fails the test when it resolves. */
const thrown = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
const dir = mkdtempSync(join(tmpdir(), 'mailroom-sendmail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** A file in the test's folder; msmtp refuses a configuration file others may read. */
function writeFile(name: string, content: string, mode = 0o600): string {
  const file = join(dir, `${files++}-${name}`);
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

/**
 * An msmtp configuration relaying to the peer: plain text and no AUTH unless `extra` says
 * otherwise (each line of `extra` overrides the line of the same command).
 */
function msmtprc(peer: SmtpPeer, extra: Record<string, string> = {}): string {
  const settings = { host: peer.host, port: String(peer.port), tls: 'off', auth: 'off', ...extra };
  const lines = Object.entries(settings).map(([command, value]) => `${command} ${value}`);
  return writeFile('msmtprc', `account default\n${lines.join('\n')}\n`);
}

const msmtpFor = (
  peer: SmtpPeer,
  extra: Record<string, string> = {},
  options: SendmailTransportOptions = {},
) => sendmailTransport({ path: MSMTP, args: ['-C', msmtprc(peer, extra)], ...options });

/** STARTTLS with the peer's certificate trusted, and AUTH PLAIN as this user. */
const withAuth = (peer: SmtpPeer, password: string) => ({
  tls: 'on',
  tls_starttls: 'on',
  tls_trust_file: writeFile('ca.pem', peer.cert),
  auth: 'plain',
  user: 'mailer',
  password,
});

const faults: Record<Fault, SmtpFault> = {
  transient: { reply: 421, at: 'mail', message: 'Service not available, try later' },
  permanent: { reply: 550, at: 'data', message: 'Message refused' },
  drop: { drop: 'after-data' },
  slow: { delay: 2000, at: 'mail' },
};

transportContract(
  'sendmail (msmtp)',
  async () => {
    // No users: AUTH is optional, and any credentials offered are refused with 535.
    const peer = await startSmtpPeer();
    return {
      transport: msmtpFor(peer),
      received: () => Promise.all(peer.messages.map((m) => fromMime(m.raw))),
      faults: {
        inject: (fault, times) => peer.failNext(faults[fault], times),
        attempts: () => peer.transactions,
        badCredentials: () => msmtpFor(peer, withAuth(peer, 'wrong')),
        impatient: (ms) => msmtpFor(peer, {}, { timeoutMs: ms }),
      },
      close: () => peer.close(),
    };
  },
  {
    skip: {
      deferred:
        'msmtp ends the whole transaction when any recipient is refused (exit 69 with the 450 reply), so no recipient is delivered alone; tested below',
    },
  },
);

const base: EmailMessageInput = {
  from: { name: 'Acme', address: 'no-reply@acme.example' },
  to: 'jane@example.com',
  subject: 'Hello',
  text: 'Hi Jane',
};
const service = (transport: ReturnType<typeof sendmailTransport>) =>
  new EmailService({
    transport,
    from: base.from!,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
  });
/** Sends through a service, recording the errors it retried. */
async function viaService(
  transport: ReturnType<typeof sendmailTransport>,
  input: Partial<EmailMessageInput> = {},
) {
  const mail = service(transport);
  const retried: EmailError[] = [];
  mail.on('retrying', (e) => retried.push(e.error));
  const outcome = await mail.send({ ...base, ...input } as EmailMessageInput).then(
    (result) => ({ result, error: undefined }),
    (error: unknown) => ({ result: undefined, error: error as EmailError }),
  );
  return { ...outcome, retried };
}

describe('sendmailTransport through msmtp', () => {
  const peers: SmtpPeer[] = [];
  const start = async (options?: SmtpPeerOptions) => {
    const peer = await startSmtpPeer(options);
    peers.push(peer);
    return peer;
  };
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });

  it('passes the envelope as arguments: -f the sender, every recipient, Bcc only there', async () => {
    const peer = await start();
    const result = await service(msmtpFor(peer)).send({
      ...base,
      cc: 'cc@example.com',
      bcc: 'hidden@example.com',
    });
    expect(result.accepted).toEqual(['jane@example.com', 'cc@example.com', 'hidden@example.com']);
    const [got] = peer.messages;
    expect(got?.envelope).toEqual({
      mailFrom: 'no-reply@acme.example',
      rcptTo: ['jane@example.com', 'cc@example.com', 'hidden@example.com'],
    });
    expect(got?.raw.toString()).not.toContain('hidden@example.com');
  });

  it('keeps a line holding a single dot inside the body', async () => {
    const peer = await start();
    await service(msmtpFor(peer)).send({ ...base, text: 'before\n.\nafter' });
    expect((await fromMime(peer.messages[0]!.raw)).text).toBe('before\n.\nafter');
  });

  it('a recipient deferred at RCPT TO defers the whole message; the retry reaches each recipient once', async () => {
    const peer = await start();
    peer.rejectRecipient('bob@example.net', 450, 1);
    const { result, retried } = await viaService(msmtpFor(peer), {
      to: ['jane@example.com', 'bob@example.net'],
    });
    expect(retried.map((e) => [e.code, e.failure, e.status, e.causeCode])).toEqual([
      ['deferred', 'transient', 450, 'EX_UNAVAILABLE'],
    ]);
    expect(result?.attempts).toBe(2);
    expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['jane@example.com', 'bob@example.net']]);
  });

  it('a recipient refused for good (550 at RCPT TO) fails the message as permanent, delivered to nobody', async () => {
    const peer = await start();
    peer.rejectRecipient('gone@example.net', 550);
    const { error } = await viaService(msmtpFor(peer), { to: ['jane@example.com', 'gone@example.net'] });
    expect([error?.code, error?.failure, error?.status, error?.causeCode]).toEqual([
      'rejected',
      'permanent',
      550,
      'EX_DATAERR',
    ]);
    expect(error?.message).toContain('550 Recipient gone@example.net refused');
    expect(peer.transactions).toBe(1);
    expect(peer.messages).toEqual([]);
  });

  it('a server that cannot be reached is EX_TEMPFAIL: transient, retried', async () => {
    const peer = await start();
    const transport = msmtpFor(peer);
    await peer.close();
    const { error, retried } = await viaService(transport);
    expect([error?.code, error?.failure, error?.causeCode]).toEqual(['deferred', 'transient', 'EX_TEMPFAIL']);
    expect(retried).toHaveLength(2);
    expect(error?.message).toMatch(/cannot connect to 127\.0\.0\.1/);
  });

  it("msmtp's own timeout after the message went out is EX_IOERR: retried as a possible duplicate", async () => {
    const peer = await start();
    peer.failNext({ delay: 3000, at: 'data' });
    const { result, retried } = await viaService(msmtpFor(peer, { timeout: '1' }));
    expect(retried.map((e) => [e.code, e.failure, e.possibleDuplicate, e.causeCode])).toEqual([
      ['network', 'ambiguous', true, 'EX_IOERR'],
    ]);
    expect(result?.attempts).toBe(2);
    expect(peer.messages).toHaveLength(1);
  });

  it('STARTTLS required of a server that offers none is EX_UNAVAILABLE without a reply: systemic', async () => {
    const peer = await start({ starttls: false });
    const { error, retried } = await viaService(
      msmtpFor(peer, { tls: 'on', tls_starttls: 'on', tls_trust_file: writeFile('ca.pem', peer.cert) }),
    );
    expect([error?.code, error?.failure, error?.status, error?.causeCode]).toEqual([
      'config',
      'systemic',
      undefined,
      'EX_UNAVAILABLE',
    ]);
    expect(error?.message).toMatch(/STARTTLS/);
    expect(retried).toEqual([]);
  });

  it('authenticates over STARTTLS when its configuration says so', async () => {
    const peer = await start({ users: { mailer: 'correct horse' } });
    await service(msmtpFor(peer, withAuth(peer, 'correct horse'))).send(base);
    expect(peer.messages[0]).toMatchObject({ secure: true, user: 'mailer' });
  });
});

/**
 * A stand-in binary: records its arguments (one per line) and stdin in files next to it, prints
 * `stderr` there, then runs `tail` (an exit, a sleep …).
 */
function fakeBinary(
  tail: string,
  stderr = '',
): { path: string; argv: () => string[]; stdin: () => Buffer; ran: () => boolean } {
  const path = writeFile('sendmail', '', 0o700);
  const script = [
    '#!/bin/sh',
    `printf '%s\\n' "$@" > '${path}.argv'`,
    `cat > '${path}.stdin'`,
    stderr ? `printf '%s' '${stderr}' >&2` : '',
    tail,
    '',
  ].join('\n');
  writeFileSync(path, script);
  return {
    path,
    argv: () => readFileSync(`${path}.argv`, 'utf8').split('\n').slice(0, -1),
    stdin: () => readFileSync(`${path}.stdin`),
    ran: () => existsSync(`${path}.argv`),
  };
}
const send = (transport: ReturnType<typeof sendmailTransport>, input: Partial<EmailMessageInput> = {}) =>
  transport.send(createMessage({ ...base, ...input } as EmailMessageInput), { attempt: 1 });

describe('sendmailTransport with a stand-in binary', () => {
  it('writes the same bytes on every attempt of one email: Date and MIME boundaries fixed per message', async () => {
    const fake = fakeBinary('exit 0');
    const message = createMessage({ ...base, html: '<p>Hi there</p>' } as EmailMessageInput);
    const transport = sendmailTransport({ path: fake.path });
    await transport.send(message, { attempt: 1 });
    const first = fake.stdin();
    await transport.send(message, { attempt: 2 });
    expect(first.toString('latin1')).toMatch(/boundary=/);
    expect(fake.stdin().equals(first)).toBe(true);
  });

  it('runs path [...args] -i -f <from> -- <recipients> and writes the MIME message, CRLF, on stdin', async () => {
    const fake = fakeBinary('exit 0', 'queued as 4F2');
    const message = createMessage({
      ...base,
      to: ['jane@example.com', 'bob@example.net'],
      bcc: 'audit@acme.example',
    });
    const result = await sendmailTransport({ path: fake.path, args: ['-C', '/etc/msmtprc'] }).send(message, {
      attempt: 1,
    });
    expect(fake.argv()).toEqual([
      '-C',
      '/etc/msmtprc',
      '-i',
      '-f',
      'no-reply@acme.example',
      '--',
      'jane@example.com',
      'bob@example.net',
      'audit@acme.example',
    ]);
    const source = fake.stdin().toString('latin1');
    expect(source).toMatch(/\r\n\r\n/);
    expect(source.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect((await fromMime(fake.stdin())).messageId).toBe(message.messageId);
    expect(result).toMatchObject({
      messageId: message.messageId,
      accepted: ['jane@example.com', 'bob@example.net', 'audit@acme.example'],
      rejected: [],
      transport: 'sendmail',
      response: 'queued as 4F2',
    });
  });

  it.each([
    [75, 'EX_TEMPFAIL', 'deferred', 'transient'],
    [65, 'EX_DATAERR', 'rejected', 'permanent'],
    [67, 'EX_NOUSER', 'rejected', 'permanent'],
    [68, 'EX_NOHOST', 'rejected', 'permanent'],
    [69, 'EX_UNAVAILABLE', 'config', 'systemic'],
    [70, 'EX_SOFTWARE', 'config', 'systemic'],
    [71, 'EX_OSERR', 'config', 'systemic'],
    [72, 'EX_OSFILE', 'config', 'systemic'],
    [73, 'EX_CANTCREAT', 'config', 'systemic'],
    [74, 'EX_IOERR', 'network', 'ambiguous'],
    [76, 'EX_PROTOCOL', 'network', 'ambiguous'],
    [77, 'EX_NOPERM', 'auth', 'systemic'],
    [78, 'EX_CONFIG', 'config', 'systemic'],
    [64, 'EX_USAGE', 'config', 'systemic'],
    [1, undefined, 'provider', 'transient'],
  ] as const)('exit %i (%s) is %s, %s', async (status, name, code, failure) => {
    const fake = fakeBinary(`exit ${status}`, 'sendmail: something went wrong\n');
    const error = await thrown(send(sendmailTransport({ path: fake.path })));
    expect(isEmailError(error)).toBe(true);
    const e = error as EmailError;
    expect([e.code, e.failure, e.causeCode, e.status, e.transport, e.endpoint]).toEqual([
      code,
      failure,
      name,
      undefined,
      'sendmail',
      fake.path,
    ]);
    expect(
      e.message.startsWith(`sendmail ${fake.path} exited with ${status}${name ? ` (${name})` : ''}: `),
    ).toBe(true);
    expect(e.message.endsWith(': sendmail: something went wrong')).toBe(true);
  });

  it.each([
    [451, 'deferred', 'transient'],
    [554, 'rejected', 'permanent'],
  ] as const)('exit 69 quoting a %i reply follows the reply: %s', async (reply, code, failure) => {
    const fake = fakeBinary('exit 69', `msmtp: server message: ${reply} 4.3.0 try later\n`);
    const error = (await thrown(send(sendmailTransport({ path: fake.path })))) as EmailError;
    expect([error.code, error.failure, error.status]).toEqual([code, failure, reply]);
  });

  it('reads a reply quoted at the start of any line of stderr', async () => {
    const fake = fakeBinary('exit 1', 'relay: delivery failed\n550 5.1.1 <jane@example.com>: no such user\n');
    const error = (await thrown(send(sendmailTransport({ path: fake.path })))) as EmailError;
    expect([error.code, error.status, error.failure]).toEqual(['rejected', 550, 'permanent']);
  });

  it('keeps stderr to one bounded line in the error', async () => {
    const fake = fakeBinary(`head -c 20000 /dev/zero | tr '\\0' x >&2; exit 75`, 'first\nsecond\n');
    const error = (await thrown(send(sendmailTransport({ path: fake.path })))) as EmailError;
    expect(error.message).toContain(': first second xxx');
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message.length).toBeLessThan(700);
  });

  it('a binary killed by a signal it was not sent may have queued the message: ambiguous', async () => {
    const fake = fakeBinary('kill -9 $$');
    const error = (await thrown(send(sendmailTransport({ path: fake.path })))) as EmailError;
    expect([error.code, error.failure, error.causeCode]).toEqual(['network', 'ambiguous', 'SIGKILL']);
  });

  it('stops a binary that outlasts timeoutMs: timeout, a possible duplicate', async () => {
    const fake = fakeBinary('exec sleep 30');
    const error = (await thrown(send(sendmailTransport({ path: fake.path, timeoutMs: 200 })))) as EmailError;
    expect([error.code, error.failure, error.possibleDuplicate]).toEqual(['timeout', 'ambiguous', true]);
    expect(error.message).toContain('may have queued the message');
  });

  it('stops the binary when the send is aborted', async () => {
    const fake = fakeBinary('exec sleep 30');
    const controller = new AbortController();
    const sending = sendmailTransport({ path: fake.path }).send(createMessage(base), {
      attempt: 1,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    const error = (await thrown(sending)) as EmailError;
    expect([error.code, error.retryable]).toEqual(['aborted', false]);
  });

  it('a missing binary is a ConfigError naming path, from send() and from verify()', async () => {
    const transport = sendmailTransport({ path: join(dir, 'no-such-sendmail') });
    for (const error of [await thrown(send(transport)), await thrown(transport.verify())]) {
      expect(isConfigError(error) && error.option).toBe('path');
      expect((error as Error).message).toContain('does not exist');
    }
  });

  it('a file that may not be executed is a ConfigError naming path, from send() and from verify()', async () => {
    const path = writeFile('not-executable', '#!/bin/sh\nexit 0\n', 0o600);
    const transport = sendmailTransport({ path });
    for (const error of [await thrown(send(transport)), await thrown(transport.verify())]) {
      expect(isConfigError(error) && error.option).toBe('path');
      expect((error as Error).message).toContain('cannot be executed');
    }
    await expect(sendmailTransport({ path: dir }).verify()).rejects.toMatchObject({ option: 'path' });
  });

  it('verify() passes for an executable binary and runs nothing', async () => {
    const fake = fakeBinary('exit 0');
    await expect(sendmailTransport({ path: fake.path }).verify()).resolves.toBeUndefined();
    expect(fake.ran()).toBe(false);
  });

  it.each([
    ['to[1]', { to: ['jane@example.com', '-oQ/tmp/x@example.com'] }],
    ['cc[0]', { cc: '-bv@example.com' }],
    ['bcc[0]', { bcc: '-t@example.com' }],
    ['from', { from: '-f@acme.example' }],
  ] as const)(
    'refuses an address the binary would read as an option (%s), running nothing',
    async (field, input) => {
      const fake = fakeBinary('exit 0');
      const error = await thrown(send(sendmailTransport({ path: fake.path }), input));
      expect(isMessageError(error) && error.field).toBe(field);
      expect(fake.ran()).toBe(false);
    },
  );

  it('refuses a line break or NUL in an envelope address, running nothing', async () => {
    const fake = fakeBinary('exit 0');
    const message = createMessage(base);
    for (const address of ['jane@example.com\r\nBcc: x@evil.example', 'jane@example.com\0']) {
      const forged = { ...message, to: [{ address }] } as EmailMessage;
      const error = await thrown(sendmailTransport({ path: fake.path }).send(forged, { attempt: 1 }));
      expect(isMessageError(error) && error.field).toBe('to[0]');
    }
    expect(fake.ran()).toBe(false);
  });

  it.each([
    ['path', { path: 'sendmail' }, /absolute path/],
    ['path', { path: '-C/etc/evil' }, /must not start with "-"/],
    ['path', { path: '/usr/sbin/sendmail\n-x' }, /line breaks/],
    ['args[1]', { args: ['-C', '/etc/msmtprc\0'] }, /line breaks or NUL/],
    ['timeoutMs', { timeoutMs: 0 }, /at least 1/],
  ] as const)('refuses a bad %s when the transport is made', (option, options, problem) => {
    const error = (() => {
      try {
        sendmailTransport(options as SendmailTransportOptions);
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe(option);
    expect((error as Error).message).toMatch(problem);
  });

  it('close() lets a send in flight finish, then refuses new ones', async () => {
    const fake = fakeBinary('sleep 0.2; exit 0');
    const transport = sendmailTransport({ path: fake.path });
    const sending = send(transport);
    await transport.close();
    await expect(sending).resolves.toMatchObject({ transport: 'sendmail' });
    const late = await thrown(send(transport));
    expect(isEmailError(late) && late.code).toBe('aborted');
  });

  it('describes itself without its arguments, which may hold a secret', () => {
    const transport = sendmailTransport({ path: MSMTP, args: ['--passwordeval=cat /run/secret'] });
    expect(transport.describe?.()).toBe(`sendmail ${MSMTP} (1 extra argument)`);
  });
});
