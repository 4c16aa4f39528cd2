/** The settings view's sources: environment, config file, code, default; secrets never shown. */
import { describe, expect, it } from 'vitest';
import { configFromEnv, EmailService, memoryTransport } from '../../src/index.js';
import { settingsView } from '../../src/preview/settings.js';
import { optedIn } from '../helpers/opted-in.js';

const find = (view: ReturnType<typeof settingsView>, name: string) =>
  view.groups.flatMap((g) => g.settings).find((s) => s.name === name);

describe('settingsView', () => {
  it('names the variable a value came from, and shows a secret as set without its value', () => {
    const env = {
      MAILROOM_TRANSPORT: 'memory',
      APP_NAME: 'Acme',
      SMTP_FROM_EMAIL: 'no-reply@acme.example',
      MAILROOM_PRIMARY_COLOR: '#0a0',
      KAFKA_SASL_PASSWORD: 'kafka-secret-value-9',
      MAILROOM_STAGING_ALLOW: '@acme.example',
    };
    const view = settingsView(
      new EmailService(configFromEnv(env)),
      { code: false, configFile: undefined },
      env,
    );
    expect(find(view, 'Primary colour')).toMatchObject({
      value: '#00AA00',
      source: 'environment',
      from: 'MAILROOM_PRIMARY_COLOR',
    });
    expect(find(view, 'Sends through')).toMatchObject({ source: 'environment', from: 'MAILROOM_TRANSPORT' });
    expect(find(view, 'Allowed')).toMatchObject({ value: '@acme.example', source: 'environment' });
    expect(find(view, 'SASL password')).toEqual({
      name: 'SASL password',
      value: 'set',
      source: 'environment',
      from: 'KAFKA_SASL_PASSWORD',
      secret: true,
    });
    expect(find(view, 'SMTP password')).toMatchObject({ value: 'unset', source: 'default' });
    expect(find(view, 'Company')).toMatchObject({ value: 'Acme', source: 'default' });
    expect(JSON.stringify(view)).not.toContain('kafka-secret-value-9');
  });

  it("lists Kafka's TLS files and shows the key's password as set, never its value", () => {
    const env = {
      MAILROOM_TRANSPORT: 'memory',
      KAFKA_SSL_CA_LOCATION: '/etc/kafka/ca.pem',
      KAFKA_SSL_CERTIFICATE_LOCATION: '/etc/kafka/client.pem',
      KAFKA_SSL_KEY_LOCATION: '/etc/kafka/client.key',
      KAFKA_SSL_KEY_PASSWORD: 'tls-key-secret-7',
    };
    const view = settingsView(
      new EmailService(configFromEnv(env)),
      { code: false, configFile: undefined },
      env,
    );
    expect(find(view, 'TLS CA file')).toMatchObject({
      value: '/etc/kafka/ca.pem',
      from: 'KAFKA_SSL_CA_LOCATION',
    });
    expect(find(view, 'TLS client certificate')).toMatchObject({ value: '/etc/kafka/client.pem' });
    expect(find(view, 'TLS client key')).toMatchObject({ value: '/etc/kafka/client.key' });
    expect(find(view, 'TLS key password')).toEqual({
      name: 'TLS key password',
      value: 'set',
      source: 'environment',
      from: 'KAFKA_SSL_KEY_PASSWORD',
      secret: true,
    });
    expect(JSON.stringify(view)).not.toContain('tls-key-secret-7');
  });

  it('shows the suppression list’s database without its password, wherever it might appear', async () => {
    const env = {
      MAILROOM_TRANSPORT: 'memory',
      MAILROOM_SUPPRESSIONS_URL:
        'postgres://app:pg%2Fsecret-77@db.internal:5432/mail?sslmode=require&password=other-secret-88',
    };
    const options = configFromEnv(env);
    const view = settingsView(new EmailService(options), { code: false, configFile: undefined }, env);
    expect(find(view, 'Store')).toEqual({
      name: 'Store',
      value: 'PostgreSQL postgres://app:•••@db.internal:5432/mail',
      source: 'environment',
      from: 'MAILROOM_SUPPRESSIONS_URL',
    });
    const shown = JSON.stringify(view);
    for (const secret of ['pg%2Fsecret-77', 'pg/secret-77', 'other-secret-88'])
      expect(shown).not.toContain(secret);
    await (options.suppressions as unknown as { close(): Promise<void> }).close();
    const none = settingsView(
      new EmailService(configFromEnv({ MAILROOM_TRANSPORT: 'memory' })),
      {
        code: false,
        configFile: undefined,
      },
      { MAILROOM_TRANSPORT: 'memory' },
    );
    expect(find(none, 'Store')).toMatchObject({ source: 'default' });
  });

  it('shows the preferences’ database in its own group, without its password', async () => {
    const env = {
      MAILROOM_TRANSPORT: 'memory',
      MAILROOM_PREFERENCES_URL: 'postgres://app:prefs-secret-55@db.internal:5432/mail',
    };
    const options = configFromEnv(env);
    const view = settingsView(new EmailService(options), { code: false, configFile: undefined }, env);
    const group = view.groups.find((g) => g.title === 'Notification preferences');
    expect(group?.settings).toEqual([
      {
        name: 'Store',
        value: 'PostgreSQL postgres://app:•••@db.internal:5432/mail',
        source: 'environment',
        from: 'MAILROOM_PREFERENCES_URL',
      },
    ]);
    expect(JSON.stringify(view)).not.toContain('prefs-secret-55');
    await (options.preferences as unknown as { close(): Promise<void> }).close();
  });

  it('shows the unsubscribe and settings URLs and the secrets as set only, each secret masked wherever it would appear', () => {
    const first = 'first-unsubscribe-secret-first-unsubscribe';
    const second = 'second-unsubscribe-secret-second-unsubscribe';
    const env = {
      MAILROOM_TRANSPORT: 'memory',
      APP_NAME: 'Acme',
      MAILROOM_UNSUBSCRIBE_URL: 'https://acme.example/unsubscribe',
      MAILROOM_UNSUBSCRIBE_SECRETS: `${first},${second}`,
      MAILROOM_UNSUBSCRIBE_MANAGE_URL: 'https://acme.example/settings/notifications',
      // A mistake that copies a secret into a shown value: masked all the same.
      MAILROOM_STAGING_ALLOW: `@acme.example`,
      MAILROOM_STAGING_SUBJECT_PREFIX: `[${second}] `,
    };
    const view = settingsView(
      new EmailService({ ...configFromEnv(env), preferences: optedIn() }),
      { code: false, configFile: undefined },
      env,
    );
    expect(find(view, 'Unsubscribe URL')).toMatchObject({
      value: 'https://acme.example/unsubscribe',
      source: 'environment',
      from: 'MAILROOM_UNSUBSCRIBE_URL',
    });
    expect(find(view, 'Unsubscribe secrets')).toMatchObject({ value: 'set', secret: true });
    expect(find(view, 'Notification settings URL')).toMatchObject({
      value: 'https://acme.example/settings/notifications',
      source: 'environment',
      from: 'MAILROOM_UNSUBSCRIBE_MANAGE_URL',
    });
    const shown = JSON.stringify(view);
    expect(shown).not.toContain(first);
    expect(shown).not.toContain(second);
  });

  it('credits each provider chosen by its variables, and shows every provider key as set or unset only', () => {
    const keys = {
      postmark: {
        POSTMARK_SERVER_TOKEN: 'pm-token-value-1234',
        POSTMARK_FROM_ADDRESS: 'Acme <no-reply@acme.example>',
      },
      resend: { RESEND_API_KEY: 're_secret_value_1234', RESEND_FROM_ADDRESS: 'Acme <no-reply@acme.example>' },
      sendgrid: {
        SENDGRID_API_KEY: 'SG.secret-value-1234',
        SENDGRID_FROM_ADDRESS: 'Acme <no-reply@acme.example>',
      },
    };
    const labels = {
      postmark: 'Postmark server token',
      resend: 'Resend API key',
      sendgrid: 'SendGrid API key',
    };
    for (const [provider, env] of Object.entries(keys) as Array<
      [keyof typeof keys, Record<string, string>]
    >) {
      const view = settingsView(
        new EmailService(configFromEnv(env)),
        { code: false, configFile: undefined },
        env,
      );
      const [secretVariable] = Object.keys(env);
      expect(find(view, 'Sends through'), provider).toMatchObject({
        source: 'environment',
        from: secretVariable,
      });
      expect(find(view, labels[provider])).toEqual({
        name: labels[provider],
        value: 'set',
        source: 'environment',
        from: secretVariable,
        secret: true,
      });
      expect(find(view, 'From address')).toMatchObject({ source: 'environment', from: Object.keys(env)[1] });
      expect(find(view, 'Mailgun API key')).toMatchObject({ value: 'unset' });
      expect(JSON.stringify(view)).not.toContain(Object.values(env)[0]);
    }
  });

  it('a value given in code is code, or the config file when it came from one', () => {
    const service = new EmailService({
      transport: memoryTransport(),
      from: 'Acme <hello@acme.example>',
      appName: 'Acme',
      brand: { company: 'Acme Inc.' },
    });
    expect(find(settingsView(service, { code: true, configFile: undefined }, {}), 'Company')).toMatchObject({
      value: 'Acme Inc.',
      source: 'code',
    });
    const fromFile = settingsView(service, { code: true, configFile: 'mailroom.config.ts' }, {});
    expect(find(fromFile, 'From address')).toMatchObject({
      value: 'hello@acme.example',
      source: 'config file',
      from: 'mailroom.config.ts',
    });
    expect(find(fromFile, 'Sends through')).toMatchObject({
      value: expect.stringMatching(/^memory/),
      source: 'config file',
    });
    expect(find(fromFile, 'Staging rules')).toMatchObject({ value: 'off', source: 'default' });
  });
});
