import type { CostEstimate } from './cost.ts';
import { placementNote, type CapacityMiss } from './placement.ts';
import type { VmPlan } from './plan.ts';
import { lateness, scheduleSummary, type Schedule } from './schedule.ts';
import type { SeatReset } from './vm-control.ts';
import type { EndReason, Status } from './state.ts';

/** `workshops/{id}`. Times are ISO-8601 UTC strings, which sort and compare as text. */
export interface WorkshopRecord {
  id: string;
  name: string;
  ownerId: string;
  seats: number;
  durationMinutes: number;
  image: string;
  spot: boolean;
  /** A Spot class with no Spot capacity in any zone may run on standard VMs; absent means true. */
  spotFallback?: boolean;
  /** Seats one client address may hold, for a class joining from home; absent: no cap. */
  seatsPerAddress?: number;
  status: Status;
  joinCode: string;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  readyAt: string | null;
  endingAt: string | null;
  endedAt: string | null;
  /** When the sweep ends it (reason `ttl`); for an unstarted workshop, when it is cleaned up. */
  expiresAt: string;
  provisioningDeadline: string | null;
  endReason: EndReason | null;
  error: { code: string; message: string } | null;
  seatsReady: number;
  /** Learners seated when it ended (the seat documents are gone by then). */
  seatsTakenAtEnd?: number;
  vmPlan: VmPlan[];
  estimatedCost: CostEstimate;
  /** A class created with `startAt`: the sweep provisions it at `schedule.provisionAt`. */
  schedule?: Schedule | null;
  /** Markdown for the workspace page, given on create; it reaches the VMs as metadata. */
  instructions?: string;
}

export type VmStatus = 'pending' | 'booting' | 'ready' | 'failed' | 'deleted';

export interface CertificateReport {
  /** When the certificate ends; null or absent when the VM could not read it. */
  notAfter?: string | null;
  /** What Caddy said last of renewing it, when that failed; null or absent while renewals succeed. */
  renewalError?: string | null;
  /** The VM's time of the check: a later report wins, whatever order they arrive in. */
  checkedAt: string;
}

/** The certificate report to keep: the one the VM checked last (reports arrive in any order). */
export function latestCertificate(
  kept: CertificateReport | null | undefined,
  reported: CertificateReport | null | undefined,
): CertificateReport | null {
  if (!reported) return kept ?? null;
  if (!kept) return reported;
  return Date.parse(reported.checkedAt) >= Date.parse(kept.checkedAt) ? reported : kept;
}

/** `workshops/{id}/vms/{name}`. */
export interface VmRecord {
  name: string;
  /** Where it is, or is being tried; it moves on when a zone has no capacity. */
  zone: string;
  /** Whether it is (being tried as) a Spot VM; absent on older records: the workshop's `spot`. */
  spot?: boolean;
  /** The zones that had no capacity for it, and for which provisioning model. */
  capacityMisses?: CapacityMiss[];
  index: number;
  firstSeat: number;
  seatCount: number;
  machineType: string;
  status: VmStatus;
  instanceId: string | null;
  externalIp: string | null;
  /** Its name under the operator's SEAT_DOMAIN, which its seats' origins carry; null: the IP. */
  publicHost?: string | null;
  internalIp: string | null;
  httpPort: number | null;
  /** Seat i of the VM (i from 1, in seat order) is https://HOST:(seatHttpsBase + i). */
  seatHttpsBase?: number | null;
  readyAt: string | null;
  readyTokenHash: string;
  error: { code: string; message: string } | null;
  /** How many times the VM was replaced after it was lost; part of its insert requestId. */
  generation?: number;
  /** When its (latest) insert was done: a sweep that listed instances earlier must not call it lost. */
  insertedAt?: string;
  /** The seats' certificate as the VM last reported it (`vm.ready`). */
  certificate?: CertificateReport | null;
}

/** `workshops/{id}/private/secrets`: admin-only, never logged, dropped when the workshop ends. */
export interface WorkshopSecrets {
  sshPrivateKey: string;
  sshPublicKey: string;
  readyTokens: Record<string, string>;
  /** Per-seat access credentials the VM's proxy checks, keyed by global seat number. */
  seatTokens: Record<string, string>;
  /** Per-seat reset counters (vm-control.ts), keyed by global seat number; absent: none yet. */
  seatResets?: Record<string, SeatReset>;
  /**
   * The instructor's read-only credential for every seat's terminal (`/vm/S/watch/`), distinct
   * from the learners'; absent on workshops started before it existed.
   */
  viewerToken?: string;
}

/** `workshops/{id}/seats/{seat}`: created with create(), so a seat is never given twice. */
export interface SeatRecord {
  seat: number;
  learnerName: string;
  tokenHash: string;
  vmName: string;
  joinedAt: string;
  /** The client address slot (`addressSlots/{id}`) this seat uses up. */
  slot?: string;
  /**
   * Set on a freed seat until its VM confirms the reset of this generation (a `vm.ready` report's
   * `seatResets`): no learner holds it, yet it is not handed out, because its old credential,
   * processes and files may still be on the VM. Its learner fields are empty.
   */
  freeing?: number;
}

/** `seatTokens/{tokenHash}`: where a seatToken's seat is; `freed` once the instructor freed it. */
export interface SeatTokenRecord {
  workshopId: string;
  seat: number;
  freed: boolean;
}

/** `joinCodes/{code}`. */
export interface JoinCodeRecord {
  workshopId: string;
  createdAt: string;
}

/** A workshop as the HTTP contract returns it (DESIGN.md §5). */
export interface WorkshopView {
  id: string;
  name: string;
  status: Status;
  seats: number;
  seatsReady: number;
  seatsTaken: number;
  joinCode: string;
  createdAt: string;
  startedAt: string | null;
  readyAt: string | null;
  endedAt: string | null;
  expiresAt: string;
  endReason: EndReason | null;
  error: { code: string; message: string } | null;
  vms: VmView[];
  estimatedCost: CostEstimate;
  durationMinutes: number;
  spot: boolean;
  spotFallback: boolean;
  /** When the class is to be ready (created with `startAt`); null when it starts by hand. */
  startAt: string | null;
  schedule: ScheduleView | null;
  /** Not ready at startAt (still), or was ready only after it; with how late, in seconds. */
  late: boolean;
  lateBySeconds: number | null;
  seatsPerAddress: number | null;
}

/** The plan of a scheduled class, as the instructor sees it. */
export interface ScheduleView {
  startAt: string;
  provisionAt: string;
  leadSeconds: number;
  leadBasis: 'default' | 'recent-boots';
  bootSamples: number;
  bootP90Seconds: number | null;
  /** e.g. `ready by 09:00 UTC, provisioning starts 08:49 UTC (p90 of 12 recent boots: 8 m 40 s)`. */
  summary: string;
  /** What the region's quotas said when it was scheduled, when they looked short. */
  warning: string | null;
}

function toScheduleView(schedule: Schedule): ScheduleView {
  const { lead } = schedule;
  return {
    startAt: schedule.startAt,
    provisionAt: schedule.provisionAt,
    leadSeconds: Math.round(lead.ms / 1000),
    leadBasis: lead.basis,
    bootSamples: lead.samples,
    bootP90Seconds: lead.p90Ms === null ? null : Math.round(lead.p90Ms / 1000),
    summary: scheduleSummary(schedule),
    warning: schedule.warning,
  };
}

export interface VmView {
  name: string;
  status: VmStatus;
  externalIp: string | null;
  /** Its name under SEAT_DOMAIN, which its seats' origins carry; null: they carry the IP. */
  publicHost: string | null;
  zone: string;
  spot: boolean;
  /** Why it is not where it first tried, e.g. `VM 2 moved to us-central1-b: …`; else null. */
  moved: string | null;
  /** When its seats' certificate ends, and why renewing it fails, when it does; null until known. */
  certificate: { notAfter: string | null; renewalError: string | null } | null;
}

export function toVmView(vm: VmRecord, workshopSpot: boolean): VmView {
  const spot = vm.spot ?? workshopSpot;
  return {
    name: vm.name,
    status: vm.status,
    externalIp: vm.externalIp,
    publicHost: vm.publicHost ?? null,
    zone: vm.zone,
    spot,
    moved: placementNote({ ...vm, spot }),
    certificate: vm.certificate
      ? {
          notAfter: vm.certificate.notAfter ?? null,
          renewalError: vm.certificate.renewalError ?? null,
        }
      : null,
  };
}

/** `seatsTaken` is counted from the seat documents, not stored: no hot counter during a join burst. */
export function toWorkshopView(
  workshop: WorkshopRecord,
  vms: readonly VmRecord[],
  seatsTaken: number,
  now: string,
): WorkshopView {
  return {
    id: workshop.id,
    name: workshop.name,
    status: workshop.status,
    seats: workshop.seats,
    seatsReady: workshop.seatsReady,
    seatsTaken: workshop.seatsTakenAtEnd ?? seatsTaken,
    joinCode: workshop.joinCode,
    createdAt: workshop.createdAt,
    startedAt: workshop.startedAt,
    readyAt: workshop.readyAt,
    endedAt: workshop.endedAt,
    expiresAt: workshop.expiresAt,
    endReason: workshop.endReason,
    error: workshop.error,
    vms: [...vms].sort((a, b) => a.index - b.index).map((vm) => toVmView(vm, workshop.spot)),
    estimatedCost: workshop.estimatedCost,
    durationMinutes: workshop.durationMinutes,
    spot: workshop.spot,
    spotFallback: workshop.spotFallback ?? true,
    startAt: workshop.schedule?.startAt ?? null,
    schedule: workshop.schedule ? toScheduleView(workshop.schedule) : null,
    ...lateness(workshop, now),
    seatsPerAddress: workshop.seatsPerAddress ?? null,
  };
}

export interface SeatEndpoints {
  terminal: string;
  files: string;
  browser: string;
  /** The workspace page at the seat's root: instructions, terminal, editor, browser, app. */
  workspace: string;
}

/**
 * Where a real VM's seat origins start (the startup script's CT_SEAT_HTTPS_BASE): seat i of a VM
 * is https://IP:8401.. (deploy.sh opens 8401-8420 for MAX_SEATS_PER_VM).
 */
export const SEAT_HTTPS_BASE = 8400;

/**
 * Seat S's HTTPS origin: a port of its VM's public host, the VM's name under SEAT_DOMAIN when the
 * operator has one, else its external IP.
 */
export function seatOrigin(vm: VmRecord, seat: number): string {
  const port = (vm.seatHttpsBase ?? SEAT_HTTPS_BASE) + seat - vm.firstSeat + 1;
  return `https://${vm.publicHost || vm.externalIp}:${port}`;
}

/**
 * The seat's URLs on its VM's proxy, carrying the seat's access credential. Each seat is an
 * HTTPS origin of its own, a port of its VM's IP (one certificate for the IP); the paths keep
 * `/vm/S/`. Each path ends with `/`: the pages there use relative URLs.
 */
export function seatEndpoints(vm: VmRecord, seat: number, accessToken: string): SeatEndpoints {
  const base = `${seatOrigin(vm, seat)}/vm/${seat}`;
  const query = `?t=${encodeURIComponent(accessToken)}`;
  return {
    terminal: `${base}/terminal/${query}`,
    files: `${base}/files/${query}`,
    browser: `${base}/browser/${query}`,
    workspace: `${base}/${query}`,
  };
}

export const addMinutes = (iso: string | Date, minutes: number): string =>
  new Date(new Date(iso).getTime() + minutes * 60_000).toISOString();
