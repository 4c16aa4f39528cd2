/**
 * The Postmark, Resend and SendGrid peers, driven by plain fetch with the request shapes and the
 * refusals each provider documents: the transports' tests trust these answers.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { startPostmarkPeer } from './postmark-peer.js';
import { startResendPeer } from './resend-peer.js';
import { startSendgridPeer } from './sendgrid-peer.js';

const post = async (url: string, headers: Record<string, string>, body: unknown) => {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
};

describe('the Postmark peer', () => {
  const start = async () => {
    const peer = await startPostmarkPeer({ serverToken: 'tok', inactive: ['gone@example.com'] });
    onTestFinished(() => peer.close());
    return {
      peer,
      send: (body: unknown, token = 'tok') =>
        post(`${peer.url}/email`, { 'x-postmark-server-token': token }, body),
    };
  };
  const hello = { From: 'a@acme.example', To: 'jane@example.com', Subject: 'Hi', TextBody: 'Hi' };

  it('answers 200 with MessageID and ErrorCode 0, and records the body', async () => {
    const { peer, send } = await start();
    const answer = await send(hello);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ To: 'jane@example.com', ErrorCode: 0, Message: 'OK' });
    expect(peer.messages[0]?.id).toBe(answer.body.MessageID);
  });

  it.each([
    ['a wrong token', hello, 'nope', 401, 10],
    ['no body part', { ...hello, TextBody: undefined }, 'tok', 422, 300],
    ['no recipient', { ...hello, To: '' }, 'tok', 422, 300],
    ['an inactive recipient', { ...hello, To: 'gone@example.com' }, 'tok', 422, 406],
    ['an unknown stream', { ...hello, MessageStream: 'nope' }, 'tok', 422, 1235],
    [
      'an executable',
      { ...hello, Attachments: [{ Name: 'x.exe', Content: 'AA==', ContentType: 'a/b' }] },
      'tok',
      422,
      411,
    ],
    ['invalid JSON', '{', 'tok', 422, 402],
  ])('refuses %s', async (_, body, token, status, code) => {
    const { peer, send } = await start();
    const answer = await send(body, token);
    expect([answer.status, answer.body.ErrorCode]).toEqual([status, code]);
    expect(peer.messages).toEqual([]);
  });
});

describe('the Resend peer', () => {
  const start = async () => {
    const peer = await startResendPeer({ apiKey: 're_k' });
    onTestFinished(() => peer.close());
    const send = (body: unknown, headers: Record<string, string> = {}) =>
      post(`${peer.url}/emails`, { authorization: 'Bearer re_k', ...headers }, body);
    return { peer, send };
  };
  const hello = { from: 'a@acme.example', to: ['jane@example.com'], subject: 'Hi', text: 'Hi' };

  it('answers a repeated idempotency key with the first answer, and refuses it with another body', async () => {
    const { peer, send } = await start();
    const first = await send(hello, { 'idempotency-key': 'k1' });
    const again = await send(hello, { 'idempotency-key': 'k1' });
    const other = await send({ ...hello, subject: 'Other' }, { 'idempotency-key': 'k1' });
    expect([first.status, again.status, again.body.id]).toEqual([200, 200, first.body.id]);
    expect([other.status, other.body.name]).toEqual([409, 'invalid_idempotent_request']);
    expect(peer.messages).toHaveLength(1);
  });

  it.each([
    ['no key', hello, { authorization: '' }, 401, 'missing_api_key'],
    ['a wrong key', hello, { authorization: 'Bearer re_x' }, 403, 'invalid_api_key'],
    [
      'a key over 256 characters',
      hello,
      { 'idempotency-key': 'k'.repeat(257) },
      400,
      'invalid_idempotency_key',
    ],
    ['no from', { ...hello, from: '' }, {}, 422, 'missing_required_field'],
    ['a tag with a space', { ...hello, tags: [{ name: 'a b', value: 'x' }] }, {}, 422, 'validation_error'],
  ])('refuses %s', async (_, body, headers, status, name) => {
    const { peer, send } = await start();
    const answer = await send(body, headers);
    expect([answer.status, answer.body.statusCode, answer.body.name]).toEqual([status, status, name]);
    expect(peer.messages).toEqual([]);
  });
});

describe('the SendGrid peer', () => {
  const start = async () => {
    const peer = await startSendgridPeer({ apiKey: 'SG.k' });
    onTestFinished(() => peer.close());
    const send = (body: unknown, key = 'SG.k') =>
      post(`${peer.url}/v3/mail/send`, { authorization: `Bearer ${key}` }, body);
    return { peer, send };
  };
  const hello = {
    personalizations: [{ to: [{ email: 'jane@example.com' }] }],
    from: { email: 'a@acme.example' },
    subject: 'Hi',
    content: [{ type: 'text/plain', value: 'Hi' }],
  };

  it('answers 202 with an empty body and X-Message-Id', async () => {
    const { peer, send } = await start();
    const answer = await send(hello);
    expect([answer.status, answer.body]).toEqual([202, undefined]);
    expect(peer.messages[0]?.id).toBe(answer.headers.get('x-message-id'));
  });

  it.each([
    ['a wrong key', hello, 'SG.x', 401, null],
    [
      'html before text',
      { ...hello, content: [{ type: 'text/html', value: '<p>Hi</p>' }, ...hello.content] },
      'SG.k',
      400,
      'content',
    ],
    [
      'an address twice',
      {
        ...hello,
        personalizations: [{ to: [{ email: 'jane@example.com' }], cc: [{ email: 'JANE@example.com' }] }],
      },
      'SG.k',
      400,
      'personalizations.0.cc',
    ],
    ['a reserved header', { ...hello, headers: { 'Reply-To': 'x@acme.example' } }, 'SG.k', 400, 'headers'],
    [
      'reply_to with reply_to_list',
      { ...hello, reply_to: { email: 'a@x.example' }, reply_to_list: [] },
      'SG.k',
      400,
      'reply_to_list',
    ],
  ])('refuses %s, naming the field', async (_, body, key, status, field) => {
    const { peer, send } = await start();
    const answer = await send(body, key);
    expect([answer.status, answer.body.errors[0].field]).toEqual([status, field]);
    expect(peer.messages).toEqual([]);
  });
});
