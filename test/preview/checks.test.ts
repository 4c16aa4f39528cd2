/**
 * Each check fires on a fixture built to trip it (test/preview/checks/*.html: `clean.html` with
 * one mistake each) and stays quiet — no error, no warning — on `clean.html` and on every built-in
 * template with each of its preview data sets, with and without a logo.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type CheckableEmail,
  type CheckFinding,
  type CheckName,
  checkEmail,
  GMAIL_CLIP_BYTES,
} from '../../src/preview/checks.js';
import { EmailService } from '../../src/service.js';
import type { BrandOptions } from '../../src/templates/brand.js';
import { BUILTIN_FIELDS, builtinTemplatesDir } from '../../src/templates/builtins.js';
import { memoryTransport } from '../../src/transports/memory.js';

const FIXTURES = join(import.meta.dirname, 'checks');
const fixture = (name: string) => readFile(join(FIXTURES, `${name}.html`), 'utf8');
const CLEAN_TEXT =
  'Thanks for your order. It left our warehouse this morning.\n\nTrack your order: https://acme.example/orders/1042\n\nQuestions? help@acme.example';
/** SpamAssassin takes about a second a message, longer on a loaded machine. */
const SPAM_TESTS = 120_000;

async function email(html: string, overrides: Partial<CheckableEmail> = {}): Promise<CheckableEmail> {
  return { subject: 'Your order is on its way', html: await fixture(html), text: CLEAN_TEXT, ...overrides };
}

/** The findings that need a person: errors and warnings. */
function loud(findings: readonly CheckFinding[], check?: CheckName): CheckFinding[] {
  return findings.filter((f) => f.severity !== 'info' && (check === undefined || f.check === check));
}

describe('each check on a fixture built to trip it', () => {
  it('is quiet on the clean fixture', async () => {
    const report = await checkEmail(await email('clean'), { spam: false, production: true });
    expect(loud(report.findings)).toEqual([]);
    expect(report.errors + report.warnings).toBe(0);
  });

  it('client-support: gap and <video> (two client families or more) are warnings, from caniemail', async () => {
    const report = await checkEmail(await email('client-support'), { spam: false });
    const found = loud(report.findings, 'client-support');
    expect(found.map((f) => f.message.split(' is not supported')[0])).toEqual([
      'gap, column-gap, row-gap',
      '<video> element',
    ]);
    const video = found.find((f) => f.message.startsWith('<video>'));
    expect(video?.message).toMatch(/Gmail \(Desktop Webmail, iOS, Android\), Outlook \(Windows, /);
    expect(video?.message).toContain('https://www.caniemail.com/features/html-video/');
    expect(video?.where).toBe('<video>');
  });

  it('client-support: what one family lacks (display:flex, Outlook for Windows) is info', async () => {
    const report = await checkEmail(await email('client-support'), { spam: false });
    const flex = report.findings.filter((f) => f.message.startsWith('display:flex'));
    expect(flex).toEqual([
      {
        check: 'client-support',
        severity: 'info',
        message:
          'display:flex is not supported by Outlook (Windows); https://www.caniemail.com/features/css-display-flex/',
        where: 'style of <div>',
      },
    ]);
  });

  it('client-support: only the clients asked for', async () => {
    const report = await checkEmail(await email('client-support'), {
      spam: false,
      clients: ['apple-mail/ios'],
    });
    expect(report.findings.filter((f) => f.message.startsWith('display:flex'))).toEqual([]);
  });

  it('links: not https, this machine, a staging host, no href, malformed, relative, a script', async () => {
    const report = await checkEmail(await email('links'), {
      spam: false,
      production: true,
      stagingHosts: ['.staging.acme.example'],
    });
    const messages = loud(report.findings, 'links').map((f) => `${f.severity}: ${f.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        'warning: "http://acme.example/orders/1042" is not https',
        'error: localhost:3000 is this machine: no recipient can reach it',
        'error: app.staging.acme.example is a staging host: no recipient can reach it',
        'warning: a link without href: "Track (no href)" cannot be followed',
        'error: "https://exa mple.com/" is a malformed URL',
        'error: "/orders/1042" is not an absolute URL: an email has no page to be relative to',
        'error: "javascript:alert(1)": the javascript: scheme does not belong in an email',
      ]),
    );
  });

  it('links: a local host is info outside production', async () => {
    const report = await checkEmail(await email('links'), { spam: false, production: false });
    const local = report.findings.filter((f) => f.message.startsWith('localhost:3000'));
    expect(local.map((f) => f.severity)).toEqual(['info']);
    // Not listed as staging: not reported.
    expect(report.findings.some((f) => f.message.startsWith('app.staging'))).toBe(false);
  });

  it('a wrong argument is a TypeError naming it', async () => {
    await expect(checkEmail({ subject: 42 } as never)).rejects.toThrow(
      /^checkEmail: email\.subject must be a string$/,
    );
    await expect(checkEmail(await email('clean'), { clients: ['Outlook'] })).rejects.toThrow(
      /options\.clients/,
    );
  });

  it('links: a malformed stagingHosts entry is a ConfigError naming it', async () => {
    await expect(
      checkEmail(await email('clean'), { spam: false, stagingHosts: ['https://x.example'] }),
    ).rejects.toThrow(/stagingHosts/);
  });

  it('images: no alt, no width or height, not https, this machine', async () => {
    const report = await checkEmail(await email('images'), { spam: false, production: true });
    const messages = loud(report.findings, 'images').map((f) => `${f.severity}: ${f.message} @ ${f.where}`);
    expect(messages).toEqual([
      'error: 127.0.0.1 is this machine: no recipient can reach it @ <img src="https://127.0.0.1/pixel.png">',
      'warning: an image without alt: screen readers and clients that block images show nothing (alt="" for decoration) @ <img src="http://acme.example/logo.png">',
      'warning: an image without width or height: the layout jumps as it loads, and Outlook shows it at its file\'s size @ <img src="http://acme.example/logo.png">',
      'warning: "http://acme.example/logo.png" is not https @ <img src="http://acme.example/logo.png">',
      'warning: an image without width or height: the layout jumps as it loads, and Outlook shows it at its file\'s size @ <img src="https://acme.example/banner.png">',
    ]);
  });

  it("size: over Gmail's 102 KB clipping is an error, close to it a warning", async () => {
    const clean = await fixture('clean');
    const padded = (bytes: number) =>
      clean.replace('</body>', `<!-- ${'x'.repeat(bytes - clean.length)} --></body>`);
    const over = await checkEmail(await email('clean', { html: padded(GMAIL_CLIP_BYTES + 100) }), {
      spam: false,
    });
    expect(loud(over.findings, 'size')).toEqual([expect.objectContaining({ severity: 'error' })]);
    expect(loud(over.findings, 'size')[0]?.message).toMatch(/^the HTML is 102\.\d KB: Gmail clips/);
    const near = await checkEmail(await email('clean', { html: padded(GMAIL_CLIP_BYTES - 2000) }), {
      spam: false,
    });
    expect(loud(near.findings, 'size').map((f) => f.severity)).toEqual(['warning']);
  });

  it('text-links: a link of the HTML missing from the text part, and no text part at all', async () => {
    const missing = await checkEmail(await email('clean', { text: 'Thanks for your order.' }), {
      spam: false,
    });
    expect(loud(missing.findings, 'text-links').map((f) => f.message)).toEqual([
      'the text part does not have the link https://acme.example/orders/1042',
    ]);
    const none = await checkEmail(await email('clean', { text: undefined }), { spam: false });
    expect(loud(none.findings, 'text-links').map((f) => f.message)).toEqual([
      'no text part, and the HTML has 1 link(s)',
    ]);
  });

  it('subject: empty is an error, over 60 characters a warning', async () => {
    const empty = await checkEmail(await email('clean', { subject: '  ' }), { spam: false });
    expect(loud(empty.findings, 'subject').map((f) => f.severity)).toEqual(['error']);
    const long = await checkEmail(
      await email('clean', { subject: 'Your order 1042 from Acme Outdoor Supplies has left the warehouse' }),
      {
        spam: false,
      },
    );
    expect(loud(long.findings, 'subject').map((f) => f.message)).toEqual([
      'the subject has 65 characters: over 60, inboxes cut it off',
    ]);
  });

  it('preheader: none in the HTML', async () => {
    const report = await checkEmail(await email('preheader'), { spam: false });
    expect(loud(report.findings, 'preheader').map((f) => f.severity)).toEqual(['warning']);
    const given = await checkEmail(await email('preheader', { preheader: 'Your order is on its way' }), {
      spam: false,
    });
    expect(loud(given.findings, 'preheader')).toEqual([]);
  });

  it(
    'spam: GTUBE is an error with the rule that fired; the clean fixture scores under half the threshold',
    async () => {
      const spam = await checkEmail(
        await email('spam', { text: 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X' }),
      );
      const found = spam.findings.filter((f) => f.check === 'spam');
      expect(found).toEqual([expect.objectContaining({ severity: 'error', where: 'spamassassin' })]);
      expect(found[0]?.message).toMatch(
        /^SpamAssassin scores it \d+(\.\d+)? \(spam from 5(\.0)?\): .*GTUBE 1000/,
      );
      const clean = await checkEmail(await email('clean'));
      expect(clean.findings.filter((f) => f.check === 'spam').map((f) => f.severity)).toEqual(['info']);
    },
    SPAM_TESTS,
  );

  it('spam: without SpamAssassin installed, says so (info) and fails nothing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'mailroom-nopath-'));
    const path = process.env.PATH;
    process.env.PATH = empty;
    try {
      const report = await checkEmail(await email('spam'));
      expect(report.findings.filter((f) => f.check === 'spam')).toEqual([
        {
          check: 'spam',
          severity: 'info',
          message: 'no spam score: SpamAssassin is not installed (apt-get install spamassassin)',
        },
      ]);
    } finally {
      process.env.PATH = path;
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('the built-in templates', () => {
  const BRANDS: Record<string, BrandOptions> = {
    'default brand': {},
    'a logo': { logoUrl: 'https://acme.example/logo.png', url: 'https://acme.example' },
  };
  let services: EmailService[] = [];
  afterAll(() => {
    services = [];
  });

  for (const [brandName, brand] of Object.entries(BRANDS)) {
    it(`are quiet with every preview data set (${brandName}), but for a long name's long subject`, async () => {
      const service = new EmailService({
        transport: memoryTransport(),
        from: 'Acme <no-reply@acme.example>',
        brand,
      });
      services.push(service);
      const loudOnes: string[] = [];
      let checked = 0;
      for (const template of Object.keys(BUILTIN_FIELDS)) {
        const dir = join(builtinTemplatesDir(), template, 'preview');
        for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()) {
          const data = JSON.parse(await readFile(join(dir, file), 'utf8'));
          const report = await checkEmail(service.render(template as 'welcome', data), {
            spam: false,
            production: true,
          });
          checked++;
          for (const f of loud(report.findings))
            loudOnes.push(`${template}/${file}: ${f.check} ${f.message}`);
        }
      }
      expect(checked).toBeGreaterThanOrEqual(22);
      // The long-name data set is there to show what a long name does: this is what it does.
      expect(loudOnes).toEqual([
        'welcome/long-name.json: subject the subject has 79 characters: over 60, inboxes cut it off',
        // The long-values sets of the content library do the same with a long headline, task or reference.
        'product-update/long-values.json: subject the subject has 85 characters: over 60, inboxes cut it off',
        'reminder/long-values.json: subject the subject has 95 characters: over 60, inboxes cut it off',
        'order-confirmation/long-values.json: subject the subject has 66 characters: over 60, inboxes cut it off',
      ]);
    });
  }
});
