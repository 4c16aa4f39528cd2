/** MailroomTestingModule: the mailroom module on a memory transport, with the outbox to assert on. */
import type { DynamicModule } from '@nestjs/common';
import type { EmailServiceOptions } from '../service.js';
import { createTestMailer, Outbox } from '../testing/index.js';
import { MAILROOM_OPTIONS, type MailroomModuleOptions, mailroomModule } from './module.js';

/** The token of the testing module's {@link Outbox} (also provided as the `Outbox` class). */
export const MAILROOM_OUTBOX: unique symbol = Symbol.for('mailroom-js.nestjs.outbox');

/**
 * Options of {@link MailroomTestingModule.forRoot}: those of `createTestMailer()` (every
 * `EmailService` option but the transport, which is a fresh memory transport; the sender defaults
 * to `Test App <no-reply@example.com>`).
 */
export interface MailroomTestingModuleOptions extends Partial<Omit<EmailServiceOptions, 'transport'>> {
  /** Register the module globally. Default `true`: a test replaces the app's global mail module. */
  isGlobal?: boolean;
}

/**
 * The mailroom module for a Nest test: the same `MAILROOM_SERVICE` and `EmailService` providers as
 * {@link MailroomModule}, on a memory transport, and its {@link Outbox} under {@link MAILROOM_OUTBOX}
 * and the `Outbox` class. Templates are compiled at init, as in the app.
 *
 * @example
 * ```ts
 * import { Test } from '@nestjs/testing';
 * import { MAILROOM_OUTBOX, MailroomTestingModule } from 'mailroom-js/nestjs';
 * import type { Outbox } from 'mailroom-js/testing';
 *
 * const moduleRef = await Test.createTestingModule({
 *   imports: [MailroomTestingModule.forRoot({ appName: 'Acme' })],
 *   controllers: [SignupController],
 * }).compile();
 * const app = await moduleRef.createNestApplication().init();
 * await request(app.getHttpServer()).post('/signup').send({ email: 'jane@example.com', name: 'Jane' });
 * app.get<Outbox>(MAILROOM_OUTBOX).expectSent({ to: 'jane@example.com', template: 'verification' });
 * ```
 */
// biome-ignore lint/complexity/noStaticOnlyClass: Nest identifies a module by its class.
export class MailroomTestingModule {
  static forRoot(options: MailroomTestingModuleOptions = {}): DynamicModule {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('MailroomTestingModule.forRoot: options must be an object');
    }
    const { isGlobal, ...rest } = options;
    const mailer = createTestMailer(rest);
    const resolved: MailroomModuleOptions = {
      ...rest,
      transport: mailer.transport,
      verify: false,
      from: { name: mailer.service.app.senderName, address: mailer.service.app.senderAddress },
    };
    return mailroomModule(
      MailroomTestingModule,
      { provide: MAILROOM_OPTIONS, useValue: resolved },
      [],
      isGlobal ?? true,
      {
        build: () => mailer.service,
        providers: [
          { provide: MAILROOM_OUTBOX, useValue: mailer.outbox },
          { provide: Outbox, useExisting: MAILROOM_OUTBOX },
        ],
      },
    );
  }
}
