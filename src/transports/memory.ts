import type { EmailMessage } from '../message.js';
import { deliveryRecipients } from '../message.js';
import { RECORDS_SEND_AT, type SendResult, scheduled, type Transport, throwIfAborted } from '../transport.js';

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

/** Options of {@link memoryTransport}. */
export interface MemoryTransportOptions {
  /**
   * The transport production sends with (it is never sent through): the outbox then refuses what
   * that one would. Its `check` runs on every message (Postmark's one tag, Resend's tag
   * characters, SendGrid's custom_args size …), and `sendAt` is taken only as far ahead as its
   * `scheduling` reaches (SMTP: not at all; Mailgun: 3 days by default), each a `MessageError`
   * naming the field, as production's would be. Default: none; the outbox keeps every message
   * `createMessage` accepts, with any `sendAt`.
   */
  like?: Transport;
}

/**
 * An in-memory transport for test suites: nothing leaves the process. Each instance has its own
 * outbox, so parallel tests do not see each other's mail. Give `like` the production transport so
 * a test refuses what production would.
 *
 * @example
 * ```ts
 * const transport = memoryTransport();
 * const mail = new EmailService({ transport, from: 'Acme <no-reply@acme.example>' });
 * await mail.sendWelcomeEmail({ to: 'jane@example.com', username: 'Jane' });
 * transport.outbox[0]?.message.subject; // 'Welcome to Acme'
 * ```
 */
export function memoryTransport(options: MemoryTransportOptions = {}): MemoryTransport {
  const like = checkLike(options);
  const outbox: CapturedEmail[] = [];
  const check = like?.check?.bind(like);
  return {
    name: 'memory',
    captures: true,
    narrowsRecipients: true,
    // Keeps the message with its sendAt (`outbox[i].message.sendAt`), so a test sees what was
    // asked; as far ahead as the transport it stands in for would take it.
    ...(like === undefined ? { scheduling: RECORDS_SEND_AT } : scheduled(like.scheduling)),
    ...(check ? { check } : {}),
    describe: () =>
      like === undefined
        ? 'memory (an in-process outbox)'
        : `memory (an in-process outbox, checked as ${like.describe?.() ?? like.name})`,
    get outbox() {
      return outbox;
    },
    clear() {
      outbox.length = 0;
    },
    async send(message, context) {
      throwIfAborted(context, 'memory');
      check?.(message);
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

function checkLike(options: MemoryTransportOptions): Transport | undefined {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('memoryTransport: options must be an object');
  const { like } = options;
  if (like !== undefined && (typeof like !== 'object' || like === null || typeof like.send !== 'function'))
    throw new TypeError('memoryTransport: like must be a Transport');
  return like;
}
