import type { EmailMessage } from '../message.js';
import { deliveryRecipients } from '../message.js';
import { RECORDS_SEND_AT, type SendResult, type Transport, throwIfAborted } from '../transport.js';

/** One message captured by a {@link MemoryTransport}. */
export interface CapturedEmail {
  readonly message: EmailMessage;
  readonly result: SendResult;
  readonly sentAt: Date;
}

/** A transport that keeps every message in an in-process outbox. */
export interface MemoryTransport extends Transport {
  readonly name: 'memory';
  /** Messages sent so far, oldest first. */
  readonly outbox: readonly CapturedEmail[];
  /** Empties the outbox (e.g. in `beforeEach`). */
  clear(): void;
}

/**
 * An in-memory transport for test suites: nothing leaves the process. Each instance has its own
 * outbox, so parallel tests do not see each other's mail.
 *
 * @example
 * ```ts
 * const transport = memoryTransport();
 * const mail = new EmailService({ transport, from: 'Acme <no-reply@acme.example>' });
 * await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
 * transport.outbox[0]?.message.subject; // 'Welcome to Acme'
 * ```
 */
export function memoryTransport(): MemoryTransport {
  const outbox: CapturedEmail[] = [];
  return {
    name: 'memory',
    captures: true,
    narrowsRecipients: true,
    // Keeps the message with its sendAt (`outbox[i].message.sendAt`), so a test sees what was asked.
    scheduling: RECORDS_SEND_AT,
    describe: () => 'memory (an in-process outbox)',
    get outbox() {
      return outbox;
    },
    clear() {
      outbox.length = 0;
    },
    async send(message, context) {
      throwIfAborted(context, 'memory');
      const result: SendResult = {
        messageId: message.messageId,
        accepted: [...deliveryRecipients(message)],
        rejected: [],
        transport: 'memory',
      };
      outbox.push(Object.freeze({ message, result, sentAt: new Date() }));
      return result;
    },
  };
}
