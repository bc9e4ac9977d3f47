// @ts-check
// Commands that make, start, stop and remove containers: run, start, stop, rm.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import process from 'node:process';
import { parseBind, parseFlags, parsePort } from './args.mjs';
import { DockerError, die, out } from './cli.mjs';
import { existingContainer, findContainer, running, save } from './containers.mjs';
import { killGroups, startProcess } from './processes.mjs';
import { containerFile, dataDir, networkFile } from './state-dir.mjs';

/** @typedef {import('./containers.mjs').Container} Container */

/** @param {string[]} args */
export async function run(args) {
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
      '-m': 'memory',
      '--memory': 'memory',
      '--shm-size': 'shmSize',
      '--pids-limit': 'pidsLimit',
    },
    { '-d': 'detach', '--detach': 'detach' },
    true,
  );
  // Limits are checked the way docker parses them, and recorded; they bound nothing here.
  for (const [flag, value] of [
    ['--memory', flags.memory?.at(-1)],
    ['--shm-size', flags.shmSize?.at(-1)],
  ]) {
    if (value !== undefined && !/^\d+[bkmg]?$/i.test(value)) {
      die(125, `invalid argument "${value}" for "${flag}" flag: invalid size: '${value}'`);
    }
  }
  const pidsLimit = flags.pidsLimit?.at(-1);
  if (pidsLimit !== undefined && !/^-?\d+$/.test(pidsLimit)) {
    die(
      125,
      `invalid argument "${pidsLimit}" for "--pids-limit" flag: strconv.ParseInt: invalid syntax`,
    );
  }
  const [image, ...cmd] = positional;
  if (!image) die(125, `"docker run" requires at least 1 argument.`);
  if (!flags.detach) die(125, 'docker: the stand-in runs detached containers only (-d)');
  const name = flags.name?.at(-1) ?? `standin_${randomBytes(4).toString('hex')}`;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
    die(125, `docker: Error response from daemon: Invalid container name (${name}).`);
  }
  const network = flags.network?.at(-1) ?? 'bridge';
  if (!['bridge', 'host', 'none'].includes(network) && !fs.existsSync(networkFile(network))) {
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
    limits: {
      memory: flags.memory?.at(-1) ?? null,
      shmSize: flags.shmSize?.at(-1) ?? null,
      pidsLimit: pidsLimit === undefined ? null : Number(pidsLimit),
    },
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
export async function start(args) {
  for (const ref of args) {
    const c = existingContainer(ref);
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
export async function stop(args) {
  const { positional } = parseFlags(args, { '-t': 'time', '--time': 'time' }, {}, false);
  for (const ref of positional) {
    const c = existingContainer(ref);
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
export async function rm(args) {
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
    fs.rmSync(dataDir(c.name), { recursive: true, force: true });
    out(ref);
  }
  if (status) die(status, '');
}
