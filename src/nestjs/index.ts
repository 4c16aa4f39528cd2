/**
 * `mailroom-js/nestjs`: the NestJS module. Needs `@nestjs/common` and `@nestjs/core` (11 or 12), which
 * the app has already; nothing else loads them.
 *
 * @example
 * ```ts
 * import { Controller, Inject, Module, Post, Body } from '@nestjs/common';
 * import { EmailService, smtpTransport } from 'mailroom-js';
 * import { MAILROOM_SERVICE, MailroomModule } from 'mailroom-js/nestjs';
 *
 * @Controller('signup')
 * class SignupController {
 *   constructor(@Inject(MAILROOM_SERVICE) private readonly mail: EmailService) {}
 *   @Post()
 *   async signup(@Body() body: { email: string; name: string }) {
 *     await this.mail.sendVerificationEmail({ to: body.email, username: body.name, verificationUrl: '…' });
 *   }
 * }
 *
 * @Module({
 *   imports: [MailroomModule.forRoot({ transport: smtpTransport({ host: 'smtp.acme.example' }), from: 'Acme <no-reply@acme.example>' })],
 *   controllers: [SignupController],
 * })
 * export class AppModule {}
 * ```
 */
export {
  InjectMailroom,
  MAILROOM_OPTIONS,
  MAILROOM_SERVICE,
  MailroomModule,
  type MailroomModuleAsyncOptions,
  type MailroomModuleOptions,
  type MailroomModuleRootOptions,
} from './module.js';
export { MAILROOM_OUTBOX, MailroomTestingModule, type MailroomTestingModuleOptions } from './testing.js';
