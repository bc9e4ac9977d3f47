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
  // A pool of the test's own, outside the local one (other tests' VMs pick from that one at the
  // same time): two blocks for 20 seats, the first taken by a Docker network of the test's own.
  const pool = '10.123.0.0/22';
  t.deepEqual(poolBlocks(20, pool), ['10.123.0.0/23', '10.123.2.0/23']);
  const taken = `ct-test-taken-${process.pid}`;
  t.is((await docker('network', 'create', '--subnet', '10.123.0.0/24', taken)).code, 0);
  t.teardown(() => docker('network', 'rm', taken).then(() => undefined));
  // Every pick is the free block; while it is claimed there is none left, not the taken one.
  const picked = await pickSubnetPool(20, docker, pool);
  t.is(picked, '10.123.2.0/23');
  await t.throwsAsync(pickSubnetPool(20, docker, pool), {
    message: 'no free seat subnet pool for 20 seats in 10.123.0.0/22',
  });
  releaseSubnetPool(picked);
  t.is(await pickSubnetPool(20, docker, pool), picked, 'released, it is handed out again');
  releaseSubnetPool(picked);
});
