/**
 * MailroomModule in a real Nest application on Express, over HTTP (supertest): the controller's
 * send reaches the memory outbox and, once, a real SMTP server; templates are compiled and the
 * transport verified at init, so a broken template or a wrong password fails start-up with the
 * typed error; `app.close()` closes the transport.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  defineTemplate,
  type EmailService,
  isConfigError,
  isEmailError,
  isEmailService,
  isTemplateError,
  memoryTransport,
  smtpTransport,
} from 'mailroom-js';
import {
  MAILROOM_OPTIONS,
  MAILROOM_OUTBOX,
  MAILROOM_SERVICE,
  MailroomModule,
  MailroomTestingModule,
} from 'mailroom-js/nestjs';
import type { Outbox } from 'mailroom-js/testing';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { fromMime } from '../helpers/received.js';
import { type SmtpPeer, startSmtpPeer } from '../helpers/smtp-peer.js';
import { appModule } from './app.js';

const from = 'Acme <no-reply@acme.example>';
const apps: INestApplication[] = [];
const peers: SmtpPeer[] = [];

async function start(mail: Parameters<typeof appModule>[0]): Promise<INestApplication> {
  const app = await NestFactory.create(appModule(mail), { logger: false, abortOnError: false });
  apps.push(app);
  await app.init();
  return app;
}

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => {});
  for (const peer of peers.splice(0)) await peer.close();
});

describe('MailroomModule.forRoot', () => {
  it('a POST to the controller sends the verification email through the injected service', async () => {
    const transport = memoryTransport();
    const app = await start(MailroomModule.forRoot({ transport, from }));
    const response = await request(app.getHttpServer())
      .post('/signup')
      .send({ email: 'jane@example.com', name: 'Jane' })
      .expect(202);
    expect(transport.outbox).toHaveLength(1);
    const { message } = transport.outbox[0]!;
    expect(message.template).toBe('verification');
    expect(message.to.map((a) => a.address)).toEqual(['jane@example.com']);
    expect(message.text).toContain('https://acme.example/verify?token=jane%40example.com');
    expect(response.body.messageId).toBe(message.messageId);
  });

  it('gives the same service under MAILROOM_SERVICE and the EmailService class', async () => {
    const transport = memoryTransport();
    const app = await start(MailroomModule.forRoot({ transport, from }));
    await request(app.getHttpServer())
      .post('/signup-by-class')
      .send({ email: 'jo@example.com', name: 'Jo' })
      .expect(202);
    expect(transport.outbox.map((e) => e.message.template)).toEqual(['welcome']);
    const byToken = app.get<EmailService>(MAILROOM_SERVICE);
    expect(byToken.transport).toBe(transport);
    expect(app.get(MAILROOM_OPTIONS)).not.toHaveProperty('isGlobal');
  });

  it('delivers through a real SMTP server, verified at init and closed at app.close()', async () => {
    const peer = await startSmtpPeer({ starttls: false });
    peers.push(peer);
    const transport = smtpTransport({ host: peer.host, port: peer.port, tls: 'none' });
    const app = await start(MailroomModule.forRoot({ transport, from, appName: 'Acme' }));
    expect(peer.connections).toBe(1); // verify() connected before any request
    await request(app.getHttpServer())
      .post('/signup')
      .send({ email: 'jane@example.com', name: 'Jane' })
      .expect(202);
    expect(peer.messages).toHaveLength(1);
    expect(peer.messages[0]!.envelope.rcptTo).toEqual(['jane@example.com']);
    const email = await fromMime(peer.messages[0]!.raw);
    expect(email.subject).toContain('Acme');
    expect(email.text).toContain('https://acme.example/verify?token=jane%40example.com');
    let closed = 0;
    const close = transport.close.bind(transport);
    transport.close = async () => {
      closed++;
      await close();
    };
    await app.close();
    apps.length = 0;
    expect(closed).toBe(1);
  });

  it('app.close() lets a send in a request finish before it closes the transport', async () => {
    const transport = memoryTransport();
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const sending = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const send = transport.send.bind(transport);
    transport.send = async (message, context) => {
      entered();
      await gate;
      const result = await send(message, context);
      events.push('sent');
      return result;
    };
    transport.close = async () => {
      events.push('closed');
    };
    const app = await start(MailroomModule.forRoot({ transport, from }));
    await app.listen(0, '127.0.0.1');
    const url = await app.getUrl();
    const response = request(url).post('/signup').send({ email: 'jane@example.com', name: 'Jane' });
    const answered = response.then((r) => r.status);
    await sending;
    const closing = app.close();
    apps.length = 0;
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual([]);
    release();
    expect(await answered).toBe(202);
    await closing;
    expect(events).toEqual(['sent', 'closed']);
  });

  it('a wrong SMTP password rejects app.init() with the EmailError (auth)', async () => {
    const peer = await startSmtpPeer({ starttls: false, users: { app: 'right' } });
    peers.push(peer);
    const transport = smtpTransport({
      host: peer.host,
      port: peer.port,
      tls: 'none',
      user: 'app',
      password: 'wrong',
    });
    const error = await start(MailroomModule.forRoot({ transport, from })).catch((e: unknown) => e);
    expect(isEmailError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'auth' });
    expect(String((error as Error).message)).not.toContain('wrong');
  });

  it('verify: false starts without reaching the provider', async () => {
    const transport = memoryTransport();
    let verified = 0;
    transport.verify = async () => {
      verified++;
      throw new Error('unreachable');
    };
    await start(MailroomModule.forRoot({ transport, from, verify: false }));
    expect(verified).toBe(0);
  });

  it('a template that does not compile rejects app.init() with a TemplateError naming it', async () => {
    const broken = defineTemplate({
      name: 'broken',
      fields: {},
      subject: 'S',
      layout: false,
      html: '<p><%= it.x </p>',
    });
    const error = await start(
      MailroomModule.forRoot({ transport: memoryTransport(), from, templates: [broken] }),
    ).catch((e: unknown) => e);
    expect(isTemplateError(error)).toBe(true);
    expect(error).toMatchObject({ template: 'broken' });
  });
});

describe('MailroomModule.forRootAsync', () => {
  it('builds the service from a factory that injects a provider of another module', async () => {
    const transport = memoryTransport();
    const { Module } = await import('@nestjs/common');
    const settings = { from: 'Globex <no-reply@globex.example>' };
    @Module({ providers: [{ provide: 'SETTINGS', useValue: settings }], exports: ['SETTINGS'] })
    class SettingsModule {}
    const app = await start(
      MailroomModule.forRootAsync({
        imports: [SettingsModule],
        inject: ['SETTINGS'],
        useFactory: async (s: typeof settings) => ({ transport, from: s.from }),
      }),
    );
    await request(app.getHttpServer())
      .post('/signup')
      .send({ email: 'jane@example.com', name: 'Jane' })
      .expect(202);
    expect(transport.outbox[0]!.message.from.address).toBe('no-reply@globex.example');
  });

  it('refuses a forRootAsync without a factory, naming useFactory', () => {
    expect(() => MailroomModule.forRootAsync({} as never)).toThrow(/useFactory/);
  });
});

describe('where the service is visible', () => {
  async function featureApp(isGlobal: boolean) {
    const { Inject, Injectable, Module } = await import('@nestjs/common');
    @Injectable()
    class Notifier {
      constructor(@Inject(MAILROOM_SERVICE) readonly mail: EmailService) {}
    }
    // A feature module that does not import the mail module.
    @Module({ providers: [Notifier], exports: [Notifier] })
    class FeatureModule {}
    @Module({
      imports: [MailroomModule.forRoot({ transport: memoryTransport(), from, isGlobal }), FeatureModule],
    })
    class Root {}
    const app = await NestFactory.create(Root, { logger: false, abortOnError: false });
    apps.push(app);
    return app.get(Notifier);
  }

  it('isGlobal: true lets a module that does not import it inject the service', async () => {
    const notifier = await featureApp(true);
    expect(isEmailService(notifier.mail)).toBe(true);
  });

  it('without isGlobal, such a module cannot resolve MAILROOM_SERVICE', async () => {
    await expect(featureApp(false)).rejects.toThrow(/Nest can't resolve dependencies of the Notifier/);
  });
});

describe('bad options', () => {
  it("a factory that returns options without a sender fails the app's creation naming from", async () => {
    const error = await NestFactory.create(
      appModule(
        MailroomModule.forRootAsync({ useFactory: () => ({ transport: memoryTransport() }) as never }),
      ),
      { logger: false, abortOnError: false },
    ).catch((e: unknown) => e);
    expect(isConfigError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'from' });
  });
});

describe('MailroomTestingModule', () => {
  it("captures the controller's email in the outbox a test asserts on", async () => {
    const app = await start(MailroomTestingModule.forRoot({ appName: 'Acme' }));
    await request(app.getHttpServer())
      .post('/signup')
      .send({ email: 'jane@example.com', name: 'Jane' })
      .expect(202);
    const outbox = app.get<Outbox>(MAILROOM_OUTBOX);
    const email = outbox.expectSent({ to: 'jane@example.com', template: 'verification' });
    expect(email.subject).toContain('Acme');
    expect(() => outbox.expectSent({ to: 'bob@example.com' })).toThrow(/Expected an email/);
    expect(app.get(MAILROOM_OPTIONS)).toMatchObject({
      from: { name: 'Test App', address: 'no-reply@example.com' },
    });
  });
});
