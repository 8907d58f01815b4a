// The publication outbox and the register of published KOS, behind one repository (SQL stays here,
// through Kysely, for SQLite and PostgreSQL). Every state change is one transaction, so a crash leaves
// each job at a step it can resume. Several instances share the outbox: an instance claims a job
// (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers) and holds a lease on it while it
// works; a lease that runs out (the instance died) lets another instance take the job over.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../../store/database.js';
import type { PublicationJobTable, PublishedKosTable, Schema } from '../../store/schema.js';
import type { PublicationRecord } from '../../cda/types.js';

export type JobKind = 'publish' | 'withdraw' | 'refresh';
export type JobState = 'received' | 'resolving' | 'kos-built' | 'submitted' | 'done' | 'failed';
export type KosStatus = 'built' | 'current' | 'replaced' | 'withdrawn';

/**
 * What happened to a job, as people read it (the admin API): the persisted step alone does not say
 * whether a job in `submitted` reached the DMP or keeps failing to.
 */
export type JobStatus = 'queued' | 'waiting-for-study' | 'publishing' | 'withdrawing' | 'retrying' | 'published' | 'withdrawn' | 'not-published' | 'failed';
export const JOB_STATUSES: JobStatus[] = ['queued', 'waiting-for-study', 'publishing', 'withdrawing', 'retrying', 'published', 'withdrawn', 'not-published', 'failed'];
// one definition, for showing and for filtering. A done job with a KOS published it; a done refresh
// that targeted a KOS without building one withdrew it (every instance rejected).
const STATUS_SQL = sql<JobStatus>`CASE
  WHEN state = 'failed' THEN 'failed'
  WHEN state = 'done' THEN CASE WHEN kind = 'withdraw' THEN 'withdrawn' WHEN kos_id IS NOT NULL THEN 'published'
    WHEN target_kos_id IS NOT NULL THEN 'withdrawn' ELSE 'not-published' END
  WHEN state IN ('received','resolving') AND study_waiting_since IS NOT NULL THEN 'waiting-for-study'
  WHEN attempts > 0 THEN 'retrying'
  WHEN state = 'received' THEN 'queued'
  WHEN kind = 'withdraw' THEN 'withdrawing'
  ELSE 'publishing' END`;

/** What a job carries: the report (publish/refresh), or what to withdraw. CDA kept as base64 in JSON. */
export interface JobPayload {
  record?: PublicationRecord;
  /** withdraw: the document named by the RIS (when no setId is known) */
  documentId?: string;
  /** refresh: the IOCM rejection note that caused it */
  rejectionNoteUid?: string;
  /** withdraw asked by an OMI exam cancellation */
  reason?: string;
}

export interface Job {
  id: number;
  kind: JobKind;
  idemKey: string;
  setId: string;
  documentId?: string;
  version?: number;
  controlId?: string;
  studyUids: string[];
  payload: JobPayload;
  state: JobState;
  failedAtState?: JobState;
  attempts: number;
  nextAttemptAt: number;
  windowStart: number;
  studyWaitingSince?: number;
  lastError?: string;
  note?: string;
  kosId?: number;
  targetKosId?: number;
  createdAt: number;
  updatedAt: number;
}

export interface JobWithStatus extends Job {
  status: JobStatus;
}

export interface PublishedKos {
  id: number;
  jobId: number;
  setId: string;
  sopInstanceUid: string;
  patientId: string;
  refs: KosRefs;
  instanceCount: number;
  status: KosStatus;
  /** entryUUIDs the DMP assigned: learnt by ITI-18 once it acknowledged (missing until then) */
  kosEntryUuid?: string;
  reportEntryUuid?: string;
  /** uniqueId of the report published with (or before) this KOS, to learn its entryUUID */
  reportUniqueId?: string;
  studies: { studyUid: string; accession: string }[];
  createdAt: number;
  publishedAt?: number;
}

/** study → series → SOP instance UIDs referenced by a KOS */
export type KosRefs = Record<string, Record<string, string[]>>;

export interface NewJob {
  kind: JobKind;
  idemKey: string;
  setId: string;
  documentId?: string;
  version?: number;
  controlId?: string;
  studyUids?: string[];
  payload: JobPayload;
  state?: JobState;
  note?: string;
}

// ---- (de)serialisation ----

function recordToJson(r: PublicationRecord): unknown {
  return { ...r, cda: r.cda.toString('base64') };
}
function recordFromJson(o: Record<string, unknown>): PublicationRecord {
  return { ...(o as unknown as PublicationRecord), cda: Buffer.from(String(o.cda ?? ''), 'base64') };
}
export function encodePayload(p: JobPayload): string {
  return JSON.stringify({ ...p, record: p.record ? recordToJson(p.record) : undefined });
}
export function decodePayload(s: string): JobPayload {
  const o = JSON.parse(s) as Record<string, unknown>;
  return { ...(o as JobPayload), record: o.record ? recordFromJson(o.record as Record<string, unknown>) : undefined };
}

type JobRow = Selectable<PublicationJobTable>;
type KosRow = Selectable<PublishedKosTable>;
const opt = <T>(v: T | null | undefined): T | undefined => (v === null || v === undefined ? undefined : v);

function jobFromRow(r: JobRow): Job {
  return {
    id: r.id,
    kind: r.kind as JobKind,
    idemKey: r.idem_key,
    setId: r.set_id,
    documentId: opt(r.document_id),
    version: opt(r.version),
    controlId: opt(r.control_id),
    studyUids: String(r.study_uids ?? '').split(' ').filter(Boolean),
    payload: decodePayload(r.payload),
    state: r.state as JobState,
    failedAtState: opt(r.failed_at_state) as JobState | undefined,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    windowStart: r.window_start,
    studyWaitingSince: opt(r.study_waiting_since),
    lastError: opt(r.last_error),
    note: opt(r.note),
    kosId: opt(r.kos_id),
    targetKosId: opt(r.target_kos_id),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function setKey(id: { root: string; extension?: string }): string {
  return id.extension ? `${id.root}^${id.extension}` : id.root;
}

const TERMINAL = ['done', 'failed'];

/** Thrown when an instance finds its lease on a job taken over (it must not touch the job again). */
export class LostClaimError extends Error {
  constructor(readonly jobId: number) {
    super(`publication job ${jobId}: lease lost to another instance`);
    this.name = 'LostClaimError';
  }
}

export class PublicationRepository {
  private readonly refsCache = new Map<number, KosRefs>();
  private readonly db: Kysely<Schema>;
  private readonly dialect: Dialect;

  constructor(store: { db: Kysely<Schema>; dialect: Dialect }, private readonly now: () => number = Date.now) {
    this.db = store.db;
    this.dialect = store.dialect;
  }

  /** Runs `fn` in one transaction with a repository bound to it (or in the current one). */
  async transaction<T>(fn: (repo: PublicationRepository) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this);
    return this.db.transaction().execute((trx) => fn(new PublicationRepository({ db: trx, dialect: this.dialect }, this.now)));
  }

  // ---- jobs ----

  /**
   * Stores a job unless one with the same idempotency key exists. A resent message whose job failed
   * re-queues it (with the new content); otherwise the existing job is left alone.
   * @returns the job and whether it was created (or re-queued)
   */
  enqueue(j: NewJob): Promise<{ job: Job; created: boolean }> {
    return this.transaction(async (r) => {
      const now = this.now();
      // ON CONFLICT: two instances receiving the same message at once store one job
      const inserted = await r.db.insertInto('publication_job').values({
        kind: j.kind, idem_key: j.idemKey, set_id: j.setId, document_id: j.documentId ?? null, version: j.version ?? null,
        control_id: j.controlId ?? null, study_uids: (j.studyUids ?? []).join(' '), payload: encodePayload(j.payload),
        state: j.state ?? 'received', next_attempt_at: now, window_start: now, note: j.note ?? null, created_at: now, updated_at: now,
        failed_at_state: null, study_waiting_since: null, last_error: null, kos_id: null, target_kos_id: null, claimed_by: null, lease_until: null,
      }).onConflict((oc) => oc.column('idem_key').doNothing()).returning('id').executeTakeFirst();
      if (inserted) return { job: (await r.job(inserted.id))!, created: true };
      const existing = await r.lockedJobByKey(j.idemKey);
      if (existing.state !== 'failed') return { job: jobFromRow(existing), created: false };
      await r.db.updateTable('publication_job').set({
        payload: encodePayload(j.payload), control_id: j.controlId ?? null, state: 'received', failed_at_state: null, attempts: 0,
        next_attempt_at: now, window_start: now, study_waiting_since: null, last_error: null, kos_id: null, target_kos_id: null, updated_at: now,
      }).where('id', '=', existing.id).execute();
      return { job: (await r.job(existing.id))!, created: true };
    });
  }

  private async lockedJobByKey(idemKey: string): Promise<JobRow> {
    return this.db.selectFrom('publication_job').selectAll().where('idem_key', '=', idemKey)
      .$if(this.dialect === 'postgres', (q) => q.forUpdate()).executeTakeFirstOrThrow();
  }

  async job(id: number): Promise<Job | undefined> {
    const r = await this.db.selectFrom('publication_job').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? jobFromRow(r) : undefined;
  }

  /**
   * Claims the next job due for `instance`, oldest first, with a lease of `leaseMs`. A job waits while
   * an earlier job of its report set is unfinished, and is not offered while another claim on it is
   * live: so one report's jobs run one at a time, in order, on whichever instance took them.
   */
  claimNext(instance: string, leaseMs: number): Promise<Job | undefined> {
    return this.transaction(async (r) => {
      const now = this.now();
      const row = await r.db.selectFrom('publication_job as j').selectAll('j')
        .where('j.state', 'not in', TERMINAL)
        .where('j.next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('j.lease_until', 'is', null), eb('j.lease_until', '<', now)]))
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('publication_job as e').select('e.id')
          .whereRef('e.set_id', '=', 'j.set_id').whereRef('e.id', '<', 'j.id').where('e.state', 'not in', TERMINAL))))
        .orderBy('j.next_attempt_at').orderBy('j.id').limit(1)
        // another instance claiming at the same moment skips the row this one holds
        .$if(this.dialect === 'postgres', (q) => q.forUpdate().skipLocked())
        .executeTakeFirst();
      if (!row) return undefined;
      await r.db.updateTable('publication_job').set({ claimed_by: instance, lease_until: now + leaseMs }).where('id', '=', row.id).execute();
      return jobFromRow(row);
    });
  }

  /** Extends the lease while the instance works; false when another instance took the job over. */
  async renewClaim(id: number, instance: string, leaseMs: number): Promise<boolean> {
    const r = await this.db.updateTable('publication_job').set({ lease_until: this.now() + leaseMs })
      .where('id', '=', id).where('claimed_by', '=', instance).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** The instance is done with the job for now (settled, retry scheduled or stopping). */
  async releaseClaim(id: number, instance: string): Promise<void> {
    await this.db.updateTable('publication_job').set({ claimed_by: null, lease_until: null })
      .where('id', '=', id).where('claimed_by', '=', instance).execute();
  }

  /** Releases every claim of `instance` (a single box restarting under the same name after a crash). */
  async releaseClaimsOf(instance: string): Promise<void> {
    await this.db.updateTable('publication_job').set({ claimed_by: null, lease_until: null }).where('claimed_by', '=', instance).execute();
  }

  /**
   * When the queue next needs a look (undefined: nothing to wait for): the next job due that no earlier
   * job of its set holds back, or the end of a live lease (a dead instance's job to take over).
   */
  async nextWakeAt(): Promise<number | undefined> {
    const now = this.now();
    const r = await this.db.selectFrom('publication_job as j')
      .select((eb) => eb.fn.min(sql<number>`CASE WHEN j.lease_until IS NOT NULL AND j.lease_until >= ${now} THEN j.lease_until ELSE j.next_attempt_at END`).as('at'))
      .where('j.state', 'not in', TERMINAL)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('publication_job as e').select('e.id')
        .whereRef('e.set_id', '=', 'j.set_id').whereRef('e.id', '<', 'j.id').where('e.state', 'not in', TERMINAL))))
      .executeTakeFirst();
    return r?.at === null || r?.at === undefined ? undefined : Number(r.at);
  }

  async setState(id: number, state: JobState, extra: { kosId?: number; targetKosId?: number | null; note?: string } = {}): Promise<void> {
    await this.db.updateTable('publication_job').set({
      state,
      updated_at: this.now(),
      ...(extra.kosId !== undefined ? { kos_id: extra.kosId } : {}),
      ...(extra.targetKosId !== undefined ? { target_kos_id: extra.targetKosId } : {}),
      ...(extra.note !== undefined ? { note: extra.note } : {}),
      ...(state === 'done' ? { last_error: null, study_waiting_since: null } : {}),
    }).where('id', '=', id).execute();
  }

  /** Records a failed attempt that will be retried at `at`. */
  async scheduleRetry(id: number, at: number, error: string, opts: { studyWaitingSince?: number } = {}): Promise<void> {
    await this.db.updateTable('publication_job').set((eb) => ({
      attempts: eb('attempts', '+', 1), next_attempt_at: at, last_error: error, updated_at: this.now(),
      study_waiting_since: eb.fn.coalesce('study_waiting_since', eb.val(opts.studyWaitingSince ?? null)),
    })).where('id', '=', id).execute();
  }

  async fail(id: number, error: string): Promise<void> {
    await this.db.updateTable('publication_job').set((eb) => ({
      failed_at_state: eb.ref('state'), state: 'failed', attempts: eb('attempts', '+', 1), last_error: error, updated_at: this.now(),
    })).where('id', '=', id).execute();
  }

  /** Admin retry: resume a failed job where it stopped, with a fresh retry window. */
  async retry(id: number): Promise<Job | undefined> {
    const now = this.now();
    const r = await this.db.updateTable('publication_job').set({
      state: sql`CASE WHEN failed_at_state IN ('kos-built','submitted') THEN failed_at_state ELSE 'received' END`,
      failed_at_state: null, attempts: 0, next_attempt_at: now, window_start: now, study_waiting_since: null, updated_at: now,
    }).where('id', '=', id).where('state', '=', 'failed').executeTakeFirst();
    return Number(r.numUpdatedRows) ? this.job(id) : undefined;
  }

  async list(q: { status?: JobStatus; page: number; pageSize: number }): Promise<{ items: JobWithStatus[]; total: number }> {
    const base = this.db.selectFrom('publication_job').$if(!!q.status, (b) => b.where(STATUS_SQL, '=', q.status!));
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await base.selectAll().select(STATUS_SQL.as('status')).orderBy('id', 'desc').limit(q.pageSize).offset((q.page - 1) * q.pageSize).execute();
    return { items: rows.map((r) => ({ ...jobFromRow(r), status: r.status })), total: Number(n) };
  }

  /** A job with what happened to it. */
  async jobWithStatus(id: number): Promise<JobWithStatus | undefined> {
    const r = await this.db.selectFrom('publication_job').selectAll().select(STATUS_SQL.as('status')).where('id', '=', id).executeTakeFirst();
    return r ? { ...jobFromRow(r), status: r.status } : undefined;
  }

  /** Unfinished or recent jobs naming a study (for the report link). */
  async jobsForStudy(studyUid: string): Promise<Job[]> {
    const rows = await this.db.selectFrom('publication_job').selectAll()
      .where(sql<string>`(' ' || study_uids || ' ')`, 'like', `% ${studyUid} %`).orderBy('id', 'desc').limit(20).execute();
    return rows.map(jobFromRow);
  }

  /** The latest job (any kind) that carried a report of this set, for re-publication after IOCM. */
  async lastRecordOfSet(setId: string): Promise<PublicationRecord | undefined> {
    const rows = await this.db.selectFrom('publication_job').select('payload')
      .where('set_id', '=', setId).where('kind', 'in', ['publish', 'refresh']).where('state', '=', 'done').orderBy('id', 'desc').execute();
    for (const { payload } of rows) {
      const rec = decodePayload(payload).record;
      if (rec) return rec;
    }
    return undefined;
  }

  /** Jobs not yet done or failed / failed (metrics). */
  async countJobs(which: 'pending' | 'failed'): Promise<number> {
    const { n } = await this.db.selectFrom('publication_job').select((eb) => eb.fn.countAll<number>().as('n'))
      .$if(which === 'pending', (q) => q.where('state', 'not in', TERMINAL))
      .$if(which === 'failed', (q) => q.where('state', '=', 'failed'))
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  // ---- KOS register ----

  /** Stores a freshly built KOS and moves its job to kos-built, atomically. */
  saveBuiltKos(jobId: number, k: { setId: string; sopInstanceUid: string; patientId: string; part10: Buffer; refs: KosRefs; studies: { studyUid: string; accession: string }[] }): Promise<number> {
    return this.transaction(async (r) => {
      const now = this.now();
      const count = Object.values(k.refs).reduce((n, s) => n + Object.values(s).reduce((m, l) => m + l.length, 0), 0);
      const { id: kosId } = await r.db.insertInto('published_kos').values({
        job_id: jobId, set_id: k.setId, sop_instance_uid: k.sopInstanceUid, patient_id: k.patientId, part10: k.part10, refs: JSON.stringify(k.refs),
        instance_count: count, status: 'built', created_at: now, kos_entry_uuid: null, report_entry_uuid: null, published_at: null, ended_at: null, report_unique_id: null,
      }).returning('id').executeTakeFirstOrThrow();
      if (k.studies.length) {
        await r.db.insertInto('published_kos_study').values(k.studies.map((s) => ({ kos_id: kosId, study_uid: s.studyUid, accession: s.accession }))).execute();
      }
      await r.setState(jobId, 'kos-built', { kosId });
      return kosId;
    });
  }

  /** Fixes what the submission replaces (before anything is sent) and moves the job to submitted. */
  markSubmitting(jobId: number, targetKosId: number | undefined): Promise<void> {
    return this.setState(jobId, 'submitted', { targetKosId: targetKosId ?? null });
  }

  /**
   * The DMP acknowledged a KOS: it becomes current, the one it replaces does not, the job is done.
   * entryUUIDs may be unknown yet (learnt afterwards with setEntryUuids).
   */
  markPublished(jobId: number, kosId: number, entries: { kos?: string; report?: string; reportUniqueId?: string }, replacedKosId?: number): Promise<void> {
    return this.transaction(async (r) => {
      const now = this.now();
      await r.db.updateTable('published_kos').set({
        status: 'current', kos_entry_uuid: entries.kos ?? null, report_entry_uuid: entries.report ?? null, report_unique_id: entries.reportUniqueId ?? null, published_at: now,
      }).where('id', '=', kosId).execute();
      if (replacedKosId) {
        await r.db.updateTable('published_kos').set({ status: 'replaced', ended_at: now }).where('id', '=', replacedKosId).where('status', '=', 'current').execute();
      }
      await r.setState(jobId, 'done');
    });
  }

  /** Records the entryUUIDs the DMP assigned to a published KOS (and its report). */
  async setEntryUuids(kosId: number, entries: { kos: string; report?: string }): Promise<void> {
    await this.db.updateTable('published_kos').set((eb) => ({
      kos_entry_uuid: entries.kos, report_entry_uuid: eb.fn.coalesce(eb.val(entries.report ?? null), 'report_entry_uuid'),
    })).where('id', '=', kosId).execute();
  }

  /** The DMP withdrew a KOS (ITI-57 Deleted): it no longer grants access. */
  markWithdrawn(jobId: number, kosId: number, note?: string): Promise<void> {
    return this.transaction(async (r) => {
      await r.db.updateTable('published_kos').set({ status: 'withdrawn', ended_at: this.now() }).where('id', '=', kosId).execute();
      await r.setState(jobId, 'done', { note });
    });
  }

  async kos(id: number): Promise<PublishedKos | undefined> {
    const r = await this.db.selectFrom('published_kos').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? this.kosFromRow(r) : undefined;
  }

  async kosByUid(uid: string): Promise<PublishedKos | undefined> {
    const r = await this.db.selectFrom('published_kos').selectAll().where('sop_instance_uid', '=', uid).executeTakeFirst();
    return r ? this.kosFromRow(r) : undefined;
  }

  async kosPart10(id: number): Promise<Buffer | undefined> {
    const r = await this.db.selectFrom('published_kos').select('part10').where('id', '=', id).executeTakeFirst();
    return r?.part10;
  }

  async currentOfSet(setId: string): Promise<PublishedKos | undefined> {
    const r = await this.db.selectFrom('published_kos').selectAll().where('set_id', '=', setId).where('status', '=', 'current')
      .orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r ? this.kosFromRow(r) : undefined;
  }

  /** Version of the report whose KOS is current for the set. */
  async currentVersionOfSet(setId: string): Promise<number | undefined> {
    const r = await this.db.selectFrom('published_kos as k').innerJoin('publication_job as j', 'j.id', 'k.job_id').select('j.version')
      .where('k.set_id', '=', setId).where('k.status', '=', 'current').orderBy('k.id', 'desc').limit(1).executeTakeFirst();
    return opt(r?.version);
  }

  /** The set a document id belongs to, from the jobs that carried it. */
  async setOfDocument(documentId: string): Promise<string | undefined> {
    const r = await this.db.selectFrom('publication_job').select('set_id').where('document_id', '=', documentId).orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r?.set_id;
  }

  /** KOS (any status) naming the study, newest first. */
  async kosForStudy(studyUid: string): Promise<PublishedKos[]> {
    const rows = await this.db.selectFrom('published_kos as k').innerJoin('published_kos_study as s', 's.kos_id', 'k.id').selectAll('k')
      .where('s.study_uid', '=', studyUid).orderBy('k.id', 'desc').execute();
    return Promise.all(rows.map((r) => this.kosFromRow(r)));
  }

  /** Current KOS referencing any of these instances. */
  async currentKosReferencing(studyUid: string, sopUids: Set<string>): Promise<PublishedKos[]> {
    return (await this.kosForStudy(studyUid)).filter((k) => k.status === 'current' && Object.values(k.refs[studyUid] ?? {}).some((l) => l.some((u) => sopUids.has(u))));
  }

  private async kosFromRow(r: KosRow): Promise<PublishedKos> {
    const id = r.id;
    let refs = this.refsCache.get(id);
    if (!refs) {
      refs = JSON.parse(r.refs) as KosRefs;
      if (this.refsCache.size > 500) this.refsCache.clear();
      this.refsCache.set(id, refs);
    }
    const studies = await this.db.selectFrom('published_kos_study').select(['study_uid as studyUid', 'accession']).where('kos_id', '=', id).execute();
    return {
      id,
      jobId: r.job_id,
      setId: r.set_id,
      sopInstanceUid: r.sop_instance_uid,
      patientId: r.patient_id,
      refs,
      instanceCount: r.instance_count,
      status: r.status as KosStatus,
      kosEntryUuid: opt(r.kos_entry_uuid),
      reportEntryUuid: opt(r.report_entry_uuid),
      reportUniqueId: opt(r.report_unique_id),
      studies,
      createdAt: r.created_at,
      publishedAt: opt(r.published_at),
    };
  }

  // ---- IOCM rejections ----

  /** Records rejected instances; returns how many were not already known. */
  async addRejections(noteUid: string, reason: string, items: { studyUid: string; seriesUid: string; sopInstanceUid: string }[]): Promise<number> {
    if (!items.length) return 0;
    const now = this.now();
    const r = await this.db.insertInto('rejected_instance')
      .values(items.map((i) => ({ sop_instance_uid: i.sopInstanceUid, study_uid: i.studyUid, series_uid: i.seriesUid, note_uid: noteUid, reason, rejected_at: now })))
      .onConflict((oc) => oc.column('sop_instance_uid').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0);
  }

  async rejectedIn(studyUid: string): Promise<Set<string>> {
    const rows = await this.db.selectFrom('rejected_instance').select('sop_instance_uid').where('study_uid', '=', studyUid).execute();
    return new Set(rows.map((r) => r.sop_instance_uid));
  }

  async isRejected(sopInstanceUid: string): Promise<boolean> {
    return !!(await this.db.selectFrom('rejected_instance').select('sop_instance_uid').where('sop_instance_uid', '=', sopInstanceUid).executeTakeFirst());
  }
}
