/**
 * A local Compute Engine stand-in: an HTTP server answering the REST subset that the real
 * `@google-cloud/compute` 6 client sends (REST fallback, `protocol: 'http'`, no credentials):
 *
 *   POST   /compute/v1/projects/P/zones/Z/instances?requestId=UUID     insert
 *   GET    /compute/v1/projects/P/zones/Z/instances?filter=&maxResults=&pageToken=   list
 *   GET    /compute/v1/projects/P/zones/Z/instances/NAME               get
 *   GET    /compute/v1/projects/P/aggregated/instances?filter=&maxResults=&pageToken=   aggregatedList
 *   GET    /compute/v1/projects/P/regions/R                            regions.get (quotas)
 *   DELETE /compute/v1/projects/P/zones/Z/instances/NAME?requestId=    delete
 *   GET    /compute/v1/projects/P/zones/Z/operations/OP                zoneOperations.get
 *   POST   /compute/v1/projects/P/zones/Z/operations/OP/wait           zoneOperations.wait
 *   POST   /compute/v1/projects/P/zones/Z/instances/NAME/setMetadata   setMetadata (fingerprint checked)
 *
 * and, on the same port, Cloud DNS record sets in the `dnsZones` (compute-standin/dns.ts):
 *
 *   POST   /dns/v1/projects/P/managedZones/Z/rrsets                  create
 *   GET    /dns/v1/projects/P/managedZones/Z/rrsets?name=&type=&maxResults=&pageToken=   list
 *   GET    /dns/v1/projects/P/managedZones/Z/rrsets/NAME/TYPE        get
 *   PATCH  /dns/v1/projects/P/managedZones/Z/rrsets/NAME/TYPE        patch
 *   DELETE /dns/v1/projects/P/managedZones/Z/rrsets/NAME/TYPE        delete
 *
 * With `dnsUdp` a DNS-over-UDP responder on 127.0.0.1:`dnsPort` answers A queries for those
 * records (compute-standin/dns-server.ts).
 *
 * Errors use Compute's JSON shape `{error: {code, message, errors: [{message, domain, reason}]}}`;
 * failures that Compute reports in the finished operation (stock-outs, a missing image) arrive in
 * `operation.error.errors[{code, message}]`. Faults can be injected in-process or over HTTP:
 *
 *   POST   /_standin/faults      {op, kind, times?, zone?, spot?} (or an array of them); op is
 *                         insert, delete, get, list, regions (regions.get: http503 only) or dns
 *                         (any Cloud DNS call: http503 or http403; zone: the managed zone)
 *   DELETE /_standin/faults
 *   GET    /_standin/instances   {instances: InstanceRecord[]}
 *   GET    /_standin/requests    {requests: StandinRequest[]} (Compute and Cloud DNS requests)
 *   GET    /_standin/dns         {records: DnsRecord[]}
 *   PUT    /_standin/quotas/R    {METRIC: limit, …}: a region's quotas, enforced at insert
 *
 * "Booting" an instance calls `onBoot` once the instance is RUNNING; deleting it (or stopping the
 * stand-in) calls the returned handle's `stop()` before the instance disappears.
 */
import { dnsRecordList, lookupAddresses, seedDnsZones } from './compute-standin/dns.ts';
import { startDnsServer } from './compute-standin/dns-server.ts';
import { shutDownAll } from './compute-standin/lifecycle.ts';
import { listen } from './compute-standin/server.ts';
import { setQuotas } from './compute-standin/quotas.ts';
import { LOOPBACK, settingsOf, StandinState } from './compute-standin/state.ts';
import type { ComputeStandin, ComputeStandinOptions } from './compute-standin/types.ts';

export { parseFilter } from './compute-standin/filter.ts';
export type {
  BootableInstance,
  BootHandle,
  ComputeStandin,
  ComputeStandinOptions,
  DnsRecord,
  Fault,
  FaultKind,
  FaultOp,
  InstanceRecord,
  QuotaLimits,
  StandinRequest,
} from './compute-standin/types.ts';

export async function startComputeStandin(opts: ComputeStandinOptions): Promise<ComputeStandin> {
  const standin = new StandinState(settingsOf(opts));
  for (const [region, limits] of Object.entries(opts.quotas ?? {})) {
    setQuotas(standin, region, limits);
  }
  seedDnsZones(standin);
  const server = await listen(standin, opts.port);
  let dnsServer: Awaited<ReturnType<typeof startDnsServer>> | undefined;
  try {
    if (opts.dnsUdp) {
      dnsServer = await startDnsServer((name) => lookupAddresses(standin, name), LOOPBACK);
    }
  } catch (err) {
    await server.close();
    throw err;
  }

  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= (async () => {
      await shutDownAll(standin);
      await Promise.all([server.close(), dnsServer?.close()]);
    })();
    return stopped;
  }

  return {
    url: `http://${LOOPBACK}:${server.port}`,
    port: server.port,
    instances: () => [...standin.instances.values()].map((s) => structuredClone(s.record)),
    requests: standin.requests,
    injectFault: (fault) => standin.faults.inject(fault),
    clearFaults: () => standin.faults.clear(),
    setQuotas: (region, limits) => setQuotas(standin, region, limits),
    dnsRecords: () => dnsRecordList(standin),
    ...(dnsServer ? { dnsPort: dnsServer.port } : {}),
    stop,
  };
}
