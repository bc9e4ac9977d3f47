import type { SeatUser } from './privileges.ts';

/** The seat server's settings, read from the environment once at start. */
export interface SeatConfig {
  home: string;
  terminalPort: number;
  filesPort: number;
  workspacePort: number;
  uploadMaxBytes: number;
  shell: string;
  host: string;
  className: string;
  seat: string;
  instructionFiles: { workshop: string; image: string };
  /** SEAT_UID and SEAT_GID: the learner's ids, for a server started as root (the container). */
  user?: SeatUser;
  /** CLARATEACH_PORTAL_ORIGIN: the one other site that may frame the seat's pages. */
  portalOrigin?: string;
}

export const DEFAULT_UPLOAD_MAX_BYTES = 100 * 1024 * 1024;

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number`);
  return n;
}

function id(value: string, name: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1 || n > 0xfffffffe) {
    throw new Error(`${name} must be a user or group id above 0`);
  }
  return n;
}

/** `scheme://host[:port]`, nothing more: it goes into the pages' CSP as a source. */
function origin(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (!/^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(value)) {
    throw new Error('CLARATEACH_PORTAL_ORIGIN must be an origin: https://host[:port]');
  }
  return value;
}

function learner(env: NodeJS.ProcessEnv): SeatUser | undefined {
  if (!env.SEAT_UID && !env.SEAT_GID) return undefined;
  if (!env.SEAT_UID || !env.SEAT_GID) throw new Error('SEAT_UID and SEAT_GID go together');
  return { uid: id(env.SEAT_UID, 'SEAT_UID'), gid: id(env.SEAT_GID, 'SEAT_GID') };
}

/** Pure: environment in, settings out; a malformed value stops the server at start. */
export function parseSeatConfig(env: NodeJS.ProcessEnv): SeatConfig {
  const home = env.SEAT_HOME || env.HOME;
  if (!home) throw new Error('SEAT_HOME or HOME must be set');
  const max = env.UPLOAD_MAX_BYTES ? Number(env.UPLOAD_MAX_BYTES) : DEFAULT_UPLOAD_MAX_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new Error('UPLOAD_MAX_BYTES must be a positive integer');
  }
  return {
    home,
    terminalPort: port(env.TERMINAL_PORT, 3001, 'TERMINAL_PORT'),
    filesPort: port(env.FILES_PORT, 3002, 'FILES_PORT'),
    workspacePort: port(env.WORKSPACE_PORT, 3003, 'WORKSPACE_PORT'),
    uploadMaxBytes: max,
    shell: env.SEAT_SHELL || '/bin/bash',
    // All interfaces in the container (Docker publishes the ports on loopback only).
    host: env.SEAT_BIND || '0.0.0.0',
    className: env.CLARATEACH_CLASS_NAME ?? '',
    seat: env.CLARATEACH_SEAT ?? '',
    // The startup script mounts the class's instructions here; an image may ship its own.
    instructionFiles: {
      workshop: env.CLARATEACH_INSTRUCTIONS_FILE || '/etc/clarateach/instructions.md',
      image: env.WORKSHOP_INSTRUCTIONS_FILE || '/opt/workshop/instructions.md',
    },
    user: learner(env),
    portalOrigin: origin(env.CLARATEACH_PORTAL_ORIGIN),
  };
}
