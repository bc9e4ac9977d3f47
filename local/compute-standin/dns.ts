/**
 * Cloud DNS's rrsets API, v1, on the stand-in's HTTP server:
 *
 *   POST   /dns/v1/projects/P/managedZones/Z/rrsets               create (409 when name+type exist)
 *   GET    /dns/v1/projects/P/managedZones/Z/rrsets?name=&type=&maxResults=&pageToken=   list
 *   GET    /dns/v1/projects/P/managedZones/Z/rrsets/NAME/TYPE     get
 *   PATCH  /dns/v1/projects/P/managedZones/Z/rrsets/NAME/TYPE     patch (ttl, rrdatas)
 *   DELETE /dns/v1/projects/P/managedZones/Z/rrsets/NAME/TYPE     delete
 *   GET    /_standin/dns                                           {records: DnsRecord[]}
 *
 * Zones come from the options; each starts with the SOA and NS record sets a new managed zone has.
 * As in Cloud DNS, `type` lists only together with `name`.
 */
import { isIPv4 } from 'node:net';
import { ApiError, invalid } from './errors.ts';
import { rejectFault } from './faults.ts';
import { isObj } from './is-object.ts';
import { pageOf, parseMaxResults } from './paging.ts';
import { dnsKey, type StandinState } from './state.ts';
import type { DnsRecord } from './types.ts';

const ROUTE =
  /^\/dns\/v1\/projects\/([^/]+)\/managedZones\/([^/]+)\/rrsets(?:\/([^/]+)\/([^/]+))?\/?$/;
const LABEL = /^(?:\*|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$/;
const TYPE = /^[A-Z][A-Z0-9]{0,9}$/;
const NAME_SERVER = 'ns-cloud-a1.googledomains.com.';

const notFound = (what: string, name: string) =>
  new ApiError(404, 'notFound', `The '${what}' resource named '${name}' does not exist.`);

/** Adds each configured zone's SOA and NS record sets. */
export function seedDnsZones(standin: StandinState): void {
  for (const [zone, dnsName] of standin.settings.dnsZones) {
    const soa = `${NAME_SERVER} cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300`;
    put(standin, { zone, name: dnsName, type: 'SOA', ttl: 21600, rrdatas: [soa] });
    put(standin, { zone, name: dnsName, type: 'NS', ttl: 21600, rrdatas: [NAME_SERVER] });
  }
}

/** Copies of every record set, ordered by zone, name and type. */
export function dnsRecordList(standin: StandinState): DnsRecord[] {
  return [...standin.dnsRecords.values()]
    .map((r) => structuredClone(r))
    .sort((a, b) => cmp(a.zone, b.zone) || cmp(a.name, b.name) || cmp(a.type, b.type));
}

/** For the UDP responder: whether any zone holds `name` (any type), and its A addresses. */
export function lookupAddresses(
  standin: StandinState,
  name: string,
): { held: boolean; addresses: string[]; ttl: number } {
  const wanted = `${name.toLowerCase().replace(/\.$/, '')}.`;
  const found = { held: false, addresses: [] as string[], ttl: 0 };
  for (const record of standin.dnsRecords.values()) {
    if (record.name !== wanted) continue;
    found.held = true;
    if (record.type === 'A') {
      found.addresses.push(...record.rrdatas);
      found.ttl = record.ttl;
    }
  }
  return found;
}

/** The answer to a Cloud DNS or `/_standin/dns` request, or undefined for any other path. */
export function dnsRoute(
  standin: StandinState,
  method: string,
  path: string,
  query: Record<string, string>,
  body: unknown,
): [number, unknown] | undefined {
  if (path === '/_standin/dns' && method === 'GET') {
    return [200, { records: dnsRecordList(standin) }];
  }
  const m = ROUTE.exec(path);
  const methods = m?.[3] === undefined ? ['POST', 'GET'] : ['GET', 'PATCH', 'DELETE'];
  if (!m || !methods.includes(method)) return undefined;
  const project = decodeURIComponent(m[1] as string);
  const zone = decodeURIComponent(m[2] as string);
  rejectFault(standin.faults.take('dns', { zone }), '');
  const only = standin.settings.project;
  if (only && project !== only) throw notFound('parameters.project', project);
  const dnsName = standin.settings.dnsZones.get(zone);
  if (dnsName === undefined) throw notFound('parameters.managedZone', zone);

  if (m[3] === undefined) {
    return [
      200,
      method === 'POST' ? create(standin, zone, dnsName, body) : list(standin, zone, query),
    ];
  }
  const name = decodeURIComponent(m[3]).toLowerCase();
  const type = decodeURIComponent(m[4] as string).toUpperCase();
  const key = dnsKey(zone, name, type);
  const record = standin.dnsRecords.get(key);
  if (!record) throw notFound('entity.resourceRecordSet', `${name} (${type})`);
  if (method === 'GET') return [200, recordJson(record)];
  if (method === 'DELETE') {
    standin.dnsRecords.delete(key);
    return [200, {}];
  }
  return [200, patch(record, body)];
}

function create(standin: StandinState, zone: string, dnsName: string, body: unknown) {
  if (!isObj(body)) throw invalid("The 'entity.rrset' parameter is required but was missing.");
  const name = typeof body.name === 'string' ? body.name.toLowerCase() : '';
  const type = typeof body.type === 'string' ? body.type : '';
  checkName(name);
  if (!TYPE.test(type)) throw invalid(`Invalid value for 'entity.rrset.type': '${type}'`);
  if (name !== dnsName && !name.endsWith(`.${dnsName}`)) {
    throw invalid(
      `The resource 'entity.rrset' named '${name} (${type})' is invalid: the name is not within the zone's DNS name '${dnsName}'`,
    );
  }
  const record: DnsRecord = {
    zone,
    name,
    type,
    ttl: checkTtl(body.ttl ?? 300),
    rrdatas: checkRrdatas(type, body.rrdatas),
  };
  if (standin.dnsRecords.has(dnsKey(zone, name, type))) {
    throw new ApiError(
      409,
      'alreadyExists',
      `The resource 'entity.rrset' named '${name} (${type})' already exists`,
    );
  }
  put(standin, record);
  return recordJson(record);
}

function patch(record: DnsRecord, body: unknown) {
  if (!isObj(body)) throw invalid("The 'entity.rrset' parameter is required but was missing.");
  if (body.name !== undefined && String(body.name).toLowerCase() !== record.name) {
    throw invalid(`Invalid value for 'entity.rrset.name': '${String(body.name)}'`);
  }
  if (body.type !== undefined && body.type !== record.type) {
    throw invalid(`Invalid value for 'entity.rrset.type': '${String(body.type)}'`);
  }
  const ttl = body.ttl === undefined ? record.ttl : checkTtl(body.ttl);
  const rrdatas =
    body.rrdatas === undefined ? record.rrdatas : checkRrdatas(record.type, body.rrdatas);
  record.ttl = ttl;
  record.rrdatas = rrdatas;
  return recordJson(record);
}

function list(standin: StandinState, zone: string, query: Record<string, string>) {
  const name = query.name?.toLowerCase();
  const type = query.type;
  if (type !== undefined && name === undefined) {
    throw invalid("The parameter 'name' is required when 'type' is given.");
  }
  const records = dnsRecordList(standin).filter(
    (r) =>
      r.zone === zone &&
      (name === undefined || r.name === name) &&
      (type === undefined || r.type === type),
  );
  const maxResults = parseMaxResults(query.maxResults);
  const { page, next } = pageOf(records, maxResults, query.pageToken, standin.settings.pageSize);
  return {
    kind: 'dns#resourceRecordSetsListResponse',
    rrsets: page.map(recordJson),
    ...(next ? { nextPageToken: next } : {}),
  };
}

function put(standin: StandinState, record: DnsRecord): void {
  standin.dnsRecords.set(dnsKey(record.zone, record.name, record.type), record);
}

function recordJson(record: DnsRecord) {
  return {
    kind: 'dns#resourceRecordSet',
    name: record.name,
    type: record.type,
    ttl: record.ttl,
    rrdatas: [...record.rrdatas],
  };
}

function checkName(name: string): void {
  const labels = name.slice(0, -1).split('.');
  if (!name.endsWith('.') || name.length > 254 || !labels.every((l) => LABEL.test(l))) {
    throw invalid(`Invalid value for 'entity.rrset.name': '${name}'`);
  }
}

function checkTtl(ttl: unknown): number {
  const n = typeof ttl === 'string' ? Number(ttl) : ttl;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 2 ** 31 - 1) {
    throw invalid(`Invalid value for 'entity.rrset.ttl': '${String(ttl)}'`);
  }
  return n;
}

function checkRrdatas(type: string, rrdatas: unknown): string[] {
  if (
    !Array.isArray(rrdatas) ||
    rrdatas.length === 0 ||
    !rrdatas.every((r) => typeof r === 'string' && r !== '') ||
    (type === 'A' && !rrdatas.every((r) => isIPv4(r as string)))
  ) {
    throw invalid(`Invalid value for 'entity.rrset.rrdata': '${JSON.stringify(rrdatas)}'`);
  }
  return [...(rrdatas as string[])];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
