/**
 * Internal: the SNS signing certificates the SES webhook fetches, by URL. Anyone can post a
 * message naming any `SigningCertURL` on an SNS host, so every fetch is one an attacker can ask
 * for: requests for the same URL share one fetch while it runs, a certificate is kept once
 * fetched, and a fetch that failed is remembered for {@link FAILED_FETCH_MEMORY_MS}, so that
 * forged messages naming a URL that does not answer cost one fetch a minute, not one each.
 * Both memories are bounded, the oldest forgotten first; failures are kept apart from
 * certificates, so that many failing URLs never push out the one certificate in use. And at most
 * {@link NEW_CERTIFICATE_FETCHES_PER_MINUTE} URLs not known yet are fetched a minute: forged
 * messages each naming a new URL on an SNS host would otherwise make one outbound request each.
 * SNS signs with one certificate per region, kept once fetched, so a genuine message is held back
 * by the budget only when it names a new certificate during such a flood, and is answered 503
 * (retried by SNS) like any message whose certificate cannot be fetched now.
 */

import { createPublicKey, type KeyObject } from 'node:crypto';

/** How long a failed fetch of a certificate URL is remembered and answered from memory: 60 s. */
export const FAILED_FETCH_MEMORY_MS = 60_000;
/**
 * How long a fetch of a certificate (answer and body) may take: 10 s. A host that never answers
 * must not hold every request naming its URL; past this the fetch has failed, and is remembered.
 */
export const CERTIFICATE_FETCH_TIMEOUT_MS = 10_000;
/** How many certificate URLs not fetched before may be fetched in any 60 s: 10. */
export const NEW_CERTIFICATE_FETCHES_PER_MINUTE = 10;
/** How many fetched certificates are kept. SNS signs with one at a time per region. */
const MAX_CERTIFICATES = 32;
/** How many failed URLs are remembered. */
const MAX_FAILED = 1_000;

/** The certificate's public key at `url`; rejects when it cannot be fetched or read, now or within the last minute. */
export type CertificateSource = (url: string) => Promise<KeyObject>;

export function snsCertificates(
  get: (url: string, signal: AbortSignal) => Promise<Response>,
  timeoutMs = CERTIFICATE_FETCH_TIMEOUT_MS,
): CertificateSource {
  /** Fetches running, shared by every request naming their URL (as many as requests waiting on them). */
  const loading = new Map<string, Promise<KeyObject>>();
  const certificates = new Map<string, KeyObject>();
  /** URL -> when its fetch failed (ms since the epoch), oldest first. */
  const failed = new Map<string, number>();
  /** When each of the last fetches started (ms since the epoch), oldest first: the budget. */
  const started: number[] = [];
  const withinBudget = (now: number): boolean => {
    while (started.length > 0 && now - (started[0] as number) >= 60_000) started.shift();
    if (started.length >= NEW_CERTIFICATE_FETCHES_PER_MINUTE) return false;
    started.push(now);
    return true;
  };

  const load = async (url: string): Promise<KeyObject> => {
    const signal = AbortSignal.timeout(timeoutMs);
    // Raced as well as signalled: a `fetch` option may not heed the signal.
    const timedOut = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () =>
        reject(new Error(`SNS signing certificate: no answer within ${timeoutMs} ms`)),
      );
    });
    timedOut.catch(() => {});
    const response = await Promise.race([get(url, signal), timedOut]);
    if (!response.ok) throw new Error(`SNS signing certificate: HTTP ${response.status}`);
    return createPublicKey(await Promise.race([response.text(), timedOut]));
  };

  return async (url) => {
    const known = certificates.get(url);
    if (known) return known;
    const failedAt = failed.get(url);
    if (failedAt !== undefined) {
      if (Date.now() - failedAt < FAILED_FETCH_MEMORY_MS)
        throw new Error('SNS signing certificate: its fetch failed less than a minute ago');
      failed.delete(url);
    }
    let pending = loading.get(url);
    if (!pending) {
      // Not remembered as failed: the URL may be fetched once the budget allows.
      if (!withinBudget(Date.now()))
        throw new Error(
          `SNS signing certificate: ${NEW_CERTIFICATE_FETCHES_PER_MINUTE} new certificate URLs were fetched in the last minute`,
        );
      pending = load(url)
        .then(
          (key) => {
            certificates.set(url, key);
            forgetOldest(certificates, MAX_CERTIFICATES);
            return key;
          },
          (error: unknown) => {
            failed.set(url, Date.now());
            forgetOldest(failed, MAX_FAILED);
            throw error;
          },
        )
        .finally(() => loading.delete(url));
      loading.set(url, pending);
    }
    return pending;
  };
}

function forgetOldest(map: Map<string, unknown>, max: number): void {
  while (map.size > max) map.delete(map.keys().next().value as string);
}
