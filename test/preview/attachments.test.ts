/**
 * The attachments list of a captured email, read back from the `.eml` the sandbox writes: names
 * (RFC 2231 and RFC 2047 encoded), types, decoded sizes and bytes; and the dark-mode rewrite.
 */
import { describe, expect, it } from 'vitest';
import { EmailService, memoryTransport } from '../../src/index.js';
import { attachmentsOf } from '../../src/preview/attachments.js';
import { colorScheme } from '../../src/preview/handler.js';
import { buildMime } from '../../src/transports/nodemailer-mapping.js';

async function eml(attachments: { filename: string; content: string | Buffer; contentType?: string }[]) {
  const memory = memoryTransport();
  const mail = new EmailService({ transport: memory, from: 'no-reply@acme.example', appName: 'Acme' });
  await mail.send({
    to: 'jane@example.com',
    subject: 'Files',
    html: '<p>Files</p>',
    text: 'Files',
    attachments,
  });
  return (await buildMime(memory.outbox[0]!.message, new Date())).toString();
}

describe('attachmentsOf', () => {
  it('lists each attachment with its name, type and decoded size, and gives its bytes', async () => {
    const pdf = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 256));
    const found = attachmentsOf(
      await eml([
        {
          filename: 'Rechnung für Dezember, sehr langer Name damit er umbrochen wird.pdf',
          content: pdf,
          contentType: 'application/pdf',
        },
        { filename: 'notes.txt', content: 'ligne 1 – é\nline 2\n' },
        { filename: '日本語.csv', content: 'a,b\n1,2\n', contentType: 'text/csv' },
      ]),
    );
    expect(found.map(({ content: _c, ...shown }) => shown)).toEqual([
      {
        index: 0,
        filename: 'Rechnung für Dezember, sehr langer Name damit er umbrochen wird.pdf',
        contentType: 'application/pdf',
        size: 5000,
      },
      {
        index: 1,
        filename: 'notes.txt',
        contentType: 'text/plain',
        size: Buffer.byteLength('ligne 1 – é\nline 2\n'),
      },
      { index: 2, filename: '日本語.csv', contentType: 'text/csv', size: 8 },
    ]);
    expect(found[0]!.content.equals(pdf)).toBe(true);
    expect(found[1]!.content.toString('utf8')).toBe('ligne 1 – é\nline 2\n');
  });

  it('finds none in an email without attachments: the HTML and text parts are not attachments', async () => {
    expect(attachmentsOf(await eml([]))).toEqual([]);
  });
});

describe('colorScheme', () => {
  const css =
    '@media (prefers-color-scheme: dark) { body { background: #111 } } @media screen and (prefers-color-scheme:light) { body { background: #fff } }';
  it('makes the dark rules always match and the light ones never, for ?scheme=dark', () => {
    expect(colorScheme(css, new URLSearchParams('scheme=dark'))).toBe(
      '@media (min-width: 0px) { body { background: #111 } } @media screen and (max-width: -1px) { body { background: #fff } }',
    );
  });
  it('the other way round for ?scheme=light, and leaves the email alone without it', () => {
    expect(colorScheme(css, new URLSearchParams('scheme=light'))).toContain(
      '@media (max-width: -1px) { body { background: #111 } }',
    );
    expect(colorScheme(css, new URLSearchParams(''))).toBe(css);
    expect(colorScheme(css, new URLSearchParams('scheme=sepia'))).toBe(css);
  });
});
