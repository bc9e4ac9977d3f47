/** Validation of an insert body, the way Compute checks the fields this system sends. */
import { invalid } from './errors.ts';
import { isObj } from './is-object.ts';
import type { InstanceRecord } from './types.ts';

const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const METADATA_KEY = /^[a-zA-Z0-9_-]{1,128}$/;
const TAG = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** a machine type of a zone, full URL or partial; group 1 is the zone */
export const MACHINE_TYPE =
  /^(?:(?:https:\/\/(?:www|compute)\.googleapis\.com\/compute\/v1\/)?projects\/[^/]+\/)?zones\/([^/]+)\/machineTypes\/[a-z0-9-]+$/;
const IMAGE =
  /^(?:https:\/\/(?:www|compute)\.googleapis\.com\/compute\/v1\/)?(?:projects\/[a-z0-9.:-]+\/)?global\/images\/(?:family\/)?[a-z]([-a-z0-9]*[a-z0-9])?$/;
const MAX_METADATA_BYTES = 512 * 1024;

/** What an insert body holds; the stand-in adds the rest of the record. */
export type ParsedInstance = Omit<
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
>;

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

/** Validates an insert body the way Compute does for the fields this system sends. */
export function parseInstance(body: unknown, zone: string): ParsedInstance {
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
  if (Object.keys(labels).length > 64) throw invalid("Invalid value for field 'resource.labels'.");
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
    if (!Array.isArray(items)) throw invalid("Invalid value for field 'resource.metadata.items'.");
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
    throw invalid("Required field 'resource.disks[0].initializeParams.sourceImage' not specified");
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
