/**
 * Template categories (issue 13 §1): declared in `defineTemplate` and `template.json`, the
 * built-ins' own, what a send goes out as, and what a queue is handed.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isMessageError, isTemplateError } from '../../src/errors.js';
import { loadTemplatesDir } from '../../src/preview/sources.js';
import type { QueuedEmail } from '../../src/queue.js';
import { EmailService } from '../../src/service.js';
import { builtinTemplates } from '../../src/templates/builtins.js';
import { defineTemplate } from '../../src/templates/define.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { rejection } from '../helpers/thrown.js';

const digest = defineTemplate({
  name: 'digest',
  category: 'product',
  fields: { username: 'string' },
  subject: 'What is new, <%= it.username %>',
  html: '<p>News</p>',
});
const alert = defineTemplate({
  name: 'new-sign-in',
  category: 'security',
  fields: { device: 'string' },
  subject: 'New sign-in',
  html: '<p>A sign-in from <%= it.device %></p>',
});
const from = 'Acme <no-reply@acme.example>';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('a template has a category', () => {
  it('defaults to transactional, takes each of the four, and refuses anything else naming the field', () => {
    expect(defineTemplate({ name: 'plain', fields: {}, subject: 'S', html: '<p>x</p>' }).category).toBe(
      'transactional',
    );
    for (const category of ['security', 'transactional', 'product', 'marketing'] as const) {
      expect(
        defineTemplate({ name: 'x', fields: {}, subject: 'S', html: '<p>x</p>', category }).category,
      ).toBe(category);
    }
    let error: unknown;
    try {
      defineTemplate({
        name: 'x',
        fields: {},
        subject: 'S',
        html: '<p>x</p>',
        category: 'urgent' as 'security',
      });
    } catch (caught) {
      error = caught;
    }
    expect(isTemplateError(error) && error.field).toBe('category');
  });

  it('reads it from a folder template’s template.json, and a bad one is a problem naming the template', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mailroom-categories-'));
    dirs.push(root);
    for (const [name, category] of [
      ['offer', 'marketing'],
      ['broken', 'loud'],
    ]) {
      await mkdir(join(root, name!));
      await writeFile(join(root, name!, 'html.eta'), '<p>Hi</p>');
      await writeFile(join(root, name!, 'subject.eta'), 'Hi');
      await writeFile(join(root, name!, 'template.json'), JSON.stringify({ fields: {}, category }));
    }
    const problems: { template?: string; message: string }[] = [];
    const handles = loadTemplatesDir(root, problems as never);
    expect(handles.map((h) => [h.name, h.category])).toEqual([['offer', 'marketing']]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ template: 'broken' });
    expect(problems[0]?.message).toContain('category');
  });

  it('gives the built-ins the category their kind of mail has', () => {
    expect(Object.fromEntries(builtinTemplates().map((h) => [h.name, h.category]))).toEqual({
      verification: 'transactional',
      'password-reset': 'transactional',
      welcome: 'transactional',
      'order-confirmation': 'transactional',
      'security-alert': 'security',
      'product-update': 'product',
      reminder: 'product',
      'maintenance-notice': 'product',
    });
  });
});

describe('what a send goes out as', () => {
  it('the template’s category, or the one the send names; a security template stays security', async () => {
    const transport = memoryTransport();
    const mail = new EmailService({ transport, from, templates: [digest, alert] });
    await mail.sendTemplate(digest, { to: 'jane@example.com', data: { username: 'Jane' } });
    await mail.sendTemplate(digest, {
      to: 'jane@example.com',
      data: { username: 'Jane' },
      category: 'marketing',
    });
    await mail.sendTemplate(alert, { to: 'jane@example.com', data: { device: 'Firefox' } });
    await mail.sendVerificationEmail({
      to: 'jane@example.com',
      username: 'Jane',
      verificationUrl: 'https://acme.example/v',
    });
    expect(transport.outbox.map((m) => m.message.category)).toEqual([
      'product',
      'marketing',
      'security',
      'transactional',
    ]);
    const refused = await rejection(() =>
      mail.sendTemplate(alert, { to: 'jane@example.com', data: { device: 'Firefox' }, category: 'product' }),
    );
    expect(isMessageError(refused) && refused.field).toBe('category');
    expect(transport.outbox).toHaveLength(4);
  });

  it('hands a queue the category only when the worker would not take it from the template anyway', async () => {
    const handed: QueuedEmail[] = [];
    const mail = new EmailService({
      transport: memoryTransport(),
      from,
      templates: [digest, alert],
      queue: {
        name: 'test queue',
        enqueue: async (email) => {
          handed.push(email);
          return { id: String(handed.length), idempotencyKey: 'k' };
        },
      },
    });
    await mail.sendTemplate(digest, { to: 'jane@example.com', data: { username: 'Jane' } });
    await mail.sendTemplate(digest, {
      to: 'jane@example.com',
      data: { username: 'Jane' },
      category: 'transactional',
    });
    await mail.sendTemplate(alert, { to: 'jane@example.com', data: { device: 'Firefox' } });
    await mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'Hello', category: 'product' });
    await mail.send({ to: 'jane@example.com', subject: 'Hi', text: 'Hello' });
    expect(handed.map((q) => q.category)).toEqual([
      undefined,
      'transactional',
      undefined,
      'product',
      undefined,
    ]);
    const refused = await rejection(() =>
      mail.sendTemplate(alert, {
        to: 'jane@example.com',
        data: { device: 'Firefox' },
        category: 'marketing',
      }),
    );
    expect(isMessageError(refused) && refused.field).toBe('category');
    expect(handed).toHaveLength(5);
  });
});
