import test from 'ava';
import { planVms } from '../../shared/core/plan.ts';
import { instanceSpec } from '../../shared/core/vm-spec.ts';
import {
  latestCertificate,
  seatEndpoints,
  toWorkshopView,
  type VmRecord,
  type WorkshopRecord,
} from '../../shared/core/workshop.ts';

const workshop = {
  id: 'abcdefghijklmnop',
  name: 'Shell basics',
  seats: 25,
  image: 'reg/clarateach/workspace:latest',
  expiresAt: '2030-01-01T10:00:00.000Z',
  spot: true,
  vmPlan: planVms(25),
} as WorkshopRecord;
const seatTokens = Object.fromEntries(
  Array.from({ length: 25 }, (_, i) => [String(i + 1), `tok${i + 1}`]),
);
const secrets = {
  sshPrivateKey: 'PRIVATE',
  sshPublicKey: 'ssh-ed25519 AAAA clarateach',
  readyTokens: { 'ct-abcdefghijklmnop-1': 'ready1' },
  seatTokens,
  viewerToken: 'viewer1',
};
const settings = {
  project: 'p1',
  registry: 'us-central1-docker.pkg.dev/p1/clarateach',
  nekoImage: 'neko',
  caddyImage: 'caddy',
  readyTopic: 'vm.ready',
  startupScript: '#!/bin/bash',
  watcherScript: '#!/bin/bash\n# watcher',
  portalOrigin: 'https://portal.example',
  seatDomain: '',
};

test('a VM gets its seats, tokens, topic and labels in metadata, never the private key', (t) => {
  const spec = instanceSpec(workshop, workshop.vmPlan[1]!, secrets, settings, {
    zone: 'us-central1-b',
    spot: true,
  });
  t.is(spec.name, 'ct-abcdefghijklmnop-1');
  t.is(spec.zone, 'us-central1-b');
  t.is(spec.machineType, 'e2-standard-8');
  t.true(spec.spot);
  t.deepEqual(spec.labels, { app: 'clarateach', workshop: 'abcdefghijklmnop' });
  t.is(spec.metadata['seat-first'], '14');
  t.is(spec.metadata['seat-count'], '12');
  t.is(
    spec.metadata['seat-tokens'],
    Array.from({ length: 12 }, (_, i) => `${14 + i}:tok${14 + i}`).join(' '),
  );
  t.is(spec.metadata['ready-token'], 'ready1');
  t.is(spec.metadata['class-ends'], '2030-01-01T10:00:00.000Z');
  t.is(spec.metadata['clarateach-watcher'], settings.watcherScript);
  t.is(spec.metadata['viewer-token'], 'viewer1');
  t.is(spec.metadata['portal-origin'], 'https://portal.example');
  t.is(spec.metadata['public-host'], '', 'no seat domain: the seats are ports of the IP');
  t.is(spec.metadata['ready-topic'], 'projects/p1/topics/vm.ready');
  t.is(spec.metadata.registry, 'us-central1-docker.pkg.dev');
  t.is(spec.metadata['ssh-keys'], 'clarateach:ssh-ed25519 AAAA clarateach');
  t.false(Object.values(spec.metadata).some((v) => v.includes('PRIVATE')));
  // The workspace page's header and instructions; a class without instructions sends them empty.
  t.is(spec.metadata['workshop-name'], workshop.name);
  t.is(spec.metadata.instructions, '');
  const withSteps = { ...workshop, instructions: '# Step 1\n' };
  t.is(
    instanceSpec(withSteps, workshop.vmPlan[1]!, secrets, settings, { zone: 'z', spot: true })
      .metadata.instructions,
    '# Step 1\n',
  );
  const fellBack = instanceSpec(workshop, workshop.vmPlan[1]!, secrets, settings, {
    zone: 'us-central1-a',
    spot: false,
  });
  t.false(fellBack.spot, 'a VM that fell back is standard, whatever the workshop asked');
  t.deepEqual(fellBack.metadata, spec.metadata, 'same seats and credentials wherever it lands');
  const named = instanceSpec(
    workshop,
    workshop.vmPlan[1]!,
    secrets,
    { ...settings, seatDomain: 'seats.example.edu' },
    { zone: 'z', spot: true },
  );
  t.is(named.metadata['public-host'], 'ct-abcdefghijklmnop-1.seats.example.edu');
});

const vm = { externalIp: '203.0.113.5', httpPort: 80 } as VmRecord;

test('seat endpoints: each seat an HTTPS origin of its own on its VM, carrying its credential', (t) => {
  // Seat 7 is the VM's third (its first seat is 5): port 8400 + 3.
  t.deepEqual(seatEndpoints({ ...vm, firstSeat: 5 }, 7, 'a b'), {
    terminal: 'https://203.0.113.5:8403/vm/7/terminal/?t=a%20b',
    files: 'https://203.0.113.5:8403/vm/7/files/?t=a%20b',
    browser: 'https://203.0.113.5:8403/vm/7/browser/?t=a%20b',
    workspace: 'https://203.0.113.5:8403/vm/7/?t=a%20b',
  });
  t.is(
    seatEndpoints({ ...vm, firstSeat: 1, httpPort: 8123, seatHttpsBase: 20000 }, 1, 't').files,
    'https://203.0.113.5:20001/vm/1/files/?t=t',
  );
  // Under the operator's seat domain the origins carry the VM's name, ports as before.
  const named = { ...vm, firstSeat: 5, publicHost: 'ct-abcdefghijklmnop-0.seats.example.edu' };
  t.is(
    seatEndpoints(named, 7, 'x').terminal,
    'https://ct-abcdefghijklmnop-0.seats.example.edu:8403/vm/7/terminal/?t=x',
  );
});

test('the workshop view holds the contract fields only, VMs in order', (t) => {
  const view = toWorkshopView(
    { ...workshop, ownerId: 'x', joinCode: 'ABCDEFGH' } as WorkshopRecord,
    [
      {
        name: 'b',
        index: 1,
        status: 'ready',
        externalIp: '1.1.1.1',
        publicHost: 'b.seats.example.edu',
        zone: 'us-central1-b',
        spot: false,
        machineType: 'e2-standard-8',
        capacityMisses: [
          { zone: 'us-central1-a', spot: true },
          { zone: 'us-central1-b', spot: true },
        ],
        certificate: {
          notAfter: '2026-01-07T00:00:00Z',
          renewalError: 'could not get certificate from issuer: HTTP 503',
          checkedAt: '2026-01-01T00:00:00Z',
        },
      } as VmRecord,
      {
        name: 'a',
        index: 0,
        status: 'booting',
        externalIp: null,
        zone: 'us-central1-a',
        machineType: 'e2-standard-8',
      } as VmRecord,
    ],
    4,
    '2026-01-01T00:00:00.000Z',
  );
  t.is(view.seatsTaken, 4);
  t.like(view, { startAt: null, schedule: null, late: false, lateBySeconds: null });
  t.true(view.spotFallback, 'allowed unless the workshop said otherwise');
  t.deepEqual(view.vms, [
    {
      name: 'a',
      status: 'booting',
      externalIp: null,
      publicHost: null,
      zone: 'us-central1-a',
      spot: true,
      moved: null,
      certificate: null,
    },
    {
      name: 'b',
      status: 'ready',
      externalIp: '1.1.1.1',
      publicHost: 'b.seats.example.edu',
      zone: 'us-central1-b',
      spot: false,
      moved:
        'VM 2 runs as a standard VM in us-central1-b: us-central1-a and us-central1-b were out of Spot e2-standard-8',
      certificate: {
        notAfter: '2026-01-07T00:00:00Z',
        renewalError: 'could not get certificate from issuer: HTTP 503',
      },
    },
  ]);
  t.false('ownerId' in view);
  t.false('vmPlan' in view);
});

test('a VM keeps the certificate report it checked last, whatever order reports arrive in', (t) => {
  const early = {
    notAfter: '2026-01-07T00:00:00Z',
    renewalError: null,
    checkedAt: '2026-01-05T10:00:00Z',
  };
  const late = {
    notAfter: '2026-01-07T00:00:00Z',
    renewalError: 'could not get certificate from issuer',
    checkedAt: '2026-01-05T10:05:00Z',
  };
  t.is(latestCertificate(null, early), early);
  t.is(latestCertificate(early, late), late);
  t.is(latestCertificate(late, early), late, 'an older report arriving late changes nothing');
  t.is(latestCertificate(late, undefined), late, 'a report without one keeps what is known');
  t.is(latestCertificate(undefined, undefined), null);
});
