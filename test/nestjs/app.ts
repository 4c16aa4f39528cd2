/**
 * The Nest application the module's tests drive: one sign-up route that sends the verification
 * email through the injected service, as a user's controller would. Decorators are TypeScript's
 * (`experimentalDecorators`), with an explicit `@Inject` token for every constructor parameter: no
 * emitted metadata is needed.
 */
import 'reflect-metadata';
import type { DynamicModule } from '@nestjs/common';
import { Body, Controller, HttpCode, Inject, Module, Post } from '@nestjs/common';
import { EmailService } from 'mailroom-js';
import { InjectMailroom } from 'mailroom-js/nestjs';

@Controller('signup')
export class SignupController {
  constructor(@InjectMailroom() private readonly mail: EmailService) {}

  @Post()
  @HttpCode(202)
  async signup(@Body() body: { email: string; name: string }) {
    const result = await this.mail.sendVerificationEmail({
      to: body.email,
      username: body.name,
      verificationUrl: `https://acme.example/verify?token=${encodeURIComponent(body.email)}`,
    });
    return { messageId: result.messageId };
  }
}

/** The same route, given the `EmailService` class as its token. */
@Controller('signup-by-class')
export class ClassTokenController {
  constructor(@Inject(EmailService) private readonly mail: EmailService) {}

  @Post()
  @HttpCode(202)
  async signup(@Body() body: { email: string; name: string }) {
    await this.mail.sendWelcomeEmail({ to: body.email, username: body.name });
    return {};
  }
}

/** An app module around the given mail module. */
export function appModule(mail: DynamicModule): new () => object {
  @Module({ imports: [mail], controllers: [SignupController, ClassTokenController] })
  class AppModule {}
  return AppModule;
}
