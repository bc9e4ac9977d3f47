import { eventHandler } from '../shared/events.ts';
import { tearDown } from '../shared/lifecycle/end.ts';
import { validators } from '../shared/schemas.ts';
import { services } from '../shared/services.ts';

export const onWorkshopEnded = eventHandler('onWorkshopEnded', validators.workshopEnded, (event) =>
  tearDown(services(), event.workshopId, event.reason),
);
