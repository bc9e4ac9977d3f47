import test from 'ava';
import { runCommand } from '../../local/commands.ts';
import {
  cidrRange,
  overlap,
  pickSubnetPool,
  poolBlocks,
  releaseSubnetPool,
} from '../../local/subnets.ts';

test('a network is a range of addresses; ranges overlap when they share one', (t) => {
  t.deepEqual(cidrRange('10.126.2.0/23'), { first: 0x0a7e0200, last: 0x0a7e03ff });
  t.deepEqual(cidrRange('10.126.2.9/28'), { first: 0x0a7e0200, last: 0x0a7e020f });
  t.is(cidrRange('fd00::/64'), undefined);
  t.is(cidrRange('10.0.0.0/33'), undefined);
  t.true(overlap(cidrRange('10.126.2.0/23')!, cidrRange('10.126.3.240/28')!));
  t.false(overlap(cidrRange('10.126.2.0/23')!, cidrRange('10.126.4.0/28')!));
});

test('the local pool is cut into blocks that hold a /28 per seat', (t) => {
  const blocks = poolBlocks(20);
  t.is(blocks.length, 128, 'a /16 holds 128 blocks of 32 /28s');
  t.deepEqual(blocks.slice(0, 2), ['10.126.0.0/23', '10.126.2.0/23']);
  t.deepEqual(poolBlocks(100).slice(0, 1), ['10.126.0.0/21']);
});

test('a picked pool is claimed for this process and overlaps no Docker network', async (t) => {
  const docker = (...args: string[]) => runCommand('docker', args);
  // Half the local pool taken by a network of the test's own: every pick is in the other half.
  const taken = `ct-test-taken-${process.pid}`;
  t.is((await docker('network', 'create', '--subnet', '10.126.0.0/17', taken)).code, 0);
  t.teardown(() => docker('network', 'rm', taken).then(() => undefined));
  const picked = new Set<string>();
  for (let i = 0; i < 5; i++) picked.add(await pickSubnetPool(20, docker));
  t.is(picked.size, 5, 'never handed out twice while claimed');
  const subnets = (
    await runCommand('bash', [
      '-c',
      "docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' $(docker network ls -q)",
    ])
  ).stdout
    .split(/\s+/)
    .map(cidrRange)
    .filter((r) => r !== undefined);
  t.true(subnets.some((s) => overlap(s, cidrRange('10.126.0.0/17')!)));
  for (const pool of picked) {
    t.false(
      subnets.some((s) => overlap(s, cidrRange(pool)!)),
      pool,
    );
    releaseSubnetPool(pool);
  }
});
