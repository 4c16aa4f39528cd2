/**
 * Render bench: the verification email (subject + inlined HTML + text) per second, mailroom against
 * email-templates and a naive eta → juice → html-to-text pipeline, with an eta render of mailroom's
 * pre-inlined HTML as the floor. Prints figures and whether the targets are met; asserts nothing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Email from 'email-templates';
import { Eta } from 'eta';
import { convert } from 'html-to-text';
import juice from 'juice';
import { fmt } from './peers/figures.js';

const WARMUP = 200;
const ROUNDS = 5;
const TARGET_VS_EMAIL_TEMPLATES = 100; // at least this many times faster
const TARGET_VS_FLOOR = 5; // at most this many times slower

interface Input {
  username: string;
  verificationUrl: string;
}
interface Output {
  subject?: string | undefined;
  html?: string | undefined;
  text?: string | undefined;
}
interface Contestant {
  name: string;
  /** Renders per round, so that a round takes a fraction of a second. */
  iterations: number;
  render(input: Input): Output | Promise<Output>;
  async?: boolean;
  htmlOnly?: boolean;
}

// A different user and token each time, so that nothing can be cached by value.
const inputs: Input[] = Array.from({ length: 1000 }, (_, i) => ({
  username: `user${i}`,
  verificationUrl: `https://acme.example/verify?token=${(i * 2654435761).toString(36)}${i}`,
}));

async function contestants(): Promise<Contestant[]> {
  // The built package, as users get it (`npm run bench` builds first). A specifier that is not a
  // literal keeps the typecheck from needing dist/; the types come from the source.
  const dist = '../dist/index.js';
  const { EmailService, memoryTransport }: typeof import('../src/index.js') = await import(dist);
  const service = new EmailService({ transport: memoryTransport(), from: 'Acme <no-reply@acme.example>' });
  const { app } = service;

  const views = fileURLToPath(new URL('./fixtures/email-templates', import.meta.url));
  const email = new Email({
    views: { root: views, options: { extension: 'ejs' } },
    juice: true,
    juiceResources: {
      applyStyleTags: true,
      removeStyleTags: true,
      preserveMediaQueries: true,
      preserveFontFaces: true,
      preserveImportant: true,
      applyWidthAttributes: true,
      webResources: { relativeTo: views, images: false },
    },
    // email-templates sets juice's global `tableElements` to ['TABLE'] unless told otherwise, which
    // would change the others' inlining too: keep juice's default.
    juiceSettings: { tableElements: [...juice.tableElements] },
    send: false,
    preview: false,
  });

  // Naive: what a hand-rolled first attempt does. The page is pasted together once (layout, the
  // stylesheet in a <style> tag, the body, the button as a named partial), then per message a fresh
  // `renderString` (which compiles the page again), `juice()` and html-to-text's `convert()`.
  const read = (file: string) => readFileSync(new URL(`../templates/${file}`, import.meta.url), 'utf8');
  const naiveEta = new Eta({ useWith: false });
  naiveEta.loadTemplate('@button', read('partials/button.eta'));
  const body = read('verification/html.eta').replace('{ url:', '{ app: it.app, url:');
  const page = read('layout.eta')
    .replace('</head>', () => `<style>\n${read('style.css')}</style>\n</head>`)
    .replace('<%~ it.body %>', () => body);
  const subject = read('verification/subject.eta');

  // Floor: mailroom's pre-inlined HTML compiled once with its eta options; `safeUrl` lets URLs through.
  class FloorEta extends Eta {
    safeUrl = (url: string) => url;
  }
  const floorEta = new FloorEta({ useWith: false, functionHeader: 'const safeUrl = this.safeUrl;' });
  const floor = floorEta.compile(service.templates.compiled('verification').htmlSource).bind(floorEta);

  return [
    { name: 'mailroom', iterations: 40_000, render: (input) => service.render('verification', input) },
    {
      name: 'email-templates',
      iterations: 100,
      async: true,
      // `cache: true` is what send() adds from views.locals in production; renderAll takes the locals as given.
      render: (input) => email.renderAll('verification', { ...input, app, cache: true }),
    },
    {
      name: 'naive',
      iterations: 150,
      render(input) {
        const it = { ...input, app };
        const html = juice(naiveEta.renderString(page, it));
        return { subject: naiveEta.renderString(subject, it).trim(), html, text: convert(html) };
      },
    },
    {
      name: 'floor (HTML only)',
      iterations: 200_000,
      htmlOnly: true,
      render: (input) => ({ html: floor({ ...input, app }) }),
    },
  ];
}

/** Aborts when a contestant's output is not the email, so that broken output is never timed. */
function check(c: Contestant, { subject, html, text }: Output, { verificationUrl }: Input): void {
  const button = html?.match(/<a\s[^>]*class="(?:mr-)?button-link"[^>]*>/)?.[0] ?? '';
  const problems = [
    !html?.includes(verificationUrl) && 'the HTML lacks the URL',
    !/\sstyle="[^"]+"/.test(button) && 'the button has no inline style',
    !c.htmlOnly && !text?.includes(verificationUrl) && 'the text lacks the URL',
    !c.htmlOnly && (!subject || subject.includes('&amp;')) && `bad subject ${JSON.stringify(subject)}`,
  ].filter(Boolean);
  if (problems.length) throw new Error(`render bench: ${c.name}: ${problems.join('; ')}`);
}

/** Runs `n` renders; returns µs per render. */
async function time(c: Contestant, n: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const out = c.render(inputs[i % inputs.length]!);
    if (c.async) await out;
  }
  return ((performance.now() - start) * 1000) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<void> {
  const all = await contestants();
  for (const c of all) {
    check(c, await c.render(inputs[0]!), inputs[0]!);
    await time(c, WARMUP);
  }
  // Rounds take turns, so that drift in the machine's speed hits every contestant alike.
  const samples = new Map<Contestant, number[]>(all.map((c) => [c, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of all) samples.get(c)!.push(await time(c, c.iterations));
  }
  const us = new Map(all.map((c) => [c.name, median(samples.get(c)!)]));

  const line = (label: string, figure: string, rest: string) =>
    console.log(`${label.padEnd(28)}${figure.padStart(12)}  ${rest}`);
  console.log(
    `\nrender: the verification email (subject + inlined HTML + text), median of ${ROUNDS} rounds\n`,
  );
  line('contestant', 'µs/render', '   renders/s');
  for (const [name, t] of us) line(name, fmt(t, 2), fmt(1e6 / t, 0).padStart(12));

  const mailroom = us.get('mailroom')!;
  const vsTemplates = us.get('email-templates')! / mailroom;
  const vsFloor = mailroom / us.get('floor (HTML only)')!;
  const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
  console.log();
  line(
    'mailroom vs email-templates',
    `${fmt(vsTemplates)}×`,
    `faster     target ≥ ${TARGET_VS_EMAIL_TEMPLATES}×: ${met(vsTemplates >= TARGET_VS_EMAIL_TEMPLATES)}`,
  );
  line('mailroom vs naive', `${fmt(us.get('naive')! / mailroom)}×`, 'faster');
  line(
    'mailroom / floor',
    `${fmt(vsFloor)}×`,
    `the floor  target ≤ ${TARGET_VS_FLOOR}×: ${met(vsFloor <= TARGET_VS_FLOOR)}`,
  );
  console.log();
}
