// A box in its own process for benchmarks (so its RSS can be measured apart from the client): the
// real mutual-TLS peer listener from the config, plus a plain-HTTP listener over the same PACS
// adapter to measure what TLS costs. The plain listener exists only in this benchmark harness.
// It also runs the ceiling: a byte relay to the PACS (TCP, no HTTP at all, no checks), plain and
// behind the peer listener's TLS settings: the least work any proxy in Node does per byte, on this
// machine, against which the box's own cost is read.
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { loadConfig } from '../gateway/src/config/load.js';
import { startBox, type RolePlugin } from '../gateway/src/box.js';
import { PeerAccess } from '../gateway/src/source/peer-access.js';
import { peerApi } from '../gateway/src/source/peer-api.js';
import { installErrorHandling } from '../gateway/src/http/errors.js';
import { serverTls } from '../gateway/src/http/tls.js';

const config = loadConfig(process.argv[2]);
// The benchmark measures streaming, not the KOS check: both listeners serve the peer API with a scope
// guard that grants everything. Only this harness does that; a box serves peers through its source
// role's KOS guard.
const grantAll = () => undefined;
const benchPeerApi: RolePlugin = async (ctx) => {
  ctx.access.useScope(grantAll);
  await ctx.peer.register(peerApi, { prefix: '/dicom-web', pacs: ctx.pacs, access: ctx.access, audit: ctx.audit });
};
const box = await startBox(config, { plugins: [benchPeerApi] });
const plain = Fastify({ logger: false });
installErrorHandling(plain);
await plain.register(peerApi, {
  prefix: '/dicom-web',
  pacs: box.pacs,
  access: new PeerAccess(() => true, () => 'CN=bench').useScope(grantAll),
  audit: box.audit,
});
const plainUrl = await plain.listen({ host: '127.0.0.1', port: 0 });

if (config.pacs.kind !== 'dicomweb') throw new Error('the bench box reads a DICOMweb PACS');
const pacsUrl = new URL(config.pacs.url);
// each client connection relayed byte for byte to the PACS: the path is the PACS's own (/dicom-web/…)
const relay = (client: Socket) => {
  const up = connect(Number(pacsUrl.port), pacsUrl.hostname);
  client.pipe(up);
  up.pipe(client);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
};
const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
const relayPlain = createServer(relay);
const relayTls = createTlsServer({
  cert: readFileSync(config.peer.tls.cert), key: readFileSync(config.peer.tls.key), ca: readFileSync(config.peer.tls.ca),
  requestCert: true, rejectUnauthorized: true, ...serverTls,
}, relay);
const ceilingPlainUrl = `http://127.0.0.1:${await listen(relayPlain)}`;
const ceilingMtlsUrl = `https://127.0.0.1:${await listen(relayTls)}`;

process.stdout.write(JSON.stringify({ peerUrl: box.peerUrl, plainUrl, ceilingPlainUrl, ceilingMtlsUrl, pid: process.pid }) + '\n');
process.on('SIGTERM', async () => {
  relayPlain.close();
  relayTls.close();
  await plain.close();
  await box.close();
  process.exit(0);
});
