// Composes one DRIMbox from its configuration: database, PACS adapter, the peer listener (mutual
// TLS, DICOMweb for other boxes), the user-facing listener (health, metrics, login, viewer…), the
// trust layer, and the roles (source, consumer) as plugins that extend both listeners.
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { DrimboxConfig } from './config/schema.js';
import { sql } from 'kysely';
import { openStore, type Store } from './store/database.js';
import { AuditLog } from './store/audit.js';
import type { CrlStore } from './trust/crl.js';
import { createPacs } from './pacs/index.js';
import type { Pacs } from './pacs/pacs.js';
import { PeerAccess, staticPeerList } from './source/peer-access.js';
import { frameworkErrors, installErrorHandling } from './http/errors.js';
import { adminAuditRoutes } from './http/admin-audit.js';
import { keepAudit } from './store/audit-retention.js';
import { healthRoute, type HealthCheck } from './http/health.js';
import { Metrics } from './http/metrics.js';
import { createLogger } from './log.js';
import type { DmpClient } from './dmp/client.js';
import type { SessionStore } from './trust/sessions.js';
import type { TokenIntrospector } from './trust/introspection.js';
import type { AllowListClient } from './trust/allowlist-client.js';
import type { PublicationRepository } from './source/publication/repository.js';
import { serverTls } from './http/tls.js';
import { securityHeaders } from './http/security-headers.js';

/** What a role plugin gets to extend the box with (before the listeners start). */
export interface RoleContext {
  config: DrimboxConfig;
  logger: Logger;
  /** the box's database (SQLite or PostgreSQL): repositories take store.db */
  store: Store;
  pacs: Pacs;
  audit: AuditLog;
  metrics: Metrics;
  /** the peer API's single authorization hook: the trust layer adds guards with access.use(), the
   *  source role its KOS guard with access.useScope() and mounts the peer API */
  access: PeerAccess;
  peer: FastifyInstance;
  user: FastifyInstance;
  healthChecks: HealthCheck[];
  /** run at close, in reverse order of registration */
  onClose(fn: () => Promise<void> | void): void;
  /** addresses of extra listeners a role opens (e.g. mllp), reported in Box.addresses */
  addresses: Record<string, { host: string; port: number; aeTitle?: string }>;
  /** services the trust layer and roles share */
  services: Services;
}

/** Shared services, set by the plugin that owns each (trust layer, DMP) and used by the roles. */
export interface Services {
  dmp?: DmpClient;
  sessions?: SessionStore;
  introspector?: TokenIntrospector;
  allowList?: AllowListClient;
  /** the CAs' revocation lists (peer.tls.crlFiles/crlUrls), for peer certificates both ways */
  revocation?: CrlStore;
  /** what this box published (source role): lets its consumer role resolve report links */
  publications?: PublicationRepository;
}

export type RolePlugin = (ctx: RoleContext) => Promise<void>;

export interface Box {
  config: DrimboxConfig;
  store: Store;
  pacs: Pacs;
  audit: AuditLog;
  access: PeerAccess;
  metrics: Metrics;
  peer: FastifyInstance;
  user: FastifyInstance;
  services: Services;
  /** actual URLs (ports resolved when 0 was configured) */
  peerUrl: string;
  userUrl: string;
  addresses: Record<string, { host: string; port: number; aeTitle?: string }>;
  close(): Promise<void>;
}

export interface BoxOptions {
  logger?: Logger;
  /** extra health checks contributed by the caller */
  healthChecks?: HealthCheck[];
  /** plugins run in order before the listeners start (trust layer first, then roles) */
  plugins?: RolePlugin[];
}

/** What /healthz asks: this process's own database connection and its peer listener (the user
 *  listener is the one answering). Shared dependencies are not among them (http/health.ts). */
function instanceChecks(store: Store, peer: FastifyInstance): HealthCheck[] {
  return [
    { name: 'database', scope: 'instance', run: async () => { await sql`SELECT 1`.execute(store.db); return { ok: true, detail: store.dialect }; } },
    { name: 'listeners', scope: 'instance', run: async () => (peer.server.listening ? { ok: true } : { ok: false, detail: 'the peer listener is not listening' }) },
  ];
}

export async function startBox(config: DrimboxConfig, opts: BoxOptions = {}): Promise<Box> {
  const logger = opts.logger ?? createLogger(config.log.level, config.box.name);
  const store = await openStore(config.database.url);
  const audit = await AuditLog.open(store, (err) => logger.error({ err }, 'audit row not written'));
  const metrics = new Metrics();
  const pacs = await createPacs(config.pacs, { store, logger });
  const access = new PeerAccess(staticPeerList(config.peer.allowedPeers));
  const closers: (() => Promise<void> | void)[] = [];

  const peer = Fastify({
    loggerInstance: logger.child({ listener: 'peer' }),
    logController: new LogController({ disableRequestLogging: true }),
    https: {
      cert: readFileSync(config.peer.tls.cert),
      key: readFileSync(config.peer.tls.key),
      ca: readFileSync(config.peer.tls.ca),
      // Certificates are checked per request (PeerAccess), so refusals get a status and an audit row.
      requestCert: true,
      rejectUnauthorized: false,
      ...serverTls,
    },
    routerOptions: { maxParamLength: 512 },
    frameworkErrors,
  }) as unknown as FastifyInstance;
  installErrorHandling(peer);
  await securityHeaders(peer);
  metrics.instrument(peer, 'peer');
  // the peer DICOMweb API is mounted by the source role only: a consumer-only box serves no PACS

  const user = Fastify({
    loggerInstance: logger.child({ listener: 'user' }),
    logController: new LogController({ disableRequestLogging: true }),
    https: { cert: readFileSync(config.user.tls.cert), key: readFileSync(config.user.tls.key), ...serverTls },
    frameworkErrors,
  }) as unknown as FastifyInstance;
  installErrorHandling(user);
  await securityHeaders(user);
  metrics.instrument(user, 'user');

  const ctx: RoleContext = {
    config, logger, store, pacs, audit, metrics, access, peer, user,
    healthChecks: [...instanceChecks(store, peer), { name: 'pacs', run: (signal) => pacs.echo(signal) }, ...(opts.healthChecks ?? [])],
    onClose: (fn) => { closers.push(fn); },
    addresses: {},
    services: {},
  };
  try {
    for (const plugin of opts.plugins ?? []) await plugin(ctx);
  } catch (e) {
    for (const fn of closers.reverse()) await fn();
    await pacs.close();
    await store.close();
    throw e;
  }
  healthRoute(user, ctx.healthChecks);
  adminAuditRoutes(user, { audit, token: config.admin.token, windowMinutes: config.audit.accessWindowMinutes });
  const stopRetention = keepAudit(audit, config.audit.retentionDays, logger);
  user.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4').send(await metrics.render()));

  const peerAddr = await peer.listen({ host: config.peer.host, port: config.peer.port });
  const userAddr = await user.listen({ host: config.user.host, port: config.user.port });
  logger.info({ peer: peerAddr, user: userAddr, pacs: config.pacs.kind, roles: config.roles, ...ctx.addresses }, 'DRIMbox started');

  return {
    config, store, pacs, audit, access, metrics, peer, user, services: ctx.services,
    peerUrl: peerAddr.replace('http:', 'https:'),
    userUrl: userAddr.replace('http:', 'https:'),
    addresses: ctx.addresses,
    async close() {
      await Promise.allSettled([peer.close(), user.close()]);
      stopRetention();
      for (const fn of closers.reverse()) {
        try { await fn(); } catch (e) { logger.warn({ err: e }, 'error while closing'); }
      }
      await pacs.close();
      await audit.flush();
      await store.close();
    },
  };
}
