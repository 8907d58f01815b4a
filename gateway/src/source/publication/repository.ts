// The publication outbox and the register of published KOS, behind one repository (SQL stays here).
// Every state change is one SQLite transaction, so a crash leaves each job at a step it can resume.
import type { Db } from '../../store/db.js';
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
const STATUS_SQL = `CASE
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

type Row = Record<string, unknown>;
const opt = <T>(v: unknown): T | undefined => (v === null || v === undefined ? undefined : (v as T));

function jobFromRow(r: Row): Job {
  return {
    id: r.id as number,
    kind: r.kind as JobKind,
    idemKey: r.idem_key as string,
    setId: r.set_id as string,
    documentId: opt(r.document_id),
    version: opt(r.version),
    controlId: opt(r.control_id),
    studyUids: String(r.study_uids ?? '').split(' ').filter(Boolean),
    payload: decodePayload(r.payload as string),
    state: r.state as JobState,
    failedAtState: opt(r.failed_at_state),
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number,
    windowStart: r.window_start as number,
    studyWaitingSince: opt(r.study_waiting_since),
    lastError: opt(r.last_error),
    note: opt(r.note),
    kosId: opt(r.kos_id),
    targetKosId: opt(r.target_kos_id),
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

function withStatusFromRow(r: Row): JobWithStatus {
  return { ...jobFromRow(r), status: r.status as JobStatus };
}

export function setKey(id: { root: string; extension?: string }): string {
  return id.extension ? `${id.root}^${id.extension}` : id.root;
}

const TERMINAL = `('done','failed')`;

export class PublicationRepository {
  private readonly refsCache = new Map<number, KosRefs>();

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  // ---- jobs ----

  /**
   * Stores a job unless one with the same idempotency key exists. A resent message whose job failed
   * re-queues it (with the new content); otherwise the existing job is left alone.
   * @returns the job and whether it was created (or re-queued)
   */
  enqueue(j: NewJob): { job: Job; created: boolean } {
    return this.db.transaction(() => {
      const now = this.now();
      const existing = this.db.prepare('SELECT * FROM publication_job WHERE idem_key = ?').get(j.idemKey) as Row | undefined;
      if (existing) {
        if (existing.state !== 'failed') return { job: jobFromRow(existing), created: false };
        this.db.prepare(`UPDATE publication_job SET payload = ?, control_id = ?, state = 'received', failed_at_state = NULL, attempts = 0,
            next_attempt_at = ?, window_start = ?, study_waiting_since = NULL, last_error = NULL, kos_id = NULL, target_kos_id = NULL, updated_at = ? WHERE id = ?`)
          .run(encodePayload(j.payload), j.controlId ?? null, now, now, now, existing.id);
        return { job: this.job(existing.id as number)!, created: true };
      }
      const info = this.db.prepare(`INSERT INTO publication_job (kind, idem_key, set_id, document_id, version, control_id, study_uids, payload, state,
          next_attempt_at, window_start, note, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
        .run(j.kind, j.idemKey, j.setId, j.documentId ?? null, j.version ?? null, j.controlId ?? null, (j.studyUids ?? []).join(' '),
          encodePayload(j.payload), j.state ?? 'received', now, now, j.note ?? null, now, now);
      return { job: this.job(Number(info.lastInsertRowid))!, created: true };
    })();
  }

  job(id: number): Job | undefined {
    const r = this.db.prepare('SELECT * FROM publication_job WHERE id = ?').get(id) as Row | undefined;
    return r ? jobFromRow(r) : undefined;
  }

  /**
   * The next job due, oldest first; a job waits while an earlier job of its report set is unfinished,
   * and jobs of the sets in `busySets` (being processed right now) are not offered.
   */
  nextDue(busySets: Iterable<string> = []): Job | undefined {
    const r = this.db.prepare(`SELECT * FROM publication_job j WHERE j.state NOT IN ${TERMINAL} AND j.next_attempt_at <= ?
        AND j.set_id NOT IN (SELECT value FROM json_each(?))
        AND NOT EXISTS (SELECT 1 FROM publication_job e WHERE e.set_id = j.set_id AND e.id < j.id AND e.state NOT IN ${TERMINAL})
        ORDER BY j.next_attempt_at, j.id LIMIT 1`).get(this.now(), JSON.stringify([...busySets])) as Row | undefined;
    return r ? jobFromRow(r) : undefined;
  }

  /**
   * When the next job that could run becomes due (undefined: none). Jobs of busy sets and jobs behind
   * an earlier unfinished job of their set are left out: they can only start once that one settles.
   */
  nextWakeAt(busySets: Iterable<string> = []): number | undefined {
    return opt(this.db.prepare(`SELECT MIN(j.next_attempt_at) FROM publication_job j WHERE j.state NOT IN ${TERMINAL}
        AND j.set_id NOT IN (SELECT value FROM json_each(?))
        AND NOT EXISTS (SELECT 1 FROM publication_job e WHERE e.set_id = j.set_id AND e.id < j.id AND e.state NOT IN ${TERMINAL})`)
      .pluck().get(JSON.stringify([...busySets])));
  }

  setState(id: number, state: JobState, extra: { kosId?: number; targetKosId?: number | null; note?: string } = {}): void {
    const sets = ['state = ?', 'updated_at = ?'];
    const args: unknown[] = [state, this.now()];
    if (extra.kosId !== undefined) { sets.push('kos_id = ?'); args.push(extra.kosId); }
    if (extra.targetKosId !== undefined) { sets.push('target_kos_id = ?'); args.push(extra.targetKosId); }
    if (extra.note !== undefined) { sets.push('note = ?'); args.push(extra.note); }
    if (state === 'done') sets.push('last_error = NULL', 'study_waiting_since = NULL');
    this.db.prepare(`UPDATE publication_job SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
  }

  /** Records a failed attempt that will be retried at `at`. */
  scheduleRetry(id: number, at: number, error: string, opts: { studyWaitingSince?: number } = {}): void {
    this.db.prepare(`UPDATE publication_job SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ?,
        study_waiting_since = COALESCE(study_waiting_since, ?) WHERE id = ?`)
      .run(at, error, this.now(), opts.studyWaitingSince ?? null, id);
  }

  fail(id: number, error: string): void {
    this.db.prepare(`UPDATE publication_job SET failed_at_state = state, state = 'failed', attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?`)
      .run(error, this.now(), id);
  }

  /** Admin retry: resume a failed job where it stopped, with a fresh retry window. */
  retry(id: number): Job | undefined {
    const now = this.now();
    const r = this.db.prepare(`UPDATE publication_job SET state = CASE WHEN failed_at_state IN ('kos-built','submitted') THEN failed_at_state ELSE 'received' END,
        failed_at_state = NULL, attempts = 0, next_attempt_at = ?, window_start = ?, study_waiting_since = NULL, updated_at = ?
        WHERE id = ? AND state = 'failed'`).run(now, now, now, id);
    return r.changes ? this.job(id) : undefined;
  }

  list(q: { status?: JobStatus; page: number; pageSize: number }): { items: JobWithStatus[]; total: number } {
    const where = q.status ? `WHERE (${STATUS_SQL}) = ?` : '';
    const args = q.status ? [q.status] : [];
    const total = this.db.prepare(`SELECT COUNT(*) FROM publication_job ${where}`).pluck().get(...args) as number;
    const rows = this.db.prepare(`SELECT *, ${STATUS_SQL} AS status FROM publication_job ${where} ORDER BY id DESC LIMIT ? OFFSET ?`)
      .all(...args, q.pageSize, (q.page - 1) * q.pageSize) as Row[];
    return { items: rows.map(withStatusFromRow), total };
  }

  /** A job with what happened to it. */
  jobWithStatus(id: number): JobWithStatus | undefined {
    const r = this.db.prepare(`SELECT *, ${STATUS_SQL} AS status FROM publication_job WHERE id = ?`).get(id) as Row | undefined;
    return r ? withStatusFromRow(r) : undefined;
  }

  /** Unfinished or recent jobs naming a study (for the report link). */
  jobsForStudy(studyUid: string): Job[] {
    return (this.db.prepare(`SELECT * FROM publication_job WHERE (' ' || study_uids || ' ') LIKE ? ORDER BY id DESC LIMIT 20`)
      .all(`% ${studyUid} %`) as Row[]).map(jobFromRow);
  }

  /** The latest job (any kind) that carried a report of this set, for re-publication after IOCM. */
  lastRecordOfSet(setId: string): PublicationRecord | undefined {
    const rows = this.db.prepare(`SELECT payload FROM publication_job WHERE set_id = ? AND kind IN ('publish','refresh') AND state = 'done' ORDER BY id DESC`).pluck().all(setId) as string[];
    for (const p of rows) {
      const rec = decodePayload(p).record;
      if (rec) return rec;
    }
    return undefined;
  }

  // ---- KOS register ----

  /** Stores a freshly built KOS and moves its job to kos-built, atomically. */
  saveBuiltKos(jobId: number, k: { setId: string; sopInstanceUid: string; patientId: string; part10: Buffer; refs: KosRefs; studies: { studyUid: string; accession: string }[] }): number {
    return this.db.transaction(() => {
      const now = this.now();
      const count = Object.values(k.refs).reduce((n, s) => n + Object.values(s).reduce((m, l) => m + l.length, 0), 0);
      const info = this.db.prepare(`INSERT INTO published_kos (job_id, set_id, sop_instance_uid, patient_id, part10, refs, instance_count, status, created_at)
          VALUES (?,?,?,?,?,?,?,'built',?)`).run(jobId, k.setId, k.sopInstanceUid, k.patientId, k.part10, JSON.stringify(k.refs), count, now);
      const kosId = Number(info.lastInsertRowid);
      const ins = this.db.prepare('INSERT INTO published_kos_study (kos_id, study_uid, accession) VALUES (?,?,?)');
      for (const s of k.studies) ins.run(kosId, s.studyUid, s.accession);
      this.setState(jobId, 'kos-built', { kosId });
      return kosId;
    })();
  }

  /** Fixes what the submission replaces (before anything is sent) and moves the job to submitted. */
  markSubmitting(jobId: number, targetKosId: number | undefined): void {
    this.setState(jobId, 'submitted', { targetKosId: targetKosId ?? null });
  }

  /**
   * The DMP acknowledged a KOS: it becomes current, the one it replaces does not, the job is done.
   * entryUUIDs may be unknown yet (learnt afterwards with setEntryUuids).
   */
  markPublished(jobId: number, kosId: number, entries: { kos?: string; report?: string; reportUniqueId?: string }, replacedKosId?: number): void {
    this.db.transaction(() => {
      const now = this.now();
      this.db.prepare(`UPDATE published_kos SET status = 'current', kos_entry_uuid = ?, report_entry_uuid = ?, report_unique_id = ?, published_at = ? WHERE id = ?`)
        .run(entries.kos ?? null, entries.report ?? null, entries.reportUniqueId ?? null, now, kosId);
      if (replacedKosId) {
        this.db.prepare(`UPDATE published_kos SET status = 'replaced', ended_at = ? WHERE id = ? AND status = 'current'`).run(now, replacedKosId);
      }
      this.setState(jobId, 'done');
    })();
  }

  /** Records the entryUUIDs the DMP assigned to a published KOS (and its report). */
  setEntryUuids(kosId: number, entries: { kos: string; report?: string }): void {
    this.db.prepare('UPDATE published_kos SET kos_entry_uuid = ?, report_entry_uuid = COALESCE(?, report_entry_uuid) WHERE id = ?')
      .run(entries.kos, entries.report ?? null, kosId);
  }

  /** The DMP withdrew a KOS (ITI-57 Deleted): it no longer grants access. */
  markWithdrawn(jobId: number, kosId: number, note?: string): void {
    this.db.transaction(() => {
      this.db.prepare(`UPDATE published_kos SET status = 'withdrawn', ended_at = ? WHERE id = ?`).run(this.now(), kosId);
      this.setState(jobId, 'done', { note });
    })();
  }

  kos(id: number): PublishedKos | undefined {
    const r = this.db.prepare('SELECT * FROM published_kos WHERE id = ?').get(id) as Row | undefined;
    return r ? this.kosFromRow(r) : undefined;
  }

  kosByUid(uid: string): PublishedKos | undefined {
    const r = this.db.prepare('SELECT * FROM published_kos WHERE sop_instance_uid = ?').get(uid) as Row | undefined;
    return r ? this.kosFromRow(r) : undefined;
  }

  kosPart10(id: number): Buffer | undefined {
    return opt(this.db.prepare('SELECT part10 FROM published_kos WHERE id = ?').pluck().get(id));
  }

  currentOfSet(setId: string): PublishedKos | undefined {
    const r = this.db.prepare(`SELECT * FROM published_kos WHERE set_id = ? AND status = 'current' ORDER BY id DESC LIMIT 1`).get(setId) as Row | undefined;
    return r ? this.kosFromRow(r) : undefined;
  }

  /** Version of the report whose KOS is current for the set. */
  currentVersionOfSet(setId: string): number | undefined {
    return opt(this.db.prepare(`SELECT j.version FROM published_kos k JOIN publication_job j ON j.id = k.job_id
        WHERE k.set_id = ? AND k.status = 'current' ORDER BY k.id DESC LIMIT 1`).pluck().get(setId));
  }

  /** The set a document id belongs to, from the jobs that carried it. */
  setOfDocument(documentId: string): string | undefined {
    return opt(this.db.prepare('SELECT set_id FROM publication_job WHERE document_id = ? ORDER BY id DESC LIMIT 1').pluck().get(documentId));
  }

  /** KOS (any status) naming the study, newest first. */
  kosForStudy(studyUid: string): PublishedKos[] {
    return (this.db.prepare(`SELECT k.* FROM published_kos k JOIN published_kos_study s ON s.kos_id = k.id WHERE s.study_uid = ? ORDER BY k.id DESC`)
      .all(studyUid) as Row[]).map((r) => this.kosFromRow(r));
  }

  /** Current KOS referencing any of these instances. */
  currentKosReferencing(studyUid: string, sopUids: Set<string>): PublishedKos[] {
    return this.kosForStudy(studyUid).filter((k) => k.status === 'current' && Object.values(k.refs[studyUid] ?? {}).some((l) => l.some((u) => sopUids.has(u))));
  }

  private kosFromRow(r: Row): PublishedKos {
    const id = r.id as number;
    let refs = this.refsCache.get(id);
    if (!refs) {
      refs = JSON.parse(r.refs as string) as KosRefs;
      if (this.refsCache.size > 500) this.refsCache.clear();
      this.refsCache.set(id, refs);
    }
    return {
      id,
      jobId: r.job_id as number,
      setId: r.set_id as string,
      sopInstanceUid: r.sop_instance_uid as string,
      patientId: r.patient_id as string,
      refs,
      instanceCount: r.instance_count as number,
      status: r.status as KosStatus,
      kosEntryUuid: opt(r.kos_entry_uuid),
      reportEntryUuid: opt(r.report_entry_uuid),
      reportUniqueId: opt(r.report_unique_id),
      studies: this.db.prepare('SELECT study_uid AS studyUid, accession FROM published_kos_study WHERE kos_id = ?').all(id) as { studyUid: string; accession: string }[],
      createdAt: r.created_at as number,
      publishedAt: opt(r.published_at),
    };
  }

  // ---- IOCM rejections ----

  /** Records rejected instances; returns those not already known. */
  addRejections(noteUid: string, reason: string, items: { studyUid: string; seriesUid: string; sopInstanceUid: string }[]): number {
    const ins = this.db.prepare('INSERT OR IGNORE INTO rejected_instance (sop_instance_uid, study_uid, series_uid, note_uid, reason, rejected_at) VALUES (?,?,?,?,?,?)');
    let n = 0;
    const now = this.now();
    for (const i of items) n += ins.run(i.sopInstanceUid, i.studyUid, i.seriesUid, noteUid, reason, now).changes;
    return n;
  }

  rejectedIn(studyUid: string): Set<string> {
    return new Set(this.db.prepare('SELECT sop_instance_uid FROM rejected_instance WHERE study_uid = ?').pluck().all(studyUid) as string[]);
  }

  isRejected(sopInstanceUid: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM rejected_instance WHERE sop_instance_uid = ?').get(sopInstanceUid);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
