import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { claim, release } from './claims.ts';

/*
 * Ports picked here are bound later by another process (an emulator, Caddy, a container), seconds
 * after the check. They are drawn below Linux's ephemeral range (32768+), where the kernel puts
 * outgoing connections and port-0 binds, so that no connection of a busy test run can take one
 * in between; and at random, so that processes picking side by side rarely try the same one.
 * Single ports and seat blocks have ranges of their own.
 */
const SINGLE = { from: 24_000, to: 32_000 };
const BLOCKS = { from: 10_000, to: 24_000 };

/** Blocks are claimed across processes (local/claims.ts): Docker binds them seconds later. */
const CLAIMS = 'port-blocks';
/** Picked by this process and not given back: never handed out twice. */
const picked = new Set<number>();
const reservedBases = new Set<number>();

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** A free loopback TCP port for another process to bind. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = SINGLE.from + randomInt(SINGLE.to - SINGLE.from);
    if (picked.has(port)) continue;
    picked.add(port);
    if (await tcpFree(port)) return port;
  }
  throw new Error(`no free port between ${SINGLE.from} and ${SINGLE.to}`);
}

/**
 * A port base whose seat ports (base+10i+1..4), mux ports (muxBase+i, TCP and UDP) and seat
 * HTTPS origins (seatHttpsBase+i) are free for `seats` seats. Give it back with
 * releasePortBlock when the VM stops.
 */
export async function pickPortBlock(
  seats: number,
): Promise<{ portBase: number; muxPortBase: number; seatHttpsBase: number }> {
  const muxOffset = 10 * seats + 10;
  const httpsOffset = muxOffset + seats + 1;
  const blockSize = Math.ceil((httpsOffset + seats + 1) / 100) * 100;
  const slots = Math.floor((BLOCKS.to - BLOCKS.from) / blockSize);
  for (let attempt = 0; attempt < 200; attempt++) {
    const portBase = BLOCKS.from + randomInt(slots) * blockSize;
    if (reservedBases.has(portBase)) continue;
    const muxPortBase = portBase + muxOffset;
    const seatHttpsBase = portBase + httpsOffset;
    const tcp: number[] = [];
    const udp: number[] = [];
    for (let i = 1; i <= seats; i++) {
      tcp.push(
        portBase + 10 * i + 1,
        portBase + 10 * i + 2,
        portBase + 10 * i + 3,
        portBase + 10 * i + 4,
        muxPortBase + i,
        seatHttpsBase + i,
      );
      udp.push(muxPortBase + i);
    }
    const free = await Promise.all([...tcp.map(tcpFree), ...udp.map(udpFree)]);
    if (free.every(Boolean) && claim(CLAIMS, String(portBase))) {
      reservedBases.add(portBase);
      return { portBase, muxPortBase, seatHttpsBase };
    }
  }
  throw new Error(
    `no free block of ports for ${seats} seats between ${BLOCKS.from} and ${BLOCKS.to}`,
  );
}

export function releasePortBlock(portBase: number): void {
  reservedBases.delete(portBase);
  release(CLAIMS, String(portBase));
}
