// What answers "outside the VM" (run by outside.ts inside its network namespace): TCP on PORT at
// every address, and a DNS resolver on RESOLVER (as GCE's metadata address is), UDP and TCP 53,
// that answers every A question with 192.0.2.1. Each connection or query is one line on stdout,
// "ADDRESS" for TCP on PORT, "dns/udp" or "dns/tcp" for DNS; "listening" once all listen.
import dgram from 'node:dgram';
import net from 'node:net';

const [port, resolver] = [Number(process.argv[2]), process.argv[3]!];

/** The answer to a DNS query: its id and first question, and an A record if it asked for one. */
function answer(query: Buffer): Buffer {
  const end = 12 + query.subarray(12).indexOf(0) + 5; // header, name, type and class
  const isA = query.readUInt16BE(end - 4) === 1;
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8180, 2); // a response, recursion desired and available, no error
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(isA ? 1 : 0, 6);
  header.writeUInt32BE(0, 8);
  const record = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
  return Buffer.concat([header, query.subarray(12, end), ...(isA ? [record] : [])]);
}

let pending = 3;
const listening = () => --pending === 0 && console.log('listening');

net
  .createServer((s) => {
    console.log(s.localAddress);
    s.on('error', () => undefined).end('outside\n');
  })
  .listen(port, '0.0.0.0', listening);

const udp = dgram.createSocket('udp4');
udp.on('message', (query, from) => {
  console.log('dns/udp');
  udp.send(answer(query), from.port, from.address);
});
udp.bind(53, resolver, listening);

net
  .createServer((s) => {
    s.on('error', () => undefined);
    let received = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      console.log('dns/tcp');
      const reply = answer(received.subarray(2, 2 + received.readUInt16BE(0)));
      const length = Buffer.alloc(2);
      length.writeUInt16BE(reply.length);
      s.end(Buffer.concat([length, reply]));
    });
  })
  .listen(53, resolver, listening);
