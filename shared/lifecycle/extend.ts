import { workshopCost } from '../core/cost.ts';
import { addMinutes, type WorkshopRecord } from '../core/workshop.ts';
import { HttpError } from '../http.ts';
import type { Caller } from '../identity.ts';
import type { Services } from '../services.ts';
import { pushVmControl } from './vm-control.ts';
import { visibleOrNotFound } from './workshop-access.ts';

/**
 * Pushes a running workshop's end later, never past MAX_DURATION_MINUTES after its start, and
 * tells its VMs, whose seats show the new end within seconds.
 */
export async function extendWorkshop(
  s: Services,
  id: string,
  caller: Caller,
  minutes: number,
): Promise<WorkshopRecord> {
  const now = s.now().toISOString();
  const extended = await s.store.inTransaction(id, (tx, current) => {
    const workshop = visibleOrNotFound(current, caller);
    if (
      (workshop.status !== 'provisioning' && workshop.status !== 'ready') ||
      !workshop.startedAt
    ) {
      throw new HttpError(
        409,
        'INVALID_STATE',
        `a workshop that is ${workshop.status} cannot be extended`,
        {
          status: workshop.status,
        },
      );
    }
    const ceiling = addMinutes(workshop.startedAt, s.config.maxDurationMinutes);
    if (workshop.expiresAt >= ceiling) {
      throw new HttpError(
        409,
        'LIMIT_REACHED',
        `a workshop runs at most ${s.config.maxDurationMinutes} minutes`,
        {
          expiresAt: workshop.expiresAt,
        },
      );
    }
    const wanted = addMinutes(workshop.expiresAt, minutes);
    const expiresAt = wanted < ceiling ? wanted : ceiling;
    const totalMinutes = (Date.parse(expiresAt) - Date.parse(workshop.startedAt)) / 60_000;
    const next: WorkshopRecord = {
      ...workshop,
      expiresAt,
      updatedAt: now,
      estimatedCost: workshopCost(workshop, totalMinutes),
    };
    tx.set(s.store.workshop(id), next);
    return next;
  });
  await pushVmControl(s, id);
  return extended;
}
