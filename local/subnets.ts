import { randomInt } from 'node:crypto';
import { claim, release } from './claims.ts';
import type { CommandResult } from './commands.ts';

/*
 * Seat subnet pools. Every VM of the local stack shares this machine's Docker, so each gets a
 * block of LOCAL_POOL of its own as its CT_SEAT_SUBNET_POOL (the script cuts a /28 per seat from
 * it), the way it gets a block of ports: VMs side by side never ask Docker for the same subnet.
 */
const LOCAL_POOL = '10.126.0.0/16';
/** Addresses of one seat's subnet (a /28, as the startup script cuts them). */
const SEAT_SUBNET_SIZE = 16;
const CLAIMS = 'seat-subnet-pools';

export interface Range {
  first: number;
  last: number;
}

const toInt = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const toIp = (n: number) =>
  [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/** The addresses of an IPv4 network `a.b.c.d/n`; undefined for anything else (IPv6). */
export function cidrRange(cidr: string): Range | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
  if (!m || Number(m[2]) > 32) return undefined;
  const size = 2 ** (32 - Number(m[2]));
  const first = Math.floor(toInt(m[1]!) / size) * size;
  return { first, last: first + size - 1 };
}

export const overlap = (a: Range, b: Range) => a.first <= b.last && b.first <= a.last;

/** The blocks LOCAL_POOL is cut into for VMs of up to `seats` seats: a power of two each. */
export function poolBlocks(seats: number, pool = LOCAL_POOL): string[] {
  const range = cidrRange(pool)!;
  let bits = 32;
  while (2 ** (32 - bits) < seats * SEAT_SUBNET_SIZE) bits -= 1;
  const size = 2 ** (32 - bits);
  const blocks: string[] = [];
  for (let first = range.first; first + size - 1 <= range.last; first += size) {
    blocks.push(`${toIp(first)}/${bits}`);
  }
  return blocks;
}

/**
 * A seat subnet pool for a VM of up to `seats` seats: a block of `pool` (LOCAL_POOL) that no
 * Docker network overlaps and no other process holds. Give it back with releaseSubnetPool.
 */
export async function pickSubnetPool(
  seats: number,
  docker: (...args: string[]) => Promise<CommandResult>,
  pool = LOCAL_POOL,
): Promise<string> {
  const ids = (await docker('network', 'ls', '-q')).stdout.split('\n').filter(Boolean);
  // A network may go between the listing and the inspect: what is left is still listed.
  const inspected = await docker(
    'network',
    'inspect',
    '--format',
    '{{range .IPAM.Config}}{{.Subnet}} {{end}}',
    ...ids,
  );
  const taken = inspected.stdout
    .split(/\s+/)
    .map(cidrRange)
    .filter((r): r is Range => r !== undefined);
  const blocks = poolBlocks(seats, pool);
  for (let attempt = 0; attempt < 200; attempt++) {
    const block = blocks[randomInt(blocks.length)]!;
    const range = cidrRange(block)!;
    if (taken.some((t) => overlap(t, range))) continue;
    if (claim(CLAIMS, block)) return block;
  }
  throw new Error(`no free seat subnet pool for ${seats} seats in ${pool}`);
}

export const releaseSubnetPool = (pool: string) => release(CLAIMS, pool);
