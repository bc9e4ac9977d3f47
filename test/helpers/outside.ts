// "Outside the VM" for seat-firewall tests: a network namespace of the test's own, linked by a
// veth pair to this host (or to another namespace, where a private dockerd runs) and routed like
// the world beyond a VM's NIC, not like a Docker bridge (which Docker's own isolation would close
// anyway). It holds a public address, a metadata stand-in (outside the private ranges, as
// 169.254.169.254 is, and a DNS resolver as on GCE) and a private address, each answering TCP and
// counting who connected.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { runCommand } from '../../local/commands.ts';

export interface Outside {
  /** Where a seat may go (the internet). */
  publicIp: string;
  /** Closed by the metadata rule only; pass it as CT_METADATA_ADDR. */
  metadataIp: string;
  /** Closed by the private ranges. */
  privateIp: string;
  /** The port every address answers on. */
  port: number;
  /** Connections accepted so far on `address` (TCP on `port`), or DNS queries ('dns/udp',
   * 'dns/tcp') answered by the resolver on `metadataIp`. */
  hits(address: string): number;
}

async function ip(...args: string[]): Promise<void> {
  const out = await runCommand('ip', args);
  if (out.code !== 0) throw new Error(`ip ${args.join(' ')}: ${out.stderr}`);
}

/** `near`: the network namespace the outside is linked to (this host's when absent). */
export async function outside(t: ExecutionContext, near?: string): Promise<Outside> {
  const n = randomInt(1, 250);
  const ns = `ctout${n}-${randomInt(1e6)}`;
  const [host, inner] = [`ctoh${n}x${randomInt(1e4)}`, `ctoi${n}x${randomInt(1e4)}`];
  const port = 8080;
  const [publicIp, metadataIp, privateIp] = [`198.19.${n}.2`, `198.19.${n}.3`, `10.125.${n}.2`];
  const nearIp = (...args: string[]) => ip(...(near ? ['-n', near] : []), ...args);
  await ip('netns', 'add', ns);
  t.teardown(() => runCommand('ip', ['netns', 'del', ns]).then(() => undefined));
  await nearIp('link', 'add', host, 'type', 'veth', 'peer', 'name', inner);
  await nearIp('link', 'set', inner, 'netns', ns);
  await nearIp('addr', 'add', `198.19.${n}.1/24`, 'dev', host);
  await nearIp('link', 'set', host, 'up');
  await nearIp('route', 'add', `10.125.${n}.0/24`, 'via', publicIp);
  const far = (...args: string[]) => ip('-n', ns, ...args);
  await far('link', 'set', 'lo', 'up');
  await far('addr', 'add', `${publicIp}/24`, 'dev', inner);
  await far('addr', 'add', `${metadataIp}/32`, 'dev', inner);
  await far('addr', 'add', `${privateIp}/24`, 'dev', inner);
  await far('link', 'set', inner, 'up');
  const server = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '--import=tsx',
      fileURLToPath(new URL('outside-server.ts', import.meta.url)),
      String(port),
      metadataIp,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const counts = new Map<string, number>();
  let listening: () => void;
  const started = new Promise<void>((resolve) => (listening = resolve));
  let buffered = '';
  server.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line === 'listening') listening();
      else counts.set(line, (counts.get(line) ?? 0) + 1);
    }
  });
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  await started;
  return { publicIp, metadataIp, privateIp, port, hits: (address) => counts.get(address) ?? 0 };
}
