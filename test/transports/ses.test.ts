/** sesTransport (through @aws-sdk/client-sesv2) against a local server that speaks SES API v2 and checks SigV4. */
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type EmailError, isConfigError, isMessageError } from '../../src/errors.js';
import { createMessage, narrowEnvelope } from '../../src/message.js';
import { missingSdk, type SesTransportOptions, sesTransport } from '../../src/transports/ses.js';
import { mailauthVerdicts, rsaKey } from '../helpers/dkim-verify.js';
import type { JsonApiFault } from '../helpers/json-api-peer.js';
import { type SesPeer, type SesPeerOptions, sesFault, startSesPeer } from '../helpers/ses-peer.js';
import type { Fault } from './contract.js';
import { jsonApiContract, jsonApiHarness } from './json-api-cases.js';

const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const REGION = 'eu-west-1';

const clientFor = (peer: SesPeer, extra: Partial<SesTransportOptions> = {}) =>
  sesTransport({
    region: REGION,
    endpoint: peer.url,
    credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
    ...extra,
  });

const faults: Record<Fault, JsonApiFault> = {
  transient: sesFault(500, 'InternalFailure', 'An internal error occurred.'),
  permanent: sesFault(400, 'MessageRejected', 'Illegal address'),
  drop: { drop: 'after-body' },
  slow: { delay: 2000 },
};

jsonApiContract<SesPeer, SesTransportOptions>(
  'ses',
  'Amazon SES',
  () => startSesPeer({ accessKeyId: KEY_ID, secretAccessKey: SECRET }),
  clientFor,
  faults,
  { credentials: { accessKeyId: KEY_ID, secretAccessKey: 'wrong-secret-do-not-log' } },
);

describe('sesTransport', () => {
  const { start, service, hello, failure } = jsonApiHarness((options: Partial<SesPeerOptions> = {}) =>
    startSesPeer({ accessKeyId: KEY_ID, secretAccessKey: SECRET, ...options }),
  );

  it('sends Content.Raw with every recipient in Destination, tags, the configuration set, and returns the MessageId', async () => {
    const peer = await start();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    const result = await service(
      clientFor(peer, {
        configurationSetName: 'transactional',
        fromEmailAddressIdentityArn: 'arn:aws:ses:eu-west-1:123456789012:identity/acme.example',
      }),
    ).send({
      ...hello,
      cc: 'cc@example.com',
      bcc: 'hidden@example.com',
      tags: ['welcome'],
      metadata: { userId: 42, plan: 'pro' },
      headers: {
        'List-Unsubscribe': '<https://acme.example/u/1>',
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      },
      attachments: [{ filename: 'logo.png', content: png, contentType: 'image/png', cid: 'logo' }],
    });
    const { body, id, raw } = peer.messages[0]!;
    expect(body).toMatchObject({
      Destination: {
        ToAddresses: ['jane@example.com'],
        CcAddresses: ['cc@example.com'],
        BccAddresses: ['hidden@example.com'],
      },
      ConfigurationSetName: 'transactional',
      FromEmailAddressIdentityArn: 'arn:aws:ses:eu-west-1:123456789012:identity/acme.example',
      EmailTags: [
        { Name: 'welcome', Value: 'true' },
        { Name: 'userId', Value: '42' },
        { Name: 'plan', Value: 'pro' },
        { Name: 'category', Value: 'transactional' },
      ],
    });
    expect(body).not.toHaveProperty('FromEmailAddress');
    expect(result.providerMessageId).toBe(id);
    expect(result.accepted).toEqual(['jane@example.com', 'cc@example.com', 'hidden@example.com']);
    // The raw MIME carries what the JSON fields of other APIs cannot: headers, inline images, no Bcc.
    const [got] = await peer.received();
    expect(got?.headers['list-unsubscribe']).toBe('<https://acme.example/u/1>');
    expect(got?.headers['list-unsubscribe-post']).toBe('List-Unsubscribe=One-Click');
    expect(got?.messageId).toBe(result.messageId);
    expect(got?.attachments[0]?.content).toEqual(png);
    expect(raw.toString('latin1')).toMatch(/^Content-Id: <logo>/im);
    expect(raw.toString('latin1')).not.toContain('hidden@example.com');
    // Every request was signed with SigV4 for ses in the region, and checked.
    expect(String(peer.requests[0]?.headers.authorization)).toMatch(
      new RegExp(`^AWS4-HMAC-SHA256 Credential=${KEY_ID}/\\d{8}/${REGION}/ses/aws4_request, SignedHeaders=`),
    );
    expect(peer.refusedSignatures).toEqual([]);
  });

  it('signs the raw MIME with your own DKIM key when asked, and the signature verifies as SES received it', async () => {
    const peer = await start();
    const key = rsaKey(2048);
    const transport = clientFor(peer, {
      dkim: { domainName: key.domainName, keySelector: key.keySelector, privateKey: key.privateKey },
    });
    expect(transport.describe?.()).toMatch(/, DKIM-signed$/);
    await service(transport).send({
      ...hello,
      headers: { 'List-Unsubscribe': '<https://acme.example/u/1>' },
    });
    expect(await mailauthVerdicts(peer.messages[0]!.raw, key)).toEqual([['acme.example', 'pass']]);
  });

  it('the peer checks the signature over the body: a replay passes, a tampered body of the same length does not', async () => {
    const peer = await start();
    await service(clientFor(peer)).send(hello);
    const { headers } = peer.requests[0]!;
    const body = JSON.stringify(peer.messages[0]!.body);
    const replay = (text: string) =>
      fetch(`${peer.url}/v2/email/outbound-emails`, {
        method: 'POST',
        headers: Object.fromEntries(
          [
            'authorization',
            'x-amz-date',
            'x-amz-content-sha256',
            'content-type',
            'x-amz-user-agent',
            'amz-sdk-invocation-id',
            'amz-sdk-request',
          ]
            .filter((name) => typeof headers[name] === 'string')
            .map((name) => [name, headers[name] as string]),
        ),
        body: text,
      });
    expect((await replay(body)).status).toBe(200);
    // Same length, same signed headers (the content hash header too): only the body differs.
    const tampered = await replay(body.replace('jane@example.com', 'jake@example.com'));
    expect([tampered.status, tampered.headers.get('x-amzn-errortype')?.split(':')[0]]).toEqual([
      403,
      'InvalidSignatureException',
    ]);
    const unsigned = await fetch(`${peer.url}/v2/email/outbound-emails`, { method: 'POST', body });
    expect(unsigned.status).toBe(403);
    expect(peer.messages).toHaveLength(2);
  });

  it('sends the same bytes on every attempt of one email: Date and MIME boundaries fixed per message', async () => {
    const peer = await start();
    const message = createMessage({
      from: 'Acme <no-reply@acme.example>',
      to: 'jane@example.com',
      subject: 'Hi',
      text: 'Hi there',
      html: '<p>Hi there</p>',
    });
    const transport = clientFor(peer);
    await transport.send(message, { attempt: 1 });
    await transport.send(message, { attempt: 2 });
    const [first, second] = peer.messages;
    expect(first!.raw.toString()).toMatch(/boundary=/);
    expect(second!.raw.equals(first!.raw)).toBe(true);
  });

  it('sends a retry meant for some recipients to those only, through Destination', async () => {
    const peer = await start();
    const message = createMessage({
      from: 'Acme <no-reply@acme.example>',
      to: ['jane@example.com', 'bob@example.net'],
      cc: 'cc@example.com',
      subject: 'Hi',
      text: 'Hi',
    });
    const result = await clientFor(peer).send(narrowEnvelope(message, ['bob@example.net']), { attempt: 2 });
    expect(peer.messages[0]?.body.Destination).toEqual({ ToAddresses: ['bob@example.net'] });
    expect(result.accepted).toEqual(['bob@example.net']);
    // The headers still name everyone: it is the same email the others got.
    expect((await peer.received())[0]?.to).toEqual(['jane@example.com', 'bob@example.net']);
  });

  it.each([
    [sesFault(429, 'TooManyRequestsException', 'Too many requests.'), 'rate-limit', 'transient'],
    [sesFault(400, 'LimitExceededException', 'Daily message quota exceeded.'), 'rate-limit', 'transient'],
    [sesFault(400, 'ThrottlingException', 'Rate exceeded'), 'rate-limit', 'transient'],
    [sesFault(503, 'ServiceUnavailable', 'Service unavailable'), 'provider', 'transient'],
    [sesFault(400, 'MessageRejected', 'Email address is not verified.'), 'rejected', 'permanent'],
    [sesFault(400, 'BadRequestException', 'Illegal address'), 'rejected', 'permanent'],
    [sesFault(400, 'AccountSuspendedException', 'Account suspended.'), 'account', 'systemic'],
    [sesFault(400, 'SendingPausedException', 'Sending paused for this account.'), 'account', 'systemic'],
    [
      sesFault(400, 'MailFromDomainNotVerifiedException', 'MAIL FROM domain not verified.'),
      'config',
      'systemic',
    ],
    [sesFault(404, 'NotFoundException', 'Configuration set <x> does not exist.'), 'config', 'systemic'],
    [
      sesFault(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.'),
      'auth',
      'systemic',
    ],
    [sesFault(403, 'InvalidSignatureException', 'Signature does not match.'), 'auth', 'systemic'],
    [sesFault(403, 'AccessDeniedException', 'not authorized to perform: ses:SendEmail'), 'auth', 'systemic'],
    [
      sesFault(403, 'ExpiredTokenException', 'The security token included in the request is expired'),
      'auth',
      'systemic',
    ],
    [{ status: 403, body: '<html>403 Forbidden</html>' }, 'auth', 'systemic'],
  ] as const)('maps %o to %s (%s)', async (fault, code, failureClass) => {
    const peer = await start();
    peer.failNext(fault);
    // Transient ones are retried: make the retries fail too, to see the mapping on the last one.
    if (failureClass === 'transient') peer.failNext(fault, 4);
    const error = await failure(service(clientFor(peer)).send(hello));
    expect([error.code, error.failure, error.status]).toEqual([code, failureClass, fault.status]);
    if ('headers' in fault)
      expect(error.message).toContain(fault.headers?.['x-amzn-errortype']?.split(':')[0]);
    expect(peer.requests).toHaveLength(failureClass === 'transient' ? 5 : 1);
    expect(peer.messages).toHaveLength(0);
  });

  it('refuses an unverified sender and an unknown configuration set the way SES does', async () => {
    const peer = await start({ verifiedDomains: ['other.example'] });
    const unverified = await failure(service(clientFor(peer)).send(hello));
    expect([unverified.code, unverified.status]).toEqual(['rejected', 400]);
    expect(unverified.message).toContain('MessageRejected');
    expect(unverified.message).toContain('Email address is not verified');
    const peer2 = await start();
    const unknownSet = await failure(service(clientFor(peer2, { configurationSetName: 'nope' })).send(hello));
    expect([unknownSet.code, unknownSet.failure, unknownSet.status]).toEqual(['config', 'systemic', 404]);
  });

  it('waits as long as a Retry-After asks, then delivers once', async () => {
    const peer = await start();
    peer.failNext(sesFault(429, 'TooManyRequestsException', 'Too many requests.', '1'));
    const mail = service(clientFor(peer));
    const waits: number[] = [];
    mail.on('retrying', (e) => waits.push(e.delayMs));
    const result = await mail.send(hello);
    expect(result.attempts).toBe(2);
    expect(waits[0]).toBeGreaterThanOrEqual(1000);
    expect(peer.messages).toHaveLength(1);
  });

  it('a wrong secret is refused by the signature check and fails as auth; an unknown key id too', async () => {
    const peer = await start();
    const wrongSecret = await failure(
      service(clientFor(peer, { credentials: { accessKeyId: KEY_ID, secretAccessKey: 'nope-nope' } })).send(
        hello,
      ),
    );
    expect([wrongSecret.code, wrongSecret.failure, wrongSecret.status]).toEqual(['auth', 'systemic', 403]);
    const unknownKey = await failure(
      service(
        clientFor(peer, { credentials: { accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: SECRET } }),
      ).send(hello),
    );
    expect(unknownKey.code).toBe('auth');
    const wrongRegion = await failure(service(clientFor(peer, { region: 'us-east-1' })).send(hello));
    expect(wrongRegion.code).toBe('auth');
    expect(peer.refusedSignatures).toEqual([
      'InvalidSignatureException',
      'UnrecognizedClientException',
      'InvalidSignatureException',
    ]);
    expect(peer.messages).toEqual([]);
  });

  it('never puts the secret or the access key id in an error or a log line', async () => {
    const peer = await start();
    const logs: unknown[] = [];
    const wrong = 'very-secret-wrong-key';
    const error = await failure(
      service(clientFor(peer, { credentials: { accessKeyId: KEY_ID, secretAccessKey: wrong } }), logs).send(
        hello,
      ),
    );
    peer.failNext(sesFault(500, 'InternalFailure', `internal error for ${KEY_ID}`));
    await service(clientFor(peer), logs).send(hello);
    const everything = JSON.stringify({ logs, message: error.message, stack: error.stack, error });
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(KEY_ID);
  });

  it('verify() calls GetAccount, sending nothing, and maps a paused account and bad credentials', async () => {
    const peer = await start();
    await clientFor(peer).verify();
    const bad = (await clientFor(peer, { credentials: { accessKeyId: KEY_ID, secretAccessKey: 'x' } })
      .verify()
      .catch((e: unknown) => e)) as EmailError;
    expect([bad.code, bad.failure, bad.status]).toEqual(['auth', 'systemic', 403]);
    expect([peer.checks, peer.messages.length]).toEqual([2, 0]);
    const paused = await start({ account: { SendingEnabled: false } });
    const error = (await clientFor(paused)
      .verify()
      .catch((e: unknown) => e)) as EmailError;
    expect([error.code, error.failure]).toEqual(['account', 'systemic']);
    expect(error.message).toContain('SendingEnabled: false');
  });

  it('uses a SESv2Client of your own, and leaves it open on close()', async () => {
    const peer = await start();
    const client = new SESv2Client({
      region: REGION,
      endpoint: peer.url,
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
      maxAttempts: 1,
    });
    const transport = sesTransport({ client });
    const result = await service(transport).send(hello);
    expect(result.providerMessageId).toBe(peer.messages[0]?.id);
    await transport.close();
    await transport.verify();
    client.destroy();
    expect(() => sesTransport({ client, region: REGION })).toThrow(/^region: /);
  });

  describe('with credentials from the SDK’s default chain', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it('finds none anywhere: auth, systemic, one attempt, nothing sent', async () => {
      const peer = await start();
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) {
        vi.stubEnv(name, '');
      }
      for (const name of [
        'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
        'AWS_CONTAINER_CREDENTIALS_FULL_URI',
        'AWS_WEB_IDENTITY_TOKEN_FILE',
      ]) {
        vi.stubEnv(name, '');
      }
      vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/credentials');
      vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/config');
      vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
      const transport = sesTransport({ region: REGION, endpoint: peer.url });
      const error = await failure(service(transport).send(hello));
      expect([error.code, error.failure, error.attempts]).toEqual(['auth', 'systemic', 1]);
      expect(error.message).toMatch(/^Amazon SES: no AWS credentials found .*AWS_ACCESS_KEY_ID/);
      expect(peer.requests).toEqual([]);
      await transport.close();
    });

    it('reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment', async () => {
      const peer = await start();
      vi.stubEnv('AWS_ACCESS_KEY_ID', KEY_ID);
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', SECRET);
      vi.stubEnv('AWS_SESSION_TOKEN', '');
      const transport = sesTransport({ region: REGION, endpoint: peer.url });
      await service(transport).send(hello);
      expect(peer.messages).toHaveLength(1);
      await transport.close();
    });
  });

  it('a connection refused is transient and not a possible duplicate', async () => {
    const peer = await start();
    const url = peer.url;
    await peer.close();
    const error = await failure(
      clientFor({ ...peer, url } as SesPeer, { timeoutMs: 5000 }).send(
        createMessage({ ...hello, from: 'a@acme.example' }),
        {
          attempt: 1,
        },
      ),
    );
    expect([error.code, error.failure, error.possibleDuplicate, error.causeCode]).toEqual([
      'network',
      'transient',
      false,
      'ECONNREFUSED',
    ]);
  });

  it('an unreachable endpoint is transient and not a possible duplicate', async () => {
    // A multicast address: the kernel refuses a TCP connection to it at once (ENETUNREACH).
    const transport = sesTransport({
      region: REGION,
      endpoint: 'https://224.0.0.1',
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
    });
    const error = await failure(
      transport.send(createMessage({ ...hello, from: 'a@acme.example' }), { attempt: 1 }),
    );
    expect([error.code, error.failure, error.possibleDuplicate, error.causeCode]).toEqual([
      'network',
      'transient',
      false,
      'ENETUNREACH',
    ]);
    expect(error.message).toBe('Amazon SES could not be reached at 224.0.0.1:443 (ENETUNREACH)');
    await transport.close();
  });

  it('refuses tags and metadata SES cannot carry before sending, naming the field', async () => {
    const peer = await start();
    const error: unknown = await failure(
      service(clientFor(peer)).send({ ...hello, metadata: { email: 'a@b.c' } }),
    );
    expect(isMessageError(error) && error.field).toBe('metadata.email');
    expect(peer.requests).toEqual([]);
  });

  it('tags each email with its category, and refuses a metadata.category that contradicts it', async () => {
    const peer = await start();
    await service(clientFor(peer)).send({ ...hello, category: 'security' });
    expect(peer.messages[0]?.body.EmailTags).toEqual([{ Name: 'category', Value: 'security' }]);
    const error: unknown = await failure(
      service(clientFor(peer)).send({ ...hello, category: 'security', metadata: { category: 'marketing' } }),
    );
    expect(isMessageError(error) && error.field).toBe('metadata.category');
    expect(peer.requests).toHaveLength(1);
  });

  it('names a bad option when it is built, never repeating a secret', () => {
    expect(() => sesTransport({ region: 'Europe' })).toThrow(/^region: /);
    expect(() => sesTransport({ configurationSetName: 'a b' })).toThrow(/^configurationSetName: /);
    expect(() => sesTransport({ fromEmailAddressIdentityArn: 'acme' })).toThrow(
      /^fromEmailAddressIdentityArn: /,
    );
    expect(() => sesTransport({ timeoutMs: 0 })).toThrow(/^timeoutMs: /);
    expect(() => sesTransport({ endpoint: 'http://ses.internal.example' })).toThrow(/^endpoint: .*https/);
    const error = (() => {
      try {
        sesTransport({ credentials: { accessKeyId: KEY_ID, secretAccessKey: 'SECRET with space' } });
      } catch (e) {
        return e;
      }
    })();
    expect(isConfigError(error) && error.option).toBe('credentials.secretAccessKey');
    expect((error as Error).message).not.toContain('SECRET');
  });

  it('says which package to install when the SDK is missing', () => {
    const error = missingSdk();
    expect(error.option).toBe('client');
    expect(error.message).toContain('npm install @aws-sdk/client-sesv2');
  });
});
