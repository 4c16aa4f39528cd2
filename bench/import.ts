/**
 * Import bench: the wall-clock cost of loading a module in a fresh Node process, above a bare
 * `node -e ''`. The packed package (`npm pack`, installed into a scratch project as a user would:
 * ESM `import()`, CommonJS `require()`, and import plus the first render of the verification email)
 * against nodemailer and email-templates in the same run, with the dependencies mailroom may load
 * as reference. Then which of juice, html-to-text and nodemailer the package pulls in, at import
 * and at the first render of a built-in. Prints figures; asserts nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { npmInstall, show } from '../test/package/run.js';
import { fmt } from './peers/figures.js';

const ROUNDS = 20;
const WARMUP_ROUNDS = 2; // fill the file cache; not counted

const root = fileURLToPath(new URL('..', import.meta.url));
const node = process.execPath;
// tsx or a debugger may hand flags to children through NODE_OPTIONS; a fresh process gets none.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'NODE_OPTIONS'));

interface Side {
  name: string;
  /** Arguments to `node`. Each script exits non-zero when what it loaded is not what it should be. */
  args: string[];
  /** Shown for context only: no ratio to nodemailer. */
  reference?: boolean;
  /** Where it runs: the scratch project with the packed package installed, or the repo. */
  cwd?: string;
}

const esm = (code: string) => ['--input-type=module', '-e', code];
const cjs = (code: string) => ['-e', code];
const fail = 'process.exitCode = 1';

const baseline: Side = { name: "node -e ''", args: ['-e', ''] };
/** The sides; the package's run in `scratch`, where the packed tarball is installed. */
function sidesFor(scratch: string): Side[] {
  return [
    baseline,
    { name: 'empty ESM program', args: esm(''), reference: true },
    {
      name: 'mailroom-js import (ESM)',
      cwd: scratch,
      args: esm(`const m = await import('mailroom-js');
if (typeof m.EmailService !== 'function') ${fail};`),
    },
    {
      name: 'mailroom-js require (CJS)',
      cwd: scratch,
      args: cjs(`const m = require('mailroom-js');
if (typeof m.EmailService !== 'function') ${fail};`),
    },
    { name: 'mailroom-js import + render', cwd: scratch, args: esm(`${RENDER}\nif (!ok) ${fail};`) },
    {
      name: 'nodemailer import (ESM)',
      args: esm(`const m = await import('nodemailer');
if (typeof m.default.createTransport !== 'function') ${fail};`),
    },
    {
      name: 'nodemailer require (CJS)',
      args: cjs(`if (typeof require('nodemailer').createTransport !== 'function') ${fail};`),
    },
    {
      name: 'email-templates import',
      args: esm(`const m = await import('email-templates');
if (typeof m.default !== 'function') ${fail};`),
    },
    ...['juice', 'html-to-text', 'eta'].map(
      (pkg): Side => ({
        name: `${pkg} import (reference)`,
        args: esm(`await import('${pkg}');`),
      }),
    ),
  ];
}

/** Import and the first render of a built-in; sets `ok`. */
const RENDER = `const { EmailService, memoryTransport } = await import('mailroom-js');
const service = new EmailService({ transport: memoryTransport(), from: 'Acme <a@acme.example>' });
const url = 'https://acme.example/verify?token=abc123';
const email = service.render('verification', { username: 'ada', verificationUrl: url });
const ok = email.html?.includes(url) && email.text?.includes(url) && email.subject;`;

/** `npm pack` of the built package, installed into a scratch project; returns the project's folder. */
async function installPacked(): Promise<string> {
  const scratch = realpathSync(mkdtempSync(join(tmpdir(), 'mailroom-bench-')));
  // --ignore-scripts: `npm run bench` has just built dist/.
  const pack = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], {
    cwd: root,
    encoding: 'utf8',
  });
  const [info] = JSON.parse(pack.slice(pack.indexOf('['))) as { filename: string }[];
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'bench', private: true }));
  const install = await npmInstall([join(scratch, info!.filename)], scratch);
  if (install.code !== 0)
    throw new Error(`import bench: npm install of the tarball failed:\n${show(install)}`);
  return scratch;
}

/** Runs one fresh process to completion; returns its wall-clock time in ms. */
function time(side: Side): number {
  const start = performance.now();
  try {
    execFileSync(node, side.args, { cwd: side.cwd ?? root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`import bench: ${side.name} failed${stderr ? `:\n${stderr}` : ''}`);
  }
  return performance.now() - start;
}

// Sorted-sample nearest rank: the median of 20 is the 10th value, the p90 the 18th.
const rank = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil(p * xs.length) - 1]!;

/**
 * Which files loading the package reads from juice, html-to-text and nodemailer. A resolve hook
 * (run on the loader's own thread, so it writes straight to stdout) sees the ES modules; the
 * CommonJS ones, including those a CommonJS dependency requires, are in `require.cache`.
 */
const WATCHED = ['juice', 'html-to-text', 'nodemailer'] as const;
const hook = `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  writeSync(1, result.url + '\\n');
  return result;
}`;
function loadedBy(load: string, cwd = root): Map<string, number> {
  const code = `const { register } = require('node:module');
const { pathToFileURL } = require('node:url');
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});
Promise.resolve().then(async () => {
  ${load};
  for (const file of Object.keys(require.cache)) console.log(pathToFileURL(file).href);
});`;
  const out = execFileSync(node, ['-e', code], { cwd, env, encoding: 'utf8' });
  const files = new Set(out.split('\n').filter((line) => line.startsWith('file:')));
  return new Map(
    WATCHED.map((pkg) => [pkg, [...files].filter((url) => url.includes(`/node_modules/${pkg}/`)).length]),
  );
}

export async function run(): Promise<void> {
  const scratch = await installPacked();
  try {
    await measure(scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function measure(scratch: string): Promise<void> {
  const sides = sidesFor(scratch);
  const samples = new Map<Side, number[]>(sides.map((side) => [side, []]));
  for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
    // Rounds take turns and each starts one further along, so that drift in the machine's speed
    // and the position in a round hit every side alike.
    const offset = (round + WARMUP_ROUNDS) % sides.length;
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(i + offset) % sides.length]!;
      const ms = time(side);
      if (round >= 0) samples.get(side)!.push(ms);
    }
  }

  // Each process's cost is its time less the bare node process of the same round.
  const bare = samples.get(baseline)!;
  const cost = new Map(sides.map((side) => [side, samples.get(side)!.map((ms, i) => ms - bare[i]!)]));
  const nodemailer = rank(cost.get(sides.find((s) => s.name === 'nodemailer import (ESM)')!)!, 0.5);

  const line = (label: string, ...figures: string[]) =>
    console.log(`${label.padEnd(32)}${figures.map((f) => f.padStart(14)).join('')}`);
  console.log(
    `\nimport: wall clock of a fresh node process (${process.version}) above a bare \`node -e ''\`, ` +
      `${ROUNDS} interleaved rounds; mailroom-js is the packed tarball, installed\n`,
  );
  line('side', 'median ms', 'p90 ms', '× nodemailer');
  line(`${baseline.name} (absolute)`, fmt(rank(bare, 0.5)), fmt(rank(bare, 0.9)), '');
  for (const side of sides) {
    if (side === baseline) continue;
    const median = rank(cost.get(side)!, 0.5);
    line(
      side.name,
      fmt(median),
      fmt(rank(cost.get(side)!, 0.9)),
      side.reference ? '' : `${fmt(median / nodemailer, 2)}×`,
    );
  }

  // A control first, so that a check that sees nothing cannot pass for a package that loads nothing:
  // it must see an ES module (the hook), a CommonJS one (require.cache), and not what was not loaded.
  const control = loadedBy(`await import('nodemailer'); require('html-to-text')`);
  if (!control.get('nodemailer') || !control.get('html-to-text') || control.get('juice')) {
    throw new Error('import bench: the load check does not see what its control loads');
  }
  const checks = [
    ['import()', loadedBy(`await import('mailroom-js')`, scratch)],
    ['require()', loadedBy(`require('mailroom-js')`, scratch)],
    ['import + render', loadedBy(RENDER, scratch)],
  ] as const;
  const yesNo = (files: number) => (files ? `yes (${files} own file${files === 1 ? '' : 's'})` : 'no');
  console.log('\nloaded by the packed package: its entry alone, and the first render of a built-in\n');
  console.log(`${'dependency'.padEnd(32)}${checks.map(([label]) => label.padStart(22)).join('')}`);
  for (const pkg of WATCHED) {
    console.log(
      `${pkg.padEnd(32)}${checks.map(([, loaded]) => yesNo(loaded.get(pkg)!).padStart(22)).join('')}`,
    );
  }
  console.log();
}

// `npx tsx bench/import.ts` runs this bench alone; bench/index.ts imports it and calls run().
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await run();
