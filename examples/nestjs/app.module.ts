/**
 * A NestJS app's mail, as a production app writes it: `MailroomModule.forRootAsync` builds the
 * service from the mailroom variables that `ConfigService` holds (the process environment and a
 * `.env` file), and the sign-up controller injects it. At start-up every template is compiled and
 * the transport verified: a broken template or a wrong SMTP password fails `app.listen()`.
 */
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { configFromEnv, ENV_VARIABLES } from 'mailroom-js';
import { MailroomModule } from 'mailroom-js/nestjs';
import { SignupController, UsersService } from './signup.controller.js';

/** The mail module, exported so that a test can replace it (`overrideModule(mailModule)`). */
export const mailModule = MailroomModule.forRootAsync({
  isGlobal: true,
  inject: [ConfigService],
  useFactory: (config: ConfigService) => {
    // Every variable mailroom reads (SMTP_HOST, MAILGUN_API_KEY, APP_NAME …), from ConfigService.
    const env = Object.fromEntries(
      Object.keys(ENV_VARIABLES).map((name) => [name, config.get<string>(name)]),
    );
    return { ...configFromEnv(env), verify: config.get('VERIFY_MAIL_ON_START') !== 'false' };
  },
});

@Module({
  imports: [ConfigModule.forRoot({ isGlobal: true }), mailModule],
  controllers: [SignupController],
  providers: [UsersService],
})
export class AppModule {}
