/**
 * One app, both builds: a service made by the CommonJS build is recognised by the ESM build's
 * `isEmailService()`, where `instanceof` fails (two `EmailService` classes). Needs a fresh `dist/`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { repo, run, show } from './run.js';

it('isEmailService() from the ESM build recognises a service the CJS build made; instanceof does not', async () => {
  if (!existsSync(join(repo, 'dist', 'index.cjs')))
    throw new Error('dist/ is missing: run `npm run build` first.');
  const code = `(async () => {
  const cjs = require(${JSON.stringify(join(repo, 'dist', 'index.cjs'))});
  const esm = await import(${JSON.stringify(pathToFileURL(join(repo, 'dist', 'index.js')).href)});
  const service = new cjs.EmailService({ transport: cjs.memoryTransport(), from: 'Acme <no-reply@acme.example>' });
  console.log(JSON.stringify({
    twoClasses: cjs.EmailService !== esm.EmailService,
    instanceOf: service instanceof esm.EmailService,
    guard: esm.isEmailService(service),
    guardOwn: cjs.isEmailService(service),
    notAService: [esm.isEmailService({ transport: service.transport }), esm.isEmailService(null), esm.isEmailService('x')],
  }));
})().catch((error) => { console.error(error); process.exit(1); });`;
  const result = await run(process.execPath, ['-e', code], { cwd: repo });
  if (result.code !== 0) throw new Error(show(result));
  expect(JSON.parse(result.stdout)).toEqual({
    twoClasses: true,
    instanceOf: false,
    guard: true,
    guardOwn: true,
    notAService: [false, false, false],
  });
}, 60_000);
