// @ts-check
// The state directory, $CT_DOCKER_STATE: containers/<name>.json, networks/, images/,
// logs/<name>.log, data/<name>/ (a container's home), live/<pid> for every process that may be
// running (removed once it is dead), and pids.log, the history of every process ever started.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { die } from './cli.mjs';

export const STATE = process.env.CT_DOCKER_STATE ?? '';
export const dir = {
  containers: path.join(STATE, 'containers'),
  networks: path.join(STATE, 'networks'),
  images: path.join(STATE, 'images'),
  logs: path.join(STATE, 'logs'),
  live: path.join(STATE, 'live'),
  data: path.join(STATE, 'data'),
};

/** Creates the state directory's folders; fails when CT_DOCKER_STATE is not set. */
export function ensureStateDir() {
  if (!STATE) die(1, 'docker stand-in: CT_DOCKER_STATE is not set (it names the state directory)');
  for (const d of Object.values(dir)) fs.mkdirSync(d, { recursive: true });
}

/** Writes `value` as JSON, atomically. @param {string} file @param {unknown} value */
export function writeJson(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2));
  fs.renameSync(tmp, file);
}
/** @param {string} file */
export function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}
/** @param {string} text */
export const sha256 = (text) => createHash('sha256').update(text).digest('hex');
/** A name as it may stand in a file name. @param {string} name */
export const safeName = (name) => name.replace(/[^A-Za-z0-9_.-]/g, '_');
/** @param {string} name */
export const containerFile = (name) => path.join(dir.containers, `${name}.json`);
/** @param {string} name */
export const networkFile = (name) => path.join(dir.networks, `${safeName(name)}.json`);
/** @param {string} name */
export const logFile = (name) => path.join(dir.logs, `${safeName(name)}.log`);
/** A container's own folder, its HOME. @param {string} name */
export const dataDir = (name) => path.join(dir.data, safeName(name));
