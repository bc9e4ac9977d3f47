import { PubSub } from '@google-cloud/pubsub';
import { emulators, emulatorTest as test } from '../helpers/emulators.ts';
import { startLocalStack } from '../../local/stack.ts';
import { TOPICS } from '../../shared/topics.ts';

test('a stopped stack leaves no push subscription on emulators that outlive it', async (t) => {
  const env = await emulators();
  const projectId = `${env.projectId}-wiring`;
  const pubsub = new PubSub({ projectId });
  t.teardown(() => pubsub.close());
  const pushEndpoints = async () => {
    const [subscriptions] = await pubsub.getSubscriptions();
    return subscriptions.map((s) => s.metadata?.pushConfig?.pushEndpoint).sort();
  };
  const stack = await startLocalStack({
    projectId,
    port: 0,
    firestoreHost: env.firestoreHost,
    pubsubHost: env.pubsubHost,
    boot: false,
    sweepEveryMs: 0,
  });
  const url = stack.url;
  try {
    t.deepEqual(
      await pushEndpoints(),
      Object.values(TOPICS)
        .map((topic) => `${url}/projects/${projectId}/topics/${topic}`)
        .sort(),
    );
  } finally {
    await stack.stop();
  }
  t.deepEqual(await pushEndpoints(), []);
});
