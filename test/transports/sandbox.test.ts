import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isEmailError } from '../../src/errors.js';
import { createMessage } from '../../src/message.js';
import { type SandboxFiles, sandboxFiles, sandboxTransport } from '../../src/transports/sandbox.js';
import { fromMime } from '../helpers/received.js';
import { NO_REMOTE_PEER, transportContract } from './contract.js';

const dirs: string[] = [];
async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-sandbox-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

// The sandbox's peer is its folder: each .eml is parsed as a mail client would.
transportContract(
  'sandbox',
  async () => {
    const dir = await tempDir();
    return {
      transport: sandboxTransport({ dir }),
      async received() {
        const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.eml')).sort();
        return Promise.all(files.map(async (f) => fromMime(await readFile(join(dir, f)))));
      },
    };
  },
  { skip: NO_REMOTE_PEER },
);

describe('sandboxTransport', () => {
  const message = createMessage({
    from: 'Acme <no-reply@acme.example>',
    to: 'jane@example.com',
    bcc: 'audit@acme.example',
    subject: 'Your receipt',
    html: '<p>Thanks</p>',
    text: 'Thanks',
    template: 'receipt',
    tags: ['billing'],
  });

  it('writes .eml, .html, .txt and a JSON summary and says where', async () => {
    const dir = await tempDir();
    const result = await sandboxTransport({ dir }).send(message, { attempt: 1 });
    const files = sandboxFiles(result)!;
    expect(Object.keys(files).sort()).toEqual(['eml', 'html', 'json', 'text']);
    for (const path of Object.values(files)) expect(path.startsWith(dir)).toBe(true);
    expect(files.eml).toMatch(/receipt-[0-9a-f]{6}\.eml$/);
    expect(await readFile(files.html!, 'utf8')).toBe('<p>Thanks</p>');
    expect(await readFile(files.text!, 'utf8')).toBe('Thanks');
    const summary = JSON.parse(await readFile(files.json, 'utf8'));
    expect(summary).toMatchObject({
      subject: 'Your receipt',
      template: 'receipt',
      category: 'transactional',
      tags: ['billing'],
      bcc: ['audit@acme.example'],
    });
    expect(join(dir, summary.files.eml)).toBe(files.eml);
    expect((await readdir(dir)).sort()).toEqual(
      Object.values(files)
        .map((p) => p.slice(dir.length + 1))
        .sort(),
    );
  });

  it('writes a real multipart/alternative message, text before HTML', async () => {
    const dir = await tempDir();
    const files = (await sandboxTransport({ dir }).send(message, { attempt: 1 })).response as SandboxFiles;
    const eml = await readFile(files.eml, 'utf8');
    expect(eml).toMatch(/^Content-Type: multipart\/alternative;/m);
    expect(eml.indexOf('Content-Type: text/plain')).toBeLessThan(eml.indexOf('Content-Type: text/html'));
    expect(eml).toMatch(/^Date: /m);
    expect(eml).toMatch(/^MIME-Version: 1.0/m);
    expect(eml).not.toMatch(/^Bcc:/im);
  });

  it('fails with a typed, retryable io error and leaves nothing behind when the folder is unusable', async () => {
    const dir = await tempDir();
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, 'x');
    const error = await sandboxTransport({ dir: blocker })
      .send(message, { attempt: 1 })
      .catch((e: unknown) => e);
    expect(isEmailError(error) && error.code).toBe('io');
    expect(isEmailError(error) && error.retryable).toBe(true);
    expect(await readdir(dir)).toEqual(['not-a-dir']);
  });

  it('rejects a bad dir option at once', () => {
    expect(() => sandboxTransport({ dir: '' })).toThrow(TypeError);
  });
});

describe('sandboxTransport tells you where the mail went', () => {
  const message = createMessage({
    from: 'Acme <no-reply@acme.example>',
    to: 'jane@example.com',
    subject: 'Hi',
    text: 'Hello',
  });

  it('once, at the first email written to a folder, naming the folder', async () => {
    const dir = await tempDir();
    const told: string[] = [];
    const transport = sandboxTransport({ dir, onFirstWrite: (where) => told.push(where) });
    expect(told).toEqual([]); // nothing until something is captured
    await transport.send(message, { attempt: 1 });
    await transport.send(message, { attempt: 1 });
    // A second transport on the same folder in the same process says nothing more.
    await sandboxTransport({ dir, onFirstWrite: (where) => told.push(where) }).send(message, { attempt: 1 });
    expect(told).toEqual([dir]);
    expect(transport.describe?.()).toBe(`sandbox ${dir}`);
  });

  it('by default on stderr, saying nothing was delivered and what to ignore in git', async () => {
    const dir = await tempDir();
    const written: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await sandboxTransport({ dir }).send(message, { attempt: 1 });
    } finally {
      process.stderr.write = original;
    }
    expect(written).toEqual([
      `mailroom: the sandbox captured an email instead of delivering it; files in ${dir} (open the .html or .eml, or run mailroom preview; add .mailroom/ to .gitignore)\n`,
    ]);
  });
});
