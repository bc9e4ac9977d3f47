// @ts-check
// The process behind one stand-in container of a workspace or Neko image: it listens on each
// published host port on 127.0.0.1 (TCP as HTTP, UDP as a bound socket) and answers every HTTP
// request with 200 and a short JSON naming the container and the container port, so a test can
// tell which seat answered. An image whose reference contains "crashing" exits as soon as it
// started, serving nothing. Started by docker.mjs with the spec in CT_STANDIN_SPEC.
import dgram from 'node:dgram';
import http from 'node:http';
import process from 'node:process';
import { URL } from 'node:url';

/** @typedef {{ host: number; container: number; proto: 'tcp' | 'udp' }} PortSpec */
/** @type {{ id: string; name: string; image: string; labels: Record<string, string>; ports: PortSpec[] }} */
const spec = JSON.parse(process.env.CT_STANDIN_SPEC ?? '{}');

/** @type {Array<http.Server | dgram.Socket>} */
const sockets = [];

/** @param {string} message */
function failed(message) {
  process.stderr.write(`${message}\n`);
  if (process.send) process.send({ error: message }, () => process.exit(1));
  else process.exit(1);
}

/** @param {PortSpec} port @returns {Promise<void>} */
function listen(port) {
  return new Promise((resolve, reject) => {
    if (port.proto === 'udp') {
      const socket = dgram.createSocket('udp4');
      sockets.push(socket);
      socket.once('error', reject);
      socket.bind(port.host, '127.0.0.1', () => resolve());
      return;
    }
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://container');
      const body = JSON.stringify({
        container: spec.name,
        containerPort: port.container,
        hostPort: port.host,
        image: spec.image,
        seat: spec.labels['clarateach.seat'] ?? null,
        method: req.method,
        path: url.pathname,
      });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(body);
    });
    sockets.push(server);
    server.once('error', reject);
    server.listen(port.host, '127.0.0.1', () => resolve());
  });
}

function shutdown() {
  for (const socket of sockets) {
    if (socket instanceof http.Server) {
      socket.close();
      socket.closeAllConnections();
    } else socket.close();
  }
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

try {
  // An image whose reference contains "crashing" starts (docker run succeeds) and its app dies
  // at once, before it serves anything, as a broken app would.
  if (spec.image.includes('crashing')) {
    process.stdout.write(`${spec.name}: starting\nfatal: the workspace crashed (stand-in image)\n`);
    if (process.send) process.send({ ready: true }, () => process.exit(2));
    else process.exit(2);
  } else {
    await Promise.all(spec.ports.map(listen));
    process.stdout.write(
      `${spec.name}: listening on ${spec.ports.map((p) => `${p.host}/${p.proto}`).join(', ') || 'nothing'}\n`,
    );
    if (process.send) process.send({ ready: true });
  }
} catch (error) {
  const err = /** @type {NodeJS.ErrnoException & { port?: number }} */ (error);
  failed(`Bind for 127.0.0.1:${err.port ?? '?'} failed: ${err.code ?? err.message}`);
}
