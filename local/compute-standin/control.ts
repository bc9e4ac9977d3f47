/**
 * The control endpoints, for tests in another process:
 *
 *   GET|POST|DELETE /_standin/faults      {op, kind, times?} (or an array of them)
 *   GET             /_standin/instances   {instances: InstanceRecord[]}
 *   GET             /_standin/requests    {requests: StandinRequest[]}
 *   PUT             /_standin/quotas/R    {METRIC: limit, …} (an empty object removes them)
 */
import { invalid } from './errors.ts';
import { isObj } from './is-object.ts';
import { setQuotas } from './quotas.ts';
import type { StandinState } from './state.ts';
import type { Fault } from './types.ts';

/** The control endpoint's answer, or undefined when `method path` is none of them. */
export function control(
  standin: StandinState,
  method: string,
  path: string,
  body: unknown,
): [number, unknown] | undefined {
  if (path === '/_standin/faults') {
    if (method === 'DELETE') {
      standin.faults.clear();
      return [200, { faults: [] }];
    }
    if (method === 'GET') return [200, { faults: standin.faults.list() }];
    if (method === 'POST') {
      const list = Array.isArray(body) ? body : [body];
      try {
        for (const f of list) {
          if (!isObj(f)) throw new Error('a fault is an object {op, kind, times?}');
          standin.faults.inject(f as unknown as Fault);
        }
      } catch (err) {
        throw invalid(err instanceof Error ? err.message : String(err));
      }
      return [200, { faults: standin.faults.list() }];
    }
  }
  if (path === '/_standin/instances' && method === 'GET') {
    return [200, { instances: [...standin.instances.values()].map((s) => ({ ...s.record })) }];
  }
  const quotas = /^\/_standin\/quotas\/([a-z0-9-]+)$/.exec(path);
  if (quotas && method === 'PUT') {
    try {
      if (!isObj(body)) throw new Error('quotas are an object {METRIC: limit}');
      setQuotas(standin, quotas[1]!, body as Record<string, number>);
    } catch (err) {
      throw invalid(err instanceof Error ? err.message : String(err));
    }
    return [200, { region: quotas[1], quotas: body }];
  }
  if (path === '/_standin/requests' && method === 'GET')
    return [200, { requests: standin.requests }];
  return undefined;
}
