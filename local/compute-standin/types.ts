/** The stand-in's public types; `local/compute-standin.ts` exports every one of them. */

export interface BootableInstance {
  name: string;
  zone: string;
  project: string;
  metadata: Record<string, string>;
  labels: Record<string, string>;
  externalIp: string;
  internalIp: string;
}

export interface BootHandle {
  stop(): Promise<void>;
  /** The instance's metadata after a `setMetadata`: what its metadata server serves from now on. */
  setMetadata?(metadata: Record<string, string>): void;
}

export interface InstanceRecord {
  name: string;
  project: string;
  zone: string;
  id: string;
  /** PROVISIONING → STAGING → RUNNING; STOPPING while being deleted */
  status: string;
  /** every status the instance has had, in order */
  statusHistory: string[];
  /** as received, e.g. zones/us-central1-a/machineTypes/e2-standard-4 */
  machineType: string;
  labels: Record<string, string>;
  metadata: Record<string, string>;
  tags: string[];
  scheduling?: Record<string, unknown>;
  serviceAccounts: Array<{ email?: string; scopes?: string[] }>;
  sourceImage?: string;
  diskSizeGb?: string;
  externalIp: string;
  internalIp: string;
  creationTimestamp: string;
  requestId?: string;
  /** whether onBoot was called for it */
  booted: boolean;
  /** the message of an onBoot rejection, if any */
  bootError?: string;
  /** the instance resource exactly as received */
  resource: Record<string, unknown>;
}

/** `dns`: any Cloud DNS rrsets call (http503 or http403 only). */
export type FaultOp = 'insert' | 'delete' | 'get' | 'list' | 'regions' | 'dns';
export type FaultKind =
  'quota' | 'stockout' | 'invalid-image' | 'http503' | 'http403' | 'never-done';

export interface Fault {
  op: FaultOp;
  kind: FaultKind;
  /** how many matching calls it affects; default 1 */
  times?: number;
  /** only calls in this zone, for `dns` this managed zone (any zone when absent) */
  zone?: string;
  /** inserts only: only Spot (true) or only standard (false) instances; both when absent */
  spot?: boolean;
}

/** A Cloud DNS resource record set the stand-in holds; `name` is fully qualified, lowercase. */
export interface DnsRecord {
  /** the managed zone's name */
  zone: string;
  name: string;
  type: string;
  ttl: number;
  rrdatas: string[];
}

/** A region's quota limits by metric, e.g. {CPUS: 24, IN_USE_ADDRESSES: 8}. */
export type QuotaLimits = Record<string, number>;

export interface StandinRequest {
  method: string;
  /** path and query string as received */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
}

export interface ComputeStandinOptions {
  /** when set, other projects get 403 */
  project?: string;
  port?: number;
  onBoot?: (instance: BootableInstance) => Promise<BootHandle>;
  /** delay between lifecycle steps (PROVISIONING → STAGING → RUNNING, deletion); default 20 ms */
  stepMs?: number;
  /** how long operations/OP/wait blocks before answering a running operation; Compute: ~2 min */
  waitTimeoutMs?: number;
  /** the most items (instances, DNS record sets) a list page holds, whatever maxResults says; 500 */
  pageSize?: number;
  /** how many requests the log keeps (oldest dropped); default 1000 */
  requestLogLimit?: number;
  /** quota limits by region; a region without them has none (regions.get lists no quota) */
  quotas?: Record<string, QuotaLimits>;
  /** Cloud DNS managed zones: name → dnsName (e.g. `seats.localhost.`); other zones are 404 */
  dnsZones?: Record<string, string>;
  /** also answer A queries for the held records over UDP on 127.0.0.1 (port: `dnsPort`) */
  dnsUdp?: boolean;
}

export interface ComputeStandin {
  url: string;
  port: number;
  instances(): InstanceRecord[];
  requests: StandinRequest[];
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /** Sets (replaces) the quota limits of a region; an empty object removes them. */
  setQuotas(region: string, limits: QuotaLimits): void;
  /** Copies of the Cloud DNS record sets held, every zone's, the zones' own SOA and NS included. */
  dnsRecords(): DnsRecord[];
  /** the UDP port of the DNS responder, when started with `dnsUdp` */
  dnsPort?: number;
  stop(): Promise<void>;
}
