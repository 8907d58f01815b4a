// The outbox worker: takes due jobs (up to publication.concurrency at once, never two of one report
// set, so a report's jobs stay in order) and moves each through
// received → resolving → kos-built → submitted → done (or failed), persisting every step first.
// Restart safety: the KOS (and its SOP Instance UID, the DMP uniqueId) is stored before anything is
// sent; a job found in `submitted` after a restart asks the DMP (ITI-18) whether the earlier send
// arrived before sending again, so a lost answer never publishes twice.
// The job is done on the DMP's ITI-41 acknowledgement; the entryUUIDs the DMP assigned are learnt
// right after (ITI-18 by uniqueId), or when a replacement/withdrawal needs them if that look-up failed.
// Several instances: each job is claimed with a lease renewed while this instance works on it, and the
// lease is checked again just before anything is sent to the DMP; a job whose instance died is taken
// over once its lease ran out, and resumes like after a restart (ITI-18 before sending again).
import type { Logger } from 'pino';
import type { DrimboxConfig } from '../../config/schema.js';
import type { PublicationRecord } from '../../cda/types.js';
import { buildKos, type KosInstance } from '../../dicom/kos.js';
import { checkKos } from '../../dicom/kos-check.js';
import type { DmpClient, ClinicianIdentity } from '../../dmp/client.js';
import { PROFESSION_MEDECIN } from '../../dmp/client.js';
import { DmpError } from '../../dmp/errors.js';
import { cdaUniqueId, insPatientId } from '../../dmp/hl7-datatypes.js';
import type { Pacs } from '../../pacs/pacs.js';
import { resolveStableStudies, StudyMismatchError, StudyNotReadyError, StudyStillArrivingError } from './resolve.js';
import { LostClaimError, type Job, type KosRefs, type PublicationRepository, type PublishedKos } from './repository.js';
import { abortableSleep } from '../../abortable-sleep.js';

/** Points where a test harness may stop the process (kill -9 tests); production passes no hook. */
export type PublicationStep = 'received' | 'resolving' | 'kos-built' | 'submitting' | 'sent';

export interface WorkerOptions {
  repo: PublicationRepository;
  pacs: Pacs;
  dmp: () => DmpClient | undefined;
  config: DrimboxConfig;
  logger: Logger;
  /** called after each step is persisted (tests only) */
  stepHook?: (step: PublicationStep, job: Job) => Promise<void> | void;
  /** called when a job reaches done or failed */
  onSettled?: (job: Job) => void;
  /** first retry delay (default 5 s), doubled per attempt up to maxRetryDelayMs (default 10 min) */
  retryBaseMs?: number;
  maxRetryDelayMs?: number;
  /** longest sleep between looks at the queue (default 5 s) */
  pollMs?: number;
  /** clock (tests); the repository should share it */
  now?: () => number;
  /** overrides publication.retryMaxMinutes (tests) */
  retryMaxMs?: number;
  /** overrides publication.concurrency */
  concurrency?: number;
  /** randomness of the jitter (tests) */
  random?: () => number;
  /** who holds the claims: unique per running instance (a box alone on SQLite may reuse its name) */
  instanceId: string;
  /** how long a claim holds without renewal (default 30 s): a dead instance's job waits this long */
  leaseMs?: number;
}

/**
 * Exponential backoff with jitter: base·2^attempts capped at max, then a uniform draw in
 * [half, full] of that, so boxes that failed together do not retry together.
 */
export function retryDelay(attempts: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempts, 0), 30));
  return Math.round(d * (0.5 + random() * 0.5));
}

/** A failure that no retry will fix. */
class PermanentError extends Error {}

export class OutboxWorker {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private kicked = false;
  /** jobs in progress, by id → their report set */
  private readonly active = new Map<number, { setId: string; done: Promise<void> }>();
  /** aborted on stop: interrupts the stability wait (the job stays resumable where it is) */
  private readonly stopping = new AbortController();
  private readonly now: () => number;
  /** per job: KOS whose entryUUIDs are to be learnt once the job is settled */
  private readonly learnAfter = new Map<number, { kosId: number; record: PublicationRecord }>();

  constructor(private readonly o: WorkerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** How many jobs run side by side. */
  get concurrency(): number {
    return Math.max(1, this.o.concurrency ?? this.o.config.publication.concurrency ?? 1);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** New work arrived: look at the queue now. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort(new Error('the publication worker is stopping'));
    this.wake?.();
    await this.loop;
    await Promise.all([...this.active.values()].map((a) => a.done));
  }

  private get leaseMs(): number {
    return this.o.leaseMs ?? 30_000;
  }

  private async run(): Promise<void> {
    const { repo, logger } = this.o;
    while (this.running) {
      this.kicked = false;
      while (this.running && this.active.size < this.concurrency) {
        let job: Job | undefined;
        try {
          job = await repo.claimNext(this.o.instanceId, this.leaseMs);
        } catch (e) {
          logger.error({ err: e }, 'publication queue unreadable');
        }
        if (!job) break;
        this.launch(job);
      }
      if (this.kicked || !this.running) continue;
      let next: number | undefined;
      try {
        next = this.active.size < this.concurrency ? await repo.nextWakeAt() : undefined;
      } catch { /* logged above on the next look */ }
      // a settling job wakes the loop too (its set may have a job waiting behind it)
      const wait = Math.max(5, Math.min(this.o.pollMs ?? 5000, next === undefined ? Infinity : next - this.now()));
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, wait);
      });
      clearTimeout(this.timer);
      this.wake = undefined;
    }
  }

  private launch(job: Job): void {
    // the lease outlives this instance's work only if the instance stops renewing it (died, stalled)
    const renew = setInterval(() => {
      this.o.repo.renewClaim(job.id, this.o.instanceId, this.leaseMs)
        .then((held) => { if (!held) this.o.logger.warn({ job: job.id }, 'publication job taken over by another instance'); })
        .catch((e) => this.o.logger.warn({ job: job.id, err: e }, 'publication lease not renewed'));
    }, Math.max(50, Math.floor(this.leaseMs / 3)));
    const done = this.process(job).finally(async () => {
      clearInterval(renew);
      try { await this.o.repo.releaseClaim(job.id, this.o.instanceId); } catch (e) { this.o.logger.warn({ job: job.id, err: e }, 'publication claim not released (it expires)'); }
      this.active.delete(job.id);
      this.kicked = true;
      this.wake?.();
    });
    this.active.set(job.id, { setId: job.setId, done });
  }

  private async hook(step: PublicationStep, jobId: number): Promise<void> {
    if (this.o.stepHook) await this.o.stepHook(step, (await this.o.repo.job(jobId))!);
  }

  /** Just before sending to the DMP: this instance still holds the job (else another one resumes it). */
  private async holdClaim(jobId: number): Promise<void> {
    if (!(await this.o.repo.renewClaim(jobId, this.o.instanceId, this.leaseMs))) throw new LostClaimError(jobId);
  }

  /** Runs one job as far as it goes; errors become a retry or a failure. */
  async process(job: Job): Promise<void> {
    const { repo, logger } = this.o;
    try {
      if (job.kind === 'withdraw') await this.withdraw(job);
      else await this.publish(job);
    } catch (e) {
      // stopped mid-wait: the job stays where it is and resumes at the next start
      if (this.stopping.signal.aborted && e === this.stopping.signal.reason) return;
      // another instance works on it now: nothing of this attempt is written
      if (e instanceof LostClaimError) { logger.warn({ job: job.id }, e.message); return; }
      try {
        await this.handleError(job, e);
      } catch (e2) {
        logger.error({ job: job.id, err: e2 }, 'publication failure not recorded (the job is retried once its claim expires)');
        return;
      }
    }
    const after = (await repo.job(job.id))!;
    if (after.state === 'done' || after.state === 'failed') {
      logger.info({ job: after.id, kind: after.kind, state: after.state, error: after.lastError }, 'publication job settled');
      this.o.onSettled?.(after);
    }
    // still within this job's slot: the next job of the set starts after this look-up
    const learn = this.learnAfter.get(job.id);
    if (learn) {
      this.learnAfter.delete(job.id);
      try {
        const k = await repo.kos(learn.kosId);
        if (k && !k.kosEntryUuid) await this.ensureEntryUuids(this.dmp(), k, learn.record);
      } catch (e) {
        logger.warn({ job: job.id, err: e }, 'entryUUIDs of the published KOS not learnt yet (asked again when needed)');
      }
    }
  }

  private dmp(): DmpClient {
    const d = this.o.dmp();
    if (!d) throw new Error('no DMP is configured (config section "dmp"): the job waits');
    return d;
  }

  // ---- publish / refresh ----

  private async publish(job: Job): Promise<void> {
    const { repo, config } = this.o;
    // a refresh re-publishes the latest published version of the report (read when it runs)
    const record = job.kind === 'refresh' ? ((await repo.lastRecordOfSet(job.setId)) ?? job.payload.record) : job.payload.record;
    if (!record) throw new PermanentError('the job carries no report');
    let j = job;
    if (j.state === 'received' || j.state === 'resolving') {
      if (j.kind === 'publish' && j.version !== undefined) {
        const published = await repo.currentVersionOfSet(j.setId);
        if (published !== undefined && j.version <= published) {
          throw new PermanentError(`version ${j.version} of this report is not newer than the published version ${published}`);
        }
      }
      if (j.state === 'received') {
        await repo.setState(j.id, 'resolving');
        await this.hook('resolving', j.id);
      }
      // a new report waits until its studies stop growing in the PACS; a refresh (IOCM) only removes
      const resolved = await resolveStableStudies(this.o.pacs, record, (s) => repo.rejectedIn(s), {
        allowEmpty: j.kind === 'refresh',
        stableMs: j.kind === 'refresh' ? 0 : config.publication.stableSeconds * 1000,
        signal: this.stopping.signal,
        sleep: abortableSleep,
      });
      if (resolved.instances.length === 0) {
        // refresh after IOCM: nothing left to point at, so the published KOS is withdrawn
        const current = await repo.currentOfSet(j.setId);
        if (!current) {
          await repo.setState(j.id, 'done', { note: 'no instance left and nothing published' });
          return;
        }
        await repo.markSubmitting(j.id, current.id);
        await this.hook('submitting', j.id);
        await this.sendWithdrawal((await repo.job(j.id))!, current, true, 'every instance was rejected by the PACS (IOCM): KOS withdrawn');
        return;
      }
      const first = record.studies[0];
      const info = resolved.info.get(first.studyInstanceUid) ?? {};
      const built = buildKos({
        record,
        study: first,
        instances: resolved.instances,
        patientFromPacs: { ...info, patientName: undefined },
        retrieveBaseUrl: `${config.peer.publicUrl.replace(/\/+$/, '')}/dicom-web`,
        retrieveLocationUid: config.box.retrieveLocationUid,
        uidRoot: config.box.uidRoot === '2.25' ? undefined : config.box.uidRoot,
      });
      const problems = checkKos(built.part10, { expectTitle: '113030', allowHttp: config.peer.publicUrl.startsWith('http:') });
      if (problems.length) throw new PermanentError(`the KOS built for this report does not pass our checks: ${problems.join('; ')}`);
      await repo.saveBuiltKos(j.id, {
        setId: j.setId,
        sopInstanceUid: built.sopInstanceUid,
        patientId: record.patient.ins.value,
        part10: built.part10,
        refs: refsOf(resolved.instances),
        studies: record.studies.map((s) => ({ studyUid: s.studyInstanceUid, accession: s.accessionNumber?.value ?? '' })),
      });
      await this.hook('kos-built', j.id);
      j = (await repo.job(j.id))!;
    }
    if (j.state === 'kos-built') {
      const current = await repo.currentOfSet(j.setId);
      await repo.markSubmitting(j.id, current?.id);
      await this.hook('submitting', j.id);
      await this.submit((await repo.job(j.id))!, record, true);
    } else if (j.state === 'submitted') {
      if (j.kosId === undefined && j.kind === 'refresh') {
        // a refresh that was withdrawing when it stopped
        await this.sendWithdrawal(j, (await repo.kos(j.targetKosId!))!, false, 'every instance was rejected by the PACS (IOCM): KOS withdrawn');
        return;
      }
      await this.submit(j, record, false);
    }
  }

  private async submit(j: Job, record: PublicationRecord, fresh: boolean): Promise<void> {
    const { repo, config } = this.o;
    const kos = await repo.kos(j.kosId!);
    const part10 = await repo.kosPart10(j.kosId!);
    if (!kos || !part10) throw new PermanentError('the built KOS is missing from the database');
    const dmp = this.dmp();
    let target = j.targetKosId ? await repo.kos(j.targetKosId) : undefined;
    // RPLC needs the replaced entries' entryUUIDs (learnt after its publication, or now)
    if (target && !target.kosEntryUuid) target = await this.ensureEntryUuids(dmp, target, record);
    // a refresh republishes the same report version: only the KOS is new
    const includeReport = j.kind === 'publish' && (config.dmp?.includeReport ?? true);
    const reportUniqueId = includeReport ? cdaUniqueId(record.documentId) : target?.reportUniqueId;
    if (!fresh) {
      const found = await this.lookup(dmp, record, kos.sopInstanceUid, includeReport ? reportUniqueId : undefined);
      if (found) {
        this.o.logger.info({ job: j.id }, 'the DMP already holds this KOS (earlier answer lost): not sent again');
        await repo.markPublished(j.id, kos.id, { kos: found.kos, report: found.report ?? (includeReport ? undefined : target?.reportEntryUuid), reportUniqueId }, target?.id);
        return;
      }
    }
    const replaces = target?.kosEntryUuid ? { kos: target.kosEntryUuid, report: includeReport ? target.reportEntryUuid : undefined } : undefined;
    // ITI-41 only: its Success is the DMP's acknowledgement; the entryUUIDs are learnt after
    await this.holdClaim(j.id);
    await dmp.submitDocuments({ record, kos: { sopInstanceUid: kos.sopInstanceUid, part10 }, includeReport, replaces });
    await this.hook('sent', j.id);
    await repo.markPublished(j.id, kos.id, { report: includeReport ? undefined : target?.reportEntryUuid, reportUniqueId }, target?.id);
    this.learnAfter.set(j.id, { kosId: kos.id, record });
  }

  /** Learns (ITI-18 GetDocuments by uniqueId) and records the entryUUIDs of a published KOS. */
  private async ensureEntryUuids(dmp: DmpClient, k: PublishedKos, record: PublicationRecord): Promise<PublishedKos> {
    const found = await this.lookup(dmp, record, k.sopInstanceUid, k.reportEntryUuid ? undefined : k.reportUniqueId);
    if (!found) throw new Error(`the DMP does not return the published KOS ${k.sopInstanceUid} (entryUUID unknown): will ask again`);
    await this.o.repo.setEntryUuids(k.id, found);
    return (await this.o.repo.kos(k.id))!;
  }

  /** ITI-18 GetDocuments by uniqueId: the entryUUIDs when the DMP already has the KOS. */
  private async lookup(dmp: DmpClient, record: PublicationRecord, kosUid: string, reportUid?: string): Promise<{ kos: string; report?: string } | undefined> {
    const docs = await dmp.getDocuments({ uniqueIds: [kosUid, ...(reportUid ? [reportUid] : [])] }, systemIdentity(record), insPatientId(record.patient));
    const kos = docs.find((d) => d.uniqueId === kosUid);
    if (!kos) return undefined;
    return { kos: kos.entryUuid, report: reportUid ? docs.find((d) => d.uniqueId === reportUid)?.entryUuid : undefined };
  }

  // ---- withdraw ----

  private async withdraw(job: Job): Promise<void> {
    const { repo } = this.o;
    if (job.state === 'received' || job.state === 'resolving') {
      const target = await repo.currentOfSet(job.setId);
      if (!target) throw new PermanentError('no published KOS for this report: nothing to withdraw');
      await repo.markSubmitting(job.id, target.id);
      await this.hook('submitting', job.id);
      await this.sendWithdrawal((await repo.job(job.id))!, target, true, job.payload.reason);
      return;
    }
    if (job.state === 'submitted') await this.sendWithdrawal(job, (await repo.kos(job.targetKosId!))!, false, job.payload.reason);
  }

  private async sendWithdrawal(j: Job, target: PublishedKos, fresh: boolean, note?: string): Promise<void> {
    const { repo } = this.o;
    const record = j.payload.record ?? (await repo.lastRecordOfSet(j.setId));
    if (!record) throw new PermanentError('the published report of this set is unknown: cannot sign the withdrawal');
    const dmp = this.dmp();
    const patientId = insPatientId(record.patient);
    if (!target.kosEntryUuid) target = await this.ensureEntryUuids(dmp, target, record);
    let entries = [target.kosEntryUuid, target.reportEntryUuid].filter((e): e is string => !!e);
    if (!fresh) {
      const docs = await dmp.getDocuments({ entryUuids: entries }, systemIdentity(record), patientId);
      const deleted = new Set(docs.filter((d) => /Deleted$/.test(String(d.status))).map((d) => d.entryUuid));
      entries = entries.filter((e) => !deleted.has(e) && docs.some((d) => d.entryUuid === e));
    }
    for (const e of entries) {
      await this.holdClaim(j.id);
      await dmp.updateStatus(e, 'Deleted', patientId, { author: record.author });
    }
    await this.hook('sent', j.id);
    await repo.markWithdrawn(j.id, target.id, note);
  }

  // ---- errors ----

  private async handleError(job: Job, e: unknown): Promise<void> {
    const { repo, config, logger } = this.o;
    const now = this.now();
    const current = (await repo.job(job.id))!;
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof PermanentError || e instanceof StudyMismatchError) {
      await repo.fail(job.id, msg);
      return;
    }
    if (e instanceof DmpError && !e.retryable) {
      await repo.fail(job.id, `the DMP refused the submission (${e.code}): ${msg}`);
      return;
    }
    if (e instanceof StudyNotReadyError) {
      const since = current.studyWaitingSince ?? now;
      const limit = config.publication.studyWaitMinutes * 60_000;
      if (now - since >= limit) {
        await repo.fail(job.id, `${msg}; gave up after waiting ${config.publication.studyWaitMinutes} min for the study`);
        return;
      }
      // still arriving: look again at once (the next look itself waits stableSeconds)
      const at = e instanceof StudyStillArrivingError ? now : now + this.delay(current.attempts);
      await repo.scheduleRetry(job.id, Math.min(at, since + limit), msg, { studyWaitingSince: since });
      return;
    }
    const windowMs = this.o.retryMaxMs ?? config.publication.retryMaxMinutes * 60_000;
    if (now - current.windowStart >= windowMs) {
      await repo.fail(job.id, `gave up after ${Math.round(windowMs / 6000) / 10} min of retries; last error: ${msg}`);
      return;
    }
    if (!(e instanceof DmpError)) logger.warn({ job: job.id, err: e }, 'publication step failed, will retry');
    await repo.scheduleRetry(job.id, now + this.delay(current.attempts), msg);
  }

  private delay(attempts: number): number {
    return retryDelay(attempts, this.o.retryBaseMs ?? 5000, this.o.maxRetryDelayMs ?? 600_000, this.o.random);
  }
}

function refsOf(instances: KosInstance[]): KosRefs {
  const refs: KosRefs = {};
  const seen = new Set<string>();
  for (const i of instances) {
    if (seen.has(i.sopInstanceUid)) continue;
    seen.add(i.sopInstanceUid);
    ((refs[i.studyUid] ??= {})[i.seriesUid] ??= []).push(i.sopInstanceUid);
  }
  return refs;
}

/** The report's author, as the box's own (INDIRECTE) identity towards the DMP for its look-ups. */
function systemIdentity(record: PublicationRecord): ClinicianIdentity {
  const a = record.author;
  return {
    rpps: a.id.extension ?? a.id.root,
    displayName: [a.given, a.family].filter(Boolean).join(' ') || (a.id.extension ?? a.id.root),
    roles: [PROFESSION_MEDECIN, ...(a.role ? [a.role] : [])],
    authMode: 'INDIRECTE',
  };
}
