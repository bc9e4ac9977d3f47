import { PubSub } from '@google-cloud/pubsub';
import { TOPICS } from '../shared/topics.ts';

/**
 * Creates every topic and, for each, a push subscription to the local functions server, the way
 * deploy.sh wires Eventarc triggers in the cloud. Idempotent.
 */
export async function wireTopics(projectId: string, functionsUrl: string): Promise<void> {
  const pubsub = new PubSub({ projectId });
  try {
    for (const name of Object.values(TOPICS)) {
      const topic = pubsub.topic(name);
      const [exists] = await topic.exists();
      if (!exists) await topic.create();
      const subscription = topic.subscription(`${name}.push`);
      const [subExists] = await subscription.exists();
      const pushEndpoint = `${functionsUrl}/projects/${projectId}/topics/${name}`;
      if (subExists) await subscription.modifyPushConfig({ pushEndpoint });
      else
        await subscription.create({
          pushConfig: { pushEndpoint },
          ackDeadlineSeconds: 60,
          retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 10 } },
        });
    }
  } finally {
    await pubsub.close();
  }
}

/**
 * Deletes the push subscriptions wireTopics made. On emulators that outlive the stack (a test
 * run shares one pair) they would otherwise push on, to whatever listens on that port next.
 */
export async function unwireTopics(projectId: string): Promise<void> {
  const pubsub = new PubSub({ projectId });
  try {
    await Promise.all(
      Object.values(TOPICS).map((name) =>
        pubsub
          .subscription(`${name}.push`)
          .delete()
          .catch(() => undefined),
      ),
    );
  } finally {
    await pubsub.close();
  }
}
