/**
 * Sign-up and verification: `POST /signup` `{ email, name }` sends the verification email with a
 * one-time link, `GET /verify?token=…` verifies the account and sends the welcome email. A
 * `MessageError` (a bad address) becomes a 400 naming the field; a delivery `EmailError` a 503.
 *
 * Users live in a Map to keep the example short; a real app keeps them (and hashes of the tokens)
 * in its database. Every constructor parameter names its token with `@Inject`, so the app needs
 * no `emitDecoratorMetadata` (which esbuild, tsx and vitest do not emit).
 */
import { randomBytes } from 'node:crypto';
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Injectable,
  NotFoundException,
  Post,
  Query,
  ServiceUnavailableException,
} from '@nestjs/common';
import { type EmailService, isEmailError, isMessageError, parseAddress } from 'mailroom-js';
import { InjectMailroom } from 'mailroom-js/nestjs';

interface User {
  email: string;
  name: string;
  verified: boolean;
  token: string | undefined;
}

@Injectable()
export class UsersService {
  readonly byEmail = new Map<string, User>();
  /** Where the links in the emails point: `APP_URL`, default `http://localhost:3000`. */
  readonly baseUrl = process.env.APP_URL || 'http://localhost:3000';
}

@Controller()
export class SignupController {
  constructor(
    @InjectMailroom() private readonly mail: EmailService,
    @Inject(UsersService) private readonly users: UsersService,
  ) {}

  @Post('signup')
  @HttpCode(201)
  async signup(@Body() body: { email?: unknown; name?: unknown }) {
    return this.#mapErrors(async () => {
      const email = parseAddress(typeof body?.email === 'string' ? body.email : '', 'email').address;
      const name = typeof body?.name === 'string' && body.name.trim() ? body.name.trim() : 'there';
      const token = randomBytes(32).toString('base64url');
      this.users.byEmail.set(email.toLowerCase(), { email, name, verified: false, token });
      await this.mail.sendVerificationEmail({
        to: email,
        username: name,
        verificationUrl: `${this.users.baseUrl}/verify?token=${token}`,
      });
      return { email };
    });
  }

  @Get('verify')
  async verify(@Query('token') token: string | undefined) {
    const user = [...this.users.byEmail.values()].find((u) => token && u.token === token);
    if (!user) throw new NotFoundException('This link is not valid or was already used.');
    user.verified = true;
    user.token = undefined;
    return this.#mapErrors(async () => {
      await this.mail.sendWelcomeEmail({ to: user.email, username: user.name });
      return { verified: user.email };
    });
  }

  async #mapErrors<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isMessageError(error))
        throw new BadRequestException({ field: error.field, message: error.message });
      if (isEmailError(error))
        throw new ServiceUnavailableException('The email could not be sent; try again.');
      throw error;
    }
  }
}
