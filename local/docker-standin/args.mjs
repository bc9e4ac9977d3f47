// @ts-check
// Argument parsing: docker's flags, publish specs and bind mounts.
import { die } from './cli.mjs';

/**
 * @typedef {import('./containers.mjs').Port} Port
 * @typedef {import('./containers.mjs').Bind} Bind
 */

/**
 * Splits `args` into flags and positionals, stopping at the first positional when `stopAtPositional`
 * (docker run: everything after the image is the command).
 * @param {string[]} args
 * @param {Record<string, string>} valueFlags alias → canonical name, for flags taking a value
 * @param {Record<string, string>} boolFlags alias → canonical name
 * @param {boolean} stopAtPositional
 */
export function parseFlags(args, valueFlags, boolFlags, stopAtPositional) {
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
export function parsePort(spec) {
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
export function parseBind(spec) {
  const [host = '', container = '', mode = ''] = spec.split(':');
  if (!host.startsWith('/') || !container.startsWith('/')) {
    die(125, `docker: the stand-in supports absolute bind mounts only: ${spec}`);
  }
  return { host, container, mode };
}
