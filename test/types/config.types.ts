/** `defineConfig()` takes what a user writes in mailroom.config.ts, typed; a wrong field is a compile error. */
import { defineConfig, defineTemplate, type MailroomConfig, smtpTransport } from '../../src/index.js';

const invoice = defineTemplate({
  name: 'invoice',
  fields: { number: 'string', totalCents: 'number', note: 'string?' },
  subject: 'Invoice <%= it.number %>',
  html: '<p><%= it.number %></p>',
});

export const full: MailroomConfig = defineConfig({
  templates: [invoice],
  templatesDir: './emails',
  layouts: { plain: '<%~ it.body %>' },
  partials: { footer: '<p>Bye</p>' },
  css: 'p { margin: 0 }',
  brand: { logoUrl: 'https://acme.example/logo.png', colors: { primary: '#FF5A00' } },
  from: { name: 'Acme', address: 'no-reply@acme.example' },
  replyTo: 'help@acme.example',
  appName: 'Acme',
  maxMessageBytes: 10_000_000,
  retry: { maxAttempts: 5 },
  transport: smtpTransport({ host: 'smtp.acme.example' }),
  worker: { brokers: ['kafka-1:9092'], group: 'mail', topic: 'mail', concurrency: 4 },
});

// @ts-expect-error templates are handles, not names
defineConfig({ templates: ['invoice'] });
// @ts-expect-error a misspelt field
defineConfig({ templtes: [invoice] });
// @ts-expect-error concurrency is a number
defineConfig({ worker: { concurrency: '4' } });
