import { eventHandler } from '../shared/events.ts';
import { recordVmReport } from '../shared/lifecycle/vm-report.ts';
import { validators } from '../shared/schemas.ts';
import { services } from '../shared/services.ts';

export const onVmReady = eventHandler('onVmReady', validators.vmReady, async (event) => {
  await recordVmReport(services(), event);
});
