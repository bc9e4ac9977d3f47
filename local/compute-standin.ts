/**
 * A local Compute Engine stand-in: an HTTP server answering the REST subset that the real
 * `@google-cloud/compute` 6 client sends (REST fallback, `protocol: 'http'`, no credentials):
 *
 *   POST   /compute/v1/projects/P/zones/Z/instances?requestId=UUID     insert
 *   GET    /compute/v1/projects/P/zones/Z/instances?filter=&maxResults=&pageToken=   list
 *   GET    /compute/v1/projects/P/zones/Z/instances/NAME               get
 *   DELETE /compute/v1/projects/P/zones/Z/instances/NAME?requestId=    delete
 *   GET    /compute/v1/projects/P/zones/Z/operations/OP                zoneOperations.get
 *   POST   /compute/v1/projects/P/zones/Z/operations/OP/wait           zoneOperations.wait
 *
 * Errors use Compute's JSON shape `{error: {code, message, errors: [{message, domain, reason}]}}`;
 * failures that Compute reports in the finished operation (stock-outs, a missing image) arrive in
 * `operation.error.errors[{code, message}]`. Faults can be injected in-process or over HTTP:
 *
 *   POST   /_standin/faults      {op, kind, times?} (or an array of them)
 *   DELETE /_standin/faults
 *   GET    /_standin/instances   {instances: InstanceRecord[]}
 *   GET    /_standin/requests    {requests: StandinRequest[]}
 *
 * "Booting" an instance calls `onBoot` once the instance is RUNNING; deleting it (or stopping the
 * stand-in) calls the returned handle's `stop()` before the instance disappears.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';

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

export type FaultOp = 'insert' | 'delete' | 'get' | 'list';
export type FaultKind = 'quota' | 'stockout' | 'invalid-image' | 'http503' | 'never-done';

export interface Fault {
  op: FaultOp;
  kind: FaultKind;
  /** how many matching calls it affects; default 1 */
  times?: number;
}

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
  /** the most instances one list page holds, whatever maxResults says; default 500 */
  pageSize?: number;
  /** how many requests the log keeps (oldest dropped); default 1000 */
  requestLogLimit?: number;
}

export interface ComputeStandin {
  url: string;
  port: number;
  instances(): InstanceRecord[];
  requests: StandinRequest[];
  injectFault(fault: Fault): void;
  clearFaults(): void;
  stop(): Promise<void>;
}

interface OperationState {
  id: string;
  name: string;
  project: string;
  zone: string;
  operationType: 'insert' | 'delete';
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

interface InstanceState {
  record: InstanceRecord;
  timers: Set<NodeJS.Timeout>;
  insertOp: OperationState;
  /** the insert was injected with never-done: its operation stays RUNNING */
  neverDone: boolean;
  /** onBoot's promise; resolves to undefined when there is no handle */
  boot?: Promise<BootHandle | undefined>;
  deletion?: Promise<void>;
}

const API = 'https://www.googleapis.com/compute/v1';
const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const METADATA_KEY = /^[a-zA-Z0-9_-]{1,128}$/;
const TAG = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MACHINE_TYPE =
  /^(?:(?:https:\/\/(?:www|compute)\.googleapis\.com\/compute\/v1\/)?projects\/[^/]+\/)?zones\/([^/]+)\/machineTypes\/[a-z0-9-]+$/;
const IMAGE =
  /^(?:https:\/\/(?:www|compute)\.googleapis\.com\/compute\/v1\/)?(?:projects\/[a-z0-9.:-]+\/)?global\/images\/(?:family\/)?[a-z]([-a-z0-9]*[a-z0-9])?$/;
const MAX_METADATA_BYTES = 512 * 1024;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MAX_PAGE = 500;
const LOOPBACK = '127.0.0.1';

const ALLOWED_FAULTS: Record<FaultOp, FaultKind[]> = {
  insert: ['quota', 'stockout', 'invalid-image', 'http503', 'never-done'],
  delete: ['quota', 'http503', 'never-done'],
  get: ['quota', 'http503'],
  list: ['quota', 'http503'],
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly domain = 'global',
  ) {
    super(message);
  }
}

const invalid = (message: string) => new ApiError(400, 'invalid', message);

function isObj(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObj(value)) throw invalid(`Invalid value for field '${field}'.`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid(`Invalid value for field '${field}.${key}'.`);
    out[key] = v;
  }
  return out;
}

function decodePageToken(token: string): number {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isObj(parsed) && typeof parsed.o === 'number' && parsed.o >= 0) return parsed.o;
  } catch {
    // fall through
  }
  throw invalid("Invalid value for field 'pageToken'.");
}

function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

type Predicate = (record: InstanceRecord) => boolean;

/**
 * Compute's list filter, the subset this system uses: `labels.K = "V"`, `name = "x"`,
 * `status = "RUNNING"`, with `!=`, each optionally in parentheses, joined by spaces or AND.
 */
export function parseFilter(filter: string): Predicate {
  const predicates: Predicate[] = [];
  const term =
    /\(?\s*(labels\.[a-z][a-z0-9_-]*|name|status)\s*(=|!=|eq|ne)\s*(?:"([^"]*)"|'([^']*)'|([^\s()"']+))\s*\)?/y;
  let rest = filter.trim();
  while (rest.length > 0) {
    term.lastIndex = 0;
    const m = term.exec(rest);
    if (!m)
      throw invalid(
        `Invalid value for field 'filter': '${filter}'. Invalid list filter expression.`,
      );
    const field = m[1] as string;
    const negate = m[2] === '!=' || m[2] === 'ne';
    const value = m[3] ?? m[4] ?? m[5] ?? '';
    const get = (r: InstanceRecord): string | undefined =>
      field === 'name' ? r.name : field === 'status' ? r.status : r.labels[field.slice(7)];
    predicates.push((r) => (get(r) === value) !== negate);
    rest = rest.slice(term.lastIndex).trim();
    const and = /^AND\s+/i.exec(rest);
    if (and) rest = rest.slice(and[0].length);
  }
  return (record) => predicates.every((p) => p(record));
}

export async function startComputeStandin(opts: ComputeStandinOptions): Promise<ComputeStandin> {
  const stepMs = opts.stepMs ?? 20;
  const waitTimeoutMs = opts.waitTimeoutMs ?? 2_000;
  const pageSize = Math.min(Math.max(1, opts.pageSize ?? MAX_PAGE), MAX_PAGE);
  const logLimit = opts.requestLogLimit ?? 1000;

  const instances = new Map<string, InstanceState>(); // key: project/zone/name
  const operations = new Map<string, OperationState>(); // key: project/zone/opName
  const byRequestId = new Map<string, OperationState>(); // key: project/requestId
  const faults: Array<{ op: FaultOp; kind: FaultKind; remaining: number }> = [];
  const requests: StandinRequest[] = [];
  const looseTimers = new Set<NodeJS.Timeout>();
  let counter = 0;
  let stopping = false;

  const key = (project: string, zone: string, name: string) => `${project}/${zone}/${name}`;
  const nextId = () => `${Date.now()}${String(++counter).padStart(6, '0')}`;

  function later(ms: number, fn: () => void, timers: Set<NodeJS.Timeout> = looseTimers): void {
    if (stopping) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }

  function takeFault(op: FaultOp): FaultKind | undefined {
    const index = faults.findIndex((f) => f.op === op && f.remaining > 0);
    if (index < 0) return undefined;
    const fault = faults[index] as (typeof faults)[number];
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults.splice(index, 1);
    return fault.kind;
  }

  function injectFault(fault: Fault): void {
    const allowed = ALLOWED_FAULTS[fault.op];
    if (!allowed) throw new Error(`unknown fault op ${String(fault.op)}`);
    if (!allowed.includes(fault.kind)) {
      throw new Error(`fault ${String(fault.kind)} is not supported for ${fault.op}`);
    }
    const times = fault.times ?? 1;
    if (!(times === Infinity || (Number.isInteger(times) && times > 0))) {
      throw new Error('fault times must be a positive integer');
    }
    faults.push({ op: fault.op, kind: fault.kind, remaining: times });
  }

  function clearFaults(): void {
    faults.length = 0;
  }

  function newOperation(
    project: string,
    zone: string,
    operationType: 'insert' | 'delete',
    targetName: string,
    targetId: string,
  ): OperationState {
    const now = new Date().toISOString();
    const op: OperationState = {
      id: nextId(),
      name: `operation-${Date.now()}-${randomBytes(6).toString('hex')}-${randomBytes(4).toString('hex')}`,
      project,
      zone,
      operationType,
      targetName,
      targetId,
      status: 'RUNNING',
      progress: 0,
      insertTime: now,
      startTime: now,
      waiters: new Set(),
    };
    operations.set(key(project, zone, op.name), op);
    return op;
  }

  function finish(
    op: OperationState,
    error?: { code: string; message: string; http: number; httpMessage: string },
  ): void {
    if (op.status === 'DONE') return;
    op.status = 'DONE';
    op.progress = 100;
    op.endTime = new Date().toISOString();
    if (error) {
      op.error = { code: error.code, message: error.message };
      op.httpErrorStatusCode = error.http;
      op.httpErrorMessage = error.httpMessage;
    }
    for (const wake of op.waiters) wake();
    op.waiters.clear();
  }

  function operationJson(op: OperationState): Record<string, unknown> {
    const zoneUrl = `${API}/projects/${op.project}/zones/${op.zone}`;
    return {
      kind: 'compute#operation',
      id: op.id,
      name: op.name,
      zone: zoneUrl,
      operationType: op.operationType,
      targetLink: `${zoneUrl}/instances/${op.targetName}`,
      targetId: op.targetId,
      status: op.status,
      user: 'standin@localhost',
      progress: op.progress,
      insertTime: op.insertTime,
      startTime: op.startTime,
      ...(op.endTime ? { endTime: op.endTime } : {}),
      selfLink: `${zoneUrl}/operations/${op.name}`,
      ...(op.error
        ? {
            error: { errors: [op.error] },
            httpErrorStatusCode: op.httpErrorStatusCode,
            httpErrorMessage: op.httpErrorMessage,
          }
        : {}),
    };
  }

  function instanceJson(r: InstanceRecord): Record<string, unknown> {
    const zoneUrl = `${API}/projects/${r.project}/zones/${r.zone}`;
    const machineType = MACHINE_TYPE.exec(r.machineType)
      ? `${zoneUrl}/machineTypes/${r.machineType.split('/').pop() ?? ''}`
      : r.machineType;
    const received = r.resource;
    const nics = Array.isArray(received.networkInterfaces) ? received.networkInterfaces : [];
    const firstNic = isObj(nics[0]) ? nics[0] : {};
    const network =
      typeof firstNic.network === 'string' ? firstNic.network : 'global/networks/default';
    const accessConfigs = Array.isArray(firstNic.accessConfigs) ? firstNic.accessConfigs : [];
    return {
      kind: 'compute#instance',
      id: r.id,
      creationTimestamp: r.creationTimestamp,
      name: r.name,
      tags: { items: r.tags, fingerprint: 'standin' },
      machineType,
      status: r.status,
      zone: zoneUrl,
      networkInterfaces: [
        {
          kind: 'compute#networkInterface',
          name: 'nic0',
          network: network.startsWith('http') ? network : `${API}/projects/${r.project}/${network}`,
          networkIP: r.internalIp,
          accessConfigs: accessConfigs.filter(isObj).map((a) => ({
            kind: 'compute#accessConfig',
            type: typeof a.type === 'string' ? a.type : 'ONE_TO_ONE_NAT',
            name: typeof a.name === 'string' ? a.name : 'External NAT',
            natIP: r.externalIp,
          })),
        },
      ],
      disks: [
        {
          kind: 'compute#attachedDisk',
          type: 'PERSISTENT',
          mode: 'READ_WRITE',
          source: `${zoneUrl}/disks/${r.name}`,
          deviceName: 'persistent-disk-0',
          index: 0,
          boot: true,
          autoDelete: true,
          ...(r.diskSizeGb ? { diskSizeGb: r.diskSizeGb } : {}),
        },
      ],
      metadata: {
        kind: 'compute#metadata',
        fingerprint: 'standin',
        items: Object.entries(r.metadata).map(([k, value]) => ({ key: k, value })),
      },
      serviceAccounts: r.serviceAccounts,
      selfLink: `${zoneUrl}/instances/${r.name}`,
      ...(r.scheduling ? { scheduling: r.scheduling } : {}),
      labels: r.labels,
      labelFingerprint: 'standin',
      startRestricted: false,
      deletionProtection: false,
    };
  }

  /** Validates an insert body the way Compute does for the fields this system sends. */
  function parseInstance(
    body: unknown,
    zone: string,
  ): Omit<
    InstanceRecord,
    | 'project'
    | 'zone'
    | 'id'
    | 'status'
    | 'statusHistory'
    | 'externalIp'
    | 'internalIp'
    | 'creationTimestamp'
    | 'booted'
  > {
    if (!isObj(body)) throw invalid("Required field 'resource' not specified");
    const name = body.name;
    if (typeof name !== 'string' || name === '') {
      throw invalid("Required field 'resource.name' not specified");
    }
    if (!NAME.test(name)) {
      throw invalid(
        `Invalid value for field 'resource.name': '${name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`,
      );
    }
    const machineType = body.machineType;
    if (typeof machineType !== 'string' || machineType === '') {
      throw invalid("Required field 'resource.machineType' not specified");
    }
    const mt = MACHINE_TYPE.exec(machineType);
    if (!mt || mt[1] !== zone) {
      throw invalid(`Invalid value for field 'resource.machineType': '${machineType}'.`);
    }
    const labels = stringMap(body.labels, 'resource.labels');
    if (Object.keys(labels).length > 64)
      throw invalid("Invalid value for field 'resource.labels'.");
    for (const [k, v] of Object.entries(labels)) {
      if (!LABEL_KEY.test(k) || !LABEL_VALUE.test(v)) {
        throw invalid(`Invalid value for field 'resource.labels': '${k}'.`);
      }
    }
    const metadata: Record<string, string> = {};
    let metadataBytes = 0;
    const metadataBody = body.metadata;
    if (metadataBody !== undefined && metadataBody !== null) {
      if (!isObj(metadataBody)) throw invalid("Invalid value for field 'resource.metadata'.");
      const items = metadataBody.items ?? [];
      if (!Array.isArray(items))
        throw invalid("Invalid value for field 'resource.metadata.items'.");
      for (const [index, item] of items.entries()) {
        if (!isObj(item) || typeof item.key !== 'string' || !METADATA_KEY.test(item.key)) {
          throw invalid(`Invalid value for field 'resource.metadata.items[${index}].key'.`);
        }
        if (item.key in metadata) {
          throw invalid(`Duplicate metadata key '${item.key}'.`);
        }
        const value = typeof item.value === 'string' ? item.value : '';
        metadataBytes += Buffer.byteLength(item.key) + Buffer.byteLength(value);
        metadata[item.key] = value;
      }
    }
    if (metadataBytes > MAX_METADATA_BYTES) {
      throw invalid(`Metadata total size exceeds the limit of ${MAX_METADATA_BYTES} bytes.`);
    }
    const tags: string[] = [];
    if (isObj(body.tags) && Array.isArray(body.tags.items)) {
      for (const tag of body.tags.items) {
        if (typeof tag !== 'string' || !TAG.test(tag)) {
          throw invalid(`Invalid value for field 'resource.tags.items': '${String(tag)}'.`);
        }
        tags.push(tag);
      }
    }
    const disks = Array.isArray(body.disks) ? body.disks.filter(isObj) : [];
    const boot = disks.find((d) => d.boot === true) ?? disks[0];
    if (!boot) throw invalid("Invalid value for field 'resource.disks'. A boot disk is required.");
    const init = isObj(boot.initializeParams) ? boot.initializeParams : undefined;
    const sourceImage = typeof init?.sourceImage === 'string' ? init.sourceImage : undefined;
    if (!sourceImage && typeof boot.source !== 'string') {
      throw invalid(
        "Required field 'resource.disks[0].initializeParams.sourceImage' not specified",
      );
    }
    if (sourceImage && !IMAGE.test(sourceImage)) {
      throw invalid(
        `Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '${sourceImage}'.`,
      );
    }
    const diskSize = init?.diskSizeGb;
    if (diskSize !== undefined && !/^[1-9][0-9]*$/.test(String(diskSize))) {
      throw invalid("Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb'.");
    }
    const nics = Array.isArray(body.networkInterfaces) ? body.networkInterfaces : [];
    if (nics.length === 0) {
      throw invalid(
        "Invalid value for field 'resource.networkInterfaces'. A network interface is required.",
      );
    }
    let scheduling: Record<string, unknown> | undefined;
    if (body.scheduling !== undefined && body.scheduling !== null) {
      if (!isObj(body.scheduling)) throw invalid("Invalid value for field 'resource.scheduling'.");
      scheduling = body.scheduling;
      if (scheduling.provisioningModel === 'SPOT' && scheduling.automaticRestart === true) {
        throw invalid('Spot VMs cannot be automatically restarted.');
      }
    }
    const serviceAccounts = Array.isArray(body.serviceAccounts)
      ? body.serviceAccounts.filter(isObj).map((sa) => ({
          ...(typeof sa.email === 'string' ? { email: sa.email } : {}),
          ...(Array.isArray(sa.scopes)
            ? { scopes: sa.scopes.filter((s): s is string => typeof s === 'string') }
            : {}),
        }))
      : [];
    return {
      name,
      machineType,
      labels,
      metadata,
      tags,
      ...(scheduling ? { scheduling } : {}),
      serviceAccounts,
      ...(sourceImage ? { sourceImage } : {}),
      ...(diskSize !== undefined ? { diskSizeGb: String(diskSize) } : {}),
      resource: body,
    };
  }

  function setStatus(record: InstanceRecord, status: string): void {
    if (record.status === status) return;
    record.status = status;
    record.statusHistory.push(status);
  }

  function boot(state: InstanceState): void {
    const r = state.record;
    if (!opts.onBoot || stopping) return;
    r.booted = true;
    const instance: BootableInstance = {
      name: r.name,
      zone: r.zone,
      project: r.project,
      metadata: { ...r.metadata },
      labels: { ...r.labels },
      externalIp: r.externalIp,
      internalIp: r.internalIp,
    };
    state.boot = opts.onBoot(instance).then(
      (handle) => handle,
      (err: unknown) => {
        r.bootError = err instanceof Error ? err.message : String(err);
        return undefined;
      },
    );
  }

  async function shutDown(state: InstanceState): Promise<void> {
    for (const timer of state.timers) clearTimeout(timer);
    state.timers.clear();
    const handle = await state.boot;
    state.boot = undefined;
    if (handle) {
      try {
        await handle.stop();
      } catch (err) {
        state.record.bootError = `stop failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
  }

  // --- handlers ------------------------------------------------------------------------------------

  function insert(project: string, zone: string, query: Record<string, string>, body: unknown) {
    const requestId = query.requestId;
    if (requestId !== undefined && !UUID.test(requestId)) {
      throw invalid(`Invalid value for field 'requestId': '${requestId}'. Must be a valid UUID.`);
    }
    if (requestId !== undefined) {
      const existing = byRequestId.get(`${project}/${requestId}`);
      if (existing) return operationJson(existing);
    }
    const fault = takeFault('insert');
    if (fault === 'quota') {
      throw new ApiError(
        403,
        'quotaExceeded',
        `Quota 'CPUS' exceeded.  Limit: 8.0 in region ${zone.replace(/-[a-z]$/, '')}.`,
        'usageLimits',
      );
    }
    if (fault === 'http503') {
      throw new ApiError(
        503,
        'backendError',
        'Internal error. Please try again or contact Google Support.',
      );
    }
    const parsed = parseInstance(body, zone);
    const k = key(project, zone, parsed.name);
    if (instances.has(k)) {
      throw new ApiError(
        409,
        'alreadyExists',
        `The resource 'projects/${project}/zones/${zone}/instances/${parsed.name}' already exists`,
      );
    }
    const id = nextId();
    const op = newOperation(project, zone, 'insert', parsed.name, id);
    if (requestId !== undefined) byRequestId.set(`${project}/${requestId}`, op);

    if (fault === 'stockout') {
      later(stepMs, () =>
        finish(op, {
          code: 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
          message: `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request.  '(resource type:compute)'.`,
          http: 503,
          httpMessage: 'SERVICE UNAVAILABLE',
        }),
      );
      return operationJson(op);
    }
    if (fault === 'invalid-image') {
      const image = parsed.sourceImage ?? 'image';
      later(stepMs, () =>
        finish(op, {
          code: 'RESOURCE_NOT_FOUND',
          message: `The resource '${image.replace(/^https:\/\/[^/]+\/compute\/v1\//, '')}' was not found`,
          http: 404,
          httpMessage: 'NOT FOUND',
        }),
      );
      return operationJson(op);
    }

    const record: InstanceRecord = {
      ...parsed,
      project,
      zone,
      id,
      status: 'PROVISIONING',
      statusHistory: ['PROVISIONING'],
      externalIp: LOOPBACK,
      internalIp: LOOPBACK,
      creationTimestamp: new Date().toISOString(),
      ...(requestId !== undefined ? { requestId } : {}),
      booted: false,
    };
    const state: InstanceState = {
      record,
      timers: new Set(),
      insertOp: op,
      neverDone: fault === 'never-done',
    };
    instances.set(k, state);
    if (state.neverDone) return operationJson(op); // stays PROVISIONING, op RUNNING

    later(
      stepMs,
      () => {
        setStatus(record, 'STAGING');
        op.progress = 50;
        later(
          stepMs,
          () => {
            setStatus(record, 'RUNNING');
            // The guest boots once the instance runs; the operation is DONE at that point too.
            boot(state);
            finish(op);
          },
          state.timers,
        );
      },
      state.timers,
    );
    return operationJson(op);
  }

  function remove(project: string, zone: string, name: string, query: Record<string, string>) {
    const requestId = query.requestId;
    if (requestId !== undefined && !UUID.test(requestId)) {
      throw invalid(`Invalid value for field 'requestId': '${requestId}'. Must be a valid UUID.`);
    }
    if (requestId !== undefined) {
      const existing = byRequestId.get(`${project}/${requestId}`);
      if (existing) return operationJson(existing);
    }
    const fault = takeFault('delete');
    if (fault === 'quota') {
      throw new ApiError(
        403,
        'quotaExceeded',
        "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'.",
        'usageLimits',
      );
    }
    if (fault === 'http503') {
      throw new ApiError(
        503,
        'backendError',
        'Internal error. Please try again or contact Google Support.',
      );
    }
    const k = key(project, zone, name);
    const state = instances.get(k);
    if (!state) {
      throw new ApiError(
        404,
        'notFound',
        `The resource 'projects/${project}/zones/${zone}/instances/${name}' was not found`,
      );
    }
    const op = newOperation(project, zone, 'delete', name, state.record.id);
    if (requestId !== undefined) byRequestId.set(`${project}/${requestId}`, op);
    setStatus(state.record, 'STOPPING');
    if (fault === 'never-done') return operationJson(op);

    // An insert still in progress ends here (unless it was made never to finish).
    if (state.insertOp.status !== 'DONE' && !state.neverDone) {
      for (const timer of state.timers) clearTimeout(timer);
      state.timers.clear();
      finish(state.insertOp);
    }
    state.deletion ??= (async () => {
      await new Promise((resolve) => setTimeout(resolve, stepMs));
      await shutDown(state);
      if (instances.get(k) === state) instances.delete(k);
    })();
    void state.deletion.then(() => finish(op));
    return operationJson(op);
  }

  function get(project: string, zone: string, name: string) {
    const fault = takeFault('get');
    readFault(fault);
    const state = instances.get(key(project, zone, name));
    if (!state) {
      throw new ApiError(
        404,
        'notFound',
        `The resource 'projects/${project}/zones/${zone}/instances/${name}' was not found`,
      );
    }
    return instanceJson(state.record);
  }

  function readFault(fault: FaultKind | undefined): void {
    if (fault === 'quota') {
      throw new ApiError(
        403,
        'quotaExceeded',
        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'.",
        'usageLimits',
      );
    }
    if (fault === 'http503') {
      throw new ApiError(
        503,
        'backendError',
        'Internal error. Please try again or contact Google Support.',
      );
    }
  }

  function list(project: string, zone: string, query: Record<string, string>) {
    readFault(takeFault('list'));
    const maxResults = query.maxResults === undefined ? MAX_PAGE : Number(query.maxResults);
    if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > MAX_PAGE) {
      throw invalid(
        `Invalid value for field 'maxResults': '${query.maxResults ?? ''}'. Must be less than or equal to 500`,
      );
    }
    const predicate = parseFilter(query.filter ?? '');
    const matching = [...instances.values()]
      .map((s) => s.record)
      .filter((r) => r.project === project && r.zone === zone && predicate(r))
      .sort((a, b) => a.name.localeCompare(b.name));
    const offset = query.pageToken ? decodePageToken(query.pageToken) : 0;
    const size = Math.min(maxResults === 0 ? MAX_PAGE : maxResults, pageSize);
    const page = matching.slice(offset, offset + size);
    const next = offset + size < matching.length ? encodePageToken(offset + size) : undefined;
    return {
      kind: 'compute#instanceList',
      id: `projects/${project}/zones/${zone}/instances`,
      ...(page.length > 0 ? { items: page.map(instanceJson) } : {}),
      ...(next ? { nextPageToken: next } : {}),
      selfLink: `${API}/projects/${project}/zones/${zone}/instances`,
    };
  }

  function findOperation(project: string, zone: string, name: string): OperationState {
    const op = operations.get(key(project, zone, name));
    if (!op) {
      throw new ApiError(
        404,
        'notFound',
        `The resource 'projects/${project}/zones/${zone}/operations/${name}' was not found`,
      );
    }
    return op;
  }

  async function waitOperation(op: OperationState): Promise<Record<string, unknown>> {
    if (op.status !== 'DONE' && !stopping) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          op.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, waitTimeoutMs);
        op.waiters.add(wake);
      });
    }
    return operationJson(op);
  }

  // --- HTTP ----------------------------------------------------------------------------------------

  function send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  function sendError(res: http.ServerResponse, err: ApiError): void {
    send(res, err.status, {
      error: {
        code: err.status,
        message: err.message,
        errors: [{ message: err.message, domain: err.domain, reason: err.reason }],
      },
    });
  }

  function readBody(req: http.IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reject(new ApiError(413, 'payloadTooLarge', 'Request payload too large'));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  const ROUTE =
    /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/(instances|operations)(?:\/([^/]+))?(?:\/(wait))?\/?$/;

  async function route(
    method: string,
    path: string,
    query: Record<string, string>,
    body: unknown,
  ): Promise<[number, unknown]> {
    // Control endpoints for process-external tests.
    if (path === '/_standin/faults') {
      if (method === 'DELETE') {
        clearFaults();
        return [200, { faults: [] }];
      }
      if (method === 'GET') return [200, { faults: faults.map((f) => ({ ...f })) }];
      if (method === 'POST') {
        const list = Array.isArray(body) ? body : [body];
        try {
          for (const f of list) {
            if (!isObj(f)) throw new Error('a fault is an object {op, kind, times?}');
            injectFault(f as unknown as Fault);
          }
        } catch (err) {
          throw invalid(err instanceof Error ? err.message : String(err));
        }
        return [200, { faults: faults.map((f) => ({ ...f })) }];
      }
    }
    if (path === '/_standin/instances' && method === 'GET') {
      return [200, { instances: [...instances.values()].map((s) => ({ ...s.record })) }];
    }
    if (path === '/_standin/requests' && method === 'GET') return [200, { requests }];

    const m = ROUTE.exec(path);
    if (!m)
      throw new ApiError(501, 'notImplemented', `The stand-in does not serve ${method} ${path}`);
    const project = decodeURIComponent(m[1] as string);
    const zone = decodeURIComponent(m[2] as string);
    const collection = m[3] as string;
    const name = m[4] === undefined ? undefined : decodeURIComponent(m[4]);
    const wait = m[5] !== undefined;
    if (opts.project && project !== opts.project) {
      throw new ApiError(
        403,
        'forbidden',
        `Required 'compute.${collection}.${method === 'GET' ? 'get' : 'use'}' permission for 'projects/${project}'`,
      );
    }
    if (collection === 'instances' && !wait) {
      if (name === undefined && method === 'POST') return [200, insert(project, zone, query, body)];
      if (name === undefined && method === 'GET') return [200, list(project, zone, query)];
      if (name !== undefined && method === 'GET') return [200, get(project, zone, name)];
      if (name !== undefined && method === 'DELETE') {
        return [200, remove(project, zone, name, query)];
      }
    }
    if (collection === 'operations' && name !== undefined) {
      const op = findOperation(project, zone, name);
      if (!wait && method === 'GET') return [200, operationJson(op)];
      if (wait && method === 'POST') return [200, await waitOperation(op)];
    }
    throw new ApiError(501, 'notImplemented', `The stand-in does not serve ${method} ${path}`);
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', `http://${LOOPBACK}`);
      const method = req.method ?? 'GET';
      const query = Object.fromEntries(url.searchParams.entries());
      try {
        const text = await readBody(req);
        let body: unknown;
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            throw new ApiError(400, 'parseError', 'Parse Error');
          }
        }
        if (!url.pathname.startsWith('/_standin/')) {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) {
            if (typeof v === 'string') headers[k] = v;
          }
          requests.push({ method, path: req.url ?? '/', query, headers, body });
          if (requests.length > logLimit) requests.splice(0, requests.length - logLimit);
        }
        const [status, out] = await route(method, url.pathname, query, body);
        send(res, status, out);
      } catch (err) {
        if (err instanceof ApiError) sendError(res, err);
        else {
          sendError(
            res,
            new ApiError(500, 'internalError', err instanceof Error ? err.message : String(err)),
          );
        }
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, LOOPBACK, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('stand-in has no port');
  const port = address.port;

  let stopped: Promise<void> | undefined;

  async function shutdownAll(): Promise<void> {
    stopping = true;
    for (const timer of looseTimers) clearTimeout(timer);
    looseTimers.clear();
    // Answer every blocked wait, then stop every booted instance (waiting for boots in flight).
    for (const op of operations.values()) {
      for (const wake of [...op.waiters]) wake();
    }
    const states = [...instances.values()];
    await Promise.allSettled(states.map((s) => s.deletion ?? shutDown(s)));
    instances.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  function stop(): Promise<void> {
    stopped ??= shutdownAll();
    return stopped;
  }

  return {
    url: `http://${LOOPBACK}:${port}`,
    port,
    instances: () => [...instances.values()].map((s) => structuredClone(s.record)),
    requests,
    injectFault,
    clearFaults,
    stop,
  };
}
