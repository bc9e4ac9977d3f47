import test from 'ava';
import { ConfigError, loadConfig, resolveImage } from '../../shared/config.ts';

const minimal = {
  GCP_PROJECT: 'p1',
  GCP_REGISTRY: 'us-central1-docker.pkg.dev/p1/clarateach',
  ID_TOKEN_AUDIENCES: 'client-1.apps.googleusercontent.com',
  INSTRUCTORS: '@school.example',
};

test('defaults follow the seed and DESIGN.md', (t) => {
  const config = loadConfig(minimal);
  t.is(config.project, 'p1');
  t.deepEqual(config.zones, ['us-central1-a']);
  t.is(config.region, 'us-central1');
  t.false(config.useSpot);
  t.is(config.images.workspace, 'us-central1-docker.pkg.dev/p1/clarateach/workspace:latest');
  t.is(config.vm.sourceImage, 'projects/cos-cloud/global/images/family/cos-stable');
  t.is(config.vm.diskSizeGb, 50);
  t.is(config.auth.mode, 'token');
  t.deepEqual(config.auth.issuers, [
    {
      issuer: 'https://accounts.google.com',
      certsUrl: 'https://www.googleapis.com/oauth2/v1/certs',
    },
    {
      issuer: 'https://securetoken.google.com/p1',
      certsUrl:
        'https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com',
    },
  ]);
  t.deepEqual(config.auth.audiences, ['client-1.apps.googleusercontent.com']);
  t.deepEqual(config.instructorLimits, { activeWorkshops: 3, activeSeats: 200 });
  t.deepEqual(config.imageAllowlist, []);
  t.is(config.computeEndpoint, undefined);
  t.is(config.vm.subnetwork, undefined, 'an auto-mode network needs none');
  t.true(config.startupScript.startsWith('#!'));
});

test('one error names everything that is missing or malformed', (t) => {
  const error = t.throws(
    () =>
      loadConfig({
        GCP_USE_SPOT: 'maybe',
        VM_DISK_GB: '-3',
        AUTH_MODE: 'open',
        CT_COMPUTE_ENDPOINT: 'nope',
        ID_TOKEN_ISSUERS: 'https://login.example',
        INSTRUCTORS: 'someone',
        INSTRUCTOR_MAX_SEATS: 'many',
      }),
    { instanceOf: ConfigError },
  );
  for (const name of [
    'GCP_PROJECT',
    'GCP_REGISTRY',
    'GCP_USE_SPOT',
    'VM_DISK_GB',
    'AUTH_MODE',
    'CT_COMPUTE_ENDPOINT',
    'ID_TOKEN_ISSUERS',
    'INSTRUCTORS',
    'INSTRUCTOR_MAX_SEATS',
  ]) {
    t.true(error.message.includes(name), name);
  }
});

test('settings from the environment are taken', (t) => {
  const config = loadConfig({
    ...minimal,
    GCP_ZONE: 'europe-west1-b',
    GCP_USE_SPOT: 'true',
    CT_COMPUTE_ENDPOINT: '127.0.0.1:9999',
    ADMIN_EMAILS: ' Ops@School.example, root@school.example ',
    AUTH_MODE: 'dev',
    VM_NETWORK: 'classes',
    VM_SUBNETWORK: 'class-subnet',
  });
  t.deepEqual(config.zones, ['europe-west1-b']);
  t.is(config.region, 'europe-west1');
  t.deepEqual([config.vm.network, config.vm.subnetwork], ['classes', 'class-subnet']);
  t.true(config.useSpot);
  t.deepEqual(config.computeEndpoint, { host: '127.0.0.1', port: 9999 });
  t.deepEqual([...config.auth.admins], ['ops@school.example', 'root@school.example']);
  t.is(config.auth.mode, 'dev');
});

test('the header-only mode is gone, and dev mode is refused on Cloud Run', (t) => {
  t.throws(() => loadConfig({ ...minimal, AUTH_MODE: 'header' }), { message: /AUTH_MODE/ });
  t.throws(() => loadConfig({ ...minimal, AUTH_MODE: 'dev', K_SERVICE: 'workshops' }), {
    message: /local stack only/,
  });
});

test('token mode needs an audience and instructors: the project id is no default', (t) => {
  const { GCP_PROJECT, GCP_REGISTRY } = minimal;
  const error = t.throws(() => loadConfig({ GCP_PROJECT, GCP_REGISTRY }), {
    instanceOf: ConfigError,
  });
  t.regex(error.message, /ID_TOKEN_AUDIENCES is not set/);
  t.regex(error.message, /INSTRUCTORS is not set/);
  // The local stack authenticates nobody, so it needs neither.
  const dev = loadConfig({ GCP_PROJECT, GCP_REGISTRY, AUTH_MODE: 'dev' });
  t.deepEqual(dev.auth.audiences, []);
});

test('token issuers, audiences, limits and image folders come from the environment', (t) => {
  const config = loadConfig({
    ...minimal,
    ID_TOKEN_ISSUERS: 'https://accounts.google.com, https://login.example=http://127.0.0.1:9/keys',
    ID_TOKEN_AUDIENCES: 'client-1.apps.googleusercontent.com,p1',
    INSTRUCTORS: ' Ann@School.example, @School.example,svc@p1.iam.gserviceaccount.com',
    INSTRUCTOR_MAX_WORKSHOPS: '5',
    INSTRUCTOR_MAX_SEATS: '400',
    IMAGE_ALLOWLIST: 'ghcr.io/school/labs, europe-docker.pkg.dev/p2/shared/',
  });
  t.deepEqual(
    config.auth.issuers.map((i) => i.certsUrl),
    ['https://www.googleapis.com/oauth2/v1/certs', 'http://127.0.0.1:9/keys'],
  );
  t.deepEqual(config.auth.audiences, ['client-1.apps.googleusercontent.com', 'p1']);
  t.deepEqual(
    [...config.auth.instructors.emails],
    ['ann@school.example', 'svc@p1.iam.gserviceaccount.com'],
  );
  t.deepEqual([...config.auth.instructors.domains], ['school.example']);
  t.deepEqual(config.instructorLimits, { activeWorkshops: 5, activeSeats: 400 });
  t.deepEqual(config.imageAllowlist, ['ghcr.io/school/labs/', 'europe-docker.pkg.dev/p2/shared/']);
});

test('GCP_ZONES lists the zones in order, in one region, and wins over GCP_ZONE', (t) => {
  const config = loadConfig({
    ...minimal,
    GCP_ZONE: 'us-central1-a',
    GCP_ZONES: ' us-central1-c, us-central1-a ,us-central1-c',
  });
  t.deepEqual(config.zones, ['us-central1-c', 'us-central1-a']);
  t.is(config.region, 'us-central1');
  for (const [zones, problem] of [
    ['us-central1-a,europe-west1-b', /one region/],
    ['us-central1', /zones such as/],
    [' , ', /zones such as/],
  ] as const) {
    const error = t.throws(() => loadConfig({ ...minimal, GCP_ZONES: zones }), {
      instanceOf: ConfigError,
    });
    t.regex(error.message, problem);
  }
});

test('a short image name lives in the registry, a path is taken as given', (t) => {
  const config = loadConfig(minimal);
  t.is(resolveImage(config, undefined), config.images.workspace);
  t.is(resolveImage(config, 'python:3.12'), 'us-central1-docker.pkg.dev/p1/clarateach/python:3.12');
  t.is(resolveImage(config, 'europe-docker.pkg.dev/x/y/z:1'), 'europe-docker.pkg.dev/x/y/z:1');
});

test('PORTAL_ORIGIN is one origin or nothing: it becomes a CSP source on every VM', (t) => {
  t.is(loadConfig(minimal).portalOrigin, '');
  t.is(
    loadConfig({ ...minimal, PORTAL_ORIGIN: 'https://portal.example' }).portalOrigin,
    'https://portal.example',
  );
  for (const bad of ['https://portal.example/', '*', 'https://a.example https://b.example']) {
    t.throws(() => loadConfig({ ...minimal, PORTAL_ORIGIN: bad }), {
      instanceOf: ConfigError,
      message: /PORTAL_ORIGIN must be an origin/,
    });
  }
});

test('SEAT_DOMAIN comes with its Cloud DNS zone, or not at all', (t) => {
  t.is(loadConfig(minimal).seatDomain, null, 'no DNS setup needed by default');
  t.deepEqual(
    loadConfig({ ...minimal, SEAT_DOMAIN: 'Seats.Example.EDU.', SEAT_DNS_ZONE: 'seats' })
      .seatDomain,
    { domain: 'seats.example.edu', zone: 'seats' },
  );
  const bad: Record<string, string>[] = [
    { SEAT_DOMAIN: 'seats.example.edu' },
    { SEAT_DNS_ZONE: 'seats' },
    { SEAT_DOMAIN: 'seats.example.edu/x', SEAT_DNS_ZONE: 'seats' },
    { SEAT_DOMAIN: '*.example.edu', SEAT_DNS_ZONE: 'seats' },
    { SEAT_DOMAIN: 'localhost', SEAT_DNS_ZONE: 'seats' },
    { SEAT_DOMAIN: 'seats.example.edu', SEAT_DNS_ZONE: 'Seats Zone' },
    { SEAT_DOMAIN: `${'a'.repeat(64)}.example.edu`, SEAT_DNS_ZONE: 'seats' },
  ];
  for (const env of bad) {
    t.throws(() => loadConfig({ ...minimal, ...env }), {
      instanceOf: ConfigError,
      message: /SEAT_DOMAIN|SEAT_DNS_ZONE/,
    });
  }
});
