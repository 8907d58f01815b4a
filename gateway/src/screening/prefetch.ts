// The prefetch engine: for each queued case of a prefetching batch, a DMP search (the exam's KOS and
// up to N prior screening exams), then every series into the study cache (the viewer's own cache and
// peer client: same single-flight fetch, same checks), pinned until the batch is closed. At most
// `concurrency` cases at once and `perSourceConcurrency` per source box; a transient failure is retried
// with backoff, then the case fails with its reason and is tried again every retryFailedSeconds (a
// source box that comes back). State is in the store: after a restart, cases are queued again and
// series already complete in the cache are not fetched again.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { DmpClient } from '../dmp/client.js';
import type { AuditLog } from '../store/audit.js';
import { DmpSearchError, searchPatientStudies, type ReportDoc, type SessionStudy } from '../consumer/dmp-search.js';
import { PeerNotAllowedError, PeerStatusError, PeerUnavailableError, peerRefusalKind } from '../consumer/peer-client.js';
import { IdentityMismatchError } from '../consumer/instance-check.js';
import { seriesSpecs } from '../consumer/series-specs.js';
import type { StudyCache } from '../consumer/study-cache.js';
import type { ScreeningRepository } from './repository.js';
import type { ScreeningBatchRow, ScreeningCaseRow } from './schema.js';
import { PSC_RECONNECT, PscReconnectError, type BatchTokens } from './tokens.js';
import type { CheckedRow } from './rows.js';

export interface PrefetchSettings {
  concurrency: number;
  perSourceConcurrency: number;
  retries: number;
  retryBaseMs: number;
  retryFailedSeconds: number;
}

/** What the DMP search found for a case (stored as resolved_json). */
export interface Resolved {
  studies: SessionStudy[];
  reports: { id: string; mediaType: ReportDoc['mediaType']; data: string }[];
  patient?: { name?: string; birthDate?: string; sex?: string };
}

export interface PrefetchDeps {
  repo: ScreeningRepository;
  cache: StudyCache;
  dmp?: DmpClient;
  tokens: BatchTokens;
  audit: AuditLog;
  isHostAllowed: (url: string) => boolean;
  refreshAllowList?: () => Promise<void>;
  settings: PrefetchSettings;
  logger?: Logger;
}

/** how often a case's progress is written while it lands */
const PROGRESS_MS = 200;

/** the cache pins of a batch */
export const pinOwner = (batchId: string) => `screening:${batchId}`;

/** Changes to batches and cases: 'batch' (batchId) and 'case' (batchId, caseId). */
export class ScreeningEvents extends EventEmitter {
  constructor() { super(); this.setMaxListeners(0); }
  batch(id: string): void { this.emit('batch', id); }
  case(batchId: string, caseId: string): void { this.emit('case', batchId, caseId); this.emit('batch', batchId); }
}

class CaseFailure extends Error {
  constructor(message: string, readonly retryable: boolean) { super(message); this.name = 'CaseFailure'; }
}
/** the case could not start now (its source box is busy, the batch paused): queued again as it was */
class NotNow extends Error {}

export class PrefetchEngine {
  readonly events = new ScreeningEvents();
  private readonly running = new Map<string, Promise<void>>();
  private readonly perSource = new Map<string, number>();
  private pumping?: Promise<void>;
  private again = false;
  private timer?: NodeJS.Timeout;
  private sweeper?: NodeJS.Timeout;
  private stopped = false;
  /**
   * source boxes whose last case failed for a transient reason (down): their other cases fail at once
   * with the same reason instead of each waiting on the network, until the next sweep tries again
   */
  private readonly down = new Map<string, string>();

  constructor(private readonly d: PrefetchDeps) {}

  async start(): Promise<void> {
    await this.d.repo.requeueInterrupted();
    this.sweeper = setInterval(() => void this.sweep(), this.d.settings.retryFailedSeconds * 1000);
    this.sweeper.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
    await this.pumping;
    await Promise.allSettled([...this.running.values()]);
  }

  /** Looks for startable cases (after a creation, a resume, a case done). */
  kick(): void {
    if (this.stopped) return;
    if (this.pumping) { this.again = true; return; }
    this.pumping = this.pump().catch((e) => this.d.logger?.warn({ err: (e as Error).message }, 'screening prefetch scheduling failed'))
      .finally(() => {
        this.pumping = undefined;
        if (this.again) { this.again = false; this.kick(); }
      });
  }

  /** Cases failed for a transient reason are tried again (a source box back up). */
  async sweep(batchId?: string): Promise<void> {
    this.down.clear();
    const before = new Date(Date.now() - (batchId ? 0 : this.d.settings.retryFailedSeconds * 1000)).toISOString();
    const batches = await this.d.repo.requeueRetryable(before, batchId);
    for (const id of batches) {
      await this.d.repo.updateBatch(id, { state: 'prefetching' }, ['ready']);
      this.events.batch(id);
    }
    if (batches.length) this.kick();
  }

  private async pump(): Promise<void> {
    const free = this.d.settings.concurrency - this.running.size;
    if (free <= 0) return;
    // enough candidates to skip those whose source box is at its limit
    const candidates = await this.d.repo.startable(free + 4 * this.d.settings.concurrency, [...this.running.keys()]);
    let started = 0;
    for (const c of candidates) {
      if (this.running.size >= this.d.settings.concurrency) break;
      if (c.source && (this.perSource.get(c.source) ?? 0) >= this.d.settings.perSourceConcurrency) continue;
      const p = this.runCase(c).finally(() => { this.running.delete(c.id); this.kick(); });
      this.running.set(c.id, p);
      started++;
    }
    if (started === 0 && this.running.size === 0) this.wakeAt(await this.d.repo.nextAttemptAt());
    else if (candidates.length === 0) this.wakeAt(await this.d.repo.nextAttemptAt());
  }

  private wakeAt(at: string | undefined): void {
    clearTimeout(this.timer);
    if (!at || this.stopped) return;
    this.timer = setTimeout(() => this.kick(), Math.max(10, Date.parse(at) - Date.now()));
    this.timer.unref();
  }

  private takeSource(source: string): boolean {
    const n = this.perSource.get(source) ?? 0;
    if (n >= this.d.settings.perSourceConcurrency) return false;
    this.perSource.set(source, n + 1);
    return true;
  }

  private releaseSource(source: string): void {
    const n = (this.perSource.get(source) ?? 1) - 1;
    if (n > 0) this.perSource.set(source, n); else this.perSource.delete(source);
  }

  private async runCase(c: ScreeningCaseRow): Promise<void> {
    const { repo } = this.d;
    const batch = await repo.batch(c.batch_id);
    if (!batch || batch.state !== 'prefetching') return;
    if (!(await repo.updateCase(c.id, { state: 'fetching', error: null }, ['queued']))) return;
    this.events.case(c.batch_id, c.id);
    let held: string | undefined;
    try {
      const resolved = c.resolved_json ? JSON.parse(c.resolved_json) as Resolved : await this.resolve(batch, c);
      const source = resolved.studies[0].source;
      const down = this.down.get(source);
      if (down) throw new CaseFailure(down, true);
      if (!this.takeSource(source)) throw new NotNow();
      held = source;
      await this.fetchAll(batch, c, resolved);
      await repo.updateCase(c.id, { state: 'ready', error: null, retryable: 0, attempts: 0, next_attempt_at: null }, ['fetching']);
    } catch (e) {
      await this.failed(batch, c, e);
    } finally {
      if (held) this.releaseSource(held);
    }
    this.events.case(c.batch_id, c.id);
    await this.settleBatch(c.batch_id);
  }

  /** The DMP search of a case: its exam (study UID, else accession, else the latest) and the priors before it. */
  private async resolve(batch: ScreeningBatchRow, c: ScreeningCaseRow): Promise<Resolved> {
    const row = JSON.parse(c.row_json) as CheckedRow;
    if (!this.d.dmp) throw new CaseFailure("Cette DRIMbox n'est pas reliée au DMP : la recherche des examens est impossible.", false);
    const t0 = performance.now();
    const audit = (status: number, outcome: string) => this.d.audit.record({
      direction: 'user', actorRpps: batch.created_by_rpps, route: `screening:${batch.id}`, method: 'DMP-SEARCH', patientId: row.ins,
      studyUid: row.studyUid, status, outcome: outcome.slice(0, 300), durationMs: performance.now() - t0,
    });
    let found;
    try {
      await this.d.tokens.access(batch); // no DMP search in the name of someone whose PSC session is gone
      found = await searchPatientStudies(this.d.dmp, {
        patient: { birthName: row.familyName ?? '', givenNames: (row.givenName ?? '').split(/\s+/).filter(Boolean), birthDate: row.birthDate, sex: row.sex as 'F' | 'M' | 'U', ins: { value: row.ins, oid: row.insOid } },
        filters: { modality: 'MG' },
      }, { rpps: batch.created_by_rpps, displayName: batch.created_by_name, roles: [] }, { isHostAllowed: this.d.isHostAllowed, refreshAllowList: this.d.refreshAllowList });
    } catch (e) {
      if (e instanceof DmpSearchError) {
        audit(e.status, e.message);
        throw new CaseFailure(e.userMessage, e.status >= 500);
      }
      throw e;
    }
    const studies = found.studies;
    if (studies.length === 0) {
      audit(404, 'no study');
      throw new CaseFailure("Patiente inconnue du DMP : aucun examen de mammographie n'y est référencé pour cet INS.", false);
    }
    const current = row.studyUid ? studies.find((s) => s.studyUid === row.studyUid)
      : row.accessionNumber ? studies.find((s) => s.accessionNumber === row.accessionNumber)
        : [...studies].sort((a, b) => b.date.localeCompare(a.date))[0];
    if (!current) {
      audit(404, 'exam not found');
      throw new CaseFailure(`Aucun document de référence (KOS) dans le DMP pour cet examen (${row.studyUid ? `UID ${row.studyUid}` : `n° ${row.accessionNumber}`}).`, false);
    }
    if (current.status !== 'available') {
      audit(409, current.problem ?? current.status);
      throw new CaseFailure(current.problem ?? "L'examen ne peut pas être récupéré.", false);
    }
    const priors = studies.filter((s) => s !== current && s.status === 'available' && s.date < current.date)
      .sort((a, b) => b.date.localeCompare(a.date)).slice(0, batch.priors_wanted);
    const chosen = [{ ...current, current: true }, ...priors.map((p) => ({ ...p, current: false }))];
    const wanted = new Set(chosen.map((s) => s.reportId).filter(Boolean));
    const resolved: Resolved = {
      studies: chosen,
      reports: found.reports.filter((r) => wanted.has(r.id)).map((r) => ({ id: r.id, mediaType: r.mediaType, data: r.data.toString('base64') })),
      ...(found.patientFromKos ? { patient: found.patientFromKos } : {}),
    };
    const total = chosen.reduce((n, s) => n + s.series.reduce((m, se) => m + se.instances.length, 0), 0);
    await this.d.repo.updateCase(c.id, { resolved_json: JSON.stringify(resolved), source: current.source, instances_total: total });
    audit(200, `${chosen.length} study(ies): 1 current, ${priors.length} prior(s)`);
    return resolved;
  }

  /**
   * Every series of the case's studies (current and priors) into the cache at once, pinned for the
   * batch: the series of a case are independent fetches, and one at a time left the link idle between
   * them. Progress per instance, written to the store at most every PROGRESS_MS (a write per instance
   * serialised the fetch behind the database).
   */
  private async fetchAll(batch: ScreeningBatchRow, c: ScreeningCaseRow, r: Resolved): Promise<void> {
    const { cache, repo } = this.d;
    await Promise.all(r.studies.map((s) => cache.pin(pinOwner(batch.id), s.source, s.kosUid)));
    const progress = { instances: 0, bytes: 0 };
    await repo.updateCase(c.id, { instances_done: 0, bytes_done: 0 });
    let written = 0;
    let writing: Promise<unknown> = Promise.resolve();
    const report = (force = false) => {
      if (!force && performance.now() - written < PROGRESS_MS) return;
      written = performance.now();
      const at = { instances_done: progress.instances, bytes_done: progress.bytes };
      writing = writing.then(() => repo.updateCase(c.id, at)).then(() => this.events.case(c.batch_id, c.id));
    };
    let token = await this.d.tokens.access(batch);
    let renewing: Promise<string> | undefined;
    const fetchSeries = async (study: SessionStudy, spec: ReturnType<typeof seriesSpecs>[number]) => {
      const t0 = performance.now();
      // a series already complete in the cache is no fetch: nothing goes to the source, nothing to audit
      const cached = (await cache.state(spec)) === 'complete';
      const h = await cache.ensure(spec, token, batch.created_by_rpps);
      let n = 0;
      let b = 0;
      try {
        for await (const sop of h.instances()) {
          await h.instance(sop);
          const size = (await cache.instanceFile(spec, sop))?.size ?? 0;
          n++; b += size;
          progress.instances++; progress.bytes += size;
          report();
        }
        await h.complete();
      } catch (e) {
        progress.instances -= n; progress.bytes -= b; // asked again, or the case fails: counted afresh
        this.auditFetch(batch, c, spec, study, e, b, t0);
        throw e;
      } finally {
        h.release();
      }
      if (!cached) this.auditFetch(batch, c, spec, study, undefined, b, t0);
    };
    const one = async (study: SessionStudy, spec: ReturnType<typeof seriesSpecs>[number]) => {
      try {
        await fetchSeries(study, spec);
      } catch (e) {
        // the source refused the token: renew it once (once for all the case's series), then ask again
        if (!(e instanceof PeerStatusError && e.status === 401 && peerRefusalKind(e) === 'token')) throw e;
        renewing ??= this.d.tokens.access(batch, true).then((t) => (token = t));
        await renewing;
        await fetchSeries(study, spec);
      }
    };
    const all = await Promise.allSettled(r.studies.flatMap((study) => seriesSpecs(study).map((spec) => one(study, spec))));
    report(true);
    await writing;
    const failure = all.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failure) throw failure.reason;
    // paused, cancelled or deleted meanwhile: the case is not ready (what landed stays in the cache)
    const now = await repo.batch(batch.id);
    if (!now || now.state !== 'prefetching') throw new NotNow();
  }

  private auditFetch(batch: ScreeningBatchRow, c: ScreeningCaseRow, spec: { retrieveUrl: string; seriesUid: string; kosUid: string }, study: SessionStudy, e: unknown, bytes: number, t0: number): void {
    const row = JSON.parse(c.row_json) as CheckedRow;
    this.d.audit.record({
      direction: 'peer-out', actorRpps: batch.created_by_rpps, route: `screening:${batch.id}`, method: 'GET', patientId: row.ins,
      studyUid: study.studyUid, seriesUid: spec.seriesUid, kosUid: spec.kosUid,
      status: e ? (e instanceof PeerStatusError ? e.status : 502) : 200, outcome: e ? (e as Error).message.slice(0, 300) : undefined,
      bytes, durationMs: performance.now() - t0,
    });
  }

  private async failed(batch: ScreeningBatchRow, c: ScreeningCaseRow, e: unknown): Promise<void> {
    const { repo } = this.d;
    if (e instanceof NotNow) {
      await repo.updateCase(c.id, { state: 'queued' }, ['fetching']);
      return;
    }
    if (e instanceof PscReconnectError) {
      await repo.updateCase(c.id, { state: 'queued' }, ['fetching']);
      if (await repo.updateBatch(batch.id, { state: 'psc-reconnect', pause_reason: PSC_RECONNECT }, ['prefetching'])) {
        this.d.audit.record({ direction: 'user', actorRpps: batch.created_by_rpps, route: `screening:${batch.id}`, method: 'PREFETCH', status: 401, outcome: PSC_RECONNECT });
      }
      this.events.batch(batch.id);
      return;
    }
    const now = await repo.case(c.batch_id, c.id);
    const source = now?.source;
    const root = now?.resolved_json ? (JSON.parse(now.resolved_json) as Resolved).studies[0].sourceRoot : undefined;
    const f = classify(e, root ? new URL(root).host : undefined);
    if (!(e instanceof CaseFailure)) this.d.logger?.warn({ batch: batch.id, err: (e as Error).message }, 'screening case failed');
    const attempts = c.attempts + 1;
    if (f.retryable && attempts <= this.d.settings.retries) {
      const delay = this.d.settings.retryBaseMs * 3 ** (attempts - 1);
      await repo.updateCase(c.id, { state: 'queued', attempts, next_attempt_at: new Date(Date.now() + delay).toISOString() }, ['fetching']);
      this.wakeAt(new Date(Date.now() + delay).toISOString());
      return;
    }
    if (f.retryable && source && !(e instanceof CaseFailure)) this.down.set(source, f.message);
    await repo.updateCase(c.id, { state: 'failed', error: f.message, retryable: f.retryable ? 1 : 0, attempts }, ['fetching']);
  }

  /** A prefetching batch with nothing left to fetch is ready. */
  private async settleBatch(batchId: string): Promise<void> {
    const t = (await this.d.repo.totals(batchId)).get(batchId);
    if (t && t.queued === 0 && t.fetching === 0 && await this.d.repo.updateBatch(batchId, { state: 'ready' }, ['prefetching'])) this.events.batch(batchId);
  }
}

/** A failure in the reader's words, and whether it may go away by itself. */
function classify(e: unknown, source: string | undefined): { message: string; retryable: boolean } {
  if (e instanceof CaseFailure) return { message: e.message, retryable: e.retryable };
  const box = source ? ` (${source})` : '';
  if (e instanceof IdentityMismatchError) return { message: `Incohérence d'identité : une image reçue ne correspond pas au document de référence (${e.message}).`, retryable: false };
  if (e instanceof PeerNotAllowedError) return { message: "Les images sont sur un serveur qui n'est pas membre du réseau DRIM-M.", retryable: false };
  if (e instanceof PeerStatusError) {
    if (e.status === 404 || e.status === 410) return { message: `La box source${box} ne sert plus cet examen (retiré).`, retryable: false };
    if (e.status === 401 || e.status === 403) return { message: `La box source${box} a refusé l'accès : ${e.detail || e.status}.`, retryable: false };
    return { message: `La box source${box} a répondu par une erreur ${e.status}.`, retryable: true };
  }
  if (e instanceof PeerUnavailableError) return { message: `Box source${box} injoignable ou interrompue : ${e.message}`, retryable: true };
  return { message: `Préchargement impossible : ${(e as Error).message}`, retryable: true };
}
