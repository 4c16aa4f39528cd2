/**
 * Two DKIM verifiers independent of nodemailer's signer, each answering from a fake DNS that holds
 * only the test key's TXT record: mailauth (JavaScript) and dkimpy (Python, run as a child
 * process). dkimpy must be installed (`pip install dkimpy==1.1.8`); locally its tests skip without
 * it, but with CI=true they run and fail, so a CI that forgot it cannot pass on mailauth alone.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dkimVerify } from 'mailauth/lib/dkim/verify';

/** A signing key and the DNS record that publishes it. */
export interface TestDkimKey {
  domainName: string;
  keySelector: string;
  /** PEM. */
  privateKey: string;
  /** `<selector>._domainkey.<domain>` */
  recordName: string;
  /** The TXT record's text: `v=DKIM1; k=rsa; p=…`. */
  record: string;
}

/** A fresh RSA key in PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM. */
export function rsaKey(
  bits: number,
  format: 'pkcs8' | 'pkcs1' = 'pkcs8',
  domainName = 'acme.example',
  keySelector = `s${bits}${format}`,
): TestDkimKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return {
    domainName,
    keySelector,
    privateKey: privateKey.export({ type: format, format: 'pem' }).toString(),
    recordName: `${keySelector}._domainkey.${domainName}`,
    record: `v=DKIM1; k=rsa; p=${p}`,
  };
}

/** The signing domains and mailauth's verdict for each signature, e.g. `[['acme.example', 'pass']]`. */
export async function mailauthVerdicts(raw: Buffer, key: TestDkimKey): Promise<[string, string][]> {
  const result = await dkimVerify(raw, {
    resolver: async (name: string, type: string) => {
      if (type === 'TXT' && name.toLowerCase() === key.recordName) return [[key.record]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
  } as never);
  return result.results.map((r: { signingDomain: string; status: { result: string } }) => [
    r.signingDomain,
    r.status.result,
  ]);
}

const SCRIPT = fileURLToPath(new URL('./dkimpy-verify.py', import.meta.url));
const PYTHON = process.env.PYTHON ?? 'python3';

/** Whether dkimpy can run here; when not, `reason` says how to install it. */
export const DKIMPY = (() => {
  const probe = spawnSync(PYTHON, ['-c', 'import dkim'], { encoding: 'utf8' });
  return probe.status === 0
    ? { available: true, reason: '' }
    : { available: false, reason: `dkimpy is missing: pip install dkimpy==1.1.8 (for ${PYTHON})` };
})();

/** Skip dkimpy's tests only off CI: on CI a missing verifier is a failure, not a skip. */
export const SKIP_DKIMPY = !DKIMPY.available && process.env.CI !== 'true';

/** dkimpy's verdict on each message's first signature: `pass`, or `fail: <reason>`. Throws when dkimpy is missing. */
export function dkimpyVerdicts(raws: readonly Buffer[], key: TestDkimKey): string[] {
  if (!DKIMPY.available) throw new Error(DKIMPY.reason);
  const run = spawnSync(PYTHON, [SCRIPT, JSON.stringify({ [key.recordName]: key.record })], {
    input: JSON.stringify(raws.map((raw) => raw.toString('base64'))),
    encoding: 'utf8',
  });
  if (run.status !== 0 || run.error)
    throw new Error(`dkimpy failed: ${run.stdout}${run.stderr}${run.error ?? ''}`);
  return run.stdout.trim().split('\n');
}
