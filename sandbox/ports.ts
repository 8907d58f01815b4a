// Free loopback ports: every server of the demo and the tests listens on 127.0.0.1 and a port nobody
// else holds. Ports are drawn below the kernel's ephemeral range: a port taken from that range with
// bind(0) can be handed to one of the thousands of outgoing loopback connections (to Orthanc, between
// boxes) in the moment between its release here and the server's own bind (seen as EADDRINUSE).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOW = 15000;
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOW + Math.floor(Math.random() * (high - LOW));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  return bindable(0) as Promise<number>;
}

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return low > LOW + 1000 ? low : 32768;
  } catch {
    return 32768;
  }
}

/** Binds and releases 127.0.0.1:port; resolves the port bound (0 picks one), or 0 when it is taken. */
function bindable(port: number): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', () => resolve(0));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(bound));
    });
  });
}
