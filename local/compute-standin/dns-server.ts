/**
 * A DNS-over-UDP responder for the record sets the stand-in holds, so that a local ACME server
 * (`pebble -dnsserver 127.0.0.1:PORT`) and Node's resolver can resolve the VMs' hostnames.
 *
 * It answers a standard query with one question: A records for a held name, NOERROR with no answer
 * for a held name's other types (AAAA, …), NXDOMAIN for a name not held; the question is echoed
 * as received. Anything it cannot parse (short, a response, no or several questions, a label past
 * the packet) is dropped without an answer. Answers are authoritative and fit in 512 bytes
 * (TC set when addresses had to be left out); EDNS and other sections of the query are ignored.
 */
import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';

/** What a name holds: whether it exists at all, and its A addresses with their TTL. */
export type AddressLookup = (name: string) => { held: boolean; addresses: string[]; ttl: number };

export interface DnsServer {
  port: number;
  close(): Promise<void>;
}

interface Query {
  id: number;
  opcode: number;
  recursionDesired: boolean;
  /** where the question ends: the header and question are echoed up to here */
  end: number;
  name: string;
  type: number;
  klass: number;
}

const HEADER = 12;
const MAX_UDP = 512;
const ANSWER_BYTES = 16;
const TYPE_A = 1;
const CLASS_IN = 1;
const NOERROR = 0;
const NXDOMAIN = 3;
const NOTIMP = 4;

/** The query in `msg`, or null when it is none we answer. */
export function parseQuery(msg: Buffer): Query | null {
  if (msg.length < HEADER) return null;
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000 || msg.readUInt16BE(4) !== 1) return null;
  const labels: string[] = [];
  let offset = HEADER;
  let nameBytes = 1;
  for (;;) {
    if (offset >= msg.length) return null;
    const length = msg[offset] as number;
    offset += 1;
    if (length === 0) break;
    // 64 and above are compression pointers or extended labels, never in a question we answer.
    if (length > 63 || offset + length > msg.length) return null;
    nameBytes += length + 1;
    if (nameBytes > 255) return null;
    const label = msg.toString('latin1', offset, offset + length);
    if (label.includes('.')) return null;
    labels.push(label.toLowerCase());
    offset += length;
  }
  if (offset + 4 > msg.length) return null;
  return {
    id: msg.readUInt16BE(0),
    opcode: (flags >> 11) & 0xf,
    recursionDesired: (flags & 0x0100) !== 0,
    end: offset + 4,
    name: labels.join('.'),
    type: msg.readUInt16BE(offset),
    klass: msg.readUInt16BE(offset + 2),
  };
}

/** The answer to `query` (parsed from `msg`). */
export function buildResponse(msg: Buffer, query: Query, lookup: AddressLookup): Buffer {
  const question = msg.subarray(HEADER, query.end);
  let rcode = NOTIMP;
  let addresses: string[] = [];
  let ttl = 0;
  if (query.opcode === 0) {
    const found = lookup(query.name);
    rcode = found.held ? NOERROR : NXDOMAIN;
    if (query.type === TYPE_A && query.klass === CLASS_IN) {
      addresses = found.addresses.filter((a) => isIPv4(a));
      ttl = found.ttl;
    }
  }
  const room = Math.max(0, Math.floor((MAX_UDP - HEADER - question.length) / ANSWER_BYTES));
  const answers = addresses.slice(0, room);
  const header = Buffer.alloc(HEADER);
  header.writeUInt16BE(query.id, 0);
  header.writeUInt16BE(
    0x8000 | // a response
      (query.opcode << 11) |
      0x0400 | // authoritative
      (answers.length < addresses.length ? 0x0200 : 0) |
      (query.recursionDesired ? 0x0100 : 0) |
      rcode,
    2,
  );
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((address) => {
    const record = Buffer.alloc(ANSWER_BYTES);
    record.writeUInt16BE(0xc000 | HEADER, 0); // the name: a pointer to the question's
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(CLASS_IN, 4);
    record.writeUInt32BE(ttl, 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, i) => record.writeUInt8(Number(octet), 12 + i));
    return record;
  });
  return Buffer.concat([header, question, ...records]);
}

/** Answers queries on `host:port` (0: any free port) until closed. */
export async function startDnsServer(
  lookup: AddressLookup,
  host = '127.0.0.1',
  port = 0,
): Promise<DnsServer> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, remote) => {
    let reply: Buffer | undefined;
    try {
      const query = parseQuery(msg);
      if (query) reply = buildResponse(msg, query, lookup);
    } catch {
      return; // a packet we cannot answer is dropped
    }
    if (reply) socket.send(reply, remote.port, remote.address, () => {});
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // After binding, a failed send (the asker gone) must not take the stand-in down.
  socket.on('error', () => {});
  return {
    port: socket.address().port,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
