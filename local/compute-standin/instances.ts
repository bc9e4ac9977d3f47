/**
 * The instances collection: insert, delete, get, list and aggregated list, with their faults and
 * errors.
 */
import { ApiError, notFound } from './errors.ts';
import { rejectFault } from './faults.ts';
import { parseFilter } from './filter.ts';
import { deprovision, provision, setStatus } from './lifecycle.ts';
import { finish, newOperation, requestIdentity, type OperationFailure } from './operations.ts';
import { pageOf, parseMaxResults } from './paging.ts';
import { isObj } from './is-object.ts';
import { parseInstance } from './parse-instance.ts';
import { enforceQuotas } from './quotas.ts';
import { API, instanceJson, operationJson } from './resource-json.ts';
import { key, LOOPBACK, type InstanceState, type StandinState } from './state.ts';
import type { InstanceRecord } from './types.ts';

const WRITE_QUOTA = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'.";
const READ_QUOTA =
  "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'.";

function instanceOf(standin: StandinState, project: string, zone: string, name: string) {
  const instance = standin.instances.get(key(project, zone, name));
  if (!instance) throw notFound(project, zone, 'instances', name);
  return instance;
}

export function insert(
  standin: StandinState,
  project: string,
  zone: string,
  query: Record<string, string>,
  body: unknown,
) {
  const request = requestIdentity(standin, project, query);
  if (request.earlier) return operationJson(request.earlier);
  const spot =
    isObj(body) && isObj(body.scheduling) && body.scheduling.provisioningModel === 'SPOT';
  const fault = standin.faults.take('insert', { zone, spot });
  rejectFault(
    fault,
    `Quota 'CPUS' exceeded.  Limit: 8.0 in region ${zone.replace(/-[a-z]$/, '')}.`,
  );
  const parsed = parseInstance(body, zone);
  const k = key(project, zone, parsed.name);
  if (standin.instances.has(k)) {
    throw new ApiError(
      409,
      'alreadyExists',
      `The resource 'projects/${project}/zones/${zone}/instances/${parsed.name}' already exists`,
    );
  }
  const id = standin.nextId();

  if (fault === 'stockout' || fault === 'invalid-image') {
    const op = newOperation(standin, project, zone, 'insert', parsed.name, id);
    request.remember(op);
    standin.later(standin.settings.stepMs, () =>
      finish(op, failureOf(fault, project, zone, parsed)),
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
    ...(request.requestId !== undefined ? { requestId: request.requestId } : {}),
    booted: false,
  };
  enforceQuotas(standin, record);
  const op = newOperation(standin, project, zone, 'insert', parsed.name, id);
  request.remember(op);
  const instance: InstanceState = {
    record,
    timers: new Set(),
    insertOp: op,
    neverDone: fault === 'never-done',
  };
  standin.instances.set(k, instance);
  // never-done: the instance stays PROVISIONING, its operation RUNNING
  if (!instance.neverDone) provision(standin, instance);
  return operationJson(op);
}

/** How a stock-out or a missing image ends the insert operation, as Compute words it. */
function failureOf(
  fault: 'stockout' | 'invalid-image',
  project: string,
  zone: string,
  parsed: { sourceImage?: string },
): OperationFailure {
  if (fault === 'stockout') {
    return {
      code: 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
      message: `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request.  '(resource type:compute)'.`,
      http: 503,
      httpMessage: 'SERVICE UNAVAILABLE',
    };
  }
  const image = parsed.sourceImage ?? 'image';
  return {
    code: 'RESOURCE_NOT_FOUND',
    message: `The resource '${image.replace(/^https:\/\/[^/]+\/compute\/v1\//, '')}' was not found`,
    http: 404,
    httpMessage: 'NOT FOUND',
  };
}

export function remove(
  standin: StandinState,
  project: string,
  zone: string,
  name: string,
  query: Record<string, string>,
) {
  const request = requestIdentity(standin, project, query);
  if (request.earlier) return operationJson(request.earlier);
  const fault = standin.faults.take('delete', { zone });
  rejectFault(fault, WRITE_QUOTA);
  const instance = instanceOf(standin, project, zone, name);
  const op = newOperation(standin, project, zone, 'delete', name, instance.record.id);
  request.remember(op);
  setStatus(instance.record, 'STOPPING');
  if (fault !== 'never-done') deprovision(standin, instance, op);
  return operationJson(op);
}

export function get(standin: StandinState, project: string, zone: string, name: string) {
  rejectFault(standin.faults.take('get', { zone }), READ_QUOTA);
  return instanceJson(instanceOf(standin, project, zone, name).record);
}

export function list(
  standin: StandinState,
  project: string,
  zone: string,
  query: Record<string, string>,
) {
  rejectFault(standin.faults.take('list', { zone }), READ_QUOTA);
  const maxResults = parseMaxResults(query.maxResults);
  const predicate = parseFilter(query.filter ?? '');
  const matching = [...standin.instances.values()]
    .map((s) => s.record)
    .filter((r) => r.project === project && r.zone === zone && predicate(r))
    .sort((a, b) => a.name.localeCompare(b.name));
  const { page, next } = pageOf(matching, maxResults, query.pageToken, standin.settings.pageSize);
  return {
    kind: 'compute#instanceList',
    id: `projects/${project}/zones/${zone}/instances`,
    ...(page.length > 0 ? { items: page.map(instanceJson) } : {}),
    ...(next ? { nextPageToken: next } : {}),
    selfLink: `${API}/projects/${project}/zones/${zone}/instances`,
  };
}

/**
 * instances.aggregatedList: every zone's instances of the project, paged over all zones in
 * zone and name order, as `items: {"zones/Z": {instances: [...]}}`.
 */
export function aggregatedList(
  standin: StandinState,
  project: string,
  query: Record<string, string>,
) {
  rejectFault(standin.faults.take('list'), READ_QUOTA);
  const maxResults = parseMaxResults(query.maxResults);
  const predicate = parseFilter(query.filter ?? '');
  const matching = [...standin.instances.values()]
    .map((s) => s.record)
    .filter((r) => r.project === project && predicate(r))
    .sort((a, b) => a.zone.localeCompare(b.zone) || a.name.localeCompare(b.name));
  const { page, next } = pageOf(matching, maxResults, query.pageToken, standin.settings.pageSize);
  const items: Record<string, { instances: Record<string, unknown>[] }> = {};
  for (const r of page)
    (items[`zones/${r.zone}`] ??= { instances: [] }).instances.push(instanceJson(r));
  return {
    kind: 'compute#instanceAggregatedList',
    id: `projects/${project}/aggregated/instances`,
    items,
    ...(next ? { nextPageToken: next } : {}),
    selfLink: `${API}/projects/${project}/aggregated/instances`,
  };
}
