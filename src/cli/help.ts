/** The `mailroom` command's help: the overview, and one page per command (`mailroom <command> --help`). */

export const USAGE = `Usage:
  mailroom render <template> --data '<json>' [--format json|html|text] [--templates DIR]
  mailroom send <template> --to <address>[,<address>…] [--to …] --data '<json>' [--category NAME]
                [--templates DIR]
  mailroom templates [--templates DIR]
  mailroom preview [--port 3025] [--host 127.0.0.1] [--templates DIR] [--outbox DIR]
                   [--allowed-hosts NAME,…] [--token TOKEN]
  mailroom check [<template>] [--data '<json>'] [--templates DIR] [--staging-hosts NAME,…]
                 [--production] [--no-spam]
  mailroom release <id…> | --all [--to <address>]
  mailroom discard <id…> | --all
  mailroom suppressions list [--json] | add <address> [--reason manual] [--detail TEXT]
                        | lift <address…>
  mailroom worker [--brokers HOST:PORT,…] [--group ID] [--topic NAME] [--retry-topic NAME]
                  [--dlq-topic NAME] [--delay-topics] [--concurrency N] [--health-port N]
                  [--health-host ADDR] [--templates DIR] [--kafka-client kafkajs|confluent]
  mailroom <command> --help | --help | --version
Every command also takes --config FILE.

Configuration comes from your config file, --config FILE, else the first of mailroom.config.ts,
.mts, .cts, .js, .mjs, .cjs in the working directory (export default defineConfig({ templates,
transport, brand, … }) from 'mailroom-js'), and from the environment (APP_NAME,
MAILROOM_TRANSPORT, SMTP_*, MAILGUN_* …): flags first, then the file, then the environment. With
neither, mail goes to the sandbox folder (.mailroom/outbox). The worker reads KAFKA_BROKERS,
KAFKA_SSL, KAFKA_SASL_*, MAILROOM_KAFKA_TOPIC, MAILROOM_KAFKA_GROUP, MAILROOM_WORKER_CONCURRENCY
and MAILROOM_KAFKA_CLIENT. With MAILROOM_SUPPRESSIONS_URL (postgres://…), send and worker skip the
addresses on that suppression list, and mailroom suppressions manages it.
--templates DIR is a folder of your templates, one per subfolder (html.eta, subject.eta, …),
relative to the working directory.`;

const TEMPLATES_FLAG = `  --templates DIR   your templates, one per subfolder (html.eta, subject.eta, optional text.eta,
                    preheader.eta, style.css, template.json); relative to the working directory; adds
                    to the config file's templates (a name in both is an error)`;

const CONFIG_FLAG = `  --config FILE     your mailroom config (export default defineConfig({ … })), relative to the
                    working directory; default: the first of mailroom.config.ts, .mts, .cts, .js,
                    .mjs, .cjs there. Flags override it; it overrides the environment`;

/** One page per command: what it does, its flags with their defaults, an example. */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  templates: `mailroom templates [--templates DIR] [--config FILE]

Lists the templates the service knows: the built-in ones and yours (the config file's and --templates').

${TEMPLATES_FLAG}
${CONFIG_FLAG}

Example:
  mailroom templates --templates ./emails`,
  render: `mailroom render <template> --data '<json>' [--format json|html|text] [--templates DIR] [--config FILE]

Renders a template with the given data and prints it; sends nothing.

  --data, -d JSON   the template's data, a JSON object (default {})
  --format, -f      json (subject, html, text; default), html or text
${TEMPLATES_FLAG}
${CONFIG_FLAG}

Example:
  mailroom render verification --data '{"username":"Jane","verificationUrl":"https://acme.example/v/1"}' --format text`,
  send: `mailroom send <template> --to <address>[,<address>…] [--to …] --data '<json>' [--category NAME] [--templates DIR] [--config FILE]

Renders a template and sends it through the transport the config file or the environment
configures (the sandbox folder .mailroom/outbox when none is). Every recipient is sent to, or the
command exits 1 naming each address that was invalid, refused, or held back by the suppression list
(MAILROOM_SUPPRESSIONS_URL) or the recipient's preferences (MAILROOM_PREFERENCES_URL).

  --to, -t ADDRESS  a recipient; repeat it or give a comma-separated list
  --data, -d JSON   the template's data, a JSON object (default {})
  --category NAME   send as security, transactional, product or marketing (default: the template's)
${TEMPLATES_FLAG}
${CONFIG_FLAG}

Example:
  mailroom send welcome --to jane@example.com --data '{"username":"Jane"}'`,
  preview: `mailroom preview [--port 3025] [--host 127.0.0.1] [--templates DIR] [--outbox DIR] [--allowed-hosts NAME,…] [--token TOKEN] [--config FILE]

Serves a page with every template (with its sample data sets) and every email the sandbox captured.
Edits to template files show at once; a change to the config file (or a module it imports) needs
a restart. With MAILROOM_HOLD=true the page lists held emails with Release, Release to… and Discard
buttons, and any template can be sent as a test email through the configured transport.

  --port, -p N          the port (default 3025; 0 picks a free one)
  --host ADDRESS        the address to listen on (default 127.0.0.1: this machine only)
  --outbox DIR          the sandbox folder to show (default MAILROOM_SANDBOX_DIR or .mailroom/outbox)
  --allowed-hosts NAMES names besides localhost the page answers to (a DNS-rebinding guard)
  --token TOKEN         required of every button that sends or changes something (release, discard,
                        send a test) when the page is opened by a name that is not loopback; open
                        the page as http://NAME:PORT/?token=TOKEN. Default MAILROOM_PREVIEW_TOKEN
${TEMPLATES_FLAG}
${CONFIG_FLAG}

Example:
  mailroom preview --templates ./emails --port 4000
  MAILROOM_PREVIEW_TOKEN=$(openssl rand -hex 16) mailroom preview --host 0.0.0.0 --allowed-hosts qa.lan`,
  check: `mailroom check [<template>] [--data '<json>'] [--templates DIR] [--staging-hosts NAME,…] [--production] [--no-spam] [--config FILE]

Renders every template (or the one named) with each of its preview data sets (or --data) and runs
the checks the preview shows: features the major email clients do not support (caniemail's data),
links and images (malformed, not https, to this machine or a staging host), the size Gmail clips
(102 KB of HTML), links missing from the text part, subject length, a preheader, and a SpamAssassin
score when spamassassin or spamc is installed. Prints the errors and warnings; exits 1 when any
email has an error or does not render.

  --data, -d JSON       check only this data (default: every preview data set of the template)
  --staging-hosts NAMES your staging host names (a leading dot takes subdomains): links to them are
                        errors with --production
  --production          links to this machine or a staging host are errors (default: when
                        NODE_ENV is production; info otherwise)
  --no-spam             skip SpamAssassin (about a second per email)
${TEMPLATES_FLAG}
${CONFIG_FLAG}

Example:
  mailroom check --templates ./emails --production --staging-hosts .staging.acme.example`,
  release: `mailroom release <id…> | --all [--to <address>] [--config FILE]

Sends held emails (MAILROOM_HOLD=true) through the transport configured behind the hold, staging
rules included: to their original recipients, or with --to to that one address instead. Each email
is sent once, however many releases of it run at the same time; one that fails stays held, with
the error recorded. Exits 1 when any id was not released (failed, discarded, unknown, busy).

  --all             every email that is held
  --to, -t ADDRESS  send to this address instead of the original recipients
${CONFIG_FLAG}

The ids are the base names of the held files in MAILROOM_SANDBOX_DIR (default .mailroom/outbox), as
mailroom preview and mailroom send list them.

Example:
  MAILROOM_HOLD=true mailroom release 2026-12-05T07-00-00-000Z-welcome-3fa2c1 --to qa@acme.example`,
  discard: `mailroom discard <id…> | --all [--config FILE]

Sets held emails (MAILROOM_HOLD=true) aside for good: they can no longer be released. Their files
stay, for the record. Exits 1 when any id could not be discarded (already released, unknown, busy).

  --all             every email that is held
${CONFIG_FLAG}

Example:
  MAILROOM_HOLD=true mailroom discard --all`,
  worker: `mailroom worker [--brokers HOST:PORT,…] [--group ID] [--topic NAME] [--retry-topic NAME] [--dlq-topic NAME] [--delay-topics] [--concurrency N] [--health-port N] [--health-host ADDR] [--templates DIR] [--kafka-client kafkajs|confluent] [--config FILE]

Consumes emails from Kafka, renders and sends them through the transport the config file or the
environment configures, retries transient failures and dead-letters the rest. Needs a Kafka
client package: kafkajs or @confluentinc/kafka-javascript.

  --brokers LIST      Kafka brokers (default KAFKA_BROKERS)
  --group ID          consumer group (default MAILROOM_KAFKA_GROUP or mailroom-email-worker)
  --topic NAME        the email topic (default MAILROOM_KAFKA_TOPIC or notifications.email)
  --retry-topic NAME  default <topic>.retry
  --dlq-topic NAME    default <topic>.dlq
  --delay-topics      send later: hold emails not yet due (sendAt, quiet hours) on
                      <topic>.delay.1m, .10m, .1h and .6h (create them first)
  --concurrency N     sends in flight (default MAILROOM_WORKER_CONCURRENCY or 10)
  --health-port N     serve GET /livez, /readyz and /metrics (Prometheus, needs prom-client) on port N
  --health-host ADDR  address for --health-port (default 127.0.0.1; 0.0.0.0 in a container)
  --kafka-client NAME kafkajs or confluent (@confluentinc/kafka-javascript); default
                      MAILROOM_KAFKA_CLIENT, else kafkajs if installed, else confluent
${TEMPLATES_FLAG}
${CONFIG_FLAG}

The config file's worker: { brokers, group, topic, retryTopic, deadLetterTopic, delayTopics, concurrency, client } comes
between these flags and their variables. A transport in the file that only captures mail still
needs MAILROOM_TRANSPORT=sandbox; the hold (MAILROOM_HOLD=true) takes the topic and keeps each
email until mailroom release sends it.

Example:
  KAFKA_BROKERS=kafka-1:9092 mailroom worker --templates ./emails --concurrency 10`,
  suppressions: `mailroom suppressions list [--json] | add <address> [--reason manual] [--detail TEXT] | lift <address…>

The suppression list in the PostgreSQL database MAILROOM_SUPPRESSIONS_URL names (postgres://user:
password@host:5432/database; needs the pg package): the addresses mailroom send, mailroom worker and
every EmailService built from the environment leave out of all but security mail. Hard bounces and
spam complaints get there from your delivery webhooks (suppressFromEvents); the table is created on
first use when it is missing.

  list          every suppressed address, oldest first: address, reason, since, detail
    --json      as a JSON array of { address, reason, since, detail }
  add ADDRESS   suppress it; an address already suppressed keeps its first reason and date
    --reason R  hard-bounce, complaint, unsubscribe or manual (default manual)
    --detail T  why, for whoever lifts it (at most 1 000 characters)
  lift ADDR…    let each be mailed again; exits 1 when any was not suppressed

Example:
  mailroom suppressions add jane@example.com --detail "asked by phone, ticket 4121"
  mailroom suppressions lift jane@example.com`,
};

/**
 * Each command's own flags, as its help page lists them: a misspelt flag is matched against these
 * for "did you mean". `--help` goes with every command.
 */
export const COMMAND_FLAGS: Readonly<Record<string, readonly string[]>> = {
  templates: ['templates', 'config'],
  render: ['data', 'format', 'templates', 'config'],
  send: ['to', 'data', 'category', 'templates', 'config'],
  preview: ['port', 'host', 'outbox', 'allowed-hosts', 'token', 'templates', 'config'],
  check: ['data', 'staging-hosts', 'production', 'no-spam', 'templates', 'config'],
  release: ['all', 'to', 'config'],
  discard: ['all', 'config'],
  worker: [
    'brokers',
    'group',
    'topic',
    'retry-topic',
    'dlq-topic',
    'delay-topics',
    'concurrency',
    'health-port',
    'health-host',
    'kafka-client',
    'templates',
    'config',
  ],
  suppressions: ['json', 'reason', 'detail'],
};
