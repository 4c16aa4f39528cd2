import { describe, expect, it } from 'vitest';
import {
  connectionFailure,
  EmailError,
  type EmailErrorCode,
  type FailureClass,
  failureClass,
  isRetryable,
} from '../src/errors.js';

describe('failureClass: one taxonomy for every transport', () => {
  const table: [EmailErrorCode, number | undefined, boolean, FailureClass][] = [
    ['network', undefined, false, 'transient'],
    ['timeout', undefined, false, 'transient'],
    ['deferred', 421, false, 'transient'],
    ['deferred', 450, false, 'transient'],
    ['rate-limit', 429, false, 'transient'],
    ['provider', 500, false, 'transient'],
    ['provider', 503, false, 'transient'],
    ['provider', undefined, false, 'transient'],
    ['io', undefined, false, 'transient'],
    ['network', undefined, true, 'ambiguous'],
    ['timeout', 408, true, 'ambiguous'],
    ['rejected', 550, false, 'permanent'],
    ['rejected', 400, false, 'permanent'],
    ['rejected', 413, true, 'permanent'],
    ['provider', 422, false, 'permanent'],
    ['auth', 535, false, 'systemic'],
    ['auth', 401, false, 'systemic'],
    ['account', 402, false, 'systemic'],
    ['config', 404, false, 'systemic'],
    ['tls', undefined, false, 'systemic'],
    ['aborted', undefined, true, 'aborted'],
  ];
  it.each(table)('%s (status %s, handed over %s) is %s', (code, status, handedOver, expected) => {
    expect(failureClass(code, status, handedOver)).toBe(expected);
    const error = new EmailError('x', { code, transport: 't', ...(status ? { status } : {}), handedOver });
    expect(error.failure).toBe(expected);
    expect(error.retryable).toBe(expected === 'transient' || expected === 'ambiguous');
    expect(error.possibleDuplicate).toBe(expected === 'ambiguous');
    expect(isRetryable(code, status, handedOver)).toBe(error.retryable);
  });

  it('carries Retry-After and the cause', () => {
    const cause = new Error('socket hang up');
    const error = new EmailError('slow down', {
      code: 'rate-limit',
      transport: 'mailgun',
      retryAfterMs: 2000,
      cause,
    });
    expect(error.retryAfterMs).toBe(2000);
    expect(error.cause).toBe(cause);
  });
});

describe('connectionFailure: one rule for every transport that connects', () => {
  const sys = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra });
  it.each([
    ['an unknown host', sys('ENOTFOUND'), 'config'],
    ['a resolver that did not answer', sys('EAI_AGAIN'), 'network'],
    ['a refused connection', sys('ECONNREFUSED'), 'network'],
    ['TLS spoken to plain text', sys('ERR_SSL_WRONG_VERSION_NUMBER'), 'tls'],
    ['a handshake failure', sys('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'), 'tls'],
    ['an untrusted certificate', sys('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'tls'],
    [
      'node:https EPROTO from OpenSSL',
      sys('EPROTO', { message: 'write EPROTO …:SSL routines:ssl3_get_record:wrong version number' }),
      'tls',
    ],
    ['a code inside cause (fetch)', new TypeError('fetch failed', { cause: sys('ENOTFOUND') }), 'config'],
    [
      'nodemailer originalCode',
      Object.assign(new Error('x'), { code: 'EDNS', originalCode: 'ENOTFOUND' }),
      'config',
    ],
  ])('%s', (_title, error, code) => {
    expect(connectionFailure(error)?.code).toBe(code);
  });
  it('has nothing to say about an error without a connection-level code', () => {
    expect(connectionFailure(new Error('x'))).toBeUndefined();
    expect(connectionFailure(Object.assign(new Error('x'), { code: 'ESOCKET' }))).toBeUndefined();
  });
});
