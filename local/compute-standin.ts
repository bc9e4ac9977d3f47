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
 * Errors use Compute's JSON shape `{error: {code, message, errors: [{message, domain, reason}]}}`;
 * failures that Compute reports in the finished operation (stock-outs, a missing image) arrive in
 * `operation.error.errors[{code, message}]`. Faults can be injected in-process or over HTTP:
 *
 *   POST   /_standin/faults      {op, kind, times?, zone?, spot?} (or an array of them); op is
 *                         insert, delete, get, list or regions (regions.get: http503 only)
 *   DELETE /_standin/faults
 *   GET    /_standin/instances   {instances: InstanceRecord[]}
 *   GET    /_standin/requests    {requests: StandinRequest[]}
 *   PUT    /_standin/quotas/R    {METRIC: limit, …}: a region's quotas, enforced at insert
 *
 * "Booting" an instance calls `onBoot` once the instance is RUNNING; deleting it (or stopping the
 * stand-in) calls the returned handle's `stop()` before the instance disappears.
 */
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
  const server = await listen(standin, opts.port);

  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= (async () => {
      await shutDownAll(standin);
      await server.close();
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
    stop,
  };
}
