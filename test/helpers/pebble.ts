// Pebble, Let's Encrypt's ACME test server (Debian's `pebble`), on loopback: a real ACME CA for
// the startup script's CT_TLS=acme path. It validates challenges for real (no
// PEBBLE_VA_ALWAYS_VALID): HTTP-01 by fetching http://IDENTIFIER:httpPort/.well-known/….
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { prepareMachine } from '../../local/machine.ts';
import { freePort } from '../../local/ports.ts';

export interface Pebble {
  /** Its ACME directory URL (CT_ACME_CA). */
  directory: string;
  /** The port its validation authority fetches HTTP-01 challenges on (the VM's CT_HTTP_PORT). */
  httpPort: number;
  /** PEM file of the root its own HTTPS (ACME and management) chains to (CT_ACME_CA_ROOT). */
  tlsRootPath: string;
  tlsRootPem: string;
  /** The root and intermediate it issues under (made anew at every start), PEM, from its
   * management interface. */
  issuance(): Promise<{ root: string; intermediate: string }>;
  /** What it knows of the certificate with this serial (hex): its status and PEM. */
  certStatus(serialHex: string): Promise<{ Status: string; Certificate: string }>;
  /** Its output so far. */
  log(): string;
  /** Its ACME port refuses every connection from now on (the server out of reach)... */
  cutOff(): Promise<void>;
  /** ...until this. */
  reconnect(): Promise<void>;
  stop(): Promise<void>;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

/** A throwaway root and, under it, pebble's HTTPS certificate for 127.0.0.1 and localhost (the
 * Debian package ships no test certificates). */
function makeTlsCerts(dir: string): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    ['req', '-x509', ...key, '-keyout', 'root.key', '-out', 'root.pem', '-days', '2']
      .concat(['-subj', '/CN=ClaraTeach test pebble TLS root'])
      .concat(['-addext', 'basicConstraints=critical,CA:TRUE']),
    dir,
  );
  openssl(
    ['req', '-new', ...key, '-keyout', 'key.pem', '-out', 'cert.csr', '-subj', '/CN=pebble'],
    dir,
  );
  writeFileSync(
    path.join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'cert.csr',
      '-CA',
      'root.pem',
      '-CAkey',
      'root.key',
      '-CAcreateserial',
    ].concat(['-out', 'cert.pem', '-days', '2', '-extfile', 'ext.cnf']),
    dir,
  );
}

function getText(url: string, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      })
      .on('error', reject);
  });
}

/**
 * A loopback TCP relay in front of pebble's ACME port that can go away for a while and come back
 * on the same port: the ACME server out of reach (connections refused), without pebble losing its
 * accounts as a restart would. (Pebble builds its URLs from the request's Host: they name the relay.)
 */
async function relay(targetPort: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const drop = () => {
      for (const s of [client, upstream]) {
        s.destroy();
        sockets.delete(s);
      }
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', drop);
      s.on('close', drop);
    }
    client.pipe(upstream).pipe(client);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const close = () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    return closed;
  };
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  return { port, cutOff: close, reconnect: () => listen(port), close };
}

/** Starts pebble on free loopback ports; installs Debian's `pebble` first when it is missing
 * (as root on Debian; elsewhere this throws, naming the command that installs it).
 * `validitySeconds`: how long the certificates it issues last (pebble's own default: 5 years);
 * `dnsServer`: host:port of the DNS server it resolves names with. */
export async function startPebble(
  options: { validitySeconds?: number; dnsServer?: string } = {},
): Promise<Pebble> {
  await prepareMachine({ acme: true, say: (line) => console.error(`setup: ${line}`) });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ct-pebble-'));
  try {
    makeTlsCerts(dir);
    const [acmePort, managementPort, httpPort, tlsPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const configPath = path.join(dir, 'pebble-config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${acmePort}`,
          managementListenAddress: `127.0.0.1:${managementPort}`,
          certificate: path.join(dir, 'cert.pem'),
          privateKey: path.join(dir, 'key.pem'),
          httpPort,
          // TLS-ALPN-01 is off in the script's issuer; pebble wants a port all the same.
          tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
          ...(options.validitySeconds
            ? { certificateValidityPeriod: options.validitySeconds }
            : {}),
        },
      }),
    );
    const logPath = path.join(dir, 'pebble.log');
    const logFd = openSync(logPath, 'a');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
    };
    delete env.PEBBLE_VA_ALWAYS_VALID;
    // A name is validated where that DNS server says it is (an IP address needs none).
    const dns = options.dnsServer ? ['-dnsserver', options.dnsServer] : [];
    const child = spawn('pebble', ['-config', configPath, ...dns], {
      cwd: dir,
      env,
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    const exited = new Promise<number | null>((resolve) => {
      child.once('error', () => resolve(null));
      child.once('exit', (code) => resolve(code));
    });
    const log = () => readFileSync(logPath, 'utf8');
    const front = await relay(acmePort);
    const stop = async () => {
      await front.close();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    };

    const tlsRootPath = path.join(dir, 'root.pem');
    const tlsRootPem = readFileSync(tlsRootPath, 'utf8');
    const directory = `https://127.0.0.1:${front.port}/dir`;
    const management = `https://127.0.0.1:${managementPort}`;
    // It makes its issuing keys first (seconds on a loaded machine), then listens.
    let up = false;
    for (const deadline = Date.now() + 30_000; !up && Date.now() < deadline;) {
      if (child.exitCode !== null) break;
      up = await getText(directory, tlsRootPem).then(
        (res) => res.status === 200,
        () => false,
      );
      if (!up) await new Promise((r) => setTimeout(r, 200));
    }
    if (!up) {
      const output = log();
      await stop();
      throw new Error(`pebble did not serve ${directory} within 30 s:\n${output}`);
    }
    const pem = async (what: string) => {
      const res = await getText(`${management}/${what}`, tlsRootPem);
      if (res.status !== 200) throw new Error(`pebble ${what}: HTTP ${res.status}`);
      return res.text;
    };
    return {
      directory,
      httpPort,
      tlsRootPath,
      tlsRootPem,
      issuance: async () => ({
        root: await pem('roots/0'),
        intermediate: await pem('intermediates/0'),
      }),
      certStatus: async (serialHex) =>
        JSON.parse(await pem(`cert-status-by-serial/${serialHex}`)) as {
          Status: string;
          Certificate: string;
        },
      log,
      cutOff: () => front.cutOff(),
      reconnect: () => front.reconnect(),
      stop,
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
