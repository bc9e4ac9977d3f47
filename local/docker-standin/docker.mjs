// @ts-check
// A stand-in for the docker CLI, for machines without a Docker daemon. It implements exactly the
// subset the VM startup script uses (plus what tests and local/vm-runner.ts need to look and
// clean up), with docker's exit codes and error wording where a caller may depend on them:
//
//   info | pull IMAGE | image inspect IMAGE… | network inspect|create|rm|ls NAME
//   run -d --name N [-p [IP:]H:C[/proto]]… [-e K=V]… [-v H:C[:ro]]… [--label K=V]…
//       [--network NET] [--restart POLICY] [-m SIZE] [--shm-size SIZE] [--pids-limit N]
//       IMAGE [CMD…]
//   start|stop N… | rm -f N… | ps [-a] [-q] [--no-trunc] [--filter K=V]… [--format T]
//   inspect [--format T] N… | logs [--tail N] N
//
// Containers of a workspace or Neko image are a small node HTTP server (container.mjs) on every
// published port, on 127.0.0.1 only. A caddy image (reference containing "caddy") runs the real
// `caddy` with the bind-mounted paths of its command mapped to the host. An image reference
// containing "broken" cannot start (exit 125, like a container whose entrypoint is missing), one
// containing "crashing" starts and exits soon after, one containing "unpullable" cannot be pulled.
// Resource limits are validated and shown by inspect, not enforced.
//
// State lives in $CT_DOCKER_STATE (see state-dir.mjs). Processes are started in their own process
// group (processes.mjs). The commands live in lifecycle.mjs (run, start, stop, rm), queries.mjs
// (ps, inspect, logs, info), network.mjs and pull.mjs; args.mjs parses their flags.
import process from 'node:process';
import { DockerError, die } from './cli.mjs';
import { ensureStateDir } from './state-dir.mjs';

// A SIGTERM (the caller being stopped) must not land between starting a process and recording
// its pid: with a handler, node delivers it between event-loop turns, never inside synchronous code.
process.on('SIGTERM', () => process.exit(143));
process.on('SIGINT', () => process.exit(130));

// Each command loads only its own group's modules: the startup script calls this dozens of times.
/** @typedef {(args: string[]) => void | Promise<void>} Command */
/** @type {Map<string, () => Promise<Command>>} */
const COMMANDS = new Map([
  ['info', async () => (await import('./queries.mjs')).info],
  ['pull', async () => (await import('./pull.mjs')).pull],
  ['image', async () => (await import('./pull.mjs')).image],
  ['network', async () => (await import('./network.mjs')).network],
  ['run', async () => (await import('./lifecycle.mjs')).run],
  ['start', async () => (await import('./lifecycle.mjs')).start],
  ['stop', async () => (await import('./lifecycle.mjs')).stop],
  ['rm', async () => (await import('./lifecycle.mjs')).rm],
  ['ps', async () => (await import('./queries.mjs')).ps],
  ['inspect', async () => (await import('./queries.mjs')).inspect],
  ['logs', async () => (await import('./queries.mjs')).logs],
]);

async function main() {
  ensureStateDir();
  const [command, ...args] = process.argv.slice(2);
  const load =
    COMMANDS.get(command ?? '') ??
    die(
      1,
      `docker: '${command ?? ''}' is not a docker command (or not one the stand-in implements).`,
    );
  const handler = await load();
  return handler(args);
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
