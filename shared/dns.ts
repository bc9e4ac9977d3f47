/**
 * Cloud DNS: the A records that name the VMs under the operator's seat domain, through the v1 REST
 * rrsets API. Every failure surfaces as a ComputeError: `transient` (network, timeout, 429, 5xx)
 * or `invalid` (any other 4xx: no permission, no such zone, a name outside the zone).
 *
 * With `settings.endpoint` the same requests go over plain HTTP, without credentials, to the local
 * stand-in (local/compute-standin.ts), which serves Cloud DNS beside Compute Engine.
 */
import { isIPv4 } from 'node:net';
import { GoogleAuth, PassThroughClient } from 'google-auth-library';
import { ComputeError, classifyComputeError } from './core/compute-errors.ts';

export interface DnsSettings {
  project: string;
  /** managed zone name */
  zone: string;
  endpoint?: { host: string; port: number };
}

/** An A record: `host` without the trailing dot. */
export interface AddressRecord {
  host: string;
  ips: string[];
}

interface RecordSet {
  name: string;
  type: string;
  rrdatas?: string[];
}

interface Reply {
  status: number;
  data: unknown;
}

type Requester = Pick<PassThroughClient, 'request'>;

const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const TTL = 60;
/** Upper bound for one call, the token fetch included. */
const CALL_TIMEOUT_MS = 30_000;
const PAGE_SIZE = 500;
/** Reads and writes in one setAddress while other writers keep changing the record under it. */
const SET_ATTEMPTS = 4;
const MAX_PAGES = 1000;

function isObj(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const fqdn = (host: string) => `${host.toLowerCase().replace(/\.$/, '')}.`;

function recordSet(data: unknown): RecordSet | null {
  if (!isObj(data) || typeof data.name !== 'string' || typeof data.type !== 'string') return null;
  const rrdatas = Array.isArray(data.rrdatas)
    ? data.rrdatas.filter((r): r is string => typeof r === 'string')
    : [];
  return { name: data.name.toLowerCase(), type: data.type, rrdatas };
}

/**
 * Cloud DNS v1 for `project`: the client that calls it (application default credentials, or none
 * for the stand-in at `endpoint`) and the URL of its managed zones, ending in `/`.
 */
export function cloudDns(project: string, endpoint?: DnsSettings['endpoint']) {
  const client: Requester = endpoint
    ? new PassThroughClient()
    : new GoogleAuth({ scopes: CLOUD_PLATFORM_SCOPE });
  const origin = endpoint
    ? `http://${endpoint.host}:${endpoint.port}`
    : 'https://dns.googleapis.com';
  return {
    client,
    zones: `${origin}/dns/v1/projects/${encodeURIComponent(project)}/managedZones/`,
  };
}

export class SeatDns {
  private readonly settings: DnsSettings;
  private readonly client: Requester;
  private readonly base: string;

  constructor(settings: DnsSettings) {
    this.settings = settings;
    const { client, zones } = cloudDns(settings.project, settings.endpoint);
    this.client = client;
    this.base = `${zones}${encodeURIComponent(settings.zone)}/rrsets`;
  }

  /**
   * Points `host` at `ip` (A record, TTL 60): creates it, replaces a record with other addresses,
   * does nothing when it already holds exactly [ip]. Safe to call twice at once (a create that
   * answers 409 re-reads and patches if needed).
   */
  async setAddress(host: string, ip: string): Promise<void> {
    if (!isIPv4(ip)) {
      throw new ComputeError('invalid', 'DNS_INVALID_IP', `not an IPv4 address for ${host}`);
    }
    const name = fqdn(host);
    const path = this.recordPath(name);
    const wanted = { kind: 'dns#resourceRecordSet', name, type: 'A', ttl: TTL, rrdatas: [ip] };
    for (let attempt = 0; attempt < SET_ATTEMPTS; attempt++) {
      const current = await this.call('GET', path, host, 'read');
      if (current.status === 200) {
        const rrdatas = recordSet(current.data)?.rrdatas ?? [];
        if (rrdatas.length === 1 && rrdatas[0] === ip) return;
        const patched = await this.call('PATCH', path, host, 'replace', { data: wanted });
        if (patched.status === 200) return;
        // Deleted between our read and our patch: read again.
        if (patched.status !== 404) throw this.failure(patched, host, 'replace');
      } else if (current.status === 404) {
        const created = await this.call('POST', this.base, host, 'create', { data: wanted });
        if (created.status === 200) return;
        // Another writer created it first: read it again and patch it if it differs.
        if (created.status !== 409) throw this.failure(created, host, 'create');
      } else {
        throw this.failure(current, host, 'read');
      }
    }
    throw new ComputeError(
      'transient',
      'DNS_CONFLICT',
      `the A record of ${host} in zone ${this.settings.zone} kept changing under us`,
    );
  }

  /** Removes host's A record; one that is not there is success. */
  async removeAddress(host: string): Promise<void> {
    const reply = await this.call('DELETE', this.recordPath(fqdn(host)), host, 'delete');
    if (reply.status !== 200 && reply.status !== 204 && reply.status !== 404) {
      throw this.failure(reply, host, 'delete');
    }
  }

  /**
   * Every A record of the zone whose name ends with `.${suffix}`, following nextPageToken pages.
   * The list asks for no type: Cloud DNS takes a `type` filter only together with a `name`.
   */
  async listAddresses(suffix: string): Promise<AddressRecord[]> {
    const ending = `.${fqdn(suffix)}`;
    const out: AddressRecord[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const params: Record<string, string> = { maxResults: String(PAGE_SIZE) };
      if (pageToken) params.pageToken = pageToken;
      const reply = await this.call('GET', this.base, `*${ending}`, 'list', { params });
      if (reply.status !== 200) throw this.failure(reply, `*${ending}`, 'list');
      const data = isObj(reply.data) ? reply.data : {};
      for (const item of Array.isArray(data.rrsets) ? data.rrsets : []) {
        const set = recordSet(item);
        if (set && set.type === 'A' && set.name.endsWith(ending)) {
          out.push({ host: set.name.slice(0, -1), ips: set.rrdatas ?? [] });
        }
      }
      const next = typeof data.nextPageToken === 'string' ? data.nextPageToken : '';
      if (!next || next === pageToken) return out;
      pageToken = next;
    }
    throw new ComputeError(
      'transient',
      'DNS_TOO_MANY_PAGES',
      `listing zone ${this.settings.zone} took more than ${MAX_PAGES} pages`,
    );
  }

  async close(): Promise<void> {}

  private recordPath(name: string): string {
    return `${this.base}/${encodeURIComponent(name)}/A`;
  }

  /** One call, bounded in time; every HTTP status comes back as a reply, failures as errors. */
  private async call(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    host: string,
    what: string,
    extra: { data?: unknown; params?: Record<string, string> } = {},
  ): Promise<Reply> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(
          new ComputeError(
            'transient',
            'TIMEOUT',
            `Cloud DNS ${what} of ${host} in zone ${this.settings.zone} timed out after ${CALL_TIMEOUT_MS} ms`,
          ),
        );
      }, CALL_TIMEOUT_MS);
    });
    try {
      const res = await Promise.race([
        this.client.request({
          url,
          method,
          ...extra,
          signal: controller.signal,
          retry: false,
          validateStatus: () => true,
        }),
        timeout,
      ]);
      return { status: res.status, data: res.data };
    } catch (err) {
      if (err instanceof ComputeError) throw err;
      // No answer (network, credentials): the classifier keeps only a code and a redacted message.
      const cause = classifyComputeError(err);
      throw new ComputeError(
        cause.kind,
        cause.code,
        `Cloud DNS ${what} of ${host} in zone ${this.settings.zone} failed: ${cause.message}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** The error for an answer other than the ones expected; the message quotes only Google's. */
  private failure(reply: Reply, host: string, what: string): ComputeError {
    const { status } = reply;
    const error = isObj(reply.data) && isObj(reply.data.error) ? reply.data.error : {};
    const first = Array.isArray(error.errors) && isObj(error.errors[0]) ? error.errors[0] : {};
    const reason = typeof first.reason === 'string' ? ` ${first.reason.slice(0, 64)}` : '';
    const detail = typeof error.message === 'string' ? `: ${error.message.slice(0, 300)}` : '';
    return new ComputeError(
      status === 429 || status >= 500 ? 'transient' : 'invalid',
      `DNS_HTTP_${status}`,
      `Cloud DNS ${what} of ${host} in zone ${this.settings.zone} answered ${status}${reason}${detail}`,
      status,
    );
  }
}
