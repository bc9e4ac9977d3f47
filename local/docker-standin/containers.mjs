// @ts-check
// Containers as the state directory records them, and whether their processes still run.
import fs from 'node:fs';
import path from 'node:path';
import { die } from './cli.mjs';
import { containerFile, dir, readJson, writeJson } from './state-dir.mjs';

/**
 * @typedef {{ hostIp: string; host: number; container: number; proto: 'tcp' | 'udp' }} Port
 * @typedef {{ host: string; container: string; mode: string }} Bind
 * @typedef {{
 *   id: string; name: string; image: string; cmd: string[]; env: string[];
 *   labels: Record<string, string>; ports: Port[]; binds: Bind[]; network: string;
 *   restart: string; limits?: Limits; created: string;
 *   status: 'created' | 'running' | 'exited'; pids: number[]; exitCode: number;
 * }} Container
 * @typedef {{ memory: string | null; shmSize: string | null; pidsLimit: number | null }} Limits
 */

/** Alive and really ours: the environment carries the container id (guards against pid reuse). */
export function isOurs(/** @type {number} */ pid, /** @type {string} */ id) {
  try {
    return fs
      .readFileSync(`/proc/${pid}/environ`, 'latin1')
      .includes(`CT_DOCKER_STANDIN_ID=${id}\0`);
  } catch {
    return false;
  }
}

/** @param {Container} c */
export function running(c) {
  return c.status === 'running' && c.pids.some((pid) => isOurs(pid, c.id));
}

/** @param {Container} c */
export function stateOf(c) {
  if (c.status === 'running' && !running(c)) return 'exited';
  return c.status;
}

/** @returns {Container[]} */
export function allContainers() {
  return fs
    .readdirSync(dir.containers)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => {
      try {
        return [readJson(path.join(dir.containers, f))];
      } catch {
        return []; // being written or removed right now
      }
    });
}

/** By name (with or without the leading /) or by id prefix. @param {string} ref @returns {Container | undefined} */
export function findContainer(ref) {
  const name = ref.replace(/^\//, '');
  if (fs.existsSync(containerFile(name))) {
    try {
      return readJson(containerFile(name));
    } catch {
      return undefined;
    }
  }
  if (/^[0-9a-f]{4,64}$/.test(ref)) return allContainers().find((c) => c.id.startsWith(ref));
  return undefined;
}

/** findContainer, failing like docker when there is none. @param {string} ref @returns {Container} */
export function existingContainer(ref) {
  return findContainer(ref) ?? die(1, `Error response from daemon: No such container: ${ref}`);
}

/** @param {Container} c */
export function save(c) {
  writeJson(containerFile(c.name), c);
}
