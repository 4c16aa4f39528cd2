/**
 * The `mailroom` command: thin. It parses arguments, calls the public API and prints.
 * Errors are one line on stderr and a non-zero exit, never a stack trace.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { nearest } from '../did-you-mean.js';
import { isMailroomError, isMessageError, MessageError } from '../errors.js';
import { isKafkaTopicMissingError, isKafkaUnavailableError } from '../kafka/failures.js';
import { BindError, listen } from '../listen.js';
import { isLoopback } from '../loopback.js';
import type { EmailCategory } from '../message.js';
import { createPreviewHandler, refuseInProduction } from '../preview/handler.js';
import { hostCheck, hostName } from '../preview/hosts.js';
import type { SendResult, Transport } from '../transport.js';
import { heldId } from '../transports/hold.js';
import { sandboxFiles } from '../transports/sandbox.js';
import { runCheckCommand } from './check.js';
import { loadConfig } from './config-file.js';
import { COMMAND_FLAGS, COMMAND_HELP, USAGE } from './help.js';
import { runHoldCommand } from './hold.js';
import { appTemplates, buildService, cliServiceOptions, serviceFromCli } from './service.js';
import { runSuppressionsCommand, SuppressionsUsageError } from './suppressions.js';
import { runWorker } from './worker.js';

class UsageError extends Error {}

/**
 * Some recipients did not get the email: the command fails, naming each with the server's reply,
 * or the suppression that held it back.
 */
class NotSentError extends Error {
  constructor(missed: readonly string[], result: SendResult) {
    const why = (address: string) => {
      const refusal = result.refusals?.find((r) => r.address === address);
      const later = result.deferred?.includes(address) ? 'deferred' : 'refused';
      return `${address} (${later}${refusal?.response ? `: ${refusal.response}` : ''})`;
    };
    const suppressed = (result.suppressed ?? []).map(
      (s) =>
        `${s.address} (suppressed: ${s.reason}; mailroom suppressions lift ${s.address} allows it again)`,
    );
    super(`not sent to ${[...missed.map(why), ...suppressed].join(', ')}`);
  }
}

/**
 * The addresses of every --to, each of which may be a comma-separated list. A comma inside a
 * quoted display name ("Doe, Jane" <jane@example.com>) does not split it.
 */
function recipients(values: readonly string[]): string[] {
  if (values.length === 0) throw new UsageError('send needs --to <address>');
  const list: string[] = [];
  for (const value of values) {
    const add = (entry: string) => {
      if (entry.trim() === '') throw new UsageError(`--to has an empty address in ${JSON.stringify(value)}`);
      list.push(entry.trim());
    };
    let quoted = false;
    let start = 0;
    for (let i = 0; i < value.length; i++) {
      if (value[i] === '\\') i++;
      else if (value[i] === '"') quoted = !quoted;
      else if (value[i] === ',' && !quoted) {
        add(value.slice(start, i));
        start = i + 1;
      }
    }
    // Else the rest would be one address, its commas unsplit, refused for a reason that hides this one.
    if (quoted) throw new UsageError(`--to has a quote that is not closed in ${JSON.stringify(value)}`);
    add(value.slice(start));
  }
  return list;
}

/** A message error about `to[2]` names the address as given, since the user never wrote an index. */
function namingRecipient(err: unknown, to: readonly string[]): unknown {
  const field = isMessageError(err) ? /^to\[(\d+)\](.*)$/.exec(err.field) : null;
  const given = field ? to[Number(field[1])] : undefined;
  if (!isMessageError(err) || !field || given === undefined) return err;
  const problem = err.message.slice(err.field.length + 2);
  return new MessageError(`--to ${JSON.stringify(given)}${field[2]}`, problem);
}

/** What happened, in words that never claim a delivery a capturing transport did not make. */
function sentLine(template: string, result: SendResult, transport: Transport): string {
  const to = result.accepted.join(', ');
  const id = `(${result.messageId})`;
  if (transport.captures !== true) return `Sent "${template}" to ${to} via ${result.transport} ${id}`;
  const held = heldId(result);
  if (held !== undefined) {
    return `Held "${template}" for ${to}, not delivered yet: release it with mailroom release ${held} ${id}`;
  }
  const files = sandboxFiles(result);
  const where = files
    ? `in the sandbox folder ${dirname(files.eml)}`
    : result.transport === 'memory'
      ? 'in memory, gone when this command exits'
      : `by ${result.transport}`;
  return `Captured "${template}" for ${to}, not delivered: kept ${where} ${id}`;
}

/** The ids of a release or discard: the ones named, or --all; never both, never neither. */
function holdTargets(command: string, ids: readonly string[], all: boolean | undefined): string[] | 'all' {
  if (all && ids.length) throw new UsageError(`${command}: give ids or --all, not both`);
  if (!all && !ids.length) throw new UsageError(`${command} needs the ids of held emails, or --all`);
  return all ? 'all' : [...ids];
}

function parseData(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    throw new UsageError('--data is not valid JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new UsageError('--data must be a JSON object');
  return data as Record<string, unknown>;
}

/** The flags of every command, in one set (each command's own are {@link COMMAND_FLAGS}). */
const OPTIONS = {
  data: { type: 'string', short: 'd' },
  format: { type: 'string', short: 'f', default: 'json' },
  to: { type: 'string', short: 't', multiple: true },
  port: { type: 'string', short: 'p', default: '3025' },
  host: { type: 'string', default: '127.0.0.1' },
  templates: { type: 'string' },
  config: { type: 'string' },
  outbox: { type: 'string' },
  'allowed-hosts': { type: 'string', multiple: true },
  brokers: { type: 'string' },
  group: { type: 'string' },
  topic: { type: 'string' },
  'retry-topic': { type: 'string' },
  'dlq-topic': { type: 'string' },
  'delay-topics': { type: 'boolean' },
  concurrency: { type: 'string' },
  'health-port': { type: 'string' },
  'health-host': { type: 'string' },
  'kafka-client': { type: 'string' },
  all: { type: 'boolean' },
  token: { type: 'string' },
  'staging-hosts': { type: 'string', multiple: true },
  production: { type: 'boolean' },
  'no-spam': { type: 'boolean' },
  json: { type: 'boolean' },
  reason: { type: 'string' },
  detail: { type: 'string' },
  category: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} satisfies ParseArgsConfig['options'];

async function main(argv: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: OPTIONS,
  });
  const [command, template, ...extra] = positionals;
  if (command === 'help') return out((template && COMMAND_HELP[template]) || USAGE);
  if (values.help) return out((command && COMMAND_HELP[command]) || USAGE);
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    return out(pkg.version);
  }
  if (extra.length > 0 && command !== 'release' && command !== 'discard' && command !== 'suppressions')
    throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (command === undefined) throw new UsageError('no command given');
  if (!Object.hasOwn(COMMAND_HELP, command)) throw new UsageError(`unknown command "${command}"`);
  refuseEmptyValues(values);
  // --config FILE, else mailroom.config.ts (…) in the working directory; none: the environment alone.
  const config = await loadConfig(values.config);

  switch (command) {
    case 'templates': {
      if (template) throw new UsageError(`unexpected argument "${template}"`);
      const service = serviceFromCli(config, values.templates);
      return out(service.templates.names().join('\n'));
    }
    case 'render': {
      if (!template) throw new UsageError('render needs a template name');
      const format = values.format;
      if (!['json', 'html', 'text'].includes(format))
        throw new UsageError('--format must be json, html or text');
      const service = serviceFromCli(config, values.templates);
      const rendered = service.render(template, parseData(values.data));
      return out(
        format === 'html'
          ? rendered.html
          : format === 'text'
            ? rendered.text
            : JSON.stringify(rendered, null, 2),
      );
    }
    case 'send': {
      if (!template) throw new UsageError('send needs a template name');
      const to = recipients(values.to ?? []);
      const service = serviceFromCli(config, values.templates);
      try {
        const result = await service
          .sendTemplate(template, {
            to,
            data: parseData(values.data),
            ...(values.category === undefined ? {} : { category: values.category as EmailCategory }),
          })
          .catch((err: unknown) => {
            throw namingRecipient(err, to);
          });
        // Every recipient suppressed: nothing went anywhere, so there is nothing to report as sent.
        if (result.accepted.length || !result.suppressed?.length) {
          out(sentLine(template, result, service.transport));
          for (const [kind, path] of Object.entries(sandboxFiles(result) ?? {}))
            out(`  ${kind.padEnd(5)} ${path}`);
        }
        const missed = [...result.rejected, ...(result.deferred ?? [])];
        if (missed.length || result.suppressed?.length) throw new NotSentError(missed, result);
      } finally {
        // An SMTP pool keeps the process alive until it is closed.
        await service.close();
      }
      return;
    }
    case 'preview': {
      if (template) throw new UsageError(`unexpected argument "${template}"`);
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be 0–65535');
      // The name it is bound to is one it answers; a wildcard address names no host.
      const allowedHosts = (values['allowed-hosts'] ?? []).flatMap((list) =>
        list.split(',').map((name) => name.trim()),
      );
      hostCheck(allowedHosts, '--allowed-hosts');
      const wildcard = ['0.0.0.0', '::', '[::]'].includes(values.host);
      const bound = isIP(values.host) === 6 ? `[${values.host}]` : values.host;
      if (!wildcard && hostName(bound)) allowedHosts.push(bound);
      // Refused before the environment is read: that is the first thing wrong.
      refuseInProduction(false);
      // The options and a clash of names stop it here; a broken template is shown on the page,
      // which reads the templates afresh on each load. One folder is watched for new templates:
      // --templates, else the config's templatesDir.
      const options = cliServiceOptions(config);
      const templates = appTemplates(config, values.templates, false);
      buildService(options, undefined, config);
      const liveDir = values.templates ?? config?.templatesDir;
      const handler = createPreviewHandler({
        enabled: true,
        allowedHosts,
        service: {
          ...options,
          templates: [...templates.code, ...(values.templates ? templates.configDir : [])],
        },
        ...(liveDir ? { templatesDir: liveDir } : {}),
        ...(values.outbox ? { outboxDir: values.outbox } : {}),
        ...(values.token === undefined ? {} : { token: values.token }),
        ...(config ? { configFile: config.name } : {}),
      });
      const server = createServer(handler);
      await listen(server, port, values.host).catch((error: unknown) => {
        throw error instanceof BindError
          ? new UsageError(
              error.hostAtFault
                ? `--host ${values.host} ${error.why}: pass another --host (127.0.0.1 is this machine)`
                : `port ${port} on ${values.host} ${error.why}: pass --port (another number, or 0 for a free one)`,
            )
          : error;
      });
      const stop = () => {
        handler.close();
        server.close();
        server.closeAllConnections();
        // The page can send (release, a test email): an SMTP pool would keep the process alive.
        void options.transport.close?.();
      };
      // Before the address is printed: whoever reads it may stop the preview at once, and a signal
      // with no listener yet ends the process by the default action (killed, not exit 0).
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const address = server.address() as { port: number };
      const host = values.host.includes(':') ? `[${values.host}]` : values.host;
      out(`mailroom preview: http://${host}:${address.port}/`);
      // Not refused: "New template" makes it. But a mistyped path would otherwise show only the
      // built-in templates without a word.
      if (liveDir && !existsSync(liveDir)) {
        out(
          `mailroom preview: the templates folder ${resolve(liveDir)} does not exist yet: only the built-in templates are shown; "New template" creates it`,
        );
      }
      if (!isLoopback(values.host)) {
        out('Warning: listening beyond this machine; anyone who can reach it can read your emails.');
        if (values.token === undefined && !process.env.MAILROOM_PREVIEW_TOKEN?.trim()) {
          out(
            'Release, discard and send buttons are refused from other machines until you set a token (--token or MAILROOM_PREVIEW_TOKEN).',
          );
        }
      }
      if (wildcard) {
        out(
          'It answers only localhost and --allowed-hosts: add the name or address you open it by (--allowed-hosts mybox.lan).',
        );
      }
      return;
    }
    case 'check': {
      const stagingHosts = (values['staging-hosts'] ?? []).flatMap((list) =>
        list.split(',').map((name) => name.trim()),
      );
      hostCheck(stagingHosts, '--staging-hosts');
      const ok = await runCheckCommand(
        {
          template,
          data: values.data === undefined ? undefined : parseData(values.data),
          templatesDir: values.templates,
          options: {
            stagingHosts,
            spam: values['no-spam'] !== true,
            ...(values.production ? { production: true } : {}),
          },
        },
        config,
        out,
      );
      if (!ok) process.exitCode = 1;
      return;
    }
    case 'release':
    case 'discard': {
      const ids = holdTargets(
        command,
        [template, ...extra].filter((x) => x !== undefined),
        values.all,
      );
      if (command === 'discard' && values.to) throw new UsageError('discard takes no --to');
      if ((values.to?.length ?? 0) > 1) throw new UsageError('release takes one --to address');
      const ok = await runHoldCommand(command, ids, values.to?.[0], config, out);
      if (!ok) process.exitCode = 1;
      return;
    }
    case 'worker': {
      if (template) throw new UsageError(`unexpected argument "${template}"`);
      return runWorker(values, out, config);
    }
    case 'suppressions': {
      const ok = await runSuppressionsCommand(
        {
          action: template,
          addresses: extra,
          json: values.json === true,
          reason: values.reason,
          detail: values.detail,
        },
        out,
      ).catch((err: unknown) => {
        throw err instanceof SuppressionsUsageError ? new UsageError(err.message) : err;
      });
      if (!ok) process.exitCode = 1;
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/**
 * A flag given an empty value (`--topic ""`, `--topic "$UNSET"`) is refused, never read as left out:
 * the worker would otherwise join the default topic and group, another deployment's perhaps.
 */
function refuseEmptyValues(values: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(values)) {
    const given = Array.isArray(value) ? value : [value];
    if (given.some((v) => typeof v === 'string' && v.trim() === ''))
      throw new UsageError(`--${name} is empty: give it a value, or leave the flag out`);
  }
}

/** Errors whose message is the whole story (no "unexpected error"): ours, and the worker's documented refusals. */
function expected(err: unknown): boolean {
  return (
    isMailroomError(err) ||
    err instanceof NotSentError ||
    isKafkaTopicMissingError(err) ||
    isKafkaUnavailableError(err)
  );
}

/** The command `argv` names, if it names one: a usage error points to that command's help. */
function commandOf(argv: string[]): string | undefined {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, strict: false, options: OPTIONS });
  const command = positionals[0];
  return command !== undefined && Object.hasOwn(COMMAND_HELP, command) ? command : undefined;
}

/**
 * parseArgs' message for an unknown flag, with the command's own flag it was most likely meant to
 * be (two edits at most: `--concurency`, `--tpoic`); other messages as they are.
 */
function withSuggestion(message: string, command: string | undefined): string {
  const flag = /^Unknown option '--([^'=]+)'/.exec(message)?.[1];
  if (flag === undefined) return message;
  const flags = command === undefined ? Object.keys(OPTIONS) : [...(COMMAND_FLAGS[command] ?? []), 'help'];
  const near = nearest(flag, flags);
  if (near.candidate === undefined || near.distance > 2) return message;
  return `Unknown option '--${flag}'; did you mean --${near.candidate}?`;
}

const argv = process.argv.slice(2);
main(argv, (line) => process.stdout.write(`${line}\n`)).catch((err: unknown) => {
  // A library's error may carry a numeric code (kafkajs protocol errors): only a string is parseArgs'.
  const code = (err as { code?: unknown })?.code;
  const usage = err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
  const command = usage ? commandOf(argv) : undefined;
  const message = usage
    ? withSuggestion((err as Error).message, command)
    : expected(err)
      ? (err as Error).message
      : `unexpected error: ${(err as Error)?.message ?? err}`;
  // One line, whatever a library put after the first (eta appends the generated code).
  const line = String(message).split('\n')[0];
  const help = command === undefined ? 'mailroom --help' : `mailroom ${command} --help`;
  process.stderr.write(`mailroom: ${line}${usage ? `\nRun '${help}' for usage.` : ''}\n`);
  process.exitCode = usage ? 2 : 1;
  // The command failed: nothing more to do. A connection a library left open (kafkajs after a
  // refused SASL handshake) must not keep the process up, to exit 0 on a later SIGTERM.
  setTimeout(() => process.exit(), 500).unref();
});
