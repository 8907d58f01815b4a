// The consumer role: contextual call and report links → DMP search → viewer session; the peer client
// towards source boxes; the study cache; the viewer's API and DICOMweb; import into the local PACS.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { publishedPatientOf } from '../source/report-link.js';
import type { RolePlugin, RoleContext } from '../box.js';
import { sendProblem } from '../http/problem.js';
import { CallSessionStore } from './call-sessions.js';
import { entryRoutes } from './entry-routes.js';
import { ImportJobs } from './import-jobs.js';
import { instanceId } from './instance-id.js';
import type { LauncherEntry } from './launcher.js';
import { PeerClient } from './peer-client.js';
import { StudyCache } from './study-cache.js';
import { viewerApi } from './viewer-api.js';
import { mountScreening } from '../screening/mount.js';

export interface ConsumerRoleOptions {
  /** entries of the demo launcher page at GET / (read on every request); no launcher when absent */
  launcher?: () => LauncherEntry[];
  /** the built viewer (default: viewer/dist of this repository) */
  viewerDir?: string;
  /** for report links without patientID: the INS of a study this box published */
  patientOfStudy?: (studyUid: string) => { value: string; oid: string } | undefined | Promise<{ value: string; oid: string } | undefined>;
  /** peer client tuning (tests); `tls` replaces the identity from `peer.tls` (tests: a certificate sources refuse) */
  peer?: { timeoutMs?: number; connectTimeoutMs?: number; retries?: number; tls?: { cert: string; key: string; ca: string } };
}

/** What the role exposes to the rest of the process (tests, screening batches, the demo network). */
export interface ConsumerServices {
  cache: StudyCache;
  peer: PeerClient;
  calls: CallSessionStore;
  imports: ImportJobs;
}

const consumers = new WeakMap<object, ConsumerServices>();
/** The consumer services of a started box (pass `box.services`). */
export function consumerOf(services: object): ConsumerServices | undefined {
  return consumers.get(services);
}

/** The built viewer beside the application: the nearest folder above this module holding package.json
 * is the checkout (running from source) or the image's /app (compiled, under dist/). */
function defaultViewerDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot locate the application folder (package.json) for viewer/dist');
    dir = up;
  }
  return join(dir, 'viewer', 'dist');
}
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-src 'self'; object-src 'none'; base-uri 'none'";

export function createConsumerRole(opts: ConsumerRoleOptions = {}): RolePlugin {
  return async (ctx: RoleContext) => {
    const { config, logger, user } = ctx;
    const log = logger.child({ role: 'consumer' });
    const allowList = ctx.services.allowList;
    if (!allowList) log.warn('no allow-list configured: the consumer will call no source box');
    // a retrieve URL must be a listed box's peer API: scheme, host, port and /dicom-web/ path
    const isHostAllowed = (url: string) => Boolean(allowList?.isPeerUrlAllowed(url));
    const peer = new PeerClient({
      tls: { cert: readFileSync(config.peer.tls.cert, 'utf8'), key: readFileSync(config.peer.tls.key, 'utf8'), ca: readFileSync(config.peer.tls.ca, 'utf8') },
      isUrlAllowed: isHostAllowed,
      revocation: ctx.services.revocation?.enabled ? (cert) => ctx.services.revocation!.check(cert) : undefined,
      ...opts.peer,
    });
    ctx.services.revocation?.on('updated', () => void peer.resetConnections());
    // the name this instance gives itself in the tables it shares with the others (leases, readers, jobs)
    const instance = instanceId(config.dataDir, config.user.port);
    const cache = new StudyCache(ctx.store, {
      // several instances share one folder (cache.dir on NFS) and one database
      dir: config.cache.dir || join(config.dataDir, 'consumer-cache'),
      instance,
      maxBytes: config.cache.maxBytes,
      ttlMs: config.cache.ttlHours * 3600_000,
      peer,
      logger: log,
      onFetch: (spec, out, rpps) => ctx.audit.record({
        direction: 'peer-out', actorRpps: rpps, route: out.url, method: 'GET', studyUid: spec.studyUid, seriesUid: spec.seriesUid,
        kosUid: spec.kosUid, status: out.status || 502, outcome: out.error?.slice(0, 300), bytes: out.bytes, durationMs: out.durationMs,
      }),
    });
    await cache.recover();
    const calls = new CallSessionStore(ctx.store, (config.psc?.sessionMaxHours ?? 12) * 3600_000, Date.now, (c, s) => ctx.audit.record({
      direction: 'user', actorRpps: c.rpps, route: 'identity-check', method: 'GET', patientId: c.patient.ins.value, studyUid: s.studyUid, kosUid: s.kosUid,
      status: s.status === 'refused' ? 409 : 200,
      outcome: (s.status === 'refused' ? s.problem ?? 'refused' : `identity traits differ: ${(s.identityWarnings ?? []).map((w) => w.trait).join(', ')}`).slice(0, 300),
    }));
    const imports = new ImportJobs(ctx.store, cache, ctx.pacs, instance, log, (req, s) => ctx.audit.record({
      direction: 'user', actorRpps: req.rpps, route: 'import', method: 'POST', patientId: req.patient.ins.value, studyUid: req.studyUid, seriesUid: req.seriesUid,
      status: s.state === 'completed' ? 200 : 502, outcome: `${s.stored}/${s.total} stored, ${s.failed} failed${s.error ? `: ${s.error}` : ''}`.slice(0, 300),
    }));
    // jobs this instance ran before it restarted, or that a dead instance left, end failed now
    await imports.recover();
    consumers.set(ctx.services, { cache, peer, calls, imports });

    const timer = setInterval(() => {
      Promise.all([cache.evict(), calls.purgeExpired(), imports.recover()])
        .catch((e: Error) => log.warn({ err: e.message }, 'consumer housekeeping failed'));
    }, 10 * 60_000);
    timer.unref();
    ctx.onClose(async () => {
      clearInterval(timer);
      await imports.drain();
      await cache.drain();
      await peer.close();
    });
    ctx.healthChecks.push({
      name: 'study-cache',
      severity: 'warning',
      run: async () => ({ ok: true, detail: `${Math.round(await cache.totalBytes() / 1e6)} MB of ${Math.round(config.cache.maxBytes / 1e6)} MB` }),
    });

    // the viewer's static files
    const viewerDir = opts.viewerDir ?? defaultViewerDir();
    if (existsSync(join(viewerDir, 'index.html'))) {
      await user.register(fastifyStatic, {
        root: viewerDir, prefix: '/viewer/', decorateReply: false, index: 'index.html', cacheControl: false,
        setHeaders(res, path) {
          res.header('Content-Security-Policy', CSP);
          if (path.endsWith('.wasm')) res.header('Content-Type', 'application/wasm');
          // Vite names built assets by content hash: the browser keeps them; the page itself is revalidated
          res.header('Cache-Control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
        },
      });
    } else {
      log.warn({ viewerDir }, 'viewer not built (npx vite build --config viewer/vite.config.ts)');
      user.get('/viewer/*', async (_req, reply) => sendProblem(reply, 503, 'Viewer not built', 'run: npx vite build --config viewer/vite.config.ts'));
    }

    if (!user.pscSessions) {
      log.warn('no psc section: clinicians cannot log in, the consumer role answers 503');
      const off = async (_req: unknown, reply: import('fastify').FastifyReply) => sendProblem(reply, 503, 'Clinician login not configured', 'this box has no Pro Santé Connect configuration');
      user.post('/contextual-call', off);
      user.get('/IHEInvokeImageDisplay', off);
      user.get('/api/sessions/*', off);
      return;
    }
    // two encapsulated plugins: the viewer API's hooks (PSC session required, audit) stay its own
    await user.register(async (app) => entryRoutes(app, { calls, dmp: ctx.services.dmp, audit: ctx.audit, isHostAllowed, refreshAllowList: allowList && (() => allowList.refreshOnMiss()), launcher: opts.launcher, boxOrigin: config.user.publicUrl, allowedCallOrigins: config.user.allowedCallOrigins, patientOfStudy: opts.patientOfStudy ?? (ctx.services.publications && publishedPatientOf(ctx.services.publications)) }));
    await user.register(async (app) => viewerApi(app, { calls, cache, peer, audit: ctx.audit, imports, localPacs: ctx.pacs }));
    // screening batches (second reading): prefetch into this cache, the worklist's API
    const screening = await mountScreening(ctx, { cache, peer, calls, imports }, { isHostAllowed, refreshAllowList: allowList && (() => allowList.refreshOnMiss()) });
    if (screening) ctx.onClose(() => screening.stop()); // before the cache drains (closers run in reverse)
  };
}

export const consumerRole: RolePlugin = createConsumerRole();
