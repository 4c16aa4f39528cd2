/** What `mailroom-js/nestjs` accepts, typed: the service's options, and a wrong one is a compile error. */
import type { DynamicModule } from '@nestjs/common';
import { type EmailService, isEmailService, memoryTransport } from '../../src/index.js';
import { MailroomModule, MailroomTestingModule } from '../../src/nestjs/index.js';

const transport = memoryTransport();

export const root: DynamicModule = MailroomModule.forRoot({
  transport,
  from: 'a@b.example',
  isGlobal: true,
  verify: false,
});
export const asyncRoot: DynamicModule = MailroomModule.forRootAsync({
  imports: [],
  inject: ['CONFIG'],
  useFactory: async (config: { from: string }) => ({ transport, from: config.from }),
});
export const testing: DynamicModule = MailroomTestingModule.forRoot({ appName: 'Acme' });

// @ts-expect-error the transport is required
MailroomModule.forRoot({ from: 'a@b.example' });
// @ts-expect-error verify is a boolean
MailroomModule.forRoot({ transport, from: 'a@b.example', verify: 'no' });
// @ts-expect-error the factory returns the options, not a string
MailroomModule.forRootAsync({ useFactory: () => 'smtp' });
// @ts-expect-error the testing module brings its own memory transport
MailroomTestingModule.forRoot({ transport });

export function send(value: unknown): Promise<unknown> | undefined {
  // @ts-expect-error unknown until checked
  value.sendWelcomeEmail({ to: 'a@b.example', username: 'A' });
  if (!isEmailService(value)) return undefined;
  const service: EmailService = value;
  return service.sendWelcomeEmail({ to: 'a@b.example', username: 'A' });
}
