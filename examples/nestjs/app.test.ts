/**
 * Tests of the Nest example as a user writes them: `@nestjs/testing` builds the app with the mail
 * module replaced by `MailroomTestingModule` (a memory outbox), supertest drives it over HTTP, and
 * the test reads the mail it sent and follows the link.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { MAILROOM_OUTBOX, MailroomTestingModule } from 'mailroom-js/nestjs';
import { extractLink, type Outbox } from 'mailroom-js/testing';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppModule, mailModule } from './app.module.js';

let app: INestApplication;
let outbox: Outbox;

beforeEach(async () => {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideModule(mailModule)
    .useModule(MailroomTestingModule.forRoot({ appName: 'Acme' }))
    .compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  outbox = app.get<Outbox>(MAILROOM_OUTBOX);
});

afterEach(() => app.close());

describe('the Nest example', () => {
  it('signing up sends one verification email; following its link sends the welcome email', async () => {
    await request(app.getHttpServer())
      .post('/signup')
      .send({ email: 'jane@example.com', name: 'Jane' })
      .expect(201);
    const email = outbox.expectSent({ to: 'jane@example.com', template: 'verification' }, { count: 1 });
    expect(email.subject).toBe('Verify your email address for Acme');

    const link = new URL(extractLink(email));
    await request(app.getHttpServer())
      .get(link.pathname + link.search)
      .expect(200, { verified: 'jane@example.com' });
    outbox.expectSent({ to: 'jane@example.com', template: 'welcome' }, { count: 1 });
    // The link works once.
    await request(app.getHttpServer())
      .get(link.pathname + link.search)
      .expect(404);
  });

  it('a bad address is a 400 naming the field, and nothing is sent', async () => {
    const response = await request(app.getHttpServer())
      .post('/signup')
      .send({ email: 'not an address', name: 'Jane' })
      .expect(400);
    expect(response.body.field).toBe('email');
    outbox.expectNotSent();
  });
});
