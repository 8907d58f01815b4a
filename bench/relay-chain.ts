// The ceiling of any two-hop proxy on this machine: two TLS byte relays in a row in front of a PACS
// (client → TLS → relay → TLS → relay → TCP → PACS), no HTTP parsing, no checks.
import { connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { testPki } from '../test/helpers/pki.js';
import { serverTls } from '../gateway/src/http/tls.js';

const listen = (srv: Server) => new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as AddressInfo).port)));

/** Two TLS byte relays in a row in front of `target` (http://host:port): returns the first's https URL. */
export async function relayChain(target: string): Promise<{ url: string; close: () => void }> {
  const pki = await testPki();
  const tls = { cert: readFileSync(pki.boxes['box-b'].chain), key: readFileSync(pki.boxes['box-b'].key), ...serverTls };
  const ca = readFileSync(pki.ca.cert);
  const t = new URL(target);
  const pipeBoth = (a: Socket, b: Socket) => {
    a.pipe(b);
    b.pipe(a);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
  };
  // second hop: TLS in, TCP to the PACS
  const last = createTlsServer(tls, (c) => pipeBoth(c, tcpConnect(Number(t.port), t.hostname)));
  const lastPort = await listen(last);
  // first hop: TLS in, TLS to the second hop
  const first = createTlsServer(tls, (c) => pipeBoth(c, tlsConnect({ host: '127.0.0.1', port: lastPort, ca, servername: 'localhost' })));
  const firstPort = await listen(first);
  return { url: `https://127.0.0.1:${firstPort}${t.pathname}`, close: () => { first.close(); last.close(); } };
}
