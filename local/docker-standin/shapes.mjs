// @ts-check
// What docker inspect and docker ps show of a container (the fields anyone here reads).
import { stateOf } from './containers.mjs';
import { sha256 } from './state-dir.mjs';

/** @typedef {import('./containers.mjs').Container} Container */

/** A docker size ("512m", "2g", "100") in bytes, as inspect shows it; 0 when unset. */
function bytes(/** @type {string | null | undefined} */ size) {
  const m = /^(\d+)([bkmg]?)$/i.exec(size ?? '');
  if (!m) return 0;
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]?.toLowerCase() ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** The docker-inspect shape of a container (the fields anyone here reads). @param {Container} c */
export function inspectShape(c) {
  const status = stateOf(c);
  /** @type {Record<string, Array<{ HostIp: string; HostPort: string }>>} */
  const bindings = {};
  for (const p of c.ports) {
    (bindings[`${p.container}/${p.proto}`] ??= []).push({
      HostIp: p.hostIp,
      HostPort: String(p.host),
    });
  }
  return {
    Id: c.id,
    Name: `/${c.name}`,
    Created: c.created,
    State: {
      Status: status,
      Running: status === 'running',
      Pid: status === 'running' ? (c.pids[0] ?? 0) : 0,
      ExitCode: status === 'exited' ? c.exitCode : 0,
    },
    Image: `sha256:${sha256(c.image)}`,
    Config: { Image: c.image, Env: c.env, Labels: c.labels, Cmd: c.cmd.length ? c.cmd : null },
    HostConfig: {
      NetworkMode: c.network,
      RestartPolicy: { Name: c.restart },
      Memory: bytes(c.limits?.memory),
      ShmSize: bytes(c.limits?.shmSize),
      PidsLimit: c.limits?.pidsLimit ?? null,
      PortBindings: bindings,
      Binds: c.binds.map((b) => `${b.host}:${b.container}${b.mode ? `:${b.mode}` : ''}`),
    },
  };
}

/** The docker-ps shape of a container. @param {Container} c @param {boolean} full */
export function psShape(c, full) {
  const status = stateOf(c);
  return {
    ID: full ? c.id : c.id.slice(0, 12),
    Names: c.name,
    Image: c.image,
    Command: JSON.stringify(c.cmd.join(' ')),
    CreatedAt: c.created,
    State: status,
    Status: { running: 'Up', exited: `Exited (${c.exitCode})`, created: 'Created' }[status],
    Ports: c.ports
      .map((p) => `${p.hostIp || '0.0.0.0'}:${p.host}->${p.container}/${p.proto}`)
      .join(', '),
    Labels: Object.entries(c.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  };
}
