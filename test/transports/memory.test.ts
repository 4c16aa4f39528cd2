import { describe, expect, it } from 'vitest';
import { isMessageError } from '../../src/errors.js';
import { createMessage } from '../../src/message.js';
import { EmailService } from '../../src/service.js';
import { createTestMailer } from '../../src/testing/index.js';
import { failoverTransport } from '../../src/transports/failover.js';
import { mailgunTransport } from '../../src/transports/mailgun.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { postmarkTransport } from '../../src/transports/postmark.js';
import { resendTransport } from '../../src/transports/resend.js';
import { sendgridTransport } from '../../src/transports/sendgrid.js';
import { smtpTransport } from '../../src/transports/smtp.js';
import { startPostmarkPeer } from '../helpers/postmark-peer.js';
import { fromMessage } from '../helpers/received.js';
import { startResendPeer } from '../helpers/resend-peer.js';
import { startSendgridPeer } from '../helpers/sendgrid-peer.js';
import { NO_REMOTE_PEER, transportContract } from './contract.js';

transportContract(
  'memory',
  async () => {
    const transport = memoryTransport();
    return { transport, received: async () => transport.outbox.map((entry) => fromMessage(entry.message)) };
  },
  { skip: NO_REMOTE_PEER },
);

describe('memoryTransport', () => {
  const message = createMessage({ from: 'a@acme.example', to: 'b@example.com', subject: 'Hi', text: 'x' });

  it('keeps a separate outbox per instance', async () => {
    const one = memoryTransport();
    const two = memoryTransport();
    await one.send(message, { attempt: 1 });
    expect(one.outbox).toHaveLength(1);
    expect(two.outbox).toHaveLength(0);
  });

  it('clears its outbox', async () => {
    const transport = memoryTransport();
    await transport.send(message, { attempt: 1 });
    transport.clear();
    expect(transport.outbox).toHaveLength(0);
  });
});

describe('memoryTransport({ like }): the outbox refuses what the production transport would', () => {
  const from = 'Acme <no-reply@acme.example>';
  const base = { to: 'jane@example.com', subject: 'Hi', text: 'x' };
  const cases = [
    {
      name: 'Postmark (one tag)',
      start: () => startPostmarkPeer({ serverToken: 'pm-token' }),
      make: (url: string) => postmarkTransport({ serverToken: 'pm-token', baseUrl: url }),
      input: { tags: ['welcome', 'onboarding'] },
      field: 'tags',
    },
    {
      name: 'Resend (tag characters)',
      start: () => startResendPeer({ apiKey: 're_key' }),
      make: (url: string) => resendTransport({ apiKey: 're_key', baseUrl: url }),
      input: { metadata: { plan: 'pro plus' } },
      field: 'metadata.plan',
    },
    {
      name: 'SendGrid (custom_args size)',
      start: () => startSendgridPeer({ apiKey: 'SG.key' }),
      make: (url: string) => sendgridTransport({ apiKey: 'SG.key', baseUrl: url }),
      input: {
        metadata: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, 'v'.repeat(990)])),
      },
      field: 'metadata',
    },
  ];

  it.each(cases)(
    '$name: the same MessageError, and nothing kept or sent',
    async ({ start, make, input, field }) => {
      const peer = await start();
      try {
        const production = make(peer.url);
        const memory = memoryTransport({ like: production });
        const fields: unknown[] = [];
        for (const transport of [production, memory]) {
          const error = await new EmailService({ transport, from })
            .send({ ...base, ...input })
            .catch((e) => e);
          fields.push(isMessageError(error) ? error.field : error);
        }
        expect(fields).toEqual([field, field]);
        expect([peer.requests.length, memory.outbox.length]).toEqual([0, 0]);
        // What production takes, the outbox keeps.
        await new EmailService({ transport: memory, from }).send(base);
        expect(memory.outbox).toHaveLength(1);
      } finally {
        await peer.close();
      }
    },
  );

  it('takes sendAt only as far ahead as the transport it stands in for schedules', async () => {
    const inDays = (days: number) => new Date(Date.now() + days * 86_400_000);
    const smtpLike = new EmailService({
      transport: memoryTransport({ like: smtpTransport({ host: 'smtp.acme.example' }) }),
      from,
    });
    const error = await smtpLike.send({ ...base, sendAt: inDays(1) }).catch((e) => e);
    expect(isMessageError(error) && error.field).toBe('sendAt');
    const mailgun = memoryTransport({ like: mailgunTransport({ apiKey: 'key', domain: 'mg.acme.example' }) });
    const mailgunLike = new EmailService({ transport: mailgun, from });
    await mailgunLike.send({ ...base, sendAt: inDays(2) });
    const far = await mailgunLike.send({ ...base, sendAt: inDays(5) }).catch((e) => e);
    expect(isMessageError(far) && far.field).toBe('sendAt');
    expect(mailgun.outbox).toHaveLength(1);
    // Without like: any sendAt, as documented.
    const plain = memoryTransport();
    await new EmailService({ transport: plain, from }).send({ ...base, sendAt: inDays(60) });
    expect(plain.outbox[0]?.message.sendAt).toEqual(expect.any(Date));
  });

  it('checks with every transport a failover may send through, and through createTestMailer', async () => {
    const failover = failoverTransport([
      smtpTransport({ host: 'smtp.acme.example' }),
      postmarkTransport({ serverToken: 'pm-token' }),
    ]);
    const { service, transport } = createTestMailer({ like: failover });
    const error = await service.send({ ...base, tags: ['a', 'b'] }).catch((e) => e);
    expect(isMessageError(error) && error.field).toBe('tags');
    await service.send(base);
    expect(transport.outbox).toHaveLength(1);
    expect(() => memoryTransport({ like: {} as never })).toThrow(TypeError);
  });
});
