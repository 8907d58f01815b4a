// "Import into my PACS": copies a study (or one series) of a viewer session from the cache into the
// box's own PACS (C-STORE, STOW-RS or a folder, through the Pacs adapter), one instance at a time so
// the viewer can show progress and every instance gets its own result. Each instance is reconciled
// with the call's local patient on its way (reconcile.ts): one instance in memory at a time, never
// the study. The job's row says which instance runs it and when that instance was last alive: any
// instance answers its status; a job whose instance stopped (restarted, or silent past JOB_STALE_MS)
// ends failed ("interrompu par un redémarrage").
import type { ImportProgress } from './session-document.js';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Store } from '../store/database.js';
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
/** a running job's instance says it is alive this often… */
const HEARTBEAT_MS = 10_000;
/** …and a job not heard of for this long is taken as interrupted (its instance died) */
export const JOB_STALE_MS = 60_000;

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

interface JobRow {
  id: string; state: ImportStatus['state']; total: number; stored: number; failed: number; results_json: string; error: string | null;
  owner: string | null; heartbeat_at: number | null;
}

export class ImportJobs {
  private readonly live = new Map<string, ImportStatus>();
  private readonly running = new Set<Promise<void>>();
  private readonly heartbeat: NodeJS.Timeout;

  /** `instance`: this instance's stable name (instance-id.ts): its own jobs left running are its previous life's */
  constructor(private readonly store: Store, private readonly cache: StudyCache, private readonly pacs: Pacs, private readonly instance: string,
    private readonly logger?: Logger, private readonly onDone?: (req: ImportRequest, status: ImportStatus) => void,
    private readonly now: () => number = Date.now) {
    this.heartbeat = setInterval(() => {
      if (!this.live.size) return;
      void this.db.updateTable('consumer_import_jobs').set({ heartbeat_at: this.now() }).where('id', 'in', [...this.live.keys()]).execute()
        .catch((e: Error) => this.logger?.warn({ err: e.message }, 'import heartbeat failed'));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private get db() { return this.store.db; }

  /**
   * Jobs that will never finish — this instance's from before its restart, any instance's silent past
   * JOB_STALE_MS — are failed in the table and their cache pins dropped. Run at start and now and then.
   */
  async recover(): Promise<number> {
    let q = this.db.updateTable('consumer_import_jobs')
      .set((eb) => ({ state: 'failed', failed: eb('total', '-', eb.ref('stored')), error: INTERRUPTED }))
      .where('state', '=', 'running')
      .where((eb) => eb.or([
        eb('owner', '=', this.instance),
        eb('owner', 'is', null),
        eb('heartbeat_at', 'is', null),
        eb('heartbeat_at', '<', this.now() - JOB_STALE_MS),
      ]));
    // what this process runs is alive, whatever its row says
    if (this.live.size) q = q.where('id', 'not in', [...this.live.keys()]);
    const stale = await q.returning('id').execute();
    for (const j of stale) await this.cache.unpin(pinOwner(j.id));
    return stale.length;
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
    const now = this.now();
    await this.db.insertInto('consumer_import_jobs').values({
      id: jobId, call_hash: req.callKey, rpps: req.rpps, study_uid: req.studyUid, series_uid: req.seriesUid ?? null, state: 'running', total,
      created_at: now, owner: this.instance, heartbeat_at: now,
    }).execute();
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
        const handle = await this.cache.ensure(spec, req.token, req.rpps);
        let part10: Buffer | undefined;
        try {
          await handle.instance(first);
          const file = await this.cache.instanceFile(spec, first);
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
      await this.persist(status, status.results.length % RESULTS_EVERY === 0);
    };
    // the series stay in the cache while the job reads them (eviction skips pinned KOS)
    try {
      for (const spec of req.specs) await this.cache.pin(pinOwner(status.jobId), spec.source, spec.kosUid);
      for (const spec of req.specs) {
        const handle = await this.cache.ensure(spec, req.token, req.rpps);
        for await (const sop of handle.instances()) {
          await storeOne(sop, async () => {
            await handle.instance(sop); // instances are announced while they land: wait for the whole file
            const file = await this.cache.instanceFile(spec, sop);
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
    await this.cache.unpin(pinOwner(status.jobId)).catch((e: Error) => this.logger?.warn({ err: e.message }, 'import: unpin failed'));
    await this.persist(status).catch((e: Error) => this.logger?.warn({ err: e.message }, 'import: the final state could not be written'));
    this.onDone?.(req, status); // audited before anyone reads the job done
    status.done = true;
    this.live.delete(status.jobId); // the table has it all now
  }

  private async persist(s: ImportStatus, withResults = true): Promise<void> {
    const set = { state: s.state, stored: s.stored, failed: s.failed, heartbeat_at: this.now() };
    await this.db.updateTable('consumer_import_jobs')
      .set(withResults ? { ...set, results_json: JSON.stringify(s.results), error: s.error ?? null } : set)
      .where('id', '=', s.jobId).execute();
  }

  /**
   * A job of this viewer session: live here, or from the table — running on another instance that
   * is alive (its counts as of its last write), finished, or interrupted (terminal).
   */
  async get(jobId: string, callKey: string): Promise<ImportStatus | undefined> {
    const row = await this.db.selectFrom('consumer_import_jobs')
      .select(['id', 'state', 'total', 'stored', 'failed', 'results_json', 'error', 'owner', 'heartbeat_at'])
      .where('id', '=', jobId).where('call_hash', '=', callKey).executeTakeFirst() as JobRow | undefined;
    if (!row) return undefined;
    const live = this.live.get(jobId);
    if (live) return live;
    const [total, stored, failed] = [Number(row.total), Number(row.stored), Number(row.failed)];
    const results = JSON.parse(row.results_json) as ImportStatus['results'];
    if (row.state === 'running' && row.owner !== this.instance && row.heartbeat_at !== null && Number(row.heartbeat_at) > this.now() - JOB_STALE_MS) {
      return { jobId, done: false, state: 'running', total, stored, failed, results };
    }
    const interrupted = row.state === 'running';
    return {
      jobId, done: true, state: interrupted ? 'failed' : row.state, total, stored,
      failed: interrupted ? total - stored : failed, results,
      ...(interrupted ? { error: INTERRUPTED } : row.error ? { error: row.error } : {}),
    };
  }

  async drain(): Promise<void> {
    clearInterval(this.heartbeat);
    await Promise.allSettled([...this.running]);
  }
}

/** The measurement report sent with the import, checked (400 when it is not one of this study). */
function measurementsOf(req: ImportRequest): { sop: string; part10: Buffer } | undefined {
  if (req.measurements === undefined) return undefined;
  if (typeof req.measurements !== 'string' || req.measurements.length > 2_000_000) throw new HttpProblem(400, 'Mesures illisibles', 'measurements : un SR DICOM Part 10 en base64, de moins de 1,5 Mo');
  const part10 = Buffer.from(req.measurements, 'base64');
  const problem = measurementReportProblem(part10, req.studyUid);
  if (problem) throw new HttpProblem(400, 'Mesures illisibles', `measurements: ${problem}`);
  return { sop: readMeta(part10)!.sopInstanceUid, part10 };
}
