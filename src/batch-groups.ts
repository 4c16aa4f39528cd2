/**
 * Internal: which emails of a batch may share one provider request (`Transport.sendBatch`): those
 * identical in everything a recipient sees or the provider reads, but for their one recipient.
 * Anything else goes on its own, so that sharing a request never changes what anyone gets.
 */
import { hash } from 'node:crypto';
import type { EmailMessage } from './message.js';

/**
 * A digest of everything of `message` but its `to` recipient and Message-ID, or undefined when it
 * must go alone: more than one `to` recipient (each would see only themselves), cc or bcc (every
 * copy would carry them), files, a one-click unsubscribe link (signed per recipient), or text a provider would substitute per recipient (Mailgun's
 * `%recipient.…%`, honoured once recipient variables are given).
 */
function sharedContentKey(message: EmailMessage): string | undefined {
  if (message.to.length !== 1 || message.cc.length > 0 || message.bcc.length > 0) return undefined;
  if (message.attachments.length > 0 || message.icalEvent !== undefined) return undefined;
  // Signed for its one recipient (header and footer): no other email is like it, so not hashed.
  if (message.headers['List-Unsubscribe'] !== undefined) return undefined;
  const content = JSON.stringify([
    message.from,
    message.replyTo,
    message.subject,
    message.html ?? null,
    message.text ?? null,
    Object.entries(message.headers),
    message.tags,
    Object.entries(message.metadata),
    message.category,
    message.template ?? null,
    // A request has one delivery time (Mailgun's o:deliverytime).
    message.sendAt?.getTime() ?? null,
  ]);
  if (content.includes('%recipient.')) return undefined;
  // A digest, not the text: 10 000 rendered bodies kept as map keys would hold every one in memory.
  return hash('sha256', content, 'base64');
}

/**
 * Splits `items` into requests: those with the same key, at most `limit` a request and no address
 * twice in one (a provider keys recipient variables by address); a request of one is an email sent
 * on its own, as is every item `shareable` turns down. Requests come in the order of their first item.
 */
export function groupByContent<T extends { readonly message: EmailMessage }>(
  items: readonly T[],
  limit: number,
  shareable: (item: T) => boolean = () => true,
): T[][] {
  const requests: T[][] = [];
  const open = new Map<string, { items: T[]; addresses: Set<string> }>();
  for (const item of items) {
    const key = limit > 1 && shareable(item) ? sharedContentKey(item.message) : undefined;
    if (key === undefined) {
      requests.push([item]);
      continue;
    }
    const address = item.message.to[0]!.address.toLowerCase();
    let group = open.get(key);
    if (group?.addresses.has(address)) {
      // The same person twice with the same email: the second goes on its own, as it would alone.
      requests.push([item]);
      continue;
    }
    if (!group || group.items.length >= limit) {
      group = { items: [], addresses: new Set() };
      open.set(key, group);
      requests.push(group.items);
    }
    group.items.push(item);
    group.addresses.add(address);
  }
  return requests;
}
