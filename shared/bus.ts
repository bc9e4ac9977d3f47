import { PubSub, type Topic as PubSubTopic } from '@google-cloud/pubsub';
import type { Topic } from './topics.ts';
import type { WorkshopEndedEvent, WorkshopStartedEvent } from './schemas.ts';

export interface EventPayloads {
  'workshop.started': WorkshopStartedEvent;
  'workshop.ended': WorkshopEndedEvent;
}

/** Publishes the system's events; the only way one function asks another to act. */
export class EventBus {
  private readonly topics = new Map<Topic, PubSubTopic>();

  constructor(private readonly pubsub: PubSub) {}

  async publish<T extends keyof EventPayloads>(
    topic: T,
    payload: EventPayloads[T],
  ): Promise<string> {
    let handle = this.topics.get(topic);
    if (!handle) {
      handle = this.pubsub.topic(topic);
      this.topics.set(topic, handle);
    }
    return handle.publishMessage({ json: payload });
  }

  async close(): Promise<void> {
    await Promise.all([...this.topics.values()].map((t) => t.flush()));
    await this.pubsub.close();
  }
}
