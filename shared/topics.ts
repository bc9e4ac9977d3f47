/** The Pub/Sub topics that carry the system's events (DESIGN.md §4). */
export const TOPICS = {
  workshopStarted: 'workshop.started',
  vmReady: 'vm.ready',
  workshopEnded: 'workshop.ended',
  workshopSweep: 'workshop.sweep',
} as const;
export type Topic = (typeof TOPICS)[keyof typeof TOPICS];
