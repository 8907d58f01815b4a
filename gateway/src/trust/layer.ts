// The trust layer of a box: who may call its peer API (the signed network allow-list), on behalf of
// which clinician (Pro Santé Connect token, introspected), and how clinicians log in to its
// user-facing listener. Deny by default: without a PSC configuration no peer request can carry a
// verifiable clinician identity, so every one is refused.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { RolePlugin } from '../box.js';
import { HttpProblem } from '../http/problem.js';
import { AllowListClient } from './allowlist-client.js';
import { TokenIntrospector } from './introspection.js';
import { SessionStore } from './sessions.js';
import { loadTokenKey } from './token-seal.js';
import { pscLoginPlugin } from './psc-login.js';
import type { PeerPrincipal } from '../source/peer-access.js';
import { enrolAtRegistry } from './enrolment.js';
import { CrlStore } from './crl.js';
import { PeerConnections } from './peer-connections.js';
import { trustAdminRoutes } from './admin-routes.js';
import { startPeriodic } from './periodic.js';
import { staticPeerList, subjectDn } from '../source/peer-access.js';
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { notConfigured } from '../http/health.js';
import { pscHealthCheck } from '../http/dependency-checks.js';

export const trustLayer: RolePlugin = async (ctx) => {
  const { config, access, logger } = ctx;

  // revocation of peer certificates, checked first: a revoked box is refused before anything else
  const crl = await startRevocation(ctx);
  ctx.services.revocation = crl;
  if (crl.enabled) {
    access.use((req) => {
      const cert = (req.raw.socket as TLSSocket).getPeerX509Certificate?.();
      const r = cert ? crl.check(cert) : { ok: true as const };
      if (!r.ok) throw new HttpProblem(401, r.reason === 'revoked' ? 'Client certificate revoked' : 'Certificate revocation status unknown', r.detail);
    });
  }
  let isListed = staticPeerList(config.peer.allowedPeers);

  if (config.allowList) {
    const a = config.allowList;
    if (a.refreshHours > 0) logger.warn({ refreshHours: a.refreshHours }, 'allowList.refreshHours is deprecated: a box revoked at the registry keeps access until the next download; use allowList.refreshMinutes (default 10)');
    const client = new AllowListClient({
      url: a.url,
      trustAnchors: a.trustAnchors.map((f) => readFileSync(f, 'utf8')),
      expectedSignerSubject: a.expectedSigner || undefined,
      intervalMs: a.refreshHours > 0 ? a.refreshHours * 3600_000 : a.refreshMinutes * 60_000,
      missRefreshMs: a.missRefreshMinutes * 60_000,
      cacheFile: join(config.dataDir, 'allowlist.xml'),
      tls: { ca: readFileSync(config.peer.tls.ca, 'utf8'), cert: readFileSync(config.peer.tls.cert, 'utf8'), key: readFileSync(config.peer.tls.key, 'utf8') },
      logger,
    });
    if (a.enrolUrl) await enrolAtRegistry(ctx.config, a.enrolUrl, logger);
    await client.start();
    ctx.services.allowList = client;
    access.setPeerFilter((dn) => client.allowsPeer(dn));
    isListed = (dn) => client.isPeerAllowed(dn);
    ctx.healthChecks.push({
      name: 'allow-list',
      severity: 'warning',
      run: async () => {
        const s = client.status();
        return { ok: s.ok, detail: s.ok ? `${s.entries} entries, verified ${s.lastGood?.toISOString()}` : `last good list ${s.lastGood?.toISOString() ?? 'never'}; ${s.lastError ?? 'stale'}` };
      },
    });
    ctx.onClose(() => client.stop());
  } else {
    // without the signed list a consumer calls no source box; a source falls back to peer.allowedPeers
    ctx.healthChecks.push(notConfigured('allow-list', config.roles.includes('consumer') ? 'no source box can be called' : 'only the static peer.allowedPeers', config.roles.includes('consumer') ? 'critical' : 'warning'));
  }

  // a peer no longer listed, or whose certificate was revoked, loses its open connections at once
  const connections = new PeerConnections(ctx.peer.server as unknown as Server);
  const dropUntrusted = () => {
    const dropped = connections.drop((cert) => isListed(subjectDn(cert)) && crl.check(cert).ok);
    for (const cert of dropped) {
      const why = isListed(subjectDn(cert)) ? 'its certificate is revoked' : 'it is no longer on the allow-list';
      logger.warn({ peer: subjectDn(cert) }, `peer connection closed: ${why}`);
      ctx.audit.record({ direction: 'peer-in', actorDn: subjectDn(cert), route: '(connection)', method: '-', status: isListed(subjectDn(cert)) ? 401 : 403, outcome: `connection closed: ${why}` });
    }
    return dropped.length;
  };
  ctx.services.allowList?.on('updated', () => dropUntrusted());
  crl.on('updated', () => dropUntrusted());
  trustAdminRoutes(ctx.user, { token: config.admin.token, allowList: ctx.services.allowList, crl, audit: ctx.audit, dropUntrusted });

  const psc = config.psc;
  ctx.healthChecks.push(psc ? pscHealthCheck(psc.issuer) : notConfigured('psc', 'no clinician can log in or be verified'));
  if (!psc) {
    access.use(() => {
      throw new HttpProblem(401, 'Token cannot be verified', 'this box has no Pro Santé Connect configuration');
    });
    return;
  }
  const introspector = new TokenIntrospector({
    issuer: psc.issuer,
    clientId: psc.clientId,
    clientSecret: psc.clientSecret,
    expectedAudience: psc.expectedAudience || undefined,
    cacheTtlMs: psc.introspectionCacheMs,
  });
  ctx.services.introspector = introspector;
  access.use((req, _scope, principal) => checkClinicianToken(req, principal, introspector));

  const sessions = new SessionStore(ctx.store.db, {
    idleTimeoutMs: psc.sessionIdleMinutes * 60_000,
    absoluteTimeoutMs: psc.sessionMaxHours * 3600_000,
    tokenKey: loadTokenKey(psc.tokenKey, config.dataDir),
  });
  ctx.services.sessions = sessions;
  await ctx.user.register(pscLoginPlugin, {
    issuer: psc.issuer,
    clientId: psc.clientId,
    clientSecret: psc.clientSecret,
    redirectUri: `${config.user.publicUrl}/auth/callback`,
    postLogoutRedirectUri: `${config.user.publicUrl}/auth/logged-out`,
    acrValues: psc.acrValues,
    scopes: psc.scopes,
    sessions,
  });
  ctx.onClose(startPeriodic(10 * 60_000, () => sessions.purgeExpired(), (err) => ctx.logger.warn({ err }, 'expired PSC sessions not purged')));
};

/** Bearer PSC access token → the clinician's RPPS on the principal; 401 when absent or not active. */
async function checkClinicianToken(req: FastifyRequest, principal: PeerPrincipal, introspector: TokenIntrospector): Promise<void> {
  const m = /^Bearer\s+([A-Za-z0-9._~+/=-]{8,4096})\s*$/.exec(req.headers.authorization ?? '');
  if (!m) throw new HttpProblem(401, 'Clinician token required', 'send the clinician\'s Pro Santé Connect access token as Authorization: Bearer');
  const r = await introspector.introspect(m[1]);
  if (!r.active) {
    if (r.reason === 'unavailable') throw new HttpProblem(503, 'Pro Santé Connect unavailable', 'the token could not be checked; try again');
    throw new HttpProblem(401, 'Clinician token refused', `the token is ${r.reason === 'wrong-audience' ? 'meant for another audience' : r.reason}`);
  }
  principal.rpps = r.rpps;
}

/** Loads the configured CRLs (a CRL file that cannot be used stops the start) and refreshes them periodically. */
async function startRevocation(ctx: Parameters<RolePlugin>[0]): Promise<CrlStore> {
  const t = ctx.config.peer.tls;
  const ca = readFileSync(t.ca, 'utf8');
  const crl = new CrlStore({ files: t.crlFiles, urls: t.crlUrls, issuersPem: ca, downloadCa: ca, cacheDir: join(ctx.config.dataDir, 'crl'), logger: ctx.logger.child({ component: 'revocation' }) });
  ctx.onClose(() => crl.close());
  if (!crl.enabled) return crl;
  await crl.refresh();
  const bad = crl.status().errors.filter((e) => t.crlFiles.some((f) => e.startsWith(`${f}:`)));
  if (bad.length) throw new Error(`peer.tls.crlFiles: ${bad.join('; ')}`);
  ctx.onClose(startPeriodic(t.crlRefreshMinutes * 60_000, () => crl.refresh(), (err) => ctx.logger.warn({ err }, 'certificate revocation lists not refreshed')));
  ctx.healthChecks.push({
    name: 'revocation',
    severity: 'warning',
    run: async () => {
      const s = crl.status();
      return { ok: s.ok, detail: s.ok ? `${s.crls.length} CRL(s), refreshed ${s.lastRefresh}` : s.errors.join('; ') || 'a CRL in use is past its nextUpdate' };
    },
  });
  return crl;
}
