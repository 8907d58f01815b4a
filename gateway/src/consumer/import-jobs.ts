// "Import into my PACS": copies a study (or one series) of a viewer session from the cache into the
// box's own PACS (C-STORE, STOW-RS or a folder, through the Pacs adapter), one instance at a time so
// the viewer can show progress and every instance gets its own result. Each instance is reconciled
// with the call's local patient on its way (reconcile.ts): one instance in memory at a time, never
// the study. A job a restart interrupted ends failed ("interrompu par un redémarrage").
import type { ImportProgress } from './session-document.js';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import type { Pacs } from '../pacs/pacs.js';
import { HttpProblem } from '../http/problem.js';
import { readPatientModule } from '../dicom/patient-module.js';
import { measurementReportProblem } from '../dicom/measurement-sr.js';
import { readMeta } from '../dicom/part10.js';
import type { CallPatient } from './contextual-call.js';
import { reconcileInstance, refusal, traitDifferences } from './reconcile.js';
import type { StudyCache, SeriesSpec } from './study-cache.js';

/** why a job that was running when the box stopped is failed */
export const INTERRUPTED = 'interrompu par un redémarrage';

const pinOwner = (jobId: string) => `import:${jobId}`;

/** per-instance results are written to the table every this many instances (and at the end) */
const RESULTS_EVERY = 50;

export interface ImportStatus extends ImportProgress {
  jobId: string;
  results: { sopInstanceUid: string; ok: boolean; reason?: string }[];
}

export interface ImportRequest {
  callKey: string;
  rpps: string;
  studyUid: string;
  seriesUid?: string;
  specs: SeriesSpec[];
  token: string;
  /** the call's patient: the instances are checked against it and given its local identifiers */
  patient: CallPatient;
  /** the viewer's measurements (DICOM SR, TID 1500, base64 Part 10): stored with the exam */
  measurements?: unknown;
}

export class ImportJobs {
  private readonly live = new Map<string, ImportStatus>();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly db: Db, private readonly cache: StudyCache, private readonly pacs: Pacs, private readonly logger?: Logger,
    private readonly onDone?: (req: ImportRequest, status: ImportStatus) => void) {
    // jobs left running by the previous process will never finish: say so in the table, drop their pins
    const stale = db.prepare(`UPDATE consumer_import_jobs SET state = 'failed', failed = total - stored, error = ? WHERE state = 'running' RETURNING id`).all(INTERRUPTED) as { id: string }[];
    for (const j of stale) cache.unpin(pinOwner(j.id));
  }

  /**
   * Starts a job; refused (409, French detail) when the first instance of a series is not the call's
   * patient. (Every instance is checked again as it is sent.)
   */
  async start(req: ImportRequest): Promise<string> {
    const sr = measurementsOf(req);
    await this.checkPatient(req);
    const jobId = randomBytes(12).toString('base64url');
    const total = req.specs.reduce((n, s) => n + s.expected.length, 0) + (sr ? 1 : 0);
    const status: ImportStatus = { jobId, done: false, state: 'running', total, stored: 0, failed: 0, results: [] };
    this.live.set(jobId, status);
    this.db.prepare(`INSERT INTO consumer_import_jobs (id, call_hash, rpps, study_uid, series_uid, state, total, created_at)
      VALUES (?,?,?,?,?,'running',?,?)`).run(jobId, req.callKey, req.rpps, req.studyUid, req.seriesUid ?? null, total, Date.now());
    const p = this.run(req, status, sr).finally(() => this.running.delete(p));
    this.running.add(p);
    return jobId;
  }

  private async checkPatient(req: ImportRequest): Promise<void> {
    for (const spec of req.specs) {
      const first = spec.expected[0];
      if (!first) continue;
      let diffs: string[];
      try {
        const handle = this.cache.ensure(spec, req.token, req.rpps);
        let part10: Buffer | undefined;
        try {
          await handle.instance(first);
          const file = this.cache.instanceFile(spec, first);
          part10 = file && await readFile(file.path);
        } finally {
          handle.release(); // its read lease: a lease never released keeps the series from eviction
        }
        if (!part10) continue;
        diffs = traitDifferences(req.patient, readPatientModule(part10));
      } catch (e) {
        this.logger?.warn({ err: (e as Error).message }, 'import: the first instance could not be checked before the job');
        continue; // the job reports it per instance
      }
      if (diffs.length) throw new HttpProblem(409, 'Import refusé', refusal(diffs));
    }
  }

  private async run(req: ImportRequest, status: ImportStatus, sr?: { sop: string; part10: Buffer }): Promise<void> {
    /** reconciles one instance, stores it, counts its result */
    const storeOne = async (sop: string, read: () => Promise<Buffer>) => {
      let ok = false;
      let reason: string | undefined;
      try {
        const reconciled = reconcileInstance(await read(), req.patient);
        const r = await this.pacs.store((async function* () { yield reconciled; })());
        ok = r.stored.length === 1;
        reason = r.failed[0]?.reason;
      } catch (e) {
        reason = (e as Error).message;
      }
      status.results.push({ sopInstanceUid: sop, ok, ...(reason && !ok ? { reason } : {}) });
      if (ok) status.stored++; else status.failed++;
      // counts at every instance; the per-instance results (a growing list) now and then and at the end
      this.persist(status, status.results.length % RESULTS_EVERY === 0);
    };
    // the series stay in the cache while the job reads them (eviction skips pinned KOS)
    for (const spec of req.specs) this.cache.pin(pinOwner(status.jobId), spec.source, spec.kosUid);
    try {
      for (const spec of req.specs) {
        const handle = this.cache.ensure(spec, req.token, req.rpps);
        for await (const sop of handle.instances()) {
          await storeOne(sop, async () => {
            await handle.instance(sop); // instances are announced while they land: wait for the whole file
            const file = this.cache.instanceFile(spec, sop);
            if (!file) throw new Error('instance missing from the cache');
            return readFile(file.path);
          });
        }
      }
      // the measurements last: they reference images the PACS now holds
      if (sr) await storeOne(sr.sop, async () => sr.part10);
      status.state = status.failed > 0 && status.stored === 0 ? 'failed' : 'completed';
    } catch (e) {
      status.state = 'failed';
      status.error = (e as Error).message;
      status.failed = status.total - status.stored;
      this.logger?.warn({ err: (e as Error).message }, 'import failed');
    }
    this.cache.unpin(pinOwner(status.jobId));
    status.done = true;
    this.persist(status);
    this.live.delete(status.jobId); // the table has it all now
    this.onDone?.(req, status);
  }

  private persist(s: ImportStatus, withResults = true): void {
    if (!withResults) {
      this.db.prepare('UPDATE consumer_import_jobs SET state = ?, stored = ?, failed = ? WHERE id = ?').run(s.state, s.stored, s.failed, s.jobId);
      return;
    }
    this.db.prepare('UPDATE consumer_import_jobs SET state = ?, stored = ?, failed = ?, results_json = ?, error = ? WHERE id = ?')
      .run(s.state, s.stored, s.failed, JSON.stringify(s.results), s.error ?? null, s.jobId);
  }

  /** A job of this viewer session, live or from the table. */
  get(jobId: string, callKey: string): ImportStatus | undefined {
    const row = this.db.prepare('SELECT * FROM consumer_import_jobs WHERE id = ? AND call_hash = ?').get(jobId, callKey) as
      | { id: string; state: ImportStatus['state']; total: number; stored: number; failed: number; results_json: string; error: string | null }
      | undefined;
    if (!row) return undefined;
    const live = this.live.get(jobId);
    if (live) return live;
    // not live: finished, or left running by a process that stopped (terminal either way)
    const interrupted = row.state === 'running';
    return {
      jobId, done: true, state: interrupted ? 'failed' : row.state, total: row.total, stored: row.stored,
      failed: interrupted ? row.total - row.stored : row.failed, results: JSON.parse(row.results_json),
      ...(interrupted ? { error: INTERRUPTED } : row.error ? { error: row.error } : {}),
    };
  }

  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}

/** The measurement report sent with the import, checked (400 when it is not one of this study). */
function measurementsOf(req: ImportRequest): { sop: string; part10: Buffer } | undefined {
  if (req.measurements === undefined) return undefined;
  if (typeof req.measurements !== 'string' || req.measurements.length > 2_000_000) throw new HttpProblem(400, 'Mesures illisibles', 'measurements: a base64 DICOM SR Part 10 under 1.5 MB');
  const part10 = Buffer.from(req.measurements, 'base64');
  const problem = measurementReportProblem(part10, req.studyUid);
  if (problem) throw new HttpProblem(400, 'Mesures illisibles', `measurements: ${problem}`);
  return { sop: readMeta(part10)!.sopInstanceUid, part10 };
}
