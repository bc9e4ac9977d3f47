/**
 * The Compute Engine provisioner: creates, finds and deletes this system's VMs with the real
 * `@google-cloud/compute` client (REST transport). Every failure surfaces as a ComputeError whose
 * kind tells the caller whether to retry (transient) or give up (quota, stockout, invalid, …).
 *
 * With `settings.endpoint` the very same client talks plain HTTP, without credentials, to the local
 * Compute Engine stand-in (local/compute-standin.ts).
 */
import type { protos } from '@google-cloud/compute';
// The client modules on their own: the package's index loads every Compute client it has,
// several times the import time and memory of these three.
import { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client.js';
import { RegionsClient } from '@google-cloud/compute/build/src/v1/regions_client.js';
import { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client.js';
import { PassThroughClient } from 'google-auth-library';
import { ComputeError, classifyComputeError } from './core/compute-errors.ts';
import type { QuotaLine } from './core/region-quota.ts';
import type { InstanceSpec } from './core/vm-spec.ts';

type IInstance = protos.google.cloud.compute.v1.IInstance;
type IOperation = protos.google.cloud.compute.v1.IOperation;

export type { InstanceSpec } from './core/vm-spec.ts';

/** An instance, by its zone and name. */
export interface InstanceRef {
  name: string;
  zone: string;
}

export interface InstanceInfo extends InstanceRef {
  status: string;
  id?: string;
  labels: Record<string, string>;
  externalIp?: string;
  internalIp?: string;
  createdAt?: string;
  /** The instance metadata's items, as keys and values. */
  metadata: Record<string, string>;
}

export interface ComputeSettings {
  project: string;
  /** e.g. projects/cos-cloud/global/images/family/cos-stable */
  sourceImage: string;
  diskSizeGb: number;
  serviceAccount?: string;
  /** network name or path; default global/networks/default */
  network?: string;
  /** subnetwork name (in the zone's region) or path; a custom-mode network needs one */
  subnetwork?: string;
  /** how long insert/delete wait for their zone operation; default 10 minutes */
  operationTimeoutMs?: number;
  /** the local stand-in: plain http, no auth */
  endpoint?: { host: string; port: number };
}

export type Provisioner = Pick<
  ComputeProvisioner,
  'insert' | 'delete' | 'get' | 'list' | 'regionQuotas' | 'updateMetadata'
>;

/** Metadata as keys and values; `update` returns what it should become, or null for no change. */
export type MetadataUpdate = (
  current: Record<string, string>,
) => Promise<Record<string, string> | null>;

const DEFAULT_OPERATION_TIMEOUT_MS = 10 * 60_000;
/** Upper bound for one plain API call (the REST transport itself has no deadline). */
const CALL_TIMEOUT_MS = 60_000;
const PAGE_SIZE = 500;
/**
 * google-gax 6 retries idempotent REST calls (get, list, wait) on UNAVAILABLE by itself, for up to
 * minutes; a failed call must surface at once instead, so that the event is retried as a whole.
 */
const NO_RETRY = { retry: null };
const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
/** setMetadata attempts when other writers keep changing the fingerprint under us. */
const METADATA_ATTEMPTS = 8;

type ClientOptions = NonNullable<ConstructorParameters<typeof InstancesClient>[0]>;

/**
 * Client options for the local stand-in, verified on the wire against @google-cloud/compute 7.8
 * (google-gax 6): REST fallback to http://host:port/compute/v1/..., no Authorization header.
 * google-gax bundles its own google-auth-library, so the PassThroughClient from ours has a
 * different (but call-compatible) type: gax only calls `fetch`/`getRequestHeaders` on it.
 */
export function standinClientOptions(endpoint: { host: string; port: number }): ClientOptions {
  return {
    apiEndpoint: endpoint.host,
    port: endpoint.port,
    protocol: 'http',
    fallback: true,
    authClient: new PassThroughClient() as unknown as ClientOptions['authClient'],
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Rejects with a transient TIMEOUT when `promise` takes longer than `ms`. The REST transport
 * offers no way to abort from here, so a late answer is simply ignored.
 */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ComputeError('transient', 'TIMEOUT', `${what} timed out after ${ms} ms`)),
      Math.max(0, ms),
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last segment of a zone URL or `zones/NAME` key. */
function zoneName(value: string | null | undefined): string {
  return (value ?? '').split('/').pop() ?? '';
}

function toInfo(instance: IInstance, zone = zoneName(instance.zone)): InstanceInfo {
  const info: InstanceInfo = {
    name: instance.name ?? '',
    zone,
    status: instance.status ?? 'UNKNOWN',
    labels: { ...(instance.labels ?? {}) },
    metadata: metadataItems(instance),
  };
  if (instance.id !== undefined && instance.id !== null && String(instance.id) !== '') {
    info.id = String(instance.id);
  }
  const nic = instance.networkInterfaces?.[0];
  const natIp = nic?.accessConfigs?.find((a) => a.natIP)?.natIP;
  if (natIp) info.externalIp = natIp;
  if (nic?.networkIP) info.internalIp = nic.networkIP;
  if (instance.creationTimestamp) info.createdAt = instance.creationTimestamp;
  return info;
}

function metadataItems(instance: IInstance): Record<string, string> {
  return Object.fromEntries(
    (instance.metadata?.items ?? []).map((item) => [item.key ?? '', item.value ?? '']),
  );
}

/** `(labels.app = "clarateach") AND (labels.workshop = "abc")`, after checking the label syntax. */
export function labelFilter(labels: Record<string, string>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) {
      throw new ComputeError('invalid', 'INVALID_LABEL', `invalid label filter ${key}`);
    }
    parts.push(`(labels.${key} = "${value}")`);
  }
  return parts.join(' AND ');
}

export class ComputeProvisioner {
  private readonly settings: ComputeSettings;
  private readonly instancesClient: InstancesClient;
  private readonly operationsClient: ZoneOperationsClient;
  private readonly regionsClient: RegionsClient;

  constructor(settings: ComputeSettings) {
    this.settings = settings;
    // Both clients default to the REST transport; against the stand-in they speak plain HTTP
    // without credentials. One PassThroughClient per client keeps them independent.
    if (settings.endpoint) {
      this.instancesClient = new InstancesClient(standinClientOptions(settings.endpoint));
      this.operationsClient = new ZoneOperationsClient(standinClientOptions(settings.endpoint));
      this.regionsClient = new RegionsClient(standinClientOptions(settings.endpoint));
    } else {
      this.instancesClient = new InstancesClient({ projectId: settings.project, fallback: true });
      this.operationsClient = new ZoneOperationsClient({
        projectId: settings.project,
        fallback: true,
      });
      this.regionsClient = new RegionsClient({ projectId: settings.project, fallback: true });
    }
  }

  /** The instance resource `insert` sends; exported through the class for inspection in tests. */
  instanceResource(spec: InstanceSpec): IInstance {
    const { zone } = spec;
    const { sourceImage, diskSizeGb, serviceAccount } = this.settings;
    const network = this.settings.network ?? 'default';
    const resource: IInstance = {
      name: spec.name,
      machineType: spec.machineType.includes('/')
        ? spec.machineType
        : `zones/${zone}/machineTypes/${spec.machineType}`,
      labels: { ...spec.labels },
      tags: { items: ['http-server', 'https-server'] },
      metadata: {
        items: Object.entries(spec.metadata).map(([key, value]) => ({ key, value })),
      },
      disks: [
        {
          boot: true,
          autoDelete: true,
          type: 'PERSISTENT',
          initializeParams: {
            sourceImage,
            diskSizeGb,
            diskType: `zones/${zone}/diskTypes/pd-balanced`,
          },
        },
      ],
      networkInterfaces: [
        {
          network: network.includes('/') ? network : `global/networks/${network}`,
          accessConfigs: [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT' }],
        },
      ],
    };
    const subnetwork = this.settings.subnetwork;
    if (subnetwork) {
      resource.networkInterfaces![0]!.subnetwork = subnetwork.includes('/')
        ? subnetwork
        : `regions/${zone.replace(/-[a-z]$/, '')}/subnetworks/${subnetwork}`;
    }
    if (serviceAccount) {
      resource.serviceAccounts = [{ email: serviceAccount, scopes: [CLOUD_PLATFORM_SCOPE] }];
    }
    if (spec.spot) {
      resource.scheduling = { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' };
    }
    return resource;
  }

  /**
   * Creates the instance in `spec.zone` and waits until its zone operation is DONE. `requestId` (a UUID) makes a
   * retry return the same operation instead of creating a second instance.
   */
  async insert(spec: InstanceSpec, requestId: string): Promise<void> {
    if (!UUID.test(requestId)) {
      throw new ComputeError('invalid', 'INVALID_REQUEST_ID', 'requestId must be a UUID');
    }
    const { project } = this.settings;
    const { zone } = spec;
    let operation: IOperation;
    try {
      const [lro] = await within(
        this.instancesClient.insert(
          {
            project,
            zone,
            requestId,
            instanceResource: this.instanceResource(spec),
          },
          NO_RETRY,
        ),
        CALL_TIMEOUT_MS,
        'instances.insert',
      );
      operation = latest(lro);
    } catch (err) {
      const classified = classifyComputeError(err);
      // A 404 on insert means something the request refers to (image, network, machine type,
      // zone) is missing: the request is wrong, the instance is not "not found".
      if (classified.kind === 'not-found') {
        throw new ComputeError(
          'invalid',
          classified.code,
          classified.message,
          classified.httpStatus,
        );
      }
      throw classified;
    }
    await this.waitForOperation(operation, zone, 'insert');
  }

  /** Deletes the instance and waits for the operation. An instance that is already gone is success. */
  async delete({ name, zone }: InstanceRef): Promise<void> {
    const { project } = this.settings;
    let operation: IOperation;
    try {
      const [lro] = await within(
        this.instancesClient.delete({ project, zone, instance: name }, NO_RETRY),
        CALL_TIMEOUT_MS,
        'instances.delete',
      );
      operation = latest(lro);
    } catch (err) {
      const classified = classifyComputeError(err);
      if (classified.kind === 'not-found') return;
      throw classified;
    }
    try {
      await this.waitForOperation(operation, zone, 'delete');
    } catch (err) {
      // Another delete won the race: the instance is gone all the same.
      if (err instanceof ComputeError && err.code === 'RESOURCE_NOT_FOUND') return;
      throw err;
    }
  }

  /** The instance, or null when there is none of that name. */
  async get({ name, zone }: InstanceRef): Promise<InstanceInfo | null> {
    const { project } = this.settings;
    try {
      const [instance] = await within(
        this.instancesClient.get({ project, zone, instance: name }, NO_RETRY),
        CALL_TIMEOUT_MS,
        'instances.get',
      );
      return toInfo(instance, zone);
    } catch (err) {
      const classified = classifyComputeError(err);
      if (classified.kind === 'not-found') return null;
      throw classified;
    }
  }

  /**
   * Every instance of the project carrying all of `labels`, in whatever zone, with one
   * aggregated list (following pages): a VM that moved zones, or sits in a zone no longer
   * configured, is found all the same.
   */
  async list(labels: Record<string, string>): Promise<InstanceInfo[]> {
    const { project } = this.settings;
    const filter = labelFilter(labels);
    const collect = async (): Promise<InstanceInfo[]> => {
      const out: InstanceInfo[] = [];
      const iterable = this.instancesClient.aggregatedListAsync(
        { project, maxResults: PAGE_SIZE, ...(filter ? { filter } : {}) },
        { autoPaginate: false, ...NO_RETRY },
      );
      for await (const [scope, scoped] of iterable) {
        for (const instance of scoped.instances ?? []) out.push(toInfo(instance, zoneName(scope)));
      }
      return out;
    };
    try {
      return await within(collect(), CALL_TIMEOUT_MS, 'instances.list');
    } catch (err) {
      throw classifyComputeError(err);
    }
  }

  /**
   * Read-modify-write of the instance's metadata: reads it with its fingerprint, lets `update`
   * compute the new items (it may read other state: it runs again after a lost race), and writes
   * them with `setMetadata` and that fingerprint. A write another writer got in first is refused
   * by Compute (412 conditionNotMet) and the whole step is tried again, so no write is lost and
   * none is applied on top of state it did not see. False when the instance does not exist.
   */
  async updateMetadata({ name, zone }: InstanceRef, update: MetadataUpdate): Promise<boolean> {
    const { project } = this.settings;
    for (let attempt = 1; ; attempt++) {
      let instance: IInstance;
      try {
        [instance] = await within(
          this.instancesClient.get({ project, zone, instance: name }, NO_RETRY),
          CALL_TIMEOUT_MS,
          'instances.get',
        );
      } catch (err) {
        const classified = classifyComputeError(err);
        if (classified.kind === 'not-found') return false;
        throw classified;
      }
      const next = await update(metadataItems(instance));
      if (!next) return true;
      let operation: IOperation;
      try {
        const [lro] = await within(
          this.instancesClient.setMetadata(
            {
              project,
              zone,
              instance: name,
              metadataResource: {
                fingerprint: instance.metadata?.fingerprint ?? null,
                items: Object.entries(next).map(([key, value]) => ({ key, value })),
              },
            },
            NO_RETRY,
          ),
          CALL_TIMEOUT_MS,
          'instances.setMetadata',
        );
        operation = latest(lro);
      } catch (err) {
        const classified = classifyComputeError(err);
        if (classified.httpStatus === 412 && attempt < METADATA_ATTEMPTS) continue;
        if (classified.kind === 'not-found') return false;
        throw classified;
      }
      await this.waitForOperation(operation, zone, 'setMetadata');
      return true;
    }
  }

  /** The region's quotas (`regions.get`), e.g. CPUS, IN_USE_ADDRESSES, PREEMPTIBLE_CPUS. */
  async regionQuotas(region: string): Promise<QuotaLine[]> {
    const { project } = this.settings;
    try {
      const [found] = await within(
        this.regionsClient.get({ project, region }, NO_RETRY),
        CALL_TIMEOUT_MS,
        'regions.get',
      );
      return (found.quotas ?? []).flatMap((q) =>
        q.metric
          ? [{ metric: q.metric, limit: Number(q.limit ?? 0), usage: Number(q.usage ?? 0) }]
          : [],
      );
    } catch (err) {
      throw classifyComputeError(err);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([
      this.instancesClient.close(),
      this.operationsClient.close(),
      this.regionsClient.close(),
    ]);
  }

  /**
   * Polls ZoneOperations.wait (which answers when the operation is DONE or after about two
   * minutes) until DONE or operationTimeoutMs, then turns operation.error into a ComputeError.
   */
  private async waitForOperation(
    operation: IOperation,
    zone: string,
    what: string,
  ): Promise<IOperation> {
    const { project } = this.settings;
    const timeoutMs = this.settings.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let current = operation;
    let pause = 250;
    while (current.status !== 'DONE') {
      const name = current.name;
      if (!name) throw new ComputeError('transient', 'UNKNOWN', `${what} returned no operation`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const started = Date.now();
      try {
        [current] = await within(
          this.operationsClient.wait({ project, zone, operation: name }, NO_RETRY),
          remaining,
          `${what} operation`,
        );
      } catch (err) {
        throw classifyComputeError(err);
      }
      // A server that answers at once while the operation still runs must not make this spin.
      if (current.status !== 'DONE' && Date.now() - started < pause) {
        await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
        pause = Math.min(pause * 2, 5_000);
      }
    }
    if (current.status !== 'DONE') {
      throw new ComputeError(
        'transient',
        'TIMEOUT',
        `${what} operation ${current.name ?? ''} not done after ${timeoutMs} ms`,
      );
    }
    if (current.error?.errors?.length) throw classifyComputeError(current);
    return current;
  }
}

/** The Operation resource inside what insert/delete return. */
function latest(lro: unknown): IOperation {
  const response = (lro as { latestResponse?: IOperation } | undefined)?.latestResponse;
  if (!response) throw new ComputeError('transient', 'UNKNOWN', 'no operation in the response');
  return response;
}
