/**
 * DKIM signing for the SMTP transport (RFC 6376, rsa-sha256, relaxed/relaxed), with nodemailer's
 * signer. Everything that could make mail go out unsigned is caught before a byte is sent: the key
 * is parsed and tried when the transport is built, and a signature missing at send time fails the
 * send instead of being skipped (nodemailer's signer leaves the header out when signing throws).
 */
import { createPrivateKey, KeyObject, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { domainToASCII } from 'node:url';
import { ConfigError, EmailError, isConfigError } from '../errors.js';
import { loadDkim } from '../lazy-deps.js';
import type { DkimIdentity } from '../transport.js';

/** `SmtpTransportOptions.dkim`: sign every message with this key. */
export interface DkimOptions {
  /** The signing domain (`d=`), e.g. `acme.example`; usually your From address's domain. */
  domainName: string;
  /** The selector (`s=`): the public key is published as TXT at `<selector>._domainkey.<domain>`. */
  keySelector: string;
  /**
   * The RSA private key, at least 1024 bits (RFC 8301; 2048 recommended), as one of:
   * - PEM text (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`), unencrypted;
   * - the PEM file's bytes as a `Buffer` (`fs.readFileSync('dkim.pem')`);
   * - a private `KeyObject` from `node:crypto` (`createPrivateKey(…)`, decrypted already).
   * ed25519 keys (RFC 8463) are refused: the signer makes rsa-sha256 signatures only.
   *
   * @example
   * ```ts
   * dkim: { domainName: 'acme.example', keySelector: 's2026', privateKey: readFileSync('dkim.pem') }
   * ```
   */
  privateKey: string | Buffer | KeyObject;
}

/** Signs built messages. Internal to the SMTP transport. */
export interface DkimSigner {
  /** Whom it signs as: the checked domain (lower-case ASCII) and selector. */
  readonly identity: DkimIdentity;
  /** The message with a DKIM-Signature header on top. Rejects with a systemic `EmailError`. */
  sign(source: Buffer): Promise<Buffer>;
}

/** The environment variables {@link dkimFromEnv} reads, with what each is for. */
export const DKIM_ENV_VARIABLES = {
  SMTP_DKIM_DOMAIN:
    'DKIM: the signing domain (d=), e.g. acme.example. Set with the selector and a key. Signs mail sent through smtp, sendmail and ses; refused with an HTTP API provider (it signs with the key in your account).',
  SMTP_DKIM_SELECTOR:
    'DKIM: the selector (s=); the public key is the TXT record <selector>._domainkey.<domain>.',
  SMTP_DKIM_PRIVATE_KEY:
    'DKIM: the RSA private key (PEM, at least 1024 bits); a literal \\n stands for a line break. Never logged.',
  SMTP_DKIM_PRIVATE_KEY_FILE: 'DKIM: a file holding the PEM private key, instead of SMTP_DKIM_PRIVATE_KEY.',
} as const;

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const SELECTOR = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'i');
const DOMAIN = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`, 'i');
const SIGNATURE_HEADER = Buffer.from('DKIM-Signature:');
/**
 * The header fields signed when present: nodemailer's own list (dkim/sign.js `defaultFieldNames`)
 * plus `List-Unsubscribe-Post`, which it leaves out. RFC 8058 §4: a one-click unsubscribe is only
 * honoured when a valid DKIM signature covers both `List-Unsubscribe` and `List-Unsubscribe-Post`.
 */
const SIGNED_HEADERS = [
  'From',
  'Sender',
  'Reply-To',
  'Subject',
  'Date',
  'Message-ID',
  'To',
  'Cc',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'Content-ID',
  'Content-Description',
  'Resent-Date',
  'Resent-From',
  'Resent-Sender',
  'Resent-To',
  'Resent-Cc',
  'Resent-Message-ID',
  'In-Reply-To',
  'References',
  'List-Id',
  'List-Help',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
  'List-Subscribe',
  'List-Post',
  'List-Owner',
  'List-Archive',
  'OTP-Token',
].join(':');

/**
 * Checks DKIM options and returns a signer. Throws a `ConfigError` naming `dkim.domainName`,
 * `dkim.keySelector` or `dkim.privateKey` for anything it could not sign with.
 */
export function dkimSigner(options: DkimOptions): DkimSigner {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('dkim', 'must be { domainName, keySelector, privateKey }');
  }
  const { domainName, keySelector } = dkimIdentity(options);
  const privateKey = parseKey(options.privateKey);
  const signer = new (loadDkim())({
    domainName,
    keySelector,
    privateKey: privateKey as unknown as string,
    headerFieldNames: SIGNED_HEADERS,
  });
  const signed = `d=${domainName}, s=${keySelector}`;

  return {
    identity: Object.freeze({ domainName, keySelector }),
    async sign(source) {
      let output: Buffer;
      try {
        output = await collect(signer.sign(source));
      } catch (cause) {
        throw signingFailed(signed, cause);
      }
      if (!output.subarray(0, SIGNATURE_HEADER.length).equals(SIGNATURE_HEADER)) {
        throw signingFailed(signed, undefined);
      }
      return output;
    },
  };
}

/**
 * DKIM options from `SMTP_DKIM_DOMAIN`, `SMTP_DKIM_SELECTOR` and `SMTP_DKIM_PRIVATE_KEY` (or
 * `SMTP_DKIM_PRIVATE_KEY_FILE`), checked as {@link dkimSigner} checks them; undefined when none
 * is set. A partial set, or a key it cannot sign with, is a `ConfigError` naming the variable.
 */
export function dkimFromEnv(env: Readonly<Record<string, string | undefined>>): DkimOptions | undefined {
  const get = (name: keyof typeof DKIM_ENV_VARIABLES) => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const domain = get('SMTP_DKIM_DOMAIN');
  const selector = get('SMTP_DKIM_SELECTOR');
  const inline = get('SMTP_DKIM_PRIVATE_KEY');
  const file = get('SMTP_DKIM_PRIVATE_KEY_FILE');
  if (domain === undefined && selector === undefined && inline === undefined && file === undefined) {
    return undefined;
  }
  if (inline !== undefined && file !== undefined) {
    throw new ConfigError('SMTP_DKIM_PRIVATE_KEY_FILE', 'set SMTP_DKIM_PRIVATE_KEY or this, not both');
  }
  const missing = (name: string, what: string) =>
    new ConfigError(name, `is required with the other SMTP_DKIM_* variables (${what})`);
  if (domain === undefined) throw missing('SMTP_DKIM_DOMAIN', 'the signing domain');
  if (selector === undefined) throw missing('SMTP_DKIM_SELECTOR', 'the selector');
  if (inline === undefined && file === undefined) {
    throw missing('SMTP_DKIM_PRIVATE_KEY', 'or SMTP_DKIM_PRIVATE_KEY_FILE: the private key');
  }
  const keyVariable = file === undefined ? 'SMTP_DKIM_PRIVATE_KEY' : 'SMTP_DKIM_PRIVATE_KEY_FILE';
  const options: DkimOptions = {
    domainName: domain,
    keySelector: selector,
    privateKey: file === undefined ? unescapeNewlines(inline as string) : readKeyFile(file),
  };
  const variables: Record<string, string> = {
    'dkim.domainName': 'SMTP_DKIM_DOMAIN',
    'dkim.keySelector': 'SMTP_DKIM_SELECTOR',
    'dkim.privateKey': keyVariable,
  };
  try {
    dkimSigner(options);
  } catch (err) {
    if (isConfigError(err) && err.option in variables) {
      throw new ConfigError(variables[err.option] as string, err.message.slice(err.option.length + 2));
    }
    throw err;
  }
  return options;
}

/** Whom options sign as, checked as {@link dkimSigner} checks them (the key is not read). Internal. */
export function dkimIdentity(options: Pick<DkimOptions, 'domainName' | 'keySelector'>): DkimIdentity {
  return { domainName: checkDomain(options.domainName), keySelector: checkSelector(options.keySelector) };
}

function checkDomain(value: unknown): string {
  const ascii = typeof value === 'string' ? domainToASCII(value.trim()) : '';
  if (!DOMAIN.test(ascii)) {
    throw new ConfigError('dkim.domainName', 'must be a domain name such as acme.example');
  }
  return ascii.toLowerCase();
}

function checkSelector(value: unknown): string {
  if (typeof value !== 'string' || !SELECTOR.test(value)) {
    throw new ConfigError(
      'dkim.keySelector',
      'must be a DNS name such as mail or s2026 (letters, digits and inner hyphens; dots between labels)',
    );
  }
  return value;
}

function parseKey(given: unknown): KeyObject {
  const option = 'dkim.privateKey';
  const key = given instanceof KeyObject ? privateKeyObject(given) : keyFromPem(pemText(given));
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') {
    throw new ConfigError(
      option,
      'is an ed25519 key (RFC 8463), which is not supported: the signer makes rsa-sha256 signatures only, and receivers expect an RSA signature anyway; use an RSA key of 2048 bits',
    );
  }
  if (type !== 'rsa') {
    throw new ConfigError(
      option,
      `is a${/^[aeiou]/i.test(type ?? '') ? 'n' : ''} ${type} key; DKIM needs an RSA key`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 1024) {
    throw new ConfigError(
      option,
      `is a ${bits}-bit RSA key; DKIM needs at least 1024 bits (RFC 8301), 2048 recommended`,
    );
  }
  try {
    sign('sha256', SIGNATURE_HEADER, key);
  } catch {
    throw new ConfigError(option, 'could not make a test signature with this key');
  }
  return key;
}

const EXPECTED = 'an RSA private key as PEM text, a Buffer of PEM bytes or a private KeyObject';

/** PEM text from a string or a Buffer (or other byte array) of the PEM file. */
function pemText(given: unknown): string {
  const option = 'dkim.privateKey';
  if (given === undefined || given === null || given === '') {
    throw new ConfigError(option, `is required: ${EXPECTED} (-----BEGIN PRIVATE KEY-----)`);
  }
  if (given instanceof Uint8Array)
    return Buffer.from(given.buffer, given.byteOffset, given.byteLength).toString('utf8');
  if (typeof given === 'string') return given;
  throw new ConfigError(option, `must be ${EXPECTED}, not ${kindOf(given)}`);
}

function keyFromPem(pem: string): KeyObject {
  const option = 'dkim.privateKey';
  if (pem.trim() === '') throw new ConfigError(option, `is empty: ${EXPECTED}`);
  if (!pem.includes('-----BEGIN')) {
    // DER bytes or a bare base64 body: say which form is wanted rather than what OpenSSL thought.
    throw new ConfigError(option, `is not a PEM private key (no -----BEGIN line); expected ${EXPECTED}`);
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    // OpenSSL's message names the decoder, never the key; the code is enough to act on.
    const code = (err as { code?: string }).code;
    throw new ConfigError(
      option,
      code === 'ERR_MISSING_PASSPHRASE' || /BEGIN ENCRYPTED PRIVATE KEY|Proc-Type: 4,ENCRYPTED/.test(pem)
        ? 'is encrypted; give the key without a passphrase, or a KeyObject made with createPrivateKey({ key, passphrase })'
        : `is not a PEM private key node:crypto can read${code ? ` (${code})` : ''}`,
    );
  }
}

function privateKeyObject(key: KeyObject): KeyObject {
  if (key.type !== 'private') {
    throw new ConfigError(
      'dkim.privateKey',
      `is a ${key.type} KeyObject; DKIM signs with the private key (createPrivateKey, not ${key.type === 'public' ? 'createPublicKey' : 'createSecretKey'})`,
    );
  }
  return key;
}

/** What a value is, for an error: its type or class, never its content. */
function kindOf(value: unknown): string {
  if (typeof value !== 'object' || value === null) return `a ${typeof value}`;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== 'Object' ? `a ${name}` : 'a plain object';
}

function signingFailed(signed: string, cause: unknown): EmailError {
  // `config` is systemic: every later message would fail the same way, so nothing is retried.
  return new EmailError(`DKIM signing failed (${signed}); the message was not sent unsigned`, {
    code: 'config',
    transport: 'smtp',
    cause,
  });
}

// Env files often hold a PEM on one line with literal \n for the line breaks.
function unescapeNewlines(value: string): string {
  return value.includes('\n') ? value : value.replace(/\\n/g, '\n');
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'SMTP_DKIM_PRIVATE_KEY_FILE',
      `cannot read ${path} (${(err as { code?: string }).code ?? 'error'})`,
    );
  }
}

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('error', reject);
    stream.once('end', () => resolve(Buffer.concat(chunks)));
  });
}
