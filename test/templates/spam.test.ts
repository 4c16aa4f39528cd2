/**
 * Each built-in email through Debian's SpamAssassin, local rules only (`-L`: no network tests), as
 * the sandbox writes it (the same MIME the SMTP transport sends): every one must score ≤ 0.1. A
 * missing `spamassassin` is a failure with the command that installs it, never a skipped test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmailService } from '../../src/service.js';
import type { BrandOptions } from '../../src/templates/brand.js';
import { BUILTIN_FIELDS, builtinTemplatesDir } from '../../src/templates/builtins.js';
import { sandboxTransport } from '../../src/transports/sandbox.js';

/** The highest score a built-in may get: the informational rules only. */
const MAX_SCORE = 0.1;
/** One SpamAssassin run takes about a second here, and longer on a loaded machine: two dozen of them per test. */
const SPAMASSASSIN_TESTS = 600_000;
const FROM = 'Acme <no-reply@acme.example>';
const BRANDS: Record<string, BrandOptions> = {
  'default brand': {},
  'a logo and a home page': { logoUrl: 'https://acme.example/logo.png', url: 'https://acme.example' },
};

let root: string;

beforeAll(async () => {
  const found = spawnSync('spamassassin', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error(
      'SpamAssassin is needed for this test and is not installed: apt-get install spamassassin ' +
        '(npm test installs it through test/setup/system.sh)',
    );
  }
  root = await mkdtemp(join(tmpdir(), 'mailroom-spam-'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** The built-in emails and every data set their preview offers. */
async function cases(): Promise<[template: string, dataSet: string, data: Record<string, unknown>][]> {
  const out: [string, string, Record<string, unknown>][] = [];
  for (const template of Object.keys(BUILTIN_FIELDS)) {
    const dir = join(builtinTemplatesDir(), template, 'preview');
    for (const file of (await readdir(dir)).filter((name) => name.endsWith('.json')).sort()) {
      out.push([template, file.slice(0, -5), JSON.parse(await readFile(join(dir, file), 'utf8'))]);
    }
  }
  return out;
}

interface Verdict {
  score: number;
  tests: string[];
  report: string;
}

/** SpamAssassin's verdict on one message: `spamassassin -L -t` prints the report and the headers it adds. */
function assess(eml: string, home: string): Verdict {
  const output = execFileSync('spamassassin', ['-L', '-t'], {
    input: eml,
    encoding: 'utf8',
    env: { ...process.env, HOME: home },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const status = /^X-Spam-Status: (.*(?:\n[ \t].*)*)/m.exec(output)?.[1]?.replace(/\s+/g, ' ') ?? '';
  const score = /score=(-?[\d.]+)/.exec(status)?.[1];
  if (score === undefined) throw new Error(`SpamAssassin gave no score:\n${output.slice(0, 2000)}`);
  const tests = (/tests=(\S*)/.exec(status)?.[1] ?? '').split(',').filter(Boolean);
  const report = /^ pts rule name[\s\S]*?\n\n/m.exec(output)?.[0] ?? '';
  return { score: Number(score), tests, report };
}

describe('the built-in emails in a local SpamAssassin run', () => {
  for (const [brandName, brand] of Object.entries(BRANDS)) {
    it(
      `each scores at most ${MAX_SCORE}, with every preview data set (${brandName})`,
      async () => {
        const dir = await mkdtemp(join(root, 'outbox-'));
        const service = new EmailService({ transport: sandboxTransport({ dir }), from: FROM, brand });
        const verdicts: Record<string, Verdict> = {};
        for (const [template, dataSet, data] of await cases()) {
          await service.sendTemplate(template as 'verification', {
            to: 'jane@example.com',
            data: data as never,
          });
          const emls = (await readdir(dir)).filter((name) => name.endsWith('.eml')).sort();
          const eml = await readFile(join(dir, emls.at(-1) as string), 'utf8');
          await rm(join(dir, emls.at(-1) as string));
          verdicts[`${template} (${dataSet})`] = assess(eml, root);
        }
        expect(Object.keys(verdicts).length).toBeGreaterThanOrEqual(20);
        const over = Object.entries(verdicts).filter(([, verdict]) => verdict.score > MAX_SCORE);
        expect(
          over.map(
            ([name, verdict]) => `${name}: ${verdict.score} ${verdict.tests.join(',')}\n${verdict.report}`,
          ),
        ).toEqual([]);
      },
      SPAMASSASSIN_TESTS,
    );
  }

  it('is a test that can fail: a message in the old hidden-preheader style scores above the limit', async () => {
    const dir = await mkdtemp(join(root, 'outbox-'));
    const service = new EmailService({ transport: sandboxTransport({ dir }), from: FROM });
    await service.send({
      to: 'jane@example.com',
      subject: 'Your receipt',
      html: '<body style="background-color:#F8F9FA"><div style="color:#F8F9FA;background-color:#F8F9FA;font-size:1px">hidden preheader text for the inbox list</div><p style="color:#343A40">Thanks for your order. Your receipt is attached.</p></body>',
      text: 'Thanks for your order.',
    });
    const [eml] = (await readdir(dir)).filter((name) => name.endsWith('.eml'));
    const verdict = assess(await readFile(join(dir, eml as string), 'utf8'), root);
    expect(verdict.tests).toContain('HTML_FONT_LOW_CONTRAST');
    expect(verdict.score).toBeGreaterThan(MAX_SCORE);
  });
});
