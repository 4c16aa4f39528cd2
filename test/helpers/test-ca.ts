/**
 * A private CA for TLS tests, made with the `openssl` CLI in a temp folder: the CA, a server
 * certificate for 127.0.0.1 and localhost, a client certificate (its key also encrypted), and a
 * client certificate from another CA nobody trusts. EC P-256 keys: quick to make on 2 cores, and
 * Node, librdkafka and Kafka's PEM key store all read them.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its key, as file paths. */
export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCa {
  dir: string;
  /** The CA's certificate (PEM), the one to trust. */
  ca: string;
  /** For the broker: CN=127.0.0.1, subjectAltName IP:127.0.0.1 and DNS:localhost. */
  server: CertFiles & {
    /** The server's key and then its certificate in one file (a PEM key store for Kafka). */
    keystore: string;
  };
  /** CN=mailroom-worker, signed by the CA. */
  client: CertFiles & {
    /** The same key, encrypted (PKCS#8, AES-256) with {@link clientKeyPassword}. */
    encryptedKey: string;
  };
  clientKeyPassword: string;
  /** CN=stranger, signed by a CA the broker does not trust. */
  stranger: CertFiles;
  /** CN=mailroom-worker, signed by the CA, valid 1 to 2 January 2020 only. */
  expired: CertFiles;
  /** CN=mailroom-worker, signed by the CA, valid from 1 January 2099. */
  notYetValid: CertFiles;
  /** A CA certificate (PEM) valid 1 to 2 January 2020 only. */
  expiredCa: string;
  remove(): Promise<void>;
}

/** Makes the files; `remove()` deletes them. A missing `openssl` fails loudly, never skips. */
export async function makeTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-test-ca-'));
  const at = (name: string) => join(dir, name);
  const clientKeyPassword = 'test-key-passphrase';
  try {
    await selfSigned(at('ca'), 'mailroom test CA');
    await selfSigned(at('other-ca'), 'untrusted test CA');
    await signed(at('server'), '127.0.0.1', at('ca'), [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'extendedKeyUsage=serverAuth',
    ]);
    await signed(at('client'), 'mailroom-worker', at('ca'), ['extendedKeyUsage=clientAuth']);
    await signed(at('stranger'), 'stranger', at('other-ca'), ['extendedKeyUsage=clientAuth']);
    await dated(dir, 'expired', 'mailroom-worker', at('ca'), ['20200101000000Z', '20200102000000Z']);
    await dated(dir, 'not-yet-valid', 'mailroom-worker', at('ca'), ['20990101000000Z', '20990102000000Z']);
    await dated(dir, 'expired-ca', 'expired test CA', 'self', ['20200101000000Z', '20200102000000Z']);
    await openssl([
      'pkcs8',
      '-topk8',
      '-in',
      at('client.key'),
      '-out',
      at('client-encrypted.key'),
      '-v2',
      'aes-256-cbc',
      '-passout',
      `pass:${clientKeyPassword}`,
    ]);
    const [serverKey, serverCert] = await Promise.all([
      readFile(at('server.key'), 'utf8'),
      readFile(at('server.pem'), 'utf8'),
    ]);
    await writeFile(at('server-keystore.pem'), serverKey + serverCert);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    ca: at('ca.pem'),
    server: { cert: at('server.pem'), key: at('server.key'), keystore: at('server-keystore.pem') },
    client: { cert: at('client.pem'), key: at('client.key'), encryptedKey: at('client-encrypted.key') },
    clientKeyPassword,
    stranger: { cert: at('stranger.pem'), key: at('stranger.key') },
    expired: { cert: at('expired.pem'), key: at('expired.key') },
    notYetValid: { cert: at('not-yet-valid.pem'), key: at('not-yet-valid.key') },
    expiredCa: at('expired-ca.pem'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** `<base>.pem` and `<base>.key`: a CA certificate signing itself. */
async function selfSigned(base: string, name: string): Promise<void> {
  await openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    // -addext needs OpenSSL 1.1.1+, which every supported platform ships.
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** `<base>.pem` and `<base>.key`: a certificate for `name`, signed by the CA at `<ca>.pem`. */
async function signed(base: string, name: string, ca: string, extensions: string[]): Promise<void> {
  await openssl(['req', ...EC_KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`]);
  await writeFile(`${base}.ext`, `${extensions.join('\n')}\n`);
  await openssl([
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
    '-days',
    '2',
    '-extfile',
    `${base}.ext`,
    '-out',
    `${base}.pem`,
  ]);
}

/**
 * `<dir>/<name>.pem` and `.key`: a certificate for `cn` valid only between two dates
 * (`YYYYMMDDHHMMSSZ`), signed by the CA at `<ca>.pem` or by itself. `openssl x509` and `req` only
 * count days from now; `openssl ca` takes dates, with a config and a database of its own.
 */
async function dated(dir: string, name: string, cn: string, ca: string, [start, end]: [string, string]) {
  const base = join(dir, name);
  const db = join(dir, `${name}-db`);
  await mkdir(db);
  await writeFile(join(db, 'index.txt'), '');
  await writeFile(
    join(db, 'ca.cnf'),
    `[ca]\ndefault_ca = dated\n[dated]\ndatabase = ${db}/index.txt\nnew_certs_dir = ${db}\n` +
      'rand_serial = yes\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n',
  );
  await openssl(['req', ...EC_KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`]);
  const signer =
    ca === 'self'
      ? ['-selfsign', '-keyfile', `${base}.key`]
      : ['-cert', `${ca}.pem`, '-keyfile', `${ca}.key`];
  await openssl([
    'ca',
    '-config',
    join(db, 'ca.cnf'),
    '-batch',
    '-notext',
    ...signer,
    '-in',
    `${base}.csr`,
    '-out',
    `${base}.pem`,
    '-startdate',
    start,
    '-enddate',
    end,
  ]);
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const { code, stderr } = error as NodeJS.ErrnoException & { stderr?: string };
    if (code === 'ENOENT')
      throw new Error('The `openssl` CLI is required to make test certificates but was not found on PATH');
    throw new Error(`openssl ${args[0]} failed: ${stderr ?? String(error)}`);
  }
}
