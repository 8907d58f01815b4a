// A box in its own process for benchmarks (so its RSS can be measured apart from the client): the
// real mutual-TLS peer listener from the config, plus a plain-HTTP listener over the same PACS
// adapter to measure what TLS costs. The plain listener exists only in this benchmark harness.
// It also runs the ceiling: a bare Node reverse proxy to the PACS (no parsing, no checks, the body
// piped through), plain and with the peer listener's TLS settings: the best any Node proxy on this
// machine can do, against which the box's own cost is read.
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { createServer as createHttp, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../gateway/src/config/load.js';
import { startBox } from '../gateway/src/box.js';
import { PeerAccess } from '../gateway/src/source/peer-access.js';
import { peerApi } from '../gateway/src/source/peer-api.js';
import { installErrorHandling } from '../gateway/src/http/errors.js';

const config = loadConfig(process.argv[2]);
const box = await startBox(config);
const plain = Fastify({ logger: false });
installErrorHandling(plain);
await plain.register(peerApi, {
  prefix: '/dicom-web',
  pacs: box.pacs,
  access: new PeerAccess(() => true, () => 'CN=bench'),
  audit: box.audit,
});
const plainUrl = await plain.listen({ host: '127.0.0.1', port: 0 });

if (config.pacs.kind !== 'dicomweb') throw new Error('the bench box reads a DICOMweb PACS');
const pacsUrl = new URL(config.pacs.url);
const pipe = (req: IncomingMessage, res: ServerResponse) => {
  const up = httpRequest({
    host: pacsUrl.hostname, port: pacsUrl.port,
    path: pacsUrl.pathname.replace(/\/$/, '') + req.url!.replace(/^\/dicom-web/, ''),
    headers: { accept: req.headers.accept ?? '*/*' },
  }, (ur) => { res.writeHead(ur.statusCode!, { 'content-type': ur.headers['content-type'] ?? '' }); ur.pipe(res); });
  up.on('error', () => res.destroy());
  up.end();
};
const listen = (s: ReturnType<typeof createHttp>) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
const pipePlain = createHttp(pipe);
const pipeTls = createHttps({
  cert: readFileSync(config.peer.tls.cert), key: readFileSync(config.peer.tls.key), ca: readFileSync(config.peer.tls.ca),
  requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2',
}, pipe);
const ceilingPlainUrl = `http://127.0.0.1:${await listen(pipePlain)}`;
const ceilingMtlsUrl = `https://127.0.0.1:${await listen(pipeTls)}`;

process.stdout.write(JSON.stringify({ peerUrl: box.peerUrl, plainUrl, ceilingPlainUrl, ceilingMtlsUrl, pid: process.pid }) + '\n');
process.on('SIGTERM', async () => {
  pipePlain.close();
  pipeTls.close();
  await plain.close();
  await box.close();
  process.exit(0);
});
