/** Each transport says in one line where mail goes: the service's start-up log line uses it. */
import { describe, expect, it } from 'vitest';
import {
  failoverTransport,
  mailgunTransport,
  memoryTransport,
  sandboxTransport,
  smtpTransport,
  stagingTransport,
} from '../../src/index.js';

describe('describe()', () => {
  it('names the server, the TLS mode and signing, never a secret', async () => {
    const smtp = smtpTransport({ host: 'smtp.acme.example', user: 'mailer', password: 'hunter2-secret' });
    const implicit = smtpTransport({ host: 'smtp.acme.example', tls: 'implicit' });
    const relay = smtpTransport({ host: '127.0.0.1', port: 2525, tls: 'none' });
    try {
      expect(smtp.describe?.()).toBe('smtp smtp.acme.example:587 (STARTTLS required)');
      expect(implicit.describe?.()).toBe('smtp smtp.acme.example:465 (implicit TLS)');
      expect(relay.describe?.()).toBe('smtp 127.0.0.1:2525 (plain text)');
      expect(smtp.describe?.()).not.toMatch(/mailer|hunter2/);
    } finally {
      await Promise.all([smtp.close(), implicit.close(), relay.close()]);
    }
  });

  it('names the Mailgun API and domain, never the key', () => {
    const mailgun = mailgunTransport({ apiKey: 'key-abc123', domain: 'mg.acme.example', region: 'eu' });
    expect(mailgun.describe?.()).toBe('mailgun https://api.eu.mailgun.net/v3/mg.acme.example');
  });

  it('says that memory and sandbox only capture, and where', () => {
    expect(memoryTransport().describe?.()).toBe('memory (an in-process outbox)');
    expect(sandboxTransport({ dir: '/tmp/outbox' }).describe?.()).toBe('sandbox /tmp/outbox');
  });

  it('describes what wrappers wrap, and whether they only capture', () => {
    const mailgun = mailgunTransport({ apiKey: 'k', domain: 'mg.acme.example' });
    const staged = stagingTransport({ transport: memoryTransport(), redirectTo: 'qa@acme.example' });
    expect(staged.describe?.()).toBe(
      'memory (an in-process outbox), staged (allowed: none; others to qa@acme.example)',
    );
    expect(staged.captures).toBe(true);
    const chain = failoverTransport([mailgun, memoryTransport()]);
    expect(chain.describe?.()).toBe(
      'failover: mailgun https://api.mailgun.net/v3/mg.acme.example -> memory (an in-process outbox)',
    );
    expect(chain.captures).toBe(false);
    expect(chain.capturesSome).toBe(true);
    const stagedChain = stagingTransport({ transport: chain, redirectTo: 'qa@acme.example' });
    expect(stagedChain.describe?.()).toBe(
      'failover: mailgun https://api.mailgun.net/v3/mg.acme.example -> memory (an in-process outbox), staged (allowed: none; others to qa@acme.example)',
    );
  });
});
