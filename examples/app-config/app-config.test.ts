/**
 * The example app's mailroom.config.ts, through the built `mailroom` command as a user runs it:
 * the TypeScript template is listed, rendered (aligned summary lines in the text part) and sent.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderConfirmation } from './emails/order-confirmation.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
const config = fileURLToPath(new URL('./mailroom.config.ts', import.meta.url));
const DATA = JSON.stringify(orderConfirmation.preview.gift);
let outbox: string;

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  outbox = await mkdtemp(join(tmpdir(), 'mailroom-app-config-'));
});
afterAll(async () => {
  await rm(outbox, { recursive: true, force: true });
});

const mailroom = (...args: string[]) =>
  run(process.execPath, [cli, ...args, '--config', config], {
    env: { ...process.env, MAILROOM_TRANSPORT: 'sandbox', MAILROOM_SANDBOX_DIR: outbox, NODE_ENV: 'test' },
  });

describe('examples/app-config', () => {
  it('lists the TypeScript template beside the built-ins', async () => {
    const { stdout } = await mailroom('templates');
    expect(stdout).toContain('order-confirmation');
    expect(stdout).toContain('verification');
  });

  it('renders its text part with the summary as aligned lines and the button as its label and link', async () => {
    const { stdout } = await mailroom('render', 'order-confirmation', '--data', DATA, '--format', 'text');
    expect(stdout).toContain(
      [
        'Reference    A-1043',
        'Item         Linen throw',
        'Delivery     Friday, 13 March',
        'Total paid   $64.00',
      ].join('\n'),
    );
    expect(stdout).toContain('Gift note\nHappy birthday, Sam!');
    expect(stdout).toContain('View your order:\nhttps://acme.example/orders/A-1043');
    expect(stdout).toContain('Acme Inc.');
  });

  it('sends it through the sandbox the environment names', async () => {
    await mailroom('send', 'order-confirmation', '--to', 'jane@example.com', '--data', DATA);
    const [eml] = (await readdir(outbox)).filter((file) => file.endsWith('.eml'));
    const mime = await readFile(join(outbox, eml as string), 'utf8');
    expect(mime).toMatch(/^Subject: Order A-1043 is confirmed$/m);
    expect(mime).toContain('#0B6E4F');
  });
});
