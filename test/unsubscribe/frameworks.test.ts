/**
 * The unsubscribe handler mounted in Express and Fastify, beside routes that parse their own
 * bodies: the page (GET) and the one-click POST both work, a forged token is refused. Behind the
 * app's body parsers (Express 4's, Express 5's, text and raw, NestJS's), a one-click opt-out is recorded.
 */
import 'reflect-metadata';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import { memoryPreferenceStore } from '../../src/preferences.js';
import { createUnsubscribeHandler, signUnsubscribeToken } from '../../src/unsubscribe/index.js';
import { express4 } from '../helpers/express4.js';

const SECRET = 'unsubscribe-secret-unsubscribe-secret-1';
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

const token = (secret = SECRET) =>
  signUnsubscribeToken({ address: 'jane@example.com', category: 'product' }, secret);
const forged = () => token('someone-elses-secret-someone-elses-secret');

function oneClick(url: string, t: string, multipart = false) {
  const form = new FormData();
  form.append('List-Unsubscribe', 'One-Click');
  return fetch(`${url}?token=${t}`, {
    method: 'POST',
    redirect: 'manual',
    ...(multipart
      ? { body: form }
      : {
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'List-Unsubscribe=One-Click',
        }),
  });
}

/** What every mounting must do: ask on GET, record on POST (both encodings), refuse a forgery. */
async function exercise(base: string, preferences: ReturnType<typeof memoryPreferenceStore>) {
  const page = await fetch(`${base}/unsubscribe?token=${token()}`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('Unsubscribe from product update emails');
  expect(await preferences.list('jane@example.com')).toEqual([]);
  expect((await oneClick(`${base}/unsubscribe`, forged())).status).toBe(403);
  expect(await preferences.list('jane@example.com')).toEqual([]);
  const posted = await oneClick(`${base}/unsubscribe`, token());
  expect(posted.status).toBe(200);
  expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  expect((await oneClick(`${base}/unsubscribe`, token(), true)).status).toBe(200);
}

async function serveExpress(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('in node:http', () => {
  it('is the server’s whole request handler', async () => {
    const { createServer } = await import('node:http');
    const preferences = memoryPreferenceStore();
    const server = createServer(createUnsubscribeHandler({ secrets: [SECRET], preferences }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, preferences);
  });
});

describe('in Express', () => {
  it('works with app.all before express.json(), which the rest of the app keeps', async () => {
    const preferences = memoryPreferenceStore();
    const app = express();
    app.all('/unsubscribe', createUnsubscribeHandler({ secrets: [SECRET], preferences }));
    app.use(express.json());
    app.post('/api/echo', (req, res) => void res.json(req.body));
    const base = await serveExpress(app);
    await exercise(base, preferences);
    const echo = await fetch(`${base}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await echo.json()).toEqual({ a: 1 });
  });

  it('reads the object express.urlencoded() already parsed', async () => {
    const preferences = memoryPreferenceStore();
    const app = express();
    app.use(express.urlencoded({ extended: false }));
    app.use('/unsubscribe', createUnsubscribeHandler({ secrets: [SECRET], preferences }));
    const base = await serveExpress(app);
    expect((await oneClick(`${base}/unsubscribe`, token())).status).toBe(200);
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });

  it('a body a parser consumed without leaving an object goes to Express’s error handler', async () => {
    const preferences = memoryPreferenceStore();
    const errors: unknown[] = [];
    const app = express();
    // A middleware that drains the stream and leaves nothing behind: a mounting mistake.
    app.use((req, _res, next) => {
      req.resume();
      req.on('end', () => next());
    });
    app.all('/unsubscribe', createUnsubscribeHandler({ secrets: [SECRET], preferences }));
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error);
      res.status(500).end();
    });
    const base = await serveExpress(app);
    expect((await oneClick(`${base}/unsubscribe`, token())).status).toBe(500);
    expect(isConfigError(errors[0]) && (errors[0] as Error).message).toMatch(
      /^body: .*mount the unsubscribe handler/,
    );
    expect(await preferences.list('jane@example.com')).toEqual([]);
  });
});

describe('whatever body parsers the app runs first', () => {
  /** The handler mounted after `parsers`, as an app that parses bodies everywhere mounts it. */
  async function mountedAfter(...parsers: express.RequestHandler[]) {
    const preferences = memoryPreferenceStore();
    const errors: unknown[] = [];
    const app = express();
    for (const parser of parsers) app.use(parser);
    app.all('/unsubscribe', createUnsubscribeHandler({ secrets: [SECRET], preferences }));
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error);
      res.status(500).end();
    });
    return { base: `${await serveExpress(app)}/unsubscribe`, preferences, errors };
  }

  /** Both encodings RFC 8058 allows, each a fresh opt-out. */
  async function expectBothEncodingsRecorded(
    base: string,
    preferences: ReturnType<typeof memoryPreferenceStore>,
  ) {
    for (const multipart of [false, true]) {
      await preferences.set('jane@example.com', 'product', true, { at: new Date(0) });
      expect((await oneClick(base, token(), multipart)).status).toBe(200);
      expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
    }
  }

  it('Express 4 with express.json() only: the {} it leaves on a form it did not read is no form, the stream is read', async () => {
    const { base, preferences } = await mountedAfter(express4(express.json()));
    await expectBothEncodingsRecorded(base, preferences);
  });

  it('Express 4 with express.urlencoded(): its object is read, and a multipart POST it skipped from the stream', async () => {
    const { base, preferences } = await mountedAfter(express4(express.urlencoded({ extended: true })));
    await expectBothEncodingsRecorded(base, preferences);
  });

  it('Express 5 with express.json() only: the body it left undefined is read from the stream', async () => {
    const { base, preferences } = await mountedAfter(express.json());
    await expectBothEncodingsRecorded(base, preferences);
  });

  it('express.text() and express.raw(): the string or bytes they read are parsed as the form', async () => {
    for (const parser of [express.text({ type: '*/*' }), express.raw({ type: '*/*' })]) {
      const { base, preferences } = await mountedAfter(parser);
      await expectBothEncodingsRecorded(base, preferences);
    }
  });

  it('a one-click body sent as text/plain, read by express.text(), is still the form it says', async () => {
    const { base, preferences } = await mountedAfter(express.text());
    const response = await fetch(`${base}?token=${token()}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(response.status).toBe(200);
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });

  it('a field sent twice is read as the stream would read it, whichever parser ran', async () => {
    const { base, preferences } = await mountedAfter(express.urlencoded({ extended: true }));
    const response = await fetch(`${base}?token=${token()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click&List-Unsubscribe=One-Click',
    });
    expect(response.status).toBe(200);
    expect((await preferences.get('jane@example.com', 'product'))?.allowed).toBe(false);
  });
});

describe('in Fastify', () => {
  it('works in a scope that leaves the body unread, the rest of the app parsing JSON as usual', async () => {
    const preferences = memoryPreferenceStore();
    const handler = createUnsubscribeHandler({ secrets: [SECRET], preferences });
    const app = Fastify();
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
      scope.route({
        method: ['GET', 'HEAD', 'POST'],
        url: '/unsubscribe',
        handler: (request, reply) => {
          reply.hijack();
          handler(request.raw, reply.raw);
        },
      });
    });
    app.post('/api/echo', async (request) => request.body);
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await exercise(base, preferences);
    const echo = await fetch(`${base}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await echo.json()).toEqual({ a: 1 });
  });
});

describe('in NestJS', () => {
  it('a controller handing its request on, behind Nest’s own JSON and form parsers: both encodings recorded', async () => {
    const { All, Controller, Module, Req, Res } = await import('@nestjs/common');
    const { NestFactory } = await import('@nestjs/core');
    const preferences = memoryPreferenceStore();
    const unsubscribe = createUnsubscribeHandler({ secrets: [SECRET], preferences });

    @Controller('unsubscribe')
    class UnsubscribeController {
      @All()
      handle(@Req() req: IncomingMessage, @Res() res: ServerResponse) {
        unsubscribe(req, res);
      }
    }
    @Module({ controllers: [UnsubscribeController] })
    class AppModule {}

    const app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    closers.push(() => app.close());
    const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    await exercise(base, preferences);
  });
});
