import { resolveImage } from '../config.ts';
import { workshopCost } from '../core/cost.ts';
import { imageAllowed } from '../core/images.ts';
import { newJoinCode, newWorkshopId } from '../core/ids.ts';
import { planVms } from '../core/plan.ts';
import { planSchedule, startAtProblem } from '../core/schedule.ts';
import { addMinutes, type WorkshopRecord } from '../core/workshop.ts';
import { invalidRequest } from '../http.ts';
import type { Caller } from '../identity.ts';
import type { CreateWorkshopBody } from '../schemas.ts';
import type { Services } from '../services.ts';
import { leadFor } from './lead.ts';
import { regionQuotaWarning } from './region-quota.ts';

export const DEFAULT_DURATION_MINUTES = 240;
const CODE_ATTEMPTS = 8;

/** The configured registry and the allow-list: where a workshop's own image may come from. */
function imageFolders(config: Services['config']): string[] {
  return [...(config.registry ? [`${config.registry}/`] : []), ...config.imageAllowlist];
}

export async function createWorkshop(
  s: Services,
  caller: Caller,
  body: CreateWorkshopBody,
): Promise<WorkshopRecord> {
  const image = resolveImage(s.config, body.image);
  if (body.image && !imageAllowed(image, imageFolders(s.config))) {
    throw invalidRequest(`image must come from ${imageFolders(s.config).join(' or ')}`);
  }
  const problem = body.startAt ? startAtProblem(body.startAt, s.now()) : null;
  if (problem) throw invalidRequest(problem);
  const now = s.now().toISOString();
  const durationMinutes = body.durationMinutes ?? DEFAULT_DURATION_MINUTES;
  const spot = body.spot ?? s.config.useSpot;
  const spotFallback = body.spotFallback ?? true;
  const vmPlan = planVms(body.seats);
  const draft: Omit<WorkshopRecord, 'joinCode' | 'id'> = {
    name: body.name.trim(),
    ownerId: caller.id,
    seats: body.seats,
    durationMinutes,
    image,
    spot,
    spotFallback,
    ...(body.seatsPerAddress && { seatsPerAddress: body.seatsPerAddress }),
    status: 'created',
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    readyAt: null,
    endingAt: null,
    endedAt: null,
    expiresAt: addMinutes(now, s.config.unstartedTtlMinutes),
    provisioningDeadline: null,
    endReason: null,
    error: null,
    seatsReady: 0,
    vmPlan,
    estimatedCost: workshopCost({ vmPlan, spot, spotFallback }, durationMinutes),
    ...(body.instructions ? { instructions: body.instructions } : {}),
  };
  const base = body.startAt ? { ...draft, ...(await scheduled(s, draft, body.startAt)) } : draft;
  // Codes are random over ~40 bits, so a clash is rare; create() detects it without a query.
  for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
    const workshop: WorkshopRecord = { ...base, id: newWorkshopId(), joinCode: newJoinCode() };
    if (await s.store.createWorkshop(workshop)) return workshop;
  }
  throw new Error('could not find a free join code');
}

/**
 * Plans a class that starts itself: provisioning at startAt − the learned lead, the estimate
 * counting the early minutes, and it stays until its planned end if the sweep never starts it.
 */
async function scheduled(
  s: Services,
  draft: Omit<WorkshopRecord, 'joinCode' | 'id'>,
  startAt: string,
): Promise<Pick<WorkshopRecord, 'schedule' | 'expiresAt' | 'estimatedCost'>> {
  const [lead, warning] = await Promise.all([leadFor(s, draft), regionQuotaWarning(s, draft)]);
  const schedule = planSchedule(startAt, lead, warning);
  return {
    schedule,
    expiresAt: addMinutes(schedule.startAt, draft.durationMinutes),
    estimatedCost: workshopCost(draft, draft.durationMinutes + lead.ms / 60_000),
  };
}
