// @ts-check
// docker network inspect|create|rm|ls: named records in networks/, nothing more.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseFlags } from './args.mjs';
import { die, out } from './cli.mjs';
import { dir, networkFile, readJson } from './state-dir.mjs';

/** @param {string[]} args */
export function network(args) {
  const [sub, ...rest] = args;
  const { positional } = parseFlags(
    rest,
    { '-d': 'driver', '--driver': 'driver', '-f': 'format', '--format': 'format' },
    { '-q': 'quiet' },
    false,
  );
  /** @param {string} name */
  switch (sub) {
    case 'inspect': {
      const found = positional.filter((n) => fs.existsSync(networkFile(n)));
      out(
        JSON.stringify(
          found.map((n) => readJson(networkFile(n))),
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
        fs.writeFileSync(
          networkFile(name),
          JSON.stringify({ Name: name, Id: id, Driver: 'bridge' }),
          {
            flag: 'wx',
          },
        );
      } catch {
        die(1, `Error response from daemon: network with name ${name} already exists`);
      }
      out(id);
      return;
    }
    case 'rm': {
      for (const name of positional) {
        if (!fs.existsSync(networkFile(name)))
          die(1, `Error response from daemon: network ${name} not found`);
        fs.rmSync(networkFile(name));
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
