/**
 * What the stand-in holds while it runs: instances, operations, requestIds, faults and timers, and
 * Cloud DNS record sets.
 */
import { FaultQueue } from './faults.ts';
import { MAX_PAGE } from './paging.ts';
import type {
  BootHandle,
  ComputeStandinOptions,
  DnsRecord,
  InstanceRecord,
  QuotaLimits,
  StandinRequest,
} from './types.ts';

export interface OperationState {
  id: string;
  name: string;
  project: string;
  zone: string;
  operationType: 'insert' | 'delete' | 'setMetadata';
  targetName: string;
  targetId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  progress: number;
  insertTime: string;
  startTime: string;
  endTime?: string;
  error?: { code: string; message: string };
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
  waiters: Set<() => void>;
}

export interface InstanceState {
  record: InstanceRecord;
  timers: Set<NodeJS.Timeout>;
  insertOp: OperationState;
  /** the insert was injected with never-done: its operation stays RUNNING */
  neverDone: boolean;
  /** onBoot's promise; resolves to undefined when there is no handle */
  boot?: Promise<BootHandle | undefined>;
  deletion?: Promise<void>;
}

/** The options with their defaults applied. */
export interface Settings {
  project?: string;
  onBoot?: ComputeStandinOptions['onBoot'];
  stepMs: number;
  waitTimeoutMs: number;
  pageSize: number;
  logLimit: number;
  /** managed zone name → dnsName, lowercase with its trailing dot */
  dnsZones: Map<string, string>;
}

export function settingsOf(opts: ComputeStandinOptions): Settings {
  return {
    project: opts.project,
    onBoot: opts.onBoot,
    stepMs: opts.stepMs ?? 20,
    waitTimeoutMs: opts.waitTimeoutMs ?? 2_000,
    pageSize: Math.min(Math.max(1, opts.pageSize ?? MAX_PAGE), MAX_PAGE),
    logLimit: opts.requestLogLimit ?? 1000,
    dnsZones: new Map(
      Object.entries(opts.dnsZones ?? {}).map(([zone, dnsName]) => [
        zone,
        `${dnsName.toLowerCase().replace(/\.$/, '')}.`,
      ]),
    ),
  };
}

/** The stand-in listens, and its instances answer, on the loopback address only. */
export const LOOPBACK = '127.0.0.1';

/** The key of a zonal resource in the maps below. */
export const key = (project: string, zone: string, name: string) => `${project}/${zone}/${name}`;

/** The key of a Cloud DNS record set in StandinState.dnsRecords. */
export const dnsKey = (zone: string, name: string, type: string) => `${zone}/${name}/${type}`;

export class StandinState {
  readonly instances = new Map<string, InstanceState>(); // key: project/zone/name
  readonly operations = new Map<string, OperationState>(); // key: project/zone/opName
  readonly byRequestId = new Map<string, OperationState>(); // key: project/requestId
  readonly faults = new FaultQueue();
  /** quota limits by region */
  readonly quotas = new Map<string, QuotaLimits>();
  /** the Compute requests received, oldest first (the log ComputeStandin.requests is) */
  readonly requests: StandinRequest[] = [];
  /** Cloud DNS record sets; key: zone/name/type (dnsKey) */
  readonly dnsRecords = new Map<string, DnsRecord>();
  /** timers that belong to no instance */
  readonly looseTimers = new Set<NodeJS.Timeout>();
  /** set once stop() begins: no new timers, boots or blocking waits */
  stopping = false;
  private counter = 0;

  constructor(readonly settings: Settings) {}

  /** A numeric resource id, unique within the stand-in. */
  nextId(): string {
    return `${Date.now()}${String(++this.counter).padStart(6, '0')}`;
  }

  /** Runs `fn` after `ms`, keeping the timer in `timers` until then; nothing once stopping. */
  later(ms: number, fn: () => void, timers: Set<NodeJS.Timeout> = this.looseTimers): void {
    if (this.stopping) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }
}
