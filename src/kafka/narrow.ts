/**
 * Internal: copies of an envelope narrowed to some of its recipients, for a send the provider
 * accepted for some recipients and refused for others (`SendResult.deferred`, `rejected`). The
 * copy keeps the idempotency key (so the same Message-ID) and is marked with a header, so the
 * idempotency store tells it apart from the original that was already sent.
 */

import { createHash } from 'node:crypto';
import { lowerAscii } from '../ascii-case.js';
import { oneLine } from '../log.js';
import { parseAddress } from '../message.js';
import type { RecipientRefusal, SendResult } from '../transport.js';
import { headerText, type KafkaIncomingMessage } from './client.js';
import type { EnvelopeV1 } from './envelope.js';

/** The header that marks a narrowed copy (`deferred` or `rejected`). */
export const NARROWED_HEADER = 'mailroom-narrowed';
/** On a dead-lettered narrowed copy: the refusals as JSON, `[{ address, status, response }]`. */
export const REFUSALS_HEADER = 'mailroom-refusals';

const addressOf = (input: string) => {
  try {
    return lowerAscii(parseAddress(input, 'to').address);
  } catch {
    return lowerAscii(input);
  }
};

/**
 * Copies of `envelope` that reach exactly `addresses`. To and Cc keep their place; when no To
 * recipient is left, the Cc ones become To; Bcc recipients left alone get one copy each, so no
 * blind-copied address is shown to anyone else.
 */
export function narrowedCopies(envelope: EnvelopeV1, addresses: readonly string[]): EnvelopeV1[] {
  // The common case, once per sent email: nobody refused, so no copy and no address parsed.
  if (addresses.length === 0) return [];
  const wanted = new Set(addresses.map(addressOf));
  const keep = (list: readonly string[] | undefined) => (list ?? []).filter((a) => wanted.has(addressOf(a)));
  const to = keep(envelope.to);
  const cc = keep(envelope.cc);
  const bcc = keep(envelope.bcc);
  const { cc: _cc, bcc: _bcc, ...rest } = envelope;
  const copy = (fields: { to: string[]; cc?: string[]; bcc?: string[] }): EnvelopeV1 => ({
    ...rest,
    to: fields.to,
    ...(fields.cc?.length ? { cc: fields.cc } : {}),
    ...(fields.bcc?.length ? { bcc: fields.bcc } : {}),
  });
  if (to.length > 0) return [copy({ to, cc, bcc })];
  if (cc.length > 0) return [copy({ to: cc, bcc })];
  return bcc.map((address) => copy({ to: [address] }));
}

/** The idempotency-store key of a record: the envelope's key, plus its recipients when it is a narrowed copy. */
export function storeKey(envelope: EnvelopeV1, message: KafkaIncomingMessage): string {
  if (headerText(message.headers, NARROWED_HEADER) === undefined) return envelope.idempotencyKey;
  const recipients = recipientsOf(envelope).sort();
  const digest = createHash('sha256').update(recipients.join('\n')).digest('hex').slice(0, 16);
  return `${envelope.idempotencyKey}#${digest}`;
}

/** Every recipient of an envelope (To, Cc, Bcc), as bare lower-case addresses. */
export function recipientsOf(envelope: EnvelopeV1): string[] {
  return [...envelope.to, ...(envelope.cc ?? []), ...(envelope.bcc ?? [])].map(addressOf);
}

/** The refusals of `addresses`, from the result (an entry without a reason when the transport gave none). */
export function refusalsOf(result: SendResult, addresses: readonly string[]): RecipientRefusal[] {
  const byAddress = new Map((result.refusals ?? []).map((r) => [addressOf(r.address), r]));
  const rejected = new Set(result.rejected.map(addressOf));
  return addresses.map(
    (address) =>
      byAddress.get(addressOf(address)) ?? {
        address,
        failure: rejected.has(addressOf(address)) ? 'permanent' : 'transient',
      },
  );
}

/** At most this much JSON in the refusals header, whole entries only (Kafka headers stay small). */
const MAX_REFUSALS_HEADER = 8_000;

/** The refusals header: JSON that always parses, with as many whole entries as fit. */
export function refusalsHeader(refusals: readonly RecipientRefusal[]): string {
  const kept = [...refusals];
  let json = JSON.stringify(kept);
  while (json.length > MAX_REFUSALS_HEADER && kept.length > 1) {
    kept.pop();
    json = JSON.stringify(kept);
  }
  return json;
}

/** One line for the error message header: `450 4.2.0 greylisted (1 recipient)`, the first reply shown. */
export function refusalSummary(refusals: readonly RecipientRefusal[]): string {
  const [first] = refusals;
  const reply = first ? [first.status, first.response].filter((p) => p !== undefined).join(' ') : '';
  const count = `${refusals.length} recipient${refusals.length === 1 ? '' : 's'}`;
  return oneLine(`refused ${count}${reply ? `: ${reply}` : ''}`, 500);
}
