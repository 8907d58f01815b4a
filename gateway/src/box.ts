// Composes one DRIMbox from its configuration: database, PACS adapter, the peer listener (mutual
// TLS, DICOMweb for other boxes) and the user-facing listener (health, metrics, admin, viewer…).
import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DrimboxConfig } from './config/schema.js';
import { openDb, type Db } from './store/db.js';
import { AuditLog } from './store/audit.js';
import { createPacs } from './pacs/index.js';
import type { Pacs } from './pacs/pacs.js';
import { PeerAccess, staticPeerList } from './source/peer-access.js';
import { peerApi } from './source/peer-api.js';
import { installErrorHandling } from './http/errors.js';
import { healthRoute, type HealthCheck } from './http/health.js';
import { Metrics } from './http/metrics.js';
import { createLogger } from './log.js';

export interface Box {
  config: DrimboxConfig;
  db: Db;
  pacs: Pacs;
  audit: AuditLog;
  access: PeerAccess;
  metrics: Metrics;
  peer: FastifyInstance;
  user: FastifyInstance;
  /** actual URLs (ports resolved when 0 was configured) */
  peerUrl: string;
  userUrl: string;
  close(): Promise<void>;
}

export interface BoxOptions {
  logger?: Logger;
  /** extra health checks contributed by other components */
  healthChecks?: HealthCheck[];
}

export async function startBox(config: DrimboxConfig, opts: BoxOptions = {}): Promise<Box> {
  const logger = opts.logger ?? createLogger(config.log.level, config.box.name);
  const db = openDb(join(config.dataDir, 'drimbox.db'));
  const audit = new AuditLog(db);
  const metrics = new Metrics();
  const pacs = await createPacs(config.pacs, { db, logger });
  const access = new PeerAccess(staticPeerList(config.peer.allowedPeers));

  const peer = Fastify({
    loggerInstance: logger.child({ listener: 'peer' }),
    disableRequestLogging: true,
    https: {
      cert: readFileSync(config.peer.tls.cert),
      key: readFileSync(config.peer.tls.key),
      ca: readFileSync(config.peer.tls.ca),
      // Certificates are checked per request (PeerAccess), so refusals get a status and an audit row.
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    maxParamLength: 512,
  }) as unknown as FastifyInstance;
  installErrorHandling(peer);
  metrics.instrument(peer, 'peer');
  await peer.register(peerApi, { prefix: '/dicom-web', pacs, access, audit });

  const user = Fastify({
    loggerInstance: logger.child({ listener: 'user' }),
    disableRequestLogging: true,
    https: { cert: readFileSync(config.user.tls.cert), key: readFileSync(config.user.tls.key), minVersion: 'TLSv1.2' },
  }) as unknown as FastifyInstance;
  installErrorHandling(user);
  metrics.instrument(user, 'user');
  healthRoute(user, [{ name: 'pacs', run: (signal) => pacs.echo(signal) }, ...(opts.healthChecks ?? [])]);
  user.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4').send(metrics.render()));

  const peerAddr = await peer.listen({ host: config.peer.host, port: config.peer.port });
  const userAddr = await user.listen({ host: config.user.host, port: config.user.port });
  logger.info({ peer: peerAddr, user: userAddr, pacs: config.pacs.kind, roles: config.roles }, 'DRIMbox started');

  return {
    config, db, pacs, audit, access, metrics, peer, user,
    peerUrl: peerAddr.replace('http:', 'https:'),
    userUrl: userAddr.replace('http:', 'https:'),
    async close() {
      await Promise.allSettled([peer.close(), user.close()]);
      await pacs.close();
      db.close();
    },
  };
}
