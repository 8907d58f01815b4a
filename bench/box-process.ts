// A box in its own process for benchmarks (so its RSS can be measured apart from the client): the
// real mutual-TLS peer listener from the config, plus a plain-HTTP listener over the same PACS
// adapter to measure what TLS costs. The plain listener exists only in this benchmark harness.
import Fastify from 'fastify';
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
process.stdout.write(JSON.stringify({ peerUrl: box.peerUrl, plainUrl, pid: process.pid }) + '\n');
process.on('SIGTERM', async () => {
  await plain.close();
  await box.close();
  process.exit(0);
});
