/** A throwaway TLS identity for loopback test servers. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const cached = new Map<string, Promise<{ key: string; cert: string }>>();

/**
 * Self-signed RSA-2048 certificate, made once per process for each set of names: by default for
 * localhost and 127.0.0.1 (`subjectAltName`, OpenSSL's syntax: `DNS:localhost,IP:127.0.0.1`).
 */
export async function selfSignedCert(
  altNames = 'DNS:localhost,IP:127.0.0.1',
): Promise<{ key: string; cert: string }> {
  let made = cached.get(altNames);
  if (!made) {
    made = generate(altNames).catch((err) => {
      cached.delete(altNames);
      throw err;
    });
    cached.set(altNames, made);
  }
  return made;
}

async function generate(altNames: string): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-cert-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      // -addext needs OpenSSL 1.1.1+, which every supported platform ships.
      '-addext',
      `subjectAltName=${altNames}`,
    ]);
    const [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
    return { key, cert };
  } catch (err) {
    // A missing tool must fail loudly: silently skipping would hide every TLS test.
    const { code, syscall } = err as NodeJS.ErrnoException;
    if (code === 'ENOENT' && syscall?.startsWith('spawn')) {
      throw new Error(
        'The `openssl` CLI is required to generate test certificates but was not found on PATH',
      );
    }
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
