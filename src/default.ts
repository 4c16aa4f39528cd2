/**
 * The default service behind the top-level `sendVerificationEmail()` and friends: the one given to
 * `configure()`, or else one built from the environment on first use.
 */
import { configFromEnv } from './config.js';
import {
  EmailService,
  type EmailServiceOptions,
  isEmailService,
  type PasswordResetEmailOptions,
  type VerificationEmailOptions,
  type WelcomeEmailOptions,
} from './service.js';
import type { SendResult } from './transport.js';

let current: EmailService | undefined;

/**
 * Sets the service the top-level send functions use. Pass options or a ready service; returns it.
 *
 * @example
 * ```ts
 * configure({ transport: memoryTransport(), from: 'Acme <no-reply@acme.example>' });
 * await sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
 * ```
 */
export function configure(options: EmailServiceOptions | EmailService): EmailService {
  current = isEmailService(options) ? options : new EmailService(options);
  return current;
}

/** The default service, built from the environment (`configFromEnv()`) if `configure()` was not called. */
export function defaultService(): EmailService {
  current ??= new EmailService(configFromEnv());
  return current;
}

/**
 * Sends the built-in verification email through the default service.
 *
 * @example
 * ```ts
 * await sendVerificationEmail({ to: 'jane@example.com', username: 'Jane', verificationUrl });
 * ```
 */
export function sendVerificationEmail(options: VerificationEmailOptions): Promise<SendResult> {
  return defaultService().sendVerificationEmail(options);
}

/**
 * Sends the built-in password-reset email through the default service.
 *
 * @example
 * ```ts
 * await sendPasswordResetEmail({ to: 'jane@example.com', username: 'Jane', resetUrl, expiresInMinutes: 30 });
 * ```
 */
export function sendPasswordResetEmail(options: PasswordResetEmailOptions): Promise<SendResult> {
  return defaultService().sendPasswordResetEmail(options);
}

/**
 * Sends the built-in welcome email through the default service.
 *
 * @example
 * ```ts
 * await sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane', actionUrl: 'https://acme.example/start' });
 * ```
 */
export function sendWelcomeEmail(options: WelcomeEmailOptions): Promise<SendResult> {
  return defaultService().sendWelcomeEmail(options);
}
