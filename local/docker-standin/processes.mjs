// @ts-check
// A container's processes: started in their own process group, recorded in live/ and pids.log,
// and stopped by group (SIGTERM, then SIGKILL).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { die } from './cli.mjs';
import { isOurs } from './containers.mjs';
import { STATE, dataDir, dir, logFile } from './state-dir.mjs';

/** @typedef {import('./containers.mjs').Container} Container */

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** SIGTERM to each process group, SIGKILL after 5 s; returns once all are gone. */
export async function killGroups(/** @type {number[]} */ pids, /** @type {string} */ id) {
  /** @param {number} pid @param {NodeJS.Signals} signal */
  const signal = (pid, signal) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  };
  const alive = () => pids.filter((pid) => isOurs(pid, id));
  for (const pid of alive()) signal(pid, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (alive().length > 0 && Date.now() < deadline) await sleep(25);
  for (const pid of alive()) signal(pid, 'SIGKILL');
  while (alive().length > 0) await sleep(25);
  for (const pid of pids) fs.rmSync(path.join(dir.live, String(pid)), { force: true });
}

/** @param {number} pid @param {Container} c */
function recordPid(pid, c) {
  fs.writeFileSync(path.join(dir.live, String(pid)), `${c.id}\n`);
  fs.appendFileSync(path.join(STATE, 'pids.log'), `${pid} ${c.id} ${c.name}\n`);
}

/**
 * Starts the container's process. Resolves once it serves (workspace, Neko) or was spawned (caddy);
 * throws a docker-like 125 when it cannot start.
 * @param {Container} c
 */
export async function startProcess(c) {
  if (c.image.includes('broken')) {
    die(
      125,
      `docker: Error response from daemon: failed to create task for container: failed to create shim task: ` +
        `OCI runtime create failed: runc create failed: unable to start container process: ` +
        `exec: "/entrypoint": stat /entrypoint: no such file or directory: unknown.`,
    );
  }
  const log = fs.openSync(logFile(c.name), 'a');
  const data = dataDir(c.name);
  fs.mkdirSync(data, { recursive: true });
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: data,
    ...Object.fromEntries(c.env.map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)])),
    CT_DOCKER_STATE: STATE,
    CT_DOCKER_STANDIN_ID: c.id,
  };
  try {
    if (c.image.includes('caddy')) {
      const cmd = c.cmd.length
        ? c.cmd
        : ['caddy', 'run', '--config', '/etc/caddy/Caddyfile', '--adapter', 'caddyfile'];
      if (cmd[0] !== 'caddy') die(125, `docker: the stand-in runs only "caddy" in caddy images`);
      // The container sees its bind mounts at their container paths; the host process needs the
      // host paths.
      const args = cmd.slice(1).map((arg) => {
        const bind = c.binds.find((b) => arg === b.container || arg.startsWith(`${b.container}/`));
        return bind ? bind.host + arg.slice(bind.container.length) : arg;
      });
      const child = spawn(process.env.CT_DOCKER_CADDY ?? 'caddy', args, {
        detached: true,
        stdio: ['ignore', log, log],
        env: { ...env, XDG_DATA_HOME: data, XDG_CONFIG_HOME: data },
      });
      if (child.pid === undefined) {
        const error = await new Promise((resolve) => child.once('error', resolve));
        const missing = /** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT';
        die(
          125,
          missing
            ? 'docker: Error response from daemon: the docker stand-in runs the real caddy, which is not installed (apt-get install caddy)'
            : `docker: Error response from daemon: failed to start caddy: ${error}`,
        );
      }
      recordPid(child.pid, c);
      child.unref();
      c.pids = [child.pid];
      return;
    }
    const child = spawn(process.execPath, [path.join(HERE, 'container.mjs')], {
      detached: true,
      stdio: ['ignore', log, log, 'ipc'],
      env: {
        ...env,
        CT_STANDIN_SPEC: JSON.stringify({
          id: c.id,
          name: c.name,
          image: c.image,
          labels: c.labels,
          ports: c.ports,
        }),
      },
    });
    if (child.pid === undefined) die(125, 'docker: Error response from daemon: could not start');
    recordPid(child.pid, c);
    c.pids = [child.pid];
    /** @type {{ ready?: boolean; error?: string }} */
    const outcome = await new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve({ error: 'container did not start within 10 s' }),
        10_000,
      );
      child.once('message', (m) => {
        clearTimeout(timer);
        resolve(/** @type {{ ready?: boolean; error?: string }} */ (m));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ error: `container exited with status ${code}` });
      });
    });
    if (!outcome.ready) {
      await killGroups(c.pids, c.id);
      c.status = 'exited';
      c.exitCode = 1;
      die(
        125,
        `docker: Error response from daemon: driver failed programming external connectivity on endpoint ` +
          `${c.name} (${c.id.slice(0, 12)}): ${outcome.error}`,
      );
    }
    child.disconnect();
    child.unref();
  } finally {
    fs.closeSync(log);
  }
}
