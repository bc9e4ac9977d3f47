/** The Compute JSON of the stand-in's resources: operations and instances, as the client reads them. */
import { isObj } from './is-object.ts';
import { metadataFingerprint } from './metadata.ts';
import { MACHINE_TYPE } from './parse-instance.ts';
import type { OperationState } from './state.ts';
import type { InstanceRecord } from './types.ts';

/** The base of every selfLink. */
export const API = 'https://www.googleapis.com/compute/v1';

export function operationJson(op: OperationState): Record<string, unknown> {
  const zoneUrl = `${API}/projects/${op.project}/zones/${op.zone}`;
  return {
    kind: 'compute#operation',
    id: op.id,
    name: op.name,
    zone: zoneUrl,
    operationType: op.operationType,
    targetLink: `${zoneUrl}/instances/${op.targetName}`,
    targetId: op.targetId,
    status: op.status,
    user: 'standin@localhost',
    progress: op.progress,
    insertTime: op.insertTime,
    startTime: op.startTime,
    ...(op.endTime ? { endTime: op.endTime } : {}),
    selfLink: `${zoneUrl}/operations/${op.name}`,
    ...(op.error
      ? {
          error: { errors: [op.error] },
          httpErrorStatusCode: op.httpErrorStatusCode,
          httpErrorMessage: op.httpErrorMessage,
        }
      : {}),
  };
}

export function instanceJson(r: InstanceRecord): Record<string, unknown> {
  const zoneUrl = `${API}/projects/${r.project}/zones/${r.zone}`;
  const machineType = MACHINE_TYPE.exec(r.machineType)
    ? `${zoneUrl}/machineTypes/${r.machineType.split('/').pop() ?? ''}`
    : r.machineType;
  const received = r.resource;
  const nics = Array.isArray(received.networkInterfaces) ? received.networkInterfaces : [];
  const firstNic = isObj(nics[0]) ? nics[0] : {};
  const network =
    typeof firstNic.network === 'string' ? firstNic.network : 'global/networks/default';
  const accessConfigs = Array.isArray(firstNic.accessConfigs) ? firstNic.accessConfigs : [];
  return {
    kind: 'compute#instance',
    id: r.id,
    creationTimestamp: r.creationTimestamp,
    name: r.name,
    tags: { items: r.tags, fingerprint: 'standin' },
    machineType,
    status: r.status,
    zone: zoneUrl,
    networkInterfaces: [
      {
        kind: 'compute#networkInterface',
        name: 'nic0',
        network: network.startsWith('http') ? network : `${API}/projects/${r.project}/${network}`,
        networkIP: r.internalIp,
        accessConfigs: accessConfigs.filter(isObj).map((a) => ({
          kind: 'compute#accessConfig',
          type: typeof a.type === 'string' ? a.type : 'ONE_TO_ONE_NAT',
          name: typeof a.name === 'string' ? a.name : 'External NAT',
          natIP: r.externalIp,
        })),
      },
    ],
    disks: [
      {
        kind: 'compute#attachedDisk',
        type: 'PERSISTENT',
        mode: 'READ_WRITE',
        source: `${zoneUrl}/disks/${r.name}`,
        deviceName: 'persistent-disk-0',
        index: 0,
        boot: true,
        autoDelete: true,
        ...(r.diskSizeGb ? { diskSizeGb: r.diskSizeGb } : {}),
      },
    ],
    metadata: {
      kind: 'compute#metadata',
      fingerprint: metadataFingerprint(r.metadata),
      items: Object.entries(r.metadata).map(([k, value]) => ({ key: k, value })),
    },
    serviceAccounts: r.serviceAccounts,
    selfLink: `${zoneUrl}/instances/${r.name}`,
    ...(r.scheduling ? { scheduling: r.scheduling } : {}),
    labels: r.labels,
    labelFingerprint: 'standin',
    startRestricted: false,
    deletionProtection: false,
  };
}
