import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEmailError, isMessageError } from '../../src/errors.js';
import { createMessage } from '../../src/message.js';
import { EmailService } from '../../src/service.js';
import { heldId, holdTransport } from '../../src/transports/hold.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { postmarkTransport } from '../../src/transports/postmark.js';
import { smtpTransport } from '../../src/transports/smtp.js';
import { stagingTransport } from '../../src/transports/staging.js';
import { fromMessage, fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';
import { transportContract } from './contract.js';

const dirs: string[] = [];
async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-hold-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

// The hold's peer is what comes out the other side: everything held is released into a memory
// outbox, so each case checks that holding and releasing loses and changes nothing.
transportContract(
  'hold',
  async () => {
    const inner = memoryTransport();
    const transport = holdTransport({ transport: inner, dir: await tempDir(), onFirstWrite: false });
    return {
      transport,
      async received() {
        await transport.release('all');
        return inner.outbox.map((entry) => fromMessage(entry.message));
      },
    };
  },
  {
    skip: {
      auth: 'holding sends nothing: a release meets the transport behind, tested below against SMTP',
      transient: 'holding sends nothing: nothing remote to refuse it',
      permanent: 'holding sends nothing: nothing remote to refuse it',
      drop: 'holding sends nothing: no connection to drop',
      slow: 'holding sends nothing: no remote peer to stall',
      deferred: 'holding sends nothing: no remote peer to defer a recipient',
    },
  },
);

const FROM = 'Acme <no-reply@acme.example>';
const welcome = {
  to: ['jane@example.com'],
  cc: ['boss@example.com'],
  subject: 'Welcome, Jane',
  html: '<p>Welcome</p>',
  text: 'Welcome',
  attachments: [{ filename: 'terms.pdf', content: new Uint8Array([37, 80, 68, 70, 0, 255]) }],
};

describe('holdTransport against a real SMTP server', () => {
  let peer: SmtpPeer;
  let dir: string;
  const smtp = () => smtpTransport({ host: peer.host, port: peer.port, ca: peer.cert });
  const hold = (transport = smtp()) => holdTransport({ transport, dir, onFirstWrite: false });
  /** Holds one email through a service, as an app does; returns the hold and the email's id. */
  const held = async (input: object = welcome) => {
    const transport = hold();
    const result = await new EmailService({ transport, from: FROM }).send(input as typeof welcome);
    return { transport, id: heldId(result)! };
  };

  beforeEach(async () => {
    peer = await startSmtpPeer();
    dir = await tempDir();
  });
  afterEach(() => peer.close());

  it('holds without sending, then releases to the original recipients and records it', async () => {
    const { transport, id } = await held();
    expect(peer.transactions).toBe(0);
    const [email] = await transport.list();
    expect(email).toMatchObject({ id, status: 'held', subject: 'Welcome, Jane', to: ['jane@example.com'] });
    expect(existsSync(email!.files.eml)).toBe(true);

    const [result] = await transport.release([id]);
    expect(result?.outcome).toBe('released');
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]?.envelope.rcptTo).toEqual(['jane@example.com', 'boss@example.com']);
    const got = await fromMime(peer.messages[0]!.raw);
    expect(got.subject).toBe('Welcome, Jane');
    expect(got.messageId).toBe(email?.messageId);
    expect([...(got.attachments[0]?.content ?? [])]).toEqual([37, 80, 68, 70, 0, 255]);

    const after = await transport.get(id);
    expect(after?.status).toBe('released');
    expect(after?.history).toHaveLength(1);
    expect(after?.history[0]).toMatchObject({
      action: 'release',
      to: ['jane@example.com', 'boss@example.com'],
      result: { transport: 'smtp', accepted: ['jane@example.com', 'boss@example.com'], rejected: [] },
    });
    expect(Date.parse(after!.history[0]!.at)).not.toBeNaN();
    await transport.close?.();
  });

  it('a double click sends once: two releases at the same time, and one after', async () => {
    const { transport, id } = await held();
    const [a, b] = await Promise.all([transport.release([id]), transport.release([id])]);
    const outcomes = [a[0]?.outcome, b[0]?.outcome].sort();
    expect(outcomes[1]).toBe('released');
    expect(['busy', 'already-released']).toContain(outcomes[0]);
    expect((await transport.release([id]))[0]?.outcome).toBe('already-released');
    expect(peer.messages).toHaveLength(1);
    await transport.close?.();
  });

  it('two holds on one folder (two processes, two people) release an email once', async () => {
    const { transport, id } = await held();
    const other = hold();
    const results = await Promise.all([
      transport.release([id]),
      other.release([id]),
      other.release('all'),
      transport.release([id]),
    ]);
    expect(results.flat().filter((r) => r.outcome === 'released')).toHaveLength(1);
    expect(peer.messages).toHaveLength(1);
    await Promise.all([transport.close?.(), other.close?.()]);
  });

  it.each([
    [550, 'rejected', 'permanent'],
    [451, 'deferred', 'transient'],
  ])(
    'a release the server answers %i fails with its typed error and stays held',
    async (reply, code, failure) => {
      const { transport, id } = await held();
      peer.failNext({ reply, at: 'data', message: 'Not today' });
      const [result] = await transport.release([id]);
      expect(result?.outcome).toBe('failed');
      const error = result?.outcome === 'failed' ? result.error : undefined;
      expect(isEmailError(error)).toBe(true);
      expect([error?.code, error?.failure, error?.status]).toEqual([code, failure, reply]);
      const after = await transport.get(id);
      expect(after?.status).toBe('held');
      expect(after?.busy).toBe(false);
      expect(after?.history[0]).toMatchObject({ action: 'release', error: { code, status: reply } });
      expect(peer.messages).toHaveLength(0);

      // Once the server takes it, the same email goes, once.
      expect((await transport.release([id]))[0]?.outcome).toBe('released');
      expect(peer.messages).toHaveLength(1);
      expect((await transport.get(id))?.history.map((r) => (r.error ? 'failed' : 'released'))).toEqual([
        'failed',
        'released',
      ]);
      await transport.close?.();
    },
  );

  it('keeps status and history across a restart', async () => {
    const first = await held();
    const second = await held({ ...welcome, subject: 'Second' });
    await first.transport.release([first.id]);
    await first.transport.discard([second.id]);
    await Promise.all([first.transport.close?.(), second.transport.close?.()]);

    const restarted = hold();
    const byId = Object.fromEntries((await restarted.list()).map((e) => [e.id, e]));
    expect(byId[first.id]?.status).toBe('released');
    expect(byId[first.id]?.history[0]?.result?.accepted).toEqual(['jane@example.com', 'boss@example.com']);
    expect(byId[second.id]?.status).toBe('discarded');
    expect((await restarted.release('all')).length).toBe(0);
    expect((await restarted.release([second.id]))[0]?.outcome).toBe('discarded');
    expect(peer.messages).toHaveLength(1);
    // Only whole files are ever left: no temporary file survives a write.
    expect((await readdir(join(dir, '.hold'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await restarted.close?.();
  });

  it('releases to one typed address instead, naming the original recipients', async () => {
    const { transport, id } = await held();
    const [result] = await transport.release([id], { to: 'Proofreader <qa@acme.example>' });
    expect(result?.outcome).toBe('released');
    expect(peer.messages[0]?.envelope.rcptTo).toEqual(['qa@acme.example']);
    const got = await fromMime(peer.messages[0]!.raw);
    expect(got.to).toEqual(['qa@acme.example']);
    expect(got.cc).toEqual([]);
    expect(got.headers['x-mailroom-original-recipients']).toBe('jane@example.com, boss@example.com');
    expect((await transport.get(id))?.history[0]?.to).toEqual(['qa@acme.example']);
    await transport.close?.();
  });

  it('released to one typed address, blind copies are counted, never named (as staging does)', async () => {
    const { transport, id } = await held({ ...welcome, bcc: ['secret@example.org'] });
    await transport.release([id], { to: 'qa@acme.example' });
    const got = await fromMime(peer.messages[0]!.raw);
    expect(got.headers['x-mailroom-original-recipients']).toBe(
      'jane@example.com, boss@example.com, (and 1 blind copy)',
    );
    expect(peer.messages[0]!.raw.toString()).not.toContain('secret@example.org');
    await transport.close?.();
  });

  it.each([
    ['a line break', 'qa@acme.example\r\nBcc: all@evil.example'],
    ['no domain', 'qa@'],
    ['two addresses', 'qa@acme.example, boss@acme.example'],
    ['a bare word', 'proofreader'],
  ])('refuses a typed address with %s, naming to, and sends nothing', async (_, to) => {
    const { transport, id } = await held();
    const error = await transport.release([id], { to }).catch((e: unknown) => e);
    expect(isMessageError(error) && error.field).toBe('to');
    expect((await transport.get(id))?.status).toBe('held');
    expect(peer.transactions).toBe(0);
    await transport.close?.();
  });

  it.each(['../x', '../../etc/passwd', '.hold', 'a/b', '', '..', 'x\u0000y'])(
    'refuses the hostile id %j before touching a file',
    async (hostile) => {
      const { transport, id } = await held();
      const calls: (() => Promise<unknown>)[] = [
        () => transport.release([id, hostile]),
        () => transport.discard([hostile]),
        () => transport.get(hostile),
      ];
      for (const call of calls) {
        const error = await Promise.resolve()
          .then(call)
          .catch((e: unknown) => e);
        expect(isMessageError(error)).toBe(true);
        expect((error as { field: string }).field).toMatch(/^(ids\[\d\]|id)$/);
      }
      // The valid id in the same call was not released either: the list is checked first.
      expect((await transport.get(id))?.status).toBe('held');
      expect(peer.transactions).toBe(0);
      await transport.close?.();
    },
  );

  it('lists the other emails when one of them has a broken file', async () => {
    const first = await held();
    const second = await held({ ...welcome, subject: 'Second' });
    await writeFile(join(dir, '.hold', `${first.id}.message.json`), '{ not json');
    expect((await second.transport.list()).map((e) => e.id)).toEqual([second.id]);
    await expect(second.transport.get(first.id)).rejects.toThrow(SyntaxError);
    await Promise.all([first.transport.close?.(), second.transport.close?.()]);
  });

  it('answers not-found for a well-formed id the hold does not have', async () => {
    const transport = hold();
    expect(await transport.release(['2026-01-01T00-00-00-000Z-nope-000000'])).toEqual([
      { id: '2026-01-01T00-00-00-000Z-nope-000000', outcome: 'not-found' },
    ]);
    await transport.close?.();
  });

  it('applies the staging allowlist behind it on release', async () => {
    const inner = memoryTransport();
    const transport = holdTransport({
      transport: stagingTransport({ transport: inner, allow: ['@acme.example'] }),
      dir,
      onFirstWrite: false,
    });
    const mail = new EmailService({ transport, from: FROM });
    const { id } = {
      id: heldId(await mail.send({ ...welcome, to: ['jane@example.com', 'qa@acme.example'] }))!,
    };
    const [result] = await transport.release([id]);
    expect(result?.outcome === 'released' && result.record.result).toMatchObject({
      accepted: ['qa@acme.example'],
      rejected: ['jane@example.com', 'boss@example.com'],
    });
    expect(inner.outbox[0]?.message.subject).toBe('[STAGING] Welcome, Jane');

    // Released to someone off the list: the staging refusal is the release's typed error.
    const other = heldId(await mail.send(welcome))!;
    const [refused] = await transport.release([other]);
    expect(refused?.outcome === 'failed' && refused.error.code).toBe('rejected');
    expect((await transport.get(other))?.status).toBe('held');
    // Staged, as what it releases through is: failover will not put it beside an unstaged one.
    expect(transport.staged).toBe(true);
    expect(holdTransport({ transport: inner, dir, onFirstWrite: false }).staged).toBeUndefined();
  });

  it('discards: a discarded email is never released', async () => {
    const { transport, id } = await held();
    expect(await transport.discard([id])).toEqual([{ id, outcome: 'discarded' }]);
    expect(await transport.discard([id])).toEqual([{ id, outcome: 'already-discarded' }]);
    expect(await transport.release([id])).toEqual([{ id, outcome: 'discarded' }]);
    expect(await transport.release('all')).toEqual([]);
    expect(peer.transactions).toBe(0);
    await transport.close?.();
  });

  it('an interrupted release (its process died holding the claim) is left for a person to check', async () => {
    const { transport, id } = await held();
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const claim = join(dir, '.hold', `${id}.lock`);
    await writeFile(claim, JSON.stringify({ pid: dead, host: hostname(), at: new Date().toISOString() }));
    expect(await transport.release([id])).toEqual([{ id, outcome: 'interrupted' }]);
    expect(await transport.get(id)).toMatchObject({ interrupted: true, busy: false, claimFile: claim });
    expect(peer.transactions).toBe(0);
    // Someone checked the inbox and removed the claim: it can go now.
    await rm(claim);
    expect((await transport.release([id]))[0]?.outcome).toBe('released');
    await transport.close?.();
  });

  it('a release that went out but could not be recorded keeps its claim, so it is not sent again', async () => {
    const inner = memoryTransport();
    const state = (id: string) => join(dir, '.hold', `${id}.state.json`);
    let breakFolder: string | undefined;
    const transport = holdTransport({
      dir,
      onFirstWrite: false,
      transport: {
        name: 'flaky-disk',
        async send(message, context) {
          // The disk fails between the send and its record: the state file cannot be replaced.
          if (breakFolder) {
            await rename(state(breakFolder), `${state(breakFolder)}.bak`);
            await mkdir(state(breakFolder));
            await writeFile(join(state(breakFolder), 'x'), 'x');
          }
          return inner.send(message, context);
        },
      },
    });
    const id = heldId(await new EmailService({ transport, from: FROM }).send(welcome))!;
    breakFolder = id;
    const error = await transport.release([id]).catch((e: unknown) => e);
    expect(isEmailError(error) && [error.code, error.transport]).toEqual(['io', 'hold']);
    expect((error as Error).message).toMatch(/was released through memory .* but could not be recorded/);
    expect(inner.outbox).toHaveLength(1);
    // The disk is back: the email still reads as held, but its claim stands.
    breakFolder = undefined;
    await rm(state(id), { recursive: true });
    await rename(`${state(id)}.bak`, state(id));
    expect(await transport.release([id])).toEqual([{ id, outcome: 'busy' }]);
    expect(await transport.release('all')).toEqual([{ id, outcome: 'busy' }]);
    expect((await transport.get(id))?.busy).toBe(true);
    expect(inner.outbox).toHaveLength(1);
  });

  it('a claim file left empty (its process died creating it) still claims', async () => {
    const { transport, id } = await held();
    await writeFile(join(dir, '.hold', `${id}.lock`), '');
    expect(await transport.release([id])).toEqual([{ id, outcome: 'busy' }]);
    expect((await transport.get(id))?.busy).toBe(true);
    expect(peer.transactions).toBe(0);
    await transport.close?.();
  });

  it('never sends when an email is held, even through a service that retries', async () => {
    const inner = memoryTransport();
    const transport = holdTransport({ transport: inner, dir, onFirstWrite: false });
    const result = await new EmailService({ transport, from: FROM }).send(welcome);
    expect(result.transport).toBe('hold');
    expect(inner.outbox).toHaveLength(0);
    const state = JSON.parse(await readFile(join(dir, '.hold', `${heldId(result)}.state.json`), 'utf8'));
    expect(state).toMatchObject({ status: 'held', history: [] });
  });

  it('refuses when held what its release would refuse, and holds nothing', async () => {
    const postmark = postmarkTransport({ serverToken: 'pm-token', baseUrl: 'http://127.0.0.1:9' });
    const transport = holdTransport({ transport: postmark, dir, onFirstWrite: false });
    const error = await new EmailService({ transport, from: FROM })
      .send({ ...welcome, tags: ['welcome', 'onboarding'] })
      .catch((e) => e);
    expect(isMessageError(error) && error.field).toBe('tags');
    expect(await transport.list()).toEqual([]);
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it('a recipient the server deferred on release stays held, and the next release goes to them only', async () => {
    const { transport, id } = await held();
    peer.rejectRecipient('boss@example.com', 450, 1);
    const [first] = await transport.release([id]);
    expect(first?.outcome).toBe('released');
    expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['jane@example.com']]);
    expect((await transport.get(id))?.status).toBe('held');
    const [second] = await transport.release('all');
    expect(second?.outcome).toBe('released');
    // Only the deferred one, the same message (Message-ID) the others got; then it is released.
    expect(peer.messages.map((m) => m.envelope.rcptTo)).toEqual([['jane@example.com'], ['boss@example.com']]);
    const [a, b] = await Promise.all(peer.messages.map((m) => fromMime(m.raw)));
    expect(b?.messageId).toBe(a?.messageId);
    expect((await transport.get(id))?.status).toBe('released');
    expect((await transport.release([id]))[0]?.outcome).toBe('already-released');
    await transport.close?.();
  });

  it('a release that may have gone out (dropped after DATA) keeps its claim: not sent twice', async () => {
    const { transport, id } = await held();
    peer.failNext({ drop: 'after-data' });
    const [first] = await transport.release([id]);
    expect(first?.outcome).toBe('failed');
    expect(first?.outcome === 'failed' && first.error.message).toMatch(
      /may have been delivered .*claim .* is kept/,
    );
    // However often it is asked again, nothing more reaches the server until a person removes the claim.
    const again = await transport.release([id]);
    expect(['busy', 'interrupted']).toContain(again[0]?.outcome);
    expect(peer.transactions).toBe(1);
    await rm((await transport.get(id))!.claimFile);
    expect((await transport.release([id]))[0]?.outcome).toBe('released');
    await transport.close?.();
  });

  it('refuses a release that would go another way than the email was held for (another key, server or staging rule)', async () => {
    const { transport, id } = await held();
    // The same folder, released through a transport whose start-up line differs: a staging rule here.
    const elsewhere = holdTransport({
      transport: stagingTransport({ transport: smtp(), allow: ['@example.com'] }),
      dir,
      onFirstWrite: false,
    });
    const [result] = await elsewhere.release([id]);
    expect(result?.outcome).toBe('failed');
    expect(result?.outcome === 'failed' && [result.error.code, result.error.message]).toEqual([
      'config',
      expect.stringMatching(/was held to go through smtp .* and this release would go through smtp .*staged/),
    ]);
    expect(peer.transactions).toBe(0);
    expect((await transport.get(id))?.status).toBe('held');
    // Where it was held, it goes.
    expect((await transport.release([id]))[0]?.outcome).toBe('released');
    await Promise.all([transport.close?.(), elsewhere.close?.()]);
  });

  it('releases with the category and language it was sent with', async () => {
    const inner = memoryTransport();
    const transport = holdTransport({ transport: inner, dir, onFirstWrite: false });
    const mail = new EmailService({ transport, from: FROM, appName: 'Acme' });
    await mail.send({ ...welcome, category: 'security', locale: 'de' });
    await transport.release('all');
    expect(inner.outbox[0]?.message).toMatchObject({ category: 'security', locale: 'de' });
  });

  it('names its sender after the app, never "Mailroom": the released mail reaches real inboxes', () => {
    expect(() => new EmailService({ transport: hold(), from: 'no-reply@acme.example' })).toThrow(
      /appName: required with the hold transport/,
    );
  });

  it('needs a transport to release through', () => {
    expect(() => holdTransport({} as never)).toThrow(TypeError);
    expect(() => holdTransport({ transport: memoryTransport(), dir: '' })).toThrow(/dir/);
    expect(createMessage).toBeTypeOf('function');
  });
});
