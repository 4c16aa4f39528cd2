/**
 * One-click unsubscribe for the notifier's product mail: the service signs a List-Unsubscribe URL
 * per recipient, and this server, mounted at that URL, records the opt-out in the same
 * preference store the next announcement reads.
 */
import { createServer, type Server } from 'node:http';
import type { EmailService, PreferenceStore } from 'mailroom-js';
import { createUnsubscribeHandler } from 'mailroom-js/unsubscribe';

/**
 * A node:http server answering `/unsubscribe` (GET: a confirmation page; POST: the one-click
 * request mail apps send). `secrets` are the service's `unsubscribe.secrets`, newest first.
 */
export function createUnsubscribeServer(
  mail: EmailService,
  preferences: PreferenceStore,
  secrets: readonly string[],
): Server {
  // Pages in the email's language (its link says which), else the browser's, else the service's.
  const unsubscribe = createUnsubscribeHandler({ secrets, preferences, app: mail.app, locale: mail.locale });
  return createServer((req, res) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname === '/unsubscribe') return unsubscribe(req, res);
    res.writeHead(404).end();
  });
}
