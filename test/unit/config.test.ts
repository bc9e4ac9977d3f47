import test from 'ava';
import { ConfigError, loadConfig, resolveImage } from '../../shared/config.ts';

const minimal = { GCP_PROJECT: 'p1', GCP_REGISTRY: 'us-central1-docker.pkg.dev/p1/clarateach' };

test('defaults follow the seed and DESIGN.md', (t) => {
  const config = loadConfig(minimal);
  t.is(config.project, 'p1');
  t.is(config.zone, 'us-central1-a');
  t.false(config.useSpot);
  t.is(config.images.workspace, 'us-central1-docker.pkg.dev/p1/clarateach/workspace:latest');
  t.is(config.vm.sourceImage, 'projects/cos-cloud/global/images/family/cos-stable');
  t.is(config.vm.diskSizeGb, 50);
  t.is(config.auth.mode, 'header');
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
  t.is(config.zone, 'europe-west1-b');
  t.deepEqual([config.vm.network, config.vm.subnetwork], ['classes', 'class-subnet']);
  t.true(config.useSpot);
  t.deepEqual(config.computeEndpoint, { host: '127.0.0.1', port: 9999 });
  t.deepEqual([...config.auth.admins], ['ops@school.example', 'root@school.example']);
  t.is(config.auth.mode, 'dev');
});

test('a short image name lives in the registry, a path is taken as given', (t) => {
  const config = loadConfig(minimal);
  t.is(resolveImage(config, undefined), config.images.workspace);
  t.is(resolveImage(config, 'python:3.12'), 'us-central1-docker.pkg.dev/p1/clarateach/python:3.12');
  t.is(resolveImage(config, 'europe-docker.pkg.dev/x/y/z:1'), 'europe-docker.pkg.dev/x/y/z:1');
});
