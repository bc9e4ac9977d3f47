import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The local stack's one certificate authority: every local VM's Caddy issues its seats'
 * certificates from it (`CT_TLS=internal`, `CT_TLS_CA_DIR`), so a client trusts them all with one
 * root (Node: `ca`) or one intermediate key (Chromium: `--ignore-certificate-errors-spki-list`,
 * which matches the certificates a server presents: leaf and intermediate, never the root).
 * Made once with openssl under `.local/tls-ca`, and shared by every process of the machine.
 */
export interface LocalCa {
  dir: string;
  /** The root certificate, PEM: what Node clients pass as `ca`. */
  rootPem: string;
  /** base64 SHA-256 of the intermediate's SubjectPublicKeyInfo, for Chromium's SPKI list. */
  spki: string;
  /** Chromium's flag that trusts this CA's certificates and no others'. */
  chromiumFlag: string;
}

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const LOCAL_CA_DIR = path.join(REPO, '.local', 'tls-ca');

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

function makeCa(dir: string): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const usage = 'keyUsage=critical,keyCertSign,cRLSign';
  openssl(
    ['req', '-x509', ...key, '-keyout', 'root.key', '-out', 'root.pem', '-days', '3650']
      .concat(['-subj', '/CN=ClaraTeach local root'])
      .concat(['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', usage]),
    dir,
  );
  openssl(
    ['req', '-new', ...key, '-keyout', 'intermediate.key', '-out', 'intermediate.csr'].concat([
      '-subj',
      '/CN=ClaraTeach local intermediate',
    ]),
    dir,
  );
  writeFileSync(
    path.join(dir, 'ext.cnf'),
    `basicConstraints=critical,CA:TRUE,pathlen:0\n${usage}\n`,
  );
  openssl(
    ['x509', '-req', '-in', 'intermediate.csr', '-CA', 'root.pem', '-CAkey', 'root.key']
      .concat(['-CAcreateserial', '-out', 'intermediate.pem', '-days', '3650'])
      .concat(['-extfile', 'ext.cnf']),
    dir,
  );
}

/** The machine's local CA, made on first use (processes racing to make it keep the first). */
export function localCa(dir = LOCAL_CA_DIR): LocalCa {
  if (!existsSync(path.join(dir, 'intermediate.pem'))) {
    mkdirSync(path.dirname(dir), { recursive: true });
    const scratch = mkdtempSync(`${dir}.new-`);
    try {
      makeCa(scratch);
      renameSync(scratch, dir);
    } catch (error) {
      // Another process made it first: theirs is the CA.
      if (!existsSync(path.join(dir, 'intermediate.pem'))) throw error;
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  const rootPem = readFileSync(path.join(dir, 'root.pem'), 'utf8');
  const intermediate = new X509Certificate(readFileSync(path.join(dir, 'intermediate.pem')));
  const spki = createHash('sha256')
    .update(intermediate.publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  return { dir, rootPem, spki, chromiumFlag: `--ignore-certificate-errors-spki-list=${spki}` };
}

/**
 * A server certificate from the local CA for `names` (DNS names), with the chain a server
 * presents (leaf, then intermediate): for the local pages a test serves over HTTPS, such as a
 * portal that frames a seat.
 */
export function issueLocalCert(names: string[], ca = localCa()): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(path.dirname(ca.dir), 'leaf-'));
  try {
    const san = names.map((n) => `DNS:${n}`).join(',');
    writeFileSync(
      path.join(dir, 'ext.cnf'),
      `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
    );
    const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl(
      [
        'req',
        '-new',
        ...key,
        '-keyout',
        'leaf.key',
        '-out',
        'leaf.csr',
        '-subj',
        `/CN=${names[0]}`,
      ],
      dir,
    );
    openssl(
      ['x509', '-req', '-in', 'leaf.csr', '-CA', path.join(ca.dir, 'intermediate.pem')]
        .concat([
          '-CAkey',
          path.join(ca.dir, 'intermediate.key'),
          '-set_serial',
          `0x${randomBytes(12).toString('hex')}`,
        ])
        .concat(['-out', 'leaf.pem', '-days', '2', '-extfile', 'ext.cnf']),
      dir,
    );
    return {
      key: readFileSync(path.join(dir, 'leaf.key'), 'utf8'),
      cert:
        readFileSync(path.join(dir, 'leaf.pem'), 'utf8') +
        readFileSync(path.join(ca.dir, 'intermediate.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `tsx local/tls-ca.ts`: makes the CA (when missing) before a client that must trust it starts.
if (process.argv[1] === fileURLToPath(import.meta.url)) localCa();
