/**
 * `mailroom release` and `mailroom discard`: the hold the configuration builds (MAILROOM_HOLD, or a
 * holdTransport in the config file), one call of its API, one line per id.
 */
import { ConfigError, isMessageError, MessageError } from '../errors.js';
import { mayCapture, type Transport } from '../transport.js';
import {
  type DiscardResult,
  type HoldTransport,
  isHoldTransport,
  type ReleaseResult,
} from '../transports/hold.js';
import type { LoadedConfig } from './config-file.js';
import { cliServiceOptions } from './service.js';

/** Runs a release (to `to`, when given) or a discard; true when every id ended as asked. */
export async function runHoldCommand(
  command: 'release' | 'discard',
  ids: string[] | 'all',
  to: string | undefined,
  config: LoadedConfig | undefined,
  out: (line: string) => void,
): Promise<boolean> {
  const hold = configuredHold(cliServiceOptions(config).transport, command);
  try {
    if (command === 'discard') return printDiscard(await hold.discard(ids), out);
    const results = await hold.release(ids, to === undefined ? {} : { to }).catch((err: unknown) => {
      // The user wrote --to, not to.
      throw isMessageError(err) && err.field === 'to' ? new MessageError('--to', err.message.slice(4)) : err;
    });
    return printRelease(results, out);
  } finally {
    // An SMTP pool keeps the process alive until it is closed.
    await hold.close?.();
  }
}

/** The hold the configuration builds, or a ConfigError saying how to turn it on. */
function configuredHold(transport: Transport, command: 'release' | 'discard'): HoldTransport {
  if (isHoldTransport(transport)) {
    // Released into memory (or a sandbox) in this short-lived process, an email would be gone.
    if (command === 'release' && mayCapture(transport.transport)) {
      throw new ConfigError(
        'transport',
        `the hold releases through ${transport.transport.name}, which keeps mail instead of delivering it: a released email would be marked released and reach nobody. Give the hold a transport that delivers`,
      );
    }
    return transport;
  }
  throw new ConfigError(
    'MAILROOM_HOLD',
    `is not set, so nothing is held (mail goes to ${transport.name}): set MAILROOM_HOLD=true beside the transport releases go through, or give the config file transport: holdTransport({ … })`,
  );
}

/** One line per id; true when every one ended as asked (released, or already released). */
function printRelease(results: readonly ReleaseResult[], out: (line: string) => void): boolean {
  let ok = true;
  for (const r of results) {
    if (r.outcome === 'released') {
      const result = r.record.result!;
      out(`Released ${r.id} to ${result.accepted.join(', ')} via ${result.transport} (${result.messageId})`);
      if (result.rejected.length) {
        out(`  not sent to ${result.rejected.join(', ')}: refused`);
        ok = false;
      }
      if (result.deferred.length) {
        out(
          `  not sent to ${result.deferred.join(', ')} yet: deferred, still held for them (release it again)`,
        );
        ok = false;
      }
      continue;
    }
    if (r.outcome === 'already-released') {
      out(`${r.id}: already released, not sent again`);
      continue;
    }
    ok = false;
    out(
      `${r.id}: ${HOLD_WORDS[r.outcome === 'failed' ? 'failed' : r.outcome]}${r.outcome === 'failed' ? `: ${r.error.message}` : ''}`,
    );
  }
  if (results.length === 0) out('Nothing is held.');
  return ok;
}

function printDiscard(results: readonly DiscardResult[], out: (line: string) => void): boolean {
  let ok = true;
  for (const r of results) {
    if (r.outcome === 'discarded' || r.outcome === 'already-discarded') out(`Discarded ${r.id}`);
    else {
      ok = false;
      out(`${r.id}: ${HOLD_WORDS[r.outcome]}`);
    }
  }
  if (results.length === 0) out('Nothing is held.');
  return ok;
}

const HOLD_WORDS = {
  failed: 'not released, still held',
  released: 'already released, cannot be discarded',
  discarded: 'discarded, not sent',
  busy: 'another release or discard of it is under way; nothing done',
  interrupted:
    'an earlier release was interrupted and may have been delivered: check the inbox, then remove its .lock file in the .hold folder',
  'not-found': 'no such held email (mailroom preview lists them)',
} as const;
