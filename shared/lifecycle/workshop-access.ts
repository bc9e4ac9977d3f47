import type { WorkshopRecord } from '../core/workshop.ts';
import { notFound } from '../http.ts';
import type { Caller } from '../identity.ts';

/** Instructors see their own workshops, admins all; anything else looks like it does not exist. */
export function canSee(
  workshop: WorkshopRecord | null,
  caller: Caller,
): workshop is WorkshopRecord {
  return workshop !== null && (workshop.ownerId === caller.id || caller.admin);
}

export function visibleOrNotFound(workshop: WorkshopRecord | null, caller: Caller): WorkshopRecord {
  if (!canSee(workshop, caller)) throw notFound();
  return workshop;
}
