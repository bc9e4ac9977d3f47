// Boot order on a dockerd of the test's own: after an unclean stop (Docker restores the seats as
// failed, exit 255, and its restart policy would start them), a clean one, or a restart of the
// daemon alone, no seat process reaches the metadata server before the seat firewall is back. A
// probe in every seat container tries the metadata stand-in in a tight loop throughout.
import { readFileSync } from 'node:fs';
import { emulatorTest as test } from '../helpers/emulators.ts';
import { outside } from '../helpers/outside.ts';
import { privateDockerd } from '../helpers/private-dockerd.ts';
import { buildImage, instanceFor, vmImages } from '../helpers/vm.ts';
import { runCommand } from '../../local/commands.ts';
import { until } from '../../local/process-groups.ts';
import { bootInstance, mountsUnder, seatDisksLeft } from '../../local/vm-runner.ts';

test('no seat process answers before the seat firewall is back, whatever restarted', async (t) => {
  t.timeout(1_800_000);
  const images = await vmImages();
  const dockerd = await privateDockerd(t);
  const world = await outside(t, dockerd.netns);
  // The seat: tries the metadata stand-in back to back, counting tries; HIT when it got through.
  const probe = await buildImage('clarateach-test/seat-probe:1', {
    Dockerfile: `FROM ${images.browser}\nCOPY probe /probe\nCMD ["/probe"]\n`,
    probe: [
      '#!/bin/bash',
      'n=0',
      'while :; do',
      // Each try bounded: a dropped connect would otherwise wait out TCP's SYN retries (minutes),
      // and the check that every seat keeps trying would see too few tries.
      `  if timeout 2 bash -c 'exec 3<>/dev/tcp/${world.metadataIp}/${world.port}' 2>/dev/null; then echo HIT; fi`,
      '  n=$((n + 1)); if ((n % 20 == 0)); then echo "tries $n"; fi',
      'done',
      '',
    ].join('\n'),
  });
  await dockerd.load(probe);

  const plan = await instanceFor({
    seatFirst: 1,
    seatCount: 2,
    workspaceImage: probe,
    nekoImage: probe,
  });
  plan.instance.metadata['caddy-image'] = probe;
  const vm = await bootInstance(plan.instance, {
    pubsubEmulatorHost: plan.env.pubsubHost,
    dockerHost: dockerd.host,
    scriptEnv: {
      CT_METADATA_ADDR: world.metadataIp,
      CT_IPTABLES: dockerd.iptables,
      CT_SEAT_WAIT: '1',
    },
  });
  t.teardown(() => vm.stop());
  const seats = [1, 2].flatMap((s) => [
    `${vm.namePrefix}seat-${s}`,
    `${vm.namePrefix}seat-${s}-browser`,
  ]);

  const running = async () =>
    (await dockerd.docker('ps', '--format', '{{.Names}}')).stdout
      .split('\n')
      .filter((name) => seats.includes(name));
  const tries = async (name: string) => {
    const logs = await dockerd.docker('logs', '--tail', '5', name);
    const counts = [...logs.stdout.matchAll(/tries (\d+)/g)].map((m) => Number(m[1]));
    return counts.length ? counts[counts.length - 1]! : 0;
  };
  /** The script has run to its end (it fails at Caddy: the probe image has none) and every seat
   * container is trying again. */
  const scriptRanAndSeatsProbe = async (what: string) => {
    await vm.exited();
    const log = readFileSync(vm.logPath, 'utf8');
    const run = log.slice(log.lastIndexOf('clarateach-startup: starting'));
    const firewall = run.indexOf('seat firewall in place');
    t.true(firewall > 0, `${what}: the firewall was installed`);
    t.true(firewall < run.indexOf(`using ${probe}`), `${what}: before the images`);
    for (const name of seats) {
      const line = new RegExp(`(created|started existing|keeping) ${name}\\n`).exec(run);
      t.true(line !== null && line.index > firewall, `${what}: ${name} after the firewall`);
    }
    t.deepEqual((await running()).sort(), [...seats].sort(), `${what}: every seat runs`);
    const from = await Promise.all(seats.map(tries));
    let trying = false;
    for (let i = 0; i < 600 && !trying; i++) {
      const now = await Promise.all(seats.map(tries));
      trying = now.every((n, k) => n > from[k]! + 20);
      await new Promise((r) => setTimeout(r, 200));
    }
    t.true(trying, `${what}: every seat keeps trying`);
    t.is(world.hits(world.metadataIp), 0, `${what}: no seat got through`);
  };

  await scriptRanAndSeatsProbe('first boot');
  for (const restart of ['unclean reboot', 'clean reboot', 'dockerd restart'] as const) {
    await dockerd.stop(restart === 'unclean reboot' ? 'unclean' : 'clean');
    if (restart !== 'dockerd restart') await dockerd.forgetAsAtReboot([vm.stateDir]);
    await dockerd.start();
    // Docker has restored its containers (and restarted those it would) once its API answers.
    if (restart === 'unclean reboot') {
      const states = await dockerd.docker(
        'inspect',
        '--format',
        '{{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}} {{.State.Error}}',
        seats[0]!,
      );
      t.log(`${seats[0]} after Docker's restore: ${states.stdout.trim()}`);
      t.regex(
        states.stdout,
        /^255 on-failure .*no such file or directory/,
        'Docker tried, and could not',
      );
    }
    if (restart !== 'dockerd restart') t.deepEqual(await running(), [], `${restart}: no seat runs`);
    t.is(world.hits(world.metadataIp), 0, `${restart}: no seat got through before the script`);
    await vm.reboot();
    await scriptRanAndSeatsProbe(restart);
  }

  // The probes do get through where the rule is missing: the checks above could fail.
  const jump = [
    '-w',
    '-D',
    'DOCKER-USER',
    '-i',
    `${vm.namePrefix.slice(0, -1)}+`,
    '-j',
    vm.firewallChain,
  ];
  t.is((await runCommand(dockerd.iptables, jump)).code, 0);
  t.true(
    await until(() => world.hits(world.metadataIp) > 0, 60_000, 100),
    'without the rule, a seat reaches the metadata stand-in',
  );

  await vm.stop();
  t.deepEqual(mountsUnder(vm.stateDir), [], 'the seats’ disks are unmounted');
  t.deepEqual(await seatDisksLeft(vm.stateDir), [], 'no loop device left');
});
