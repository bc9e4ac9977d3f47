/**
 * Cold starts: importing a function's module loads only the client libraries that function
 * calls, and the main module loads no function until it is called. Checked on the import graph
 * (esbuild's metafile of the sources tsc compiles), not timed; `npm run bench` times it.
 */
import path from 'node:path';
import test from 'ava';
import {
  FUNCTION_CLIENTS,
  ImportGraph,
  ROOT,
  clientsIn,
  strayClients,
} from '../helpers/import-graph.ts';

for (const [name, { file, clients }] of Object.entries(FUNCTION_CLIENTS)) {
  test(`${name}: its import loads no client library it does not call`, async (t) => {
    const graph = await ImportGraph.of(file);
    t.deepEqual(strayClients(name, graph), []);
    // The table above is not stale: every library listed is one the function can reach.
    const reachable = new Set([
      ...graph.loadedBy().packages,
      ...graph.deferredBy().flatMap((d) => d.packages),
    ]);
    t.deepEqual(
      clients.filter((c) => !reachable.has(c)),
      [],
      'listed but never loaded',
    );
  });
}

test('the store is the only client library every function loads on import', async (t) => {
  for (const [name, { file }] of Object.entries(FUNCTION_CLIENTS)) {
    const atImport = clientsIn((await ImportGraph.of(file)).loadedBy().packages);
    // workshops checks ID tokens on every call; the others load the rest on first use.
    const expected =
      name === 'workshops'
        ? ['@google-cloud/firestore', 'google-auth-library']
        : ['@google-cloud/firestore'];
    t.deepEqual(atImport, expected, name);
  }
});

test('the main module registers every function and loads none of them, nor any client', async (t) => {
  const loaded = (await ImportGraph.of('functions/index.ts')).loadedBy();
  t.deepEqual(clientsIn(loaded.packages), []);
  const functionFiles = Object.values(FUNCTION_CLIENTS).map((f) => f.file);
  t.deepEqual(
    functionFiles.filter((f) => loaded.modules.has(f)),
    [],
    'no function module is imported by the main module',
  );
  t.deepEqual([...loaded.dynamic].sort(), [...functionFiles].sort(), 'each is imported on call');
});

test('the check sees a client library that comes in through a shared module', async (t) => {
  // join as it is, plus a static import of the event bus (which loads Pub/Sub).
  const doctored = await ImportGraph.of({
    contents: "export * from './join.ts';\nexport { EventBus } from '../shared/bus.ts';\n",
    dir: path.join(ROOT, 'functions'),
  });
  t.deepEqual(strayClients('join', doctored), ['@google-cloud/pubsub']);
});
