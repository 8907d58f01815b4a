// The source role: publication (MLLP → durable outbox → KOS → DMP), corrections and withdrawals,
// IOCM rejections from the PACS, KOS-scoped peer access, the admin view and report links.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { RolePlugin } from '../box.js';
import { handleHl7, startMllpServer } from '../hl7/mllp-server.js';
import { PublicationRepository } from './publication/repository.js';
import { OutboxWorker, type WorkerOptions } from './publication/worker.js';
import { acceptPublicationMessage } from './publication/intake.js';
import { kosAccessGuard } from './kos-access.js';
import { startIocmScp, type RejectionNote } from './iocm.js';
import { adminRoutes } from './admin.js';
import { reportLinkRoute } from './report-link.js';
import { peerApi } from './peer-api.js';

/** Knobs for tests and harnesses; production uses `sourceRole` as is. */
export type SourceRoleOptions = Pick<WorkerOptions, 'stepHook' | 'onSettled' | 'retryBaseMs' | 'maxRetryDelayMs' | 'pollMs' | 'retryMaxMs' | 'leaseMs'>;

/** Records an IOCM rejection and queues the re-publication of every current KOS it touches, atomically. */
export function recordRejection(repository: PublicationRepository, note: RejectionNote): Promise<number[]> {
  return repository.transaction(async (repo) => {
    await repo.addRejections(note.noteUid, note.reason, [...note.instances, { ...note.note, sopInstanceUid: note.noteUid }]);
    const byStudy = new Map<string, Set<string>>();
    for (const i of note.instances) {
      let s = byStudy.get(i.studyUid);
      if (!s) byStudy.set(i.studyUid, (s = new Set()));
      s.add(i.sopInstanceUid);
    }
    const sets = new Set<string>();
    for (const [study, sops] of byStudy) for (const k of await repo.currentKosReferencing(study, sops)) sets.add(k.setId);
    const jobs: number[] = [];
    for (const setId of sets) {
      const { job } = await repo.enqueue({
        kind: 'refresh',
        idemKey: `refresh|${note.noteUid}|${setId}`,
        setId,
        studyUids: [...byStudy.keys()],
        payload: { rejectionNoteUid: note.noteUid, reason: note.reason },
      });
      jobs.push(job.id);
    }
    return jobs;
  });
}

export function createSourceRole(opts: SourceRoleOptions = {}): RolePlugin {
  return async (ctx) => {
    const { config, logger } = ctx;
    const repo = new PublicationRepository(ctx.store);
    const log = logger.child({ component: 'publication' });
    if (!config.dmp) log.warn('no "dmp" section in the configuration: reports are queued but not published');

    // alone on its SQLite file the box keeps one name, so a restart frees its own claims at once;
    // instances sharing PostgreSQL are told apart, a dead one's claims expire with their lease
    const instanceId = ctx.store.dialect === 'sqlite' ? `${config.box.name}@sqlite` : `${config.box.name}@${hostname()}#${process.pid}-${randomUUID().slice(0, 8)}`;
    if (ctx.store.dialect === 'sqlite') await repo.releaseClaimsOf(instanceId);
    const worker = new OutboxWorker({ repo, pacs: ctx.pacs, dmp: () => ctx.services.dmp, config, logger: log, instanceId, ...opts });
    ctx.onClose(() => worker.stop());

    // the peer API exists only here, behind the KOS guard: what is served is what a KOS grants
    ctx.access.useScope(kosAccessGuard(repo));
    await ctx.peer.register(peerApi, { prefix: '/dicom-web', pacs: ctx.pacs, access: ctx.access, audit: ctx.audit });
    adminRoutes(ctx.user, { repo, token: config.admin.token, kick: () => worker.kick() });
    ctx.services.publications = repo;
    // with the consumer role too, report links open the viewer (the consumer resolves them)
    if (!config.roles.includes('consumer')) reportLinkRoute(ctx.user, repo);

    // a validated configuration has it for the source role (with allowed senders)
    const hl7 = config.hl7;
    if (!hl7) throw new Error('the source role needs the "hl7" section (hl7.port, hl7.allowedSenders)');
    const mllp = await startMllpServer({
      host: hl7.host,
      port: hl7.port,
      allowedSenders: hl7.allowedSenders,
      tls: hl7.tls,
      maxBytes: hl7.maxMessageBytes,
      maxConnections: hl7.maxConnections,
      idleTimeoutMs: hl7.idleTimeoutSeconds * 1000,
      handler: (raw) => handleHl7(raw, async (msg) => {
        const r = await acceptPublicationMessage(repo, msg);
        log.info({ event: 'hl7-accepted', type: msg.messageType, kind: msg.kind, job: r.jobId, created: r.created }, r.note ?? 'RIS message accepted');
        if (r.created) worker.kick();
      }, { application: 'DRIMBOX', facility: config.box.name, onError: (e) => log.error({ err: e }, 'HL7 message could not be recorded') }),
      onError: (e) => log.warn({ err: e }, 'MLLP connection error'),
      onRefused: (e) => log.warn({ event: 'mllp-connection-closed', ...e }, 'MLLP connection refused or closed by the box'),
    });
    ctx.onClose(() => mllp.close());
    ctx.addresses.mllp = { host: hl7.host, port: mllp.port };
    ctx.metrics.gauge('drimbox_mllp_connections', `MLLP connections open (at most hl7.maxConnections)`, () => mllp.connections());

    // IOCM only when the PACS's calling AE titles are configured (deny by default)
    const src = config.source;
    if (src.iocmCallingAets.length > 0) {
      const iocm = await startIocmScp({
        host: src.iocmHost,
        port: src.iocmPort,
        aet: src.iocmAet,
        callingAets: src.iocmCallingAets,
        allowedAddresses: src.iocmAllowedAddresses,
        logger: log,
        onRejection: async (note) => {
          const jobs = await recordRejection(repo, note);
          log.info({ event: 'iocm-rejection', instances: note.instances.length, jobs }, 'IOCM rejection note recorded');
          if (jobs.length) worker.kick();
        },
      });
      ctx.onClose(() => iocm.close());
      ctx.addresses.iocm = { host: src.iocmHost, port: iocm.port, aeTitle: src.iocmAet };
    } else {
      log.info('IOCM is off (source.iocmCallingAets is empty): rejection notes from the PACS are not accepted');
    }

    ctx.metrics.gauge('drimbox_publication_jobs_pending', 'publication jobs not yet done or failed', () => repo.countJobs('pending'));
    ctx.metrics.gauge('drimbox_publication_jobs_failed', 'publication jobs failed (see /admin/publications?state=failed)', () => repo.countJobs('failed'));

    worker.start();
  };
}

export const sourceRole: RolePlugin = createSourceRole();
