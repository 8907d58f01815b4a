// Runs the PSC simulator alone: tsx sandbox/psc/main.ts --port 8180 --client id:secret:https://box/auth/callback [...]
import { parseArgs } from 'node:util';
import { startPscSimulator, type PscClient } from './simulator.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8180' },
    client: { type: 'string', multiple: true, default: [] },
    'access-token-ttl': { type: 'string', default: '600' },
    'data-dir': { type: 'string' },
  },
});

const clients: PscClient[] = (values.client ?? []).map((spec) => {
  const [clientId, secret, ...uri] = spec.split(':');
  if (!clientId || !secret || !uri.length) throw new Error(`--client must be id:secret:redirect_uri, got ${spec}`);
  return { client_id: clientId, client_secret: secret, redirect_uris: [uri.join(':')] };
});

const sim = await startPscSimulator({
  port: Number(values.port),
  clients,
  accessTokenTtlSeconds: Number(values['access-token-ttl']),
  ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
});
console.log(JSON.stringify({ psc: sim.issuer, clients: clients.map((c) => c.client_id), clinicians: sim.clinicians.map((c) => c.rpps) }));
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
