import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/errors.js';
import { createWebhookHandler, type DeliveryEvent } from '../../src/webhooks/index.js';
import { selfSignedCert } from '../helpers/certs.js';
import { express4 } from '../helpers/express4.js';
import { MAILGUN_KEY, mailgun, post, SES_TOPIC, SNS_CERT_URL, sample, sns } from './signing.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

function hook(events: DeliveryEvent[]) {
  return createWebhookHandler({
    provider: 'mailgun',
    signingKey: MAILGUN_KEY,
    onEvent: (e) => void events.push(e),
  });
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

describe('in Express', () => {
  it('works mounted before express.json(), which the rest of the app keeps', async () => {
    const events: DeliveryEvent[] = [];
    const app = express();
    app.post('/hooks/mailgun', hook(events));
    app.use(express.json());
    app.post('/api/echo', (req, res) => void res.json(req.body));
    const base = await serveExpress(app);
    expect((await post(`${base}/hooks/mailgun`, mailgun(sample('mailgun', 'failed-permanent')))).status).toBe(
      200,
    );
    expect(events).toMatchObject([{ type: 'bounced', bounce: 'hard', recipient: 'alice@example.com' }]);
    const echo = await fetch(`${base}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await echo.json()).toEqual({ a: 1 });
  });

  it('takes the bytes express.raw() read', async () => {
    const events: DeliveryEvent[] = [];
    const app = express();
    app.post('/hooks/mailgun', express.raw({ type: '*/*' }), hook(events));
    const base = await serveExpress(app);
    expect((await post(`${base}/hooks/mailgun`, mailgun(sample('mailgun', 'delivered')))).status).toBe(200);
    expect(events).toMatchObject([{ type: 'delivered' }]);
  });

  it('reads the bytes of a type express.json() skipped, from Express 4’s {} as from Express 5’s undefined', async () => {
    // SNS posts SES events as text/plain, which an app's JSON parser does not read.
    const { key, cert } = await selfSignedCert('DNS:sns.amazonaws.com');
    for (const parser of [express4(express.json()), express.json()]) {
      const events: DeliveryEvent[] = [];
      const app = express();
      app.use(parser);
      app.post(
        '/hooks/ses',
        createWebhookHandler({
          provider: 'ses',
          topicArns: [SES_TOPIC],
          fetch: async (url: string) =>
            url === SNS_CERT_URL ? new Response(cert) : new Response('not found', { status: 404 }),
          onEvent: (e) => void events.push(e),
        }),
      );
      const base = await serveExpress(app);
      expect((await post(`${base}/hooks/ses`, sns(key, sample('ses', 'bounce')))).status).toBe(200);
      expect(events).toMatchObject([{ type: 'bounced', bounce: 'hard' }]);
    }
  });

  it('refuses a body express.json() already parsed, telling how to mount it', async () => {
    const events: DeliveryEvent[] = [];
    const errors: unknown[] = [];
    const app = express();
    app.use(express.json());
    app.post('/hooks/mailgun', hook(events));
    app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error);
      res.status(500).end();
    });
    const base = await serveExpress(app);
    expect((await post(`${base}/hooks/mailgun`, mailgun(sample('mailgun', 'delivered')))).status).toBe(500);
    expect(events).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(isConfigError(errors[0])).toBe(true);
    expect((errors[0] as Error).message).toMatch(/^body: .*mount the webhook handler before the body parser/);
  });
});

describe('in Fastify', () => {
  it('works in a scope that leaves the body unread, the rest of the app parsing JSON as usual', async () => {
    const events: DeliveryEvent[] = [];
    const handler = hook(events);
    const app = Fastify();
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
      scope.post('/hooks/mailgun', (request, reply) => {
        reply.hijack();
        handler(request.raw, reply.raw);
      });
    });
    app.post('/api/echo', async (request) => request.body);
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect((await post(`${base}/hooks/mailgun`, mailgun(sample('mailgun', 'failed-permanent')))).status).toBe(
      200,
    );
    expect(
      (await post(`${base}/hooks/mailgun`, mailgun(sample('mailgun', 'opened'), { key: 'forged' }))).status,
    ).toBe(403);
    expect(events).toMatchObject([{ type: 'bounced', bounce: 'hard' }]);
    const echo = await fetch(`${base}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await echo.json()).toEqual({ a: 1 });
  });

  it("refuses a body Fastify's JSON parser already read, telling how to mount it", async () => {
    const events: DeliveryEvent[] = [];
    const errors: unknown[] = [];
    const handler = createWebhookHandler({
      provider: 'mailgun',
      signingKey: MAILGUN_KEY,
      onEvent: (e) => void events.push(e),
      onError: (e) => void errors.push(e),
    });
    const app = Fastify();
    app.post('/hooks/mailgun', (request, reply) => {
      reply.hijack();
      handler(request.raw, reply.raw);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect((await post(`${base}/hooks/mailgun`, mailgun(sample('mailgun', 'delivered')))).status).toBe(500);
    expect(events).toEqual([]);
    expect(isConfigError(errors[0]) && (errors[0] as Error).message).toMatch(
      /^body: .*before the body parser/,
    );
  });
});
