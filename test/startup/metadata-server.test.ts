import test from 'ava';
import { startMetadataServer } from '../../local/metadata-server.ts';

const flavor = { 'Metadata-Flavor': 'Google' };

async function server(externalIp = '203.0.113.7') {
  return startMetadataServer({
    projectId: 'demo-project',
    zone: 'us-central1-a',
    instanceName: 'ct-abc-vm-1',
    attributes: { 'workshop-id': 'abc', 'seat-tokens': '1:tok 2:tok2', registry: '' },
    externalIp,
    internalIp: '10.128.0.9',
  });
}

test('serves attributes, instance and project values on a loopback port', async (t) => {
  const md = await server();
  t.teardown(() => md.close());
  t.regex(md.url, /^http:\/\/127\.0\.0\.1:\d+\/computeMetadata\/v1$/);
  const get = async (key: string) => {
    const res = await fetch(`${md.url}/${key}`, { headers: flavor });
    t.is(res.headers.get('metadata-flavor'), 'Google');
    return { status: res.status, body: await res.text() };
  };
  t.deepEqual(await get('instance/attributes/workshop-id'), { status: 200, body: 'abc' });
  t.deepEqual(await get('instance/attributes/seat-tokens'), { status: 200, body: '1:tok 2:tok2' });
  // An attribute set to the empty string exists (the script treats it as "no registry").
  t.deepEqual(await get('instance/attributes/registry'), { status: 200, body: '' });
  t.deepEqual(await get('instance/name'), { status: 200, body: 'ct-abc-vm-1' });
  t.deepEqual(await get('instance/zone'), {
    status: 200,
    body: 'projects/demo-project/zones/us-central1-a',
  });
  t.deepEqual(await get('project/project-id'), { status: 200, body: 'demo-project' });
  t.deepEqual(await get('instance/network-interfaces/0/ip'), { status: 200, body: '10.128.0.9' });
  t.deepEqual(await get('instance/network-interfaces/0/access-configs/0/external-ip'), {
    status: 200,
    body: '203.0.113.7',
  });
  const token = await get('instance/service-accounts/default/token');
  t.is(token.status, 200);
  const parsed = JSON.parse(token.body) as { access_token: string; token_type: string };
  t.truthy(parsed.access_token);
  t.is(parsed.token_type, 'Bearer');
  const keys = await get('instance/attributes/');
  t.deepEqual(keys.body.trim().split('\n'), ['workshop-id', 'seat-tokens', 'registry']);
});

test('answers 403 without the Metadata-Flavor header and 404 for unknown keys', async (t) => {
  const md = await server();
  t.teardown(() => md.close());
  const bare = await fetch(`${md.url}/instance/attributes/workshop-id`);
  t.is(bare.status, 403);
  t.false((await bare.text()).includes('abc'));
  const wrong = await fetch(`${md.url}/instance/name`, { headers: { 'Metadata-Flavor': 'Other' } });
  t.is(wrong.status, 403);
  const unknown = await fetch(`${md.url}/instance/attributes/nope`, { headers: flavor });
  t.is(unknown.status, 404);
  const outside = await fetch(md.url.replace('/computeMetadata/v1', '/other'), { headers: flavor });
  t.is(outside.status, 404);
});

test('an instance without external IP has no access config, and close() stops serving', async (t) => {
  const md = await server('');
  const res = await fetch(`${md.url}/instance/network-interfaces/0/access-configs/0/external-ip`, {
    headers: flavor,
  });
  t.is(res.status, 404);
  await md.close();
  await t.throwsAsync(fetch(`${md.url}/instance/name`, { headers: flavor }));
});

test('recursive attributes with ETags; wait_for_change answers on a change, at once when stale', async (t) => {
  const md = await server();
  t.teardown(() => md.close());
  const url = `${md.url}/instance/attributes/?recursive=true`;
  const first = await fetch(url, { headers: flavor });
  const etag = first.headers.get('etag')!;
  t.truthy(etag);
  t.deepEqual(await first.json(), {
    'workshop-id': 'abc',
    'seat-tokens': '1:tok 2:tok2',
    registry: '',
  });
  // A watcher's long poll is held while nothing changed...
  let answered = false;
  const waiting = fetch(`${url}&wait_for_change=true&timeout_sec=30&last_etag=${etag}`, {
    headers: flavor,
  }).then(async (res) => {
    answered = true;
    return { etag: res.headers.get('etag'), body: (await res.json()) as Record<string, string> };
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.false(answered, 'held while unchanged');
  // ...and answered with the new value once setMetadata changed it.
  md.setAttributes({ 'workshop-id': 'abc', 'seat-tokens': '1:new 2:tok2', registry: '' });
  const changed = await waiting;
  t.is(changed.body['seat-tokens'], '1:new 2:tok2');
  t.not(changed.etag, etag);
  // A watcher that missed the change (an old ETag) gets the latest at once.
  const late = await fetch(`${url}&wait_for_change=true&last_etag=${etag}`, { headers: flavor });
  t.is(late.headers.get('etag'), changed.etag);
  // timeout_sec bounds the wait: the unchanged value comes back.
  const bounded = await fetch(
    `${url}&wait_for_change=true&timeout_sec=1&last_etag=${changed.etag}`,
    { headers: flavor },
  );
  t.is(bounded.headers.get('etag'), changed.etag);
  const plain = await fetch(`${md.url}/instance/attributes/`, { headers: flavor });
  t.is(await plain.text(), 'workshop-id\nseat-tokens\nregistry\n');
});
