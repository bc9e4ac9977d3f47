/**
 * instances.setMetadata: replaces an instance's metadata items when the caller sends the
 * fingerprint of what it read (412 conditionNotMet otherwise, as Compute answers a lost race),
 * and hands the new metadata to the booted guest, whose metadata server serves it.
 */
import { createHash } from 'node:crypto';
import { ApiError, invalid, notFound } from './errors.ts';
import { isObj } from './is-object.ts';
import { finish, newOperation, requestIdentity } from './operations.ts';
import { operationJson } from './resource-json.ts';
import { key, type StandinState } from './state.ts';

/** Changes whenever any key or value does; Compute's own is opaque base64 as well. */
export function metadataFingerprint(metadata: Record<string, string>): string {
  const entries = Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(entries)).digest('base64').slice(0, 12);
}

function parseItems(body: Record<string, unknown>): Record<string, string> {
  const items = body.items ?? [];
  if (!Array.isArray(items)) throw invalid("Invalid value for field 'resource.items'.");
  const metadata: Record<string, string> = {};
  items.forEach((item: unknown, index) => {
    if (!isObj(item) || typeof item.key !== 'string' || item.key === '') {
      throw invalid(`Invalid value for field 'resource.items[${index}].key'.`);
    }
    if (item.key in metadata) throw invalid(`Duplicate metadata key '${item.key}'.`);
    metadata[item.key] = typeof item.value === 'string' ? item.value : '';
  });
  return metadata;
}

export function setMetadata(
  standin: StandinState,
  project: string,
  zone: string,
  name: string,
  query: Record<string, string>,
  body: unknown,
) {
  const request = requestIdentity(standin, project, query);
  if (request.earlier) return operationJson(request.earlier);
  const instance = standin.instances.get(key(project, zone, name));
  if (!instance) throw notFound(project, zone, 'instances', name);
  if (!isObj(body)) throw invalid("Invalid value for field 'resource'.");
  const record = instance.record;
  if (body.fingerprint !== metadataFingerprint(record.metadata)) {
    throw new ApiError(
      412,
      'conditionNotMet',
      'Supplied fingerprint does not match current metadata fingerprint.',
    );
  }
  record.metadata = parseItems(body);
  const op = newOperation(standin, project, zone, 'setMetadata', name, record.id);
  request.remember(op);
  const metadata = { ...record.metadata };
  void instance.boot?.then((handle) => handle?.setMetadata?.(metadata));
  finish(op);
  return operationJson(op);
}
