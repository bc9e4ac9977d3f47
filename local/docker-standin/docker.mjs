// @ts-check
// A stand-in for the docker CLI, for machines without a Docker daemon. It implements exactly the
// subset the VM startup script uses (plus what tests and local/vm-runner.ts need to look and
// clean up), with docker's exit codes and error wording where a caller may depend on them:
//
//   info | pull IMAGE | network inspect|create|rm|ls NAME
//   run -d --name N [-p [IP:]H:C[/proto]]… [-e K=V]… [-v H:C[:ro]]… [--label K=V]…
//       [--network NET] [--restart POLICY] IMAGE [CMD…]
//   start|stop N… | rm -f N… | ps [-a] [-q] [--no-trunc] [--filter K=V]… [--format T]
//   inspect [--format T] N… | logs N
//
// Containers of a workspace or Neko image are a small node HTTP server (container.mjs) on every
// published port, on 127.0.0.1 only. A caddy image (reference containing "caddy") runs the real
// `caddy` with the bind-mounted paths of its command mapped to the host. An image reference
// containing "broken" cannot start (exit 125, like a container whose entrypoint is missing), one
// containing "unpullable" cannot be pulled.
//
// State lives in $CT_DOCKER_STATE: containers/<name>.json, networks/, images/, logs/<name>.log,
// live/<pid> for every process that may be running (removed once it is dead), and pids.log, the
// history of every process ever started. Processes are started in their own process group.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * @typedef {{ hostIp: string; host: number; container: number; proto: 'tcp' | 'udp' }} Port
 * @typedef {{ host: string; container: string; mode: string }} Bind
 * @typedef {{
 *   id: string; name: string; image: string; cmd: string[]; env: string[];
 *   labels: Record<string, string>; ports: Port[]; binds: Bind[]; network: string;
 *   restart: string; created: string; status: 'created' | 'running' | 'exited';
 *   pids: number[]; exitCode: number;
 * }} Container
 */

class DockerError extends Error {
  /** @param {number} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
/** @param {number} code @param {string} message @returns {never} */
function die(code, message) {
  throw new DockerError(code, message);
}

const STATE = process.env.CT_DOCKER_STATE ?? '';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const dir = {
  containers: path.join(STATE, 'containers'),
  networks: path.join(STATE, 'networks'),
  images: path.join(STATE, 'images'),
  logs: path.join(STATE, 'logs'),
  live: path.join(STATE, 'live'),
  data: path.join(STATE, 'data'),
};

// A SIGTERM (the caller being stopped) must not land between starting a process and recording
// its pid: with a handler, node delivers it between event-loop turns, never inside synchronous code.
process.on('SIGTERM', () => process.exit(143));
process.on('SIGINT', () => process.exit(130));

/** @param {string} text */
const out = (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
/** @param {string} file @param {unknown} value */
function writeJson(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2));
  fs.renameSync(tmp, file);
}
/** @param {string} file */
function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}
/** @param {string} name */
const containerFile = (name) => path.join(dir.containers, `${name}.json`);
/** @param {string} name */
const safeName = (name) => name.replace(/[^A-Za-z0-9_.-]/g, '_');

// --- processes ----------------------------------------------------------------------------------

/** Alive and really ours: the environment carries the container id (guards against pid reuse). */
function isOurs(/** @type {number} */ pid, /** @type {string} */ id) {
  try {
    return fs
      .readFileSync(`/proc/${pid}/environ`, 'latin1')
      .includes(`CT_DOCKER_STANDIN_ID=${id}\0`);
  } catch {
    return false;
  }
}

/** @param {Container} c */
function running(c) {
  return c.status === 'running' && c.pids.some((pid) => isOurs(pid, c.id));
}

/** @param {Container} c */
function stateOf(c) {
  if (c.status === 'running' && !running(c)) return 'exited';
  return c.status;
}

/** SIGTERM to each process group, SIGKILL after 5 s; returns once all are gone. */
async function killGroups(/** @type {number[]} */ pids, /** @type {string} */ id) {
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
async function startProcess(c) {
  if (c.image.includes('broken')) {
    die(
      125,
      `docker: Error response from daemon: failed to create task for container: failed to create shim task: ` +
        `OCI runtime create failed: runc create failed: unable to start container process: ` +
        `exec: "/entrypoint": stat /entrypoint: no such file or directory: unknown.`,
    );
  }
  const log = fs.openSync(path.join(dir.logs, `${safeName(c.name)}.log`), 'a');
  const data = path.join(dir.data, safeName(c.name));
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

// --- lookups ------------------------------------------------------------------------------------

/** @returns {Container[]} */
function allContainers() {
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

/** @param {string} ref @returns {Container | undefined} */
function findContainer(ref) {
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

/** @param {Container} c */
function save(c) {
  writeJson(containerFile(c.name), c);
}

/** The docker-inspect shape of a container (the fields anyone here reads). @param {Container} c */
function inspectShape(c) {
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
    Image: `sha256:${createHash('sha256').update(c.image).digest('hex')}`,
    Config: { Image: c.image, Env: c.env, Labels: c.labels, Cmd: c.cmd.length ? c.cmd : null },
    HostConfig: {
      NetworkMode: c.network,
      RestartPolicy: { Name: c.restart },
      PortBindings: bindings,
      Binds: c.binds.map((b) => `${b.host}:${b.container}${b.mode ? `:${b.mode}` : ''}`),
    },
  };
}

/** The docker-ps shape of a container. @param {Container} c @param {boolean} full */
function psShape(c, full) {
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

// --- Go templates (the handful of forms used here) ----------------------------------------------

/** @param {unknown} value @returns {string} */
function goString(value) {
  if (value === undefined || value === null) return '<no value>';
  if (Array.isArray(value)) return `[${value.map(goString).join(' ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => a.localeCompare(b));
    return `map[${entries.map(([k, v]) => `${k}:${goString(v)}`).join(' ')}]`;
  }
  return String(value);
}

/**
 * @param {string} template
 * @param {Record<string, unknown>} root
 * @param {Record<string, string>} labels for `.Label "K"` (ps)
 */
function render(template, root, labels) {
  /** @param {string} ref */
  const resolve = (ref) => {
    if (ref === '.') return root;
    /** @type {unknown} */
    let value = root;
    for (const key of ref.slice(1).split('.')) {
      value = value && typeof value === 'object' ? /** @type {any} */ (value)[key] : undefined;
    }
    return value;
  };
  const text = template.replace(/\{\{\s*(.*?)\s*\}\}/g, (_, /** @type {string} */ expr) => {
    let m;
    if ((m = /^index\s+(\.\S*)\s+"([^"]*)"$/.exec(expr))) {
      const map = resolve(m[1] ?? '.');
      const value =
        map && typeof map === 'object' ? /** @type {any} */ (map)[m[2] ?? ''] : undefined;
      return value === undefined ? '' : goString(value);
    }
    if ((m = /^json\s+(\.\S*)$/.exec(expr))) return JSON.stringify(resolve(m[1] ?? '.') ?? null);
    if ((m = /^\.Label\s+"([^"]*)"$/.exec(expr))) return labels[m[1] ?? ''] ?? '';
    if (/^\.$|^(\.[A-Za-z_]\w*)+$/.test(expr)) return goString(resolve(expr));
    return die(1, `template: unsupported by the docker stand-in: {{${expr}}}`);
  });
  return text.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

// --- argument parsing ---------------------------------------------------------------------------

/**
 * Splits `args` into flags and positionals, stopping at the first positional when `stopAtPositional`
 * (docker run: everything after the image is the command).
 * @param {string[]} args
 * @param {Record<string, string>} valueFlags alias → canonical name, for flags taking a value
 * @param {Record<string, string>} boolFlags alias → canonical name
 * @param {boolean} stopAtPositional
 */
function parseFlags(args, valueFlags, boolFlags, stopAtPositional) {
  /** @type {Record<string, string[]>} */
  const flags = {};
  /** @type {string[]} */
  const positional = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (stopAtPositional) {
        positional.push(...args.slice(i));
        break;
      }
      positional.push(arg);
      continue;
    }
    // Combined short boolean flags, as docker's CLI takes them: -aq, -dt.
    if (/^-[A-Za-z]{2,}$/.test(arg) && [...arg.slice(1)].every((ch) => boolFlags[`-${ch}`])) {
      for (const ch of arg.slice(1)) (flags[boolFlags[`-${ch}`] ?? ''] ??= []).push('true');
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (valueFlags[flag]) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) die(125, `flag needs an argument: ${flag}`);
      (flags[valueFlags[flag]] ??= []).push(value);
    } else if (boolFlags[flag]) {
      (flags[boolFlags[flag]] ??= []).push(eq > 0 ? arg.slice(eq + 1) : 'true');
    } else {
      die(125, `unknown flag: ${flag}\nSee 'docker --help'.`);
    }
  }
  return { flags, positional };
}

/** @param {string} spec @returns {Port} */
function parsePort(spec) {
  const m = /^(?:(\[[^\]]*\]|[^:]*):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  if (!m)
    die(
      125,
      `docker: invalid publish spec (the stand-in wants [IP:]HOST:CONTAINER[/PROTO]): ${spec}`,
    );
  const host = Number(m[2]);
  const container = Number(m[3]);
  if (!(host > 0 && host < 65536 && container > 0 && container < 65536)) {
    die(125, `docker: invalid port in ${spec}`);
  }
  return {
    hostIp: m[1] ?? '',
    host,
    container,
    proto: /** @type {'tcp' | 'udp'} */ (m[4] ?? 'tcp'),
  };
}

/** @param {string} spec @returns {Bind} */
function parseBind(spec) {
  const [host = '', container = '', mode = ''] = spec.split(':');
  if (!host.startsWith('/') || !container.startsWith('/')) {
    die(125, `docker: the stand-in supports absolute bind mounts only: ${spec}`);
  }
  return { host, container, mode };
}

// --- commands -----------------------------------------------------------------------------------

/** @param {string[]} args */
async function run(args) {
  const { flags, positional } = parseFlags(
    args,
    {
      '--name': 'name',
      '-p': 'publish',
      '--publish': 'publish',
      '-e': 'env',
      '--env': 'env',
      '-v': 'volume',
      '--volume': 'volume',
      '-l': 'label',
      '--label': 'label',
      '--network': 'network',
      '--net': 'network',
      '--restart': 'restart',
    },
    { '-d': 'detach', '--detach': 'detach' },
    true,
  );
  const [image, ...cmd] = positional;
  if (!image) die(125, `"docker run" requires at least 1 argument.`);
  if (!flags.detach) die(125, 'docker: the stand-in runs detached containers only (-d)');
  const name = flags.name?.at(-1) ?? `standin_${randomBytes(4).toString('hex')}`;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
    die(125, `docker: Error response from daemon: Invalid container name (${name}).`);
  }
  const network = flags.network?.at(-1) ?? 'bridge';
  if (
    !['bridge', 'host', 'none'].includes(network) &&
    !fs.existsSync(path.join(dir.networks, `${network}.json`))
  ) {
    die(125, `docker: Error response from daemon: network ${network} not found.`);
  }
  const env = (flags.env ?? []).map((kv) =>
    kv.includes('=') ? kv : `${kv}=${process.env[kv] ?? ''}`,
  );
  /** @type {Container} */
  const c = {
    id: randomBytes(32).toString('hex'),
    name,
    image,
    cmd,
    env,
    labels: Object.fromEntries(
      (flags.label ?? []).map((kv) => [
        kv.split('=')[0] ?? kv,
        kv.includes('=') ? kv.slice(kv.indexOf('=') + 1) : '',
      ]),
    ),
    // With --network host nothing is published (docker ignores -p there too).
    ports: network === 'host' ? [] : (flags.publish ?? []).map(parsePort),
    binds: (flags.volume ?? []).map(parseBind),
    network,
    restart: flags.restart?.at(-1) ?? 'no',
    created: new Date().toISOString(),
    status: 'created',
    pids: [],
    exitCode: 0,
  };
  // The exclusive create is what makes a name unique, even between concurrent callers.
  let fd;
  try {
    fd = fs.openSync(containerFile(name), 'wx');
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'EEXIST') throw error;
    const other = findContainer(name);
    die(
      125,
      `docker: Error response from daemon: Conflict. The container name "/${name}" is already in use by ` +
        `container "${other?.id ?? 'unknown'}". You have to remove (or rename) that container to be able to reuse that name.\n` +
        `See 'docker run --help'.`,
    );
  }
  fs.writeFileSync(fd, JSON.stringify(c, null, 2));
  fs.closeSync(fd);
  try {
    await startProcess(c);
    c.status = 'running';
  } finally {
    save(c);
  }
  out(c.id);
}

/** @param {string[]} args */
async function start(args) {
  for (const ref of args) {
    const c = findContainer(ref) ?? die(1, `Error response from daemon: No such container: ${ref}`);
    if (!running(c)) {
      try {
        await startProcess(c);
        c.status = 'running';
      } catch (error) {
        if (error instanceof DockerError) {
          error.code = 1;
          error.message = `Error response from daemon: ${error.message.replace(/^docker: Error response from daemon: /, '')}\nError: failed to start containers: ${ref}`;
        }
        throw error;
      } finally {
        save(c);
      }
    }
    out(ref);
  }
}

/** @param {string[]} args */
async function stop(args) {
  const { positional } = parseFlags(args, { '-t': 'time', '--time': 'time' }, {}, false);
  for (const ref of positional) {
    const c = findContainer(ref) ?? die(1, `Error response from daemon: No such container: ${ref}`);
    await killGroups(c.pids, c.id);
    if (c.status === 'running') {
      c.status = 'exited';
      c.exitCode = 0;
    }
    save(c);
    out(ref);
  }
}

/** @param {string[]} args */
async function rm(args) {
  const { flags, positional } = parseFlags(args, {}, { '-f': 'force', '--force': 'force' }, false);
  let status = 0;
  for (const ref of positional) {
    const c = findContainer(ref);
    if (!c) {
      process.stderr.write(`Error response from daemon: No such container: ${ref}\n`);
      // docker rm -f reports a missing container but does not fail on it.
      if (!flags.force) status = 1;
      continue;
    }
    if (running(c) && !flags.force) {
      process.stderr.write(
        `Error response from daemon: cannot remove container "/${c.name}": container is running: stop the container before removing or force remove\n`,
      );
      status = 1;
      continue;
    }
    await killGroups(c.pids, c.id);
    fs.rmSync(containerFile(c.name), { force: true });
    fs.rmSync(path.join(dir.data, safeName(c.name)), { recursive: true, force: true });
    out(ref);
  }
  if (status) die(status, '');
}

/** @param {string[]} args */
function ps(args) {
  const { flags } = parseFlags(
    args,
    { '-f': 'filter', '--filter': 'filter', '--format': 'format' },
    { '-a': 'all', '--all': 'all', '-q': 'quiet', '--quiet': 'quiet', '--no-trunc': 'notrunc' },
    false,
  );
  /** @type {Record<string, string[]>} */
  const filters = {};
  for (const f of flags.filter ?? []) {
    const eq = f.indexOf('=');
    if (eq < 0) die(1, `Error response from daemon: bad format of filter (expected name=value)`);
    (filters[f.slice(0, eq)] ??= []).push(f.slice(eq + 1));
  }
  for (const key of Object.keys(filters)) {
    if (!['label', 'name', 'status', 'id'].includes(key)) {
      die(
        1,
        `Error response from daemon: invalid filter '${key}' (stand-in: label, name, status, id)`,
      );
    }
  }
  const list = allContainers()
    .filter((c) => flags.all || stateOf(c) === 'running')
    .filter((c) =>
      (filters.label ?? []).every((f) => {
        const eq = f.indexOf('=');
        return eq < 0 ? f in c.labels : c.labels[f.slice(0, eq)] === f.slice(eq + 1);
      }),
    )
    .filter((c) => !filters.name || filters.name.some((n) => new RegExp(n).test(c.name)))
    .filter((c) => !filters.status || filters.status.includes(stateOf(c)))
    .filter((c) => !filters.id || filters.id.some((id) => c.id.startsWith(id)))
    .sort((a, b) => b.created.localeCompare(a.created));
  const full = Boolean(flags.notrunc);
  if (flags.quiet) {
    for (const c of list) out(full ? c.id : c.id.slice(0, 12));
    return;
  }
  const format = flags.format?.at(-1);
  if (format) {
    for (const c of list) out(render(format, psShape(c, full), c.labels));
    return;
  }
  const rows = list.map((c) => psShape(c, full));
  const cols = /** @type {const} */ (['ID', 'Image', 'Status', 'Ports', 'Names']);
  const head = ['CONTAINER ID', 'IMAGE', 'STATUS', 'PORTS', 'NAMES'];
  const widths = cols.map((col, i) =>
    Math.max(head[i]?.length ?? 0, ...rows.map((r) => r[col].length)),
  );
  const line = (/** @type {string[]} */ cells) =>
    cells
      .map((s, i) => s.padEnd(widths[i] ?? 0))
      .join('   ')
      .trimEnd();
  out(line(head));
  for (const r of rows) out(line(cols.map((col) => r[col])));
}

/** @param {string[]} args */
function inspect(args) {
  const { flags, positional } = parseFlags(
    args,
    { '-f': 'format', '--format': 'format', '--type': 'type' },
    {},
    false,
  );
  const format = flags.format?.at(-1);
  const found = [];
  const missing = [];
  for (const ref of positional) {
    const c = findContainer(ref);
    if (c) found.push(inspectShape(c));
    else missing.push(ref);
  }
  if (format) for (const shape of found) out(render(format, shape, {}));
  else out(JSON.stringify(found, null, 4));
  if (missing.length) die(1, missing.map((ref) => `Error: No such object: ${ref}`).join('\n'));
}

/** @param {string[]} args */
function logs(args) {
  const { positional } = parseFlags(args, {}, { '-f': 'follow', '--follow': 'follow' }, false);
  const ref = positional[0] ?? die(1, '"docker logs" requires exactly 1 argument.');
  const c = findContainer(ref) ?? die(1, `Error response from daemon: No such container: ${ref}`);
  const file = path.join(dir.logs, `${safeName(c.name)}.log`);
  if (fs.existsSync(file)) process.stdout.write(fs.readFileSync(file));
}

/** @param {string[]} args */
function pull(args) {
  const image =
    args.filter((a) => !a.startsWith('-'))[0] ??
    die(1, '"docker pull" requires exactly 1 argument.');
  if (image.includes('unpullable')) {
    die(
      1,
      `Error response from daemon: manifest for ${image} not found: manifest unknown: manifest unknown`,
    );
  }
  const file = path.join(dir.images, `${createHash('sha256').update(image).digest('hex')}.json`);
  writeJson(file, { image, pulled: new Date().toISOString() });
  out(`Status: Downloaded newer image for ${image}\n${image}`);
}

/** @param {string[]} args */
function network(args) {
  const [sub, ...rest] = args;
  const { positional } = parseFlags(
    rest,
    { '-d': 'driver', '--driver': 'driver', '-f': 'format', '--format': 'format' },
    { '-q': 'quiet' },
    false,
  );
  /** @param {string} name */
  const file = (name) => path.join(dir.networks, `${safeName(name)}.json`);
  switch (sub) {
    case 'inspect': {
      const found = positional.filter((n) => fs.existsSync(file(n)));
      out(
        JSON.stringify(
          found.map((n) => readJson(file(n))),
          null,
          4,
        ),
      );
      const missing = positional.filter((n) => !found.includes(n));
      if (missing.length)
        die(1, missing.map((n) => `Error response from daemon: network ${n} not found`).join('\n'));
      return;
    }
    case 'create': {
      const name = positional[0] ?? die(1, '"docker network create" requires exactly 1 argument.');
      const id = randomBytes(32).toString('hex');
      try {
        fs.writeFileSync(file(name), JSON.stringify({ Name: name, Id: id, Driver: 'bridge' }), {
          flag: 'wx',
        });
      } catch {
        die(1, `Error response from daemon: network with name ${name} already exists`);
      }
      out(id);
      return;
    }
    case 'rm': {
      for (const name of positional) {
        if (!fs.existsSync(file(name)))
          die(1, `Error response from daemon: network ${name} not found`);
        fs.rmSync(file(name));
        out(name);
      }
      return;
    }
    case 'ls':
      for (const f of fs.readdirSync(dir.networks)) out(readJson(path.join(dir.networks, f)).Name);
      return;
    default:
      die(1, `docker: 'network ${sub ?? ''}' is not supported by the docker stand-in`);
  }
}

function info() {
  const list = allContainers();
  out(
    [
      'Server:',
      ` Containers: ${list.length}`,
      `  Running: ${list.filter((c) => stateOf(c) === 'running').length}`,
      ' Server Version: clarateach-docker-standin',
      ` Docker Root Dir: ${STATE}`,
    ].join('\n'),
  );
}

async function main() {
  if (!STATE) die(1, 'docker stand-in: CT_DOCKER_STATE is not set (it names the state directory)');
  for (const d of Object.values(dir)) fs.mkdirSync(d, { recursive: true });
  const [command, ...args] = process.argv.slice(2);
  switch (command) {
    case 'info':
      return info();
    case 'pull':
      return pull(args);
    case 'network':
      return network(args);
    case 'run':
      return run(args);
    case 'start':
      return start(args);
    case 'stop':
      return stop(args);
    case 'rm':
      return rm(args);
    case 'ps':
      return ps(args);
    case 'inspect':
      return inspect(args);
    case 'logs':
      return logs(args);
    default:
      die(
        1,
        `docker: '${command ?? ''}' is not a docker command (or not one the stand-in implements).`,
      );
  }
}

try {
  await main();
} catch (error) {
  if (error instanceof DockerError) {
    if (error.message) process.stderr.write(`${error.message}\n`);
    process.exit(error.code);
  }
  process.stderr.write(
    `docker stand-in: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
}
