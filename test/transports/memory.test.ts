import { describe, expect, it } from 'vitest';
import { createMessage } from '../../src/message.js';
import { memoryTransport } from '../../src/transports/memory.js';
import { fromMessage } from '../helpers/received.js';
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
