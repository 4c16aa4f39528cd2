/**
 * `mailroom suppressions list|add|lift`: the suppression list `MAILROOM_SUPPRESSIONS_URL` names,
 * one call of the SuppressionStore API per address, one line each.
 */
import { suppressionsFromEnv } from '../config.js';
import { ConfigError, isMessageError, MessageError } from '../errors.js';
import {
  normalise,
  type Suppression,
  type SuppressionReason,
  type SuppressionStore,
} from '../suppression.js';

/** What `mailroom suppressions` was asked. */
export interface SuppressionsRequest {
  readonly action: string | undefined;
  readonly addresses: readonly string[];
  readonly json: boolean;
  readonly reason: string | undefined;
  readonly detail: string | undefined;
}

/** Thrown for a wrong use of the command (exit 2 with the usage hint). */
export class SuppressionsUsageError extends Error {}

/** Runs the command; true when every address ended as asked (`lift`: each was suppressed). */
export async function runSuppressionsCommand(
  request: SuppressionsRequest,
  out: (line: string) => void,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<boolean> {
  const { action, addresses } = request;
  if (action !== 'list' && action !== 'add' && action !== 'lift')
    throw new SuppressionsUsageError(
      action === undefined
        ? 'suppressions needs list, add or lift'
        : `unknown suppressions command "${action}": list, add or lift`,
    );
  if (action === 'list' && addresses.length)
    throw new SuppressionsUsageError(`unexpected argument "${addresses[0]}"`);
  if (action === 'add' && addresses.length !== 1)
    throw new SuppressionsUsageError('suppressions add takes one address');
  if (action === 'lift' && addresses.length === 0)
    throw new SuppressionsUsageError('suppressions lift needs the addresses to lift');
  if (action !== 'add' && (request.reason !== undefined || request.detail !== undefined))
    throw new SuppressionsUsageError(`--reason and --detail go with suppressions add, not ${action}`);
  if (action !== 'list' && request.json)
    throw new SuppressionsUsageError('--json goes with suppressions list');

  const store = suppressionsFromEnv(env);
  if (store === undefined)
    throw new ConfigError(
      'MAILROOM_SUPPRESSIONS_URL',
      'is required by mailroom suppressions: the postgres:// URL of the database holding the suppression list',
    );
  try {
    if (action === 'list') return await list(store, request.json, out);
    if (action === 'add') return await add(store, addresses[0]!, request, out);
    return await lift(store, addresses, out);
  } finally {
    await store.close();
  }
}

async function list(store: SuppressionStore, json: boolean, out: (line: string) => void): Promise<boolean> {
  const entries = await store.list();
  if (json) {
    out(
      JSON.stringify(
        entries.map((s) => ({ ...s, since: s.since.toISOString() })),
        null,
        2,
      ),
    );
    return true;
  }
  if (entries.length === 0) out('No address is suppressed.');
  for (const entry of entries) out(line(entry));
  return true;
}

async function add(
  store: SuppressionStore,
  address: string,
  request: SuppressionsRequest,
  out: (line: string) => void,
): Promise<boolean> {
  const reason = (request.reason ?? 'manual') as SuppressionReason;
  const options = request.detail === undefined ? {} : { detail: request.detail };
  const before = await store.isSuppressed(address).catch(asFlag);
  if (before) {
    out(`${before.address} was already suppressed, kept as it was: ${line(before)}`);
    return true;
  }
  await store.suppress(address, reason, options).catch(asFlag);
  const now = await store.isSuppressed(address);
  out(`Suppressed ${now ? line(now) : address}`);
  return true;
}

async function lift(
  store: SuppressionStore,
  addresses: readonly string[],
  out: (line: string) => void,
): Promise<boolean> {
  let ok = true;
  for (const address of addresses) {
    if (await store.lift(address).catch(asFlag)) out(`Lifted ${normalise(address)}: it may be mailed again`);
    else {
      ok = false;
      out(`${address}: was not suppressed`);
    }
  }
  return ok;
}

/** `jane@example.com  hard-bounce  2026-12-01T10:00:00.000Z  mailgun: 550 5.1.1` */
function line(entry: Suppression): string {
  return [entry.address, entry.reason, entry.since.toISOString(), entry.detail].filter(Boolean).join('  ');
}

/** A store's field error, named as the user wrote it: `--reason`, `--detail`, the address. */
function asFlag(error: unknown): never {
  if (!isMessageError(error)) throw error;
  const problem = error.message.slice(error.field.length + 2);
  if (error.field === 'reason') throw new MessageError('--reason', problem);
  if (error.field === 'detail') throw new MessageError('--detail', problem);
  throw error;
}
