/** Routing: a request's method and path to the control endpoints, a Compute or Cloud DNS method. */
import { ApiError, notServed } from './errors.ts';
import { control } from './control.ts';
import { dnsRoute } from './dns.ts';
import { rejectFault } from './faults.ts';
import { aggregatedList, get, insert, list, remove } from './instances.ts';
import { setMetadata } from './metadata.ts';
import { findOperation, waitOperation } from './operations.ts';
import { regionJson } from './quotas.ts';
import { operationJson } from './resource-json.ts';
import type { StandinState } from './state.ts';

const PROJECT_ROUTE =
  /^\/compute\/v1\/projects\/([^/]+)\/(aggregated\/instances|regions\/([^/]+))\/?$/;
const ROUTE =
  /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/(instances|operations)(?:\/([^/]+))?(?:\/(wait|setMetadata))?\/?$/;

/** The status and JSON body of the answer; throws an ApiError for an error answer. */
export async function route(
  standin: StandinState,
  method: string,
  path: string,
  query: Record<string, string>,
  body: unknown,
): Promise<[number, unknown]> {
  const controlled = control(standin, method, path, body);
  if (controlled) return controlled;
  const dns = dnsRoute(standin, method, path, query, body);
  if (dns) return dns;

  const p = PROJECT_ROUTE.exec(path);
  if (p && method === 'GET') {
    const project = decodeURIComponent(p[1] as string);
    checkProject(standin, project, p[3] === undefined ? 'instances' : 'regions', method);
    if (p[3] === undefined) return [200, aggregatedList(standin, project, query)];
    rejectFault(standin.faults.take('regions'), '');
    return [200, regionJson(standin, project, decodeURIComponent(p[3]))];
  }
  const m = ROUTE.exec(path);
  if (!m) throw notServed(method, path);
  const project = decodeURIComponent(m[1] as string);
  const zone = decodeURIComponent(m[2] as string);
  const collection = m[3] as string;
  const name = m[4] === undefined ? undefined : decodeURIComponent(m[4]);
  const wait = m[5] === 'wait';
  if (collection === 'instances' && name !== undefined && m[5] === 'setMetadata') {
    if (method === 'POST') return [200, setMetadata(standin, project, zone, name, query, body)];
    throw notServed(method, path);
  }
  checkProject(standin, project, collection, method);
  if (collection === 'instances' && m[5] === undefined) {
    if (name === undefined && method === 'POST') {
      return [200, insert(standin, project, zone, query, body)];
    }
    if (name === undefined && method === 'GET') return [200, list(standin, project, zone, query)];
    if (name !== undefined && method === 'GET') return [200, get(standin, project, zone, name)];
    if (name !== undefined && method === 'DELETE') {
      return [200, remove(standin, project, zone, name, query)];
    }
  }
  if (collection === 'operations' && name !== undefined) {
    const op = findOperation(standin, project, zone, name);
    if (!wait && method === 'GET') return [200, operationJson(op)];
    if (wait && method === 'POST') {
      await waitOperation(standin, op);
      return [200, operationJson(op)];
    }
  }
  throw notServed(method, path);
}

/** Only the stand-in's project, when it has one: others get Compute's 403. */
function checkProject(standin: StandinState, project: string, collection: string, method: string) {
  const only = standin.settings.project;
  if (only && project !== only) {
    throw new ApiError(
      403,
      'forbidden',
      `Required 'compute.${collection}.${method === 'GET' ? 'get' : 'use'}' permission for 'projects/${project}'`,
    );
  }
}
