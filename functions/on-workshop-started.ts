import { eventHandler } from '../shared/events.ts';
import { provisionWorkshop } from '../shared/lifecycle/provision.ts';
import { validators } from '../shared/schemas.ts';
import { services } from '../shared/services.ts';

export const onWorkshopStarted = eventHandler(
  'onWorkshopStarted',
  validators.workshopStarted,
  (event) => provisionWorkshop(services(), event.workshopId),
);
