// The consumer's study cache: series fetched from their source box on first need, kept in a local
// folder store, keyed by source box + KOS + series. One upstream fetch per series at a time
// (single-flight: every reader joins it), instances readable as soon as they land, a series marked
// complete only when every instance its KOS references arrived and passed its checks (the KOS's
// patient, study, series and SOP UIDs; a whole Part 10 file), LRU eviction under a byte budget (pinned
// KOS and series being read never evicted), a TTL, and an index in SQLite so the cache survives restarts.
import { EventEmitter } from 'node:events';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import { FolderPacs } from '../pacs/folder.js';
import { parseContentType, readMultipart } from '../dicom/multipart.js';
import { DRIMM_ACCEPT, PeerUnavailableError, type PeerClient } from './peer-client.js';
import { completenessProblem, identityProblem, IdentityMismatchError, type KosExpectation } from './instance-check.js';

export interface SeriesSpec {
  source: string;
  kosUid: string;
  studyUid: string;
  seriesUid: string;
  retrieveUrl: string;
  /** SOP Instance UIDs the KOS references in this series */
  expected: string[];
  /** the KOS patient's identifiers (PatientID, then OtherPatientIDs): every instance must carry one */
  patientIds: string[];
}

export interface FetchOutcome {
  url: string;
  status: number;
  bytes: number;
  instances: number;
  durationMs: number;
  error?: string;
}

export interface StudyCacheOptions {
  dir: string;
  maxBytes: number;
  ttlMs: number;
  peer: PeerClient;
  logger?: Logger;
  /** called after every upstream fetch (the audit trail) */
  onFetch?: (spec: SeriesSpec, outcome: FetchOutcome, rpps: string | undefined) => void;
  now?: () => number;
}

/** The series could not be completed (source down mid-stream, instances missing). */
export class SeriesIncompleteError extends PeerUnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SeriesIncompleteError';
  }
}

interface Row {
  source: string; kos_uid: string; study_uid: string; series_uid: string; expected_json: string;
  state: 'partial' | 'complete'; bytes: number; fetched_at: number | null; last_access: number;
}

/** An instance being written to the cache: readable from its temp file up to `written` bytes. */
interface Landing {
  tmpPath: string;
  transferSyntaxUid: string;
  written: number;
  /** set when the file is renamed into the store (final size, final path) */
  path?: string;
  size?: number;
  error?: Error;
}

class FetchJob extends EventEmitter {
  readonly landed: string[] = [];
  /** instances whose bytes are arriving or have arrived, in arrival order (served while they land) */
  readonly started: string[] = [];
  readonly landing = new Map<string, Landing>();
  settled = false;
  error?: Error;
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (e: Error) => void;
  constructor() {
    super();
    this.setMaxListeners(0);
    this.done = new Promise<void>((res, rej) => { this.resolve = res; this.reject = rej; });
    this.done.catch(() => undefined);
  }
  land(sop: string): void {
    this.landed.push(sop);
    if (!this.landing.has(sop)) this.started.push(sop); // already in the store: readable at once
    this.emit('change');
  }
  start(sop: string, l: Landing): void { this.started.push(sop); this.landing.set(sop, l); this.emit('change'); }
  progress(): void { this.emit('change'); }
  finish(err?: Error): void {
    this.settled = true;
    this.error = err;
    for (const l of this.landing.values()) if (l.path === undefined) l.error ??= err ?? new SeriesIncompleteError('the instance did not land');
    if (err) this.reject(err); else this.resolve();
    this.emit('change');
  }
  next(): Promise<void> { return new Promise((r) => this.once('change', r)); }
}

const keyOf = (s: { source: string; kosUid: string; seriesUid: string }) => `${s.source}|${s.kosUid}|${s.seriesUid}`;

export class StudyCache {
  readonly store: FolderPacs;
  private readonly jobs = new Map<string, FetchJob>();
  /** read leases per series (import, viewer, screening): a leased series is never evicted */
  private readonly leases = new Map<string, number>();
  /** the last eviction pass stayed over budget because of busy series: run again when a lease ends */
  private overBudget = false;
  private readonly now: () => number;
  /** upstream series fetches started (single-flight is visible here) */
  fetches = 0;
  /**
   * file deletions of dropped series still running, by series UID: a new fetch of that series waits
   * for them (else the late deletion removed files the new fetch had just written: the answer was cut)
   */
  private readonly deleting = new Map<string, Promise<unknown>>();

  constructor(private readonly db: Db, private readonly opts: StudyCacheOptions) {
    // not durable per file: files are fsynced in a batch before their series is marked complete
    this.store = new FolderPacs(db, { kind: 'folder', path: opts.dir, name: 'consumer-cache', durable: false });
    this.now = opts.now ?? Date.now;
  }

  private row(s: { source: string; kosUid: string; seriesUid: string }): Row | undefined {
    return this.db.prepare('SELECT * FROM consumer_cache_series WHERE source = ? AND kos_uid = ? AND series_uid = ?').get(s.source, s.kosUid, s.seriesUid) as Row | undefined;
  }

  /** 'complete' (servable as is), 'partial' (some instances), 'absent'. Expired entries count as absent. */
  state(s: { source: string; kosUid: string; seriesUid: string }): 'complete' | 'partial' | 'absent' {
    const r = this.row(s);
    if (!r) return 'absent';
    if (r.state === 'complete' && this.expired(r)) return 'absent';
    return r.state;
  }

  private expired(r: Row): boolean {
    return r.fetched_at !== null && r.fetched_at + this.opts.ttlMs <= this.now();
  }

  /**
   * SOP UIDs of the series present in the store whose file has the indexed size. Files of a series not
   * yet complete were not fsynced: after a crash they may be torn, and are then dropped and refetched.
   */
  private async present(spec: SeriesSpec): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of this.store.instances({ study: spec.studyUid, series: spec.seriesUid })) {
      const size = await stat(join(this.store.root, r.path)).then((st) => st.size, () => -1);
      if (size === r.size) out.add(r.sop_uid);
      else await this.store.delete({ study: spec.studyUid, series: spec.seriesUid, instance: r.sop_uid }).catch(() => undefined);
    }
    return out;
  }

  /**
   * Makes sure the series is (or is being) fetched; returns a handle to read it. Starts one upstream
   * fetch at most, whoever asks; a complete, unexpired series needs none.
   */
  ensure(spec: SeriesSpec, token: string, rpps?: string): SeriesHandle {
    const key = keyOf(spec);
    const now = this.now();
    const r = this.row(spec);
    let complete = false;
    if (r && r.state === 'complete' && this.expired(r)) {
      this.db.prepare('DELETE FROM consumer_cache_series WHERE source = ? AND kos_uid = ? AND series_uid = ?').run(spec.source, spec.kosUid, spec.seriesUid);
    } else if (r) {
      this.db.prepare('UPDATE consumer_cache_series SET last_access = ? WHERE source = ? AND kos_uid = ? AND series_uid = ?').run(now, spec.source, spec.kosUid, spec.seriesUid);
      complete = r.state === 'complete';
    }
    if (complete && !this.jobs.has(key)) return new SeriesHandle(this, spec, undefined, this.lease(spec));
    let job = this.jobs.get(key);
    if (!job) {
      job = new FetchJob();
      this.jobs.set(key, job);
      const j = job;
      void this.fetch(spec, token, rpps, j).then(
        () => j.finish(),
        (e: Error) => j.finish(e),
      ).finally(() => {
        this.jobs.delete(key);
        try { this.evict(); } catch (e) { this.opts.logger?.warn({ err: e }, 'cache eviction failed'); }
      });
    }
    return new SeriesHandle(this, spec, job, this.lease(spec));
  }

  /**
   * A read lease on a series: it is not evicted until every lease is released (release is idempotent).
   * `ensure` takes one for its handle; a reader holding files past its handle takes its own.
   */
  lease(s: { source: string; kosUid: string; seriesUid: string }): () => void {
    const key = keyOf(s);
    this.leases.set(key, (this.leases.get(key) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const n = (this.leases.get(key) ?? 1) - 1;
      if (n > 0) { this.leases.set(key, n); return; }
      this.leases.delete(key);
      // the budget was exceeded while the series was read (checked only then: a lease per frame request)
      if (!this.overBudget) return;
      try { this.evict(); } catch (e) { this.opts.logger?.warn({ err: e }, 'cache eviction failed'); }
    };
  }

  /** series being fetched or read are not evicted */
  private busy(r: Row): boolean {
    const key = keyOf({ source: r.source, kosUid: r.kos_uid, seriesUid: r.series_uid });
    return this.jobs.has(key) || this.leases.has(key);
  }

  private async fetch(spec: SeriesSpec, token: string, rpps: string | undefined, job: FetchJob): Promise<void> {
    await this.deleting.get(spec.seriesUid);
    const now = this.now();
    this.db.prepare(`INSERT INTO consumer_cache_series (source, kos_uid, study_uid, series_uid, expected_json, state, bytes, fetched_at, last_access)
      VALUES (?,?,?,?,?,'partial',0,NULL,?)
      ON CONFLICT (source, kos_uid, series_uid) DO UPDATE SET expected_json = excluded.expected_json, state = 'partial', fetched_at = NULL, last_access = excluded.last_access`)
      .run(spec.source, spec.kosUid, spec.studyUid, spec.seriesUid, JSON.stringify(spec.expected), now);
    const expected = new Set(spec.expected);
    const kos: KosExpectation = { studyUid: spec.studyUid, seriesUid: spec.seriesUid, sops: expected, patientIds: spec.patientIds ?? [] };
    const have = await this.present(spec);
    // what an earlier, interrupted fetch left is served at once
    for (const sop of spec.expected) if (have.has(sop)) job.land(sop);
    const missing = spec.expected.filter((s) => !have.has(s));
    if (missing.length === 0) return this.markComplete(spec);

    this.fetches++;
    const t0 = performance.now();
    const outcome: FetchOutcome = { url: spec.retrieveUrl, status: 0, bytes: 0, instances: 0, durationMs: 0 };
    try {
      const res = await this.opts.peer.get(spec.retrieveUrl, { token, kosUid: spec.kosUid, accept: DRIMM_ACCEPT });
      const landedFiles: string[] = [];
      outcome.status = res.status;
      const boundary = parseContentType(res.headers['content-type'] ?? '').params.boundary;
      if (!boundary) throw new PeerUnavailableError('source box answered without a multipart boundary');
      let refused: string | undefined;
      try {
        for await (const part of readMultipart(res.body, boundary)) {
          // tee: readers follow the temp file while it is written (no wait for the whole instance)
          let landing: Landing | undefined;
          let mismatch: string | undefined;
          const put = await this.store.put(part.body as Readable, undefined, {
            onHeader: (info, tmpPath) => {
              // another patient's, study's or series' instance is never served, not even while it lands
              mismatch = identityProblem(info, kos);
              if (mismatch || have.has(info.sopInstanceUid) || job.landing.has(info.sopInstanceUid)) return;
              landing = { tmpPath, transferSyntaxUid: info.transferSyntaxUid, written: 0 };
              job.start(info.sopInstanceUid, landing);
            },
            onProgress: (written) => {
              if (landing) { landing.written = written; job.progress(); }
            },
          }).catch((e: Error) => {
            if (landing) { landing.error = e; job.progress(); }
            throw e;
          });
          outcome.bytes += put.size;
          outcome.instances++;
          if (mismatch) {
            refused = mismatch;
            await this.store.delete({ study: put.studyInstanceUid, series: put.seriesInstanceUid, instance: put.sopInstanceUid }).catch(() => undefined);
            break;
          }
          if (landing) landing.path = put.path; // renamed: a reader opening it now finds it there
          // a file cut short is not an instance: readers following it fail, nothing is marked complete
          const cut = await completenessProblem(put.path, put.size, put.transferSyntaxUid).catch((e: Error) => `unreadable (${e.message})`);
          if (cut) {
            await this.store.delete({ study: spec.studyUid, series: spec.seriesUid, instance: put.sopInstanceUid }).catch(() => undefined);
            const err = new SeriesIncompleteError(`the source box sent a damaged instance (${put.sopInstanceUid}): ${cut}`);
            if (landing) { landing.error = err; job.progress(); }
            throw err;
          }
          if (landing) { landing.size = put.size; landing.written = put.size; }
          this.db.prepare('UPDATE consumer_cache_series SET bytes = bytes + ? WHERE source = ? AND kos_uid = ? AND series_uid = ?')
            .run(put.size, spec.source, spec.kosUid, spec.seriesUid);
          if (!have.has(put.sopInstanceUid)) {
            have.add(put.sopInstanceUid);
            landedFiles.push(put.path);
            job.land(put.sopInstanceUid);
          }
        }
      } catch (e) {
        res.body.destroy();
        if (e instanceof SeriesIncompleteError) throw e;
        throw new SeriesIncompleteError(`the source box stopped while sending the series: ${(e as Error).message}`, { cause: e });
      }
      if (refused) {
        res.body.destroy();
        // nothing of a series that is not the KOS's stays in the cache
        this.forget(spec);
        throw new IdentityMismatchError(refused);
      }
      const lacking = spec.expected.filter((s) => !have.has(s));
      if (lacking.length) throw new SeriesIncompleteError(`the source box sent ${spec.expected.length - lacking.length} of the ${spec.expected.length} instances the KOS references`);
      // one batched fsync: a series marked complete is on disk
      await this.store.syncFiles(landedFiles);
      this.markComplete(spec);
    } catch (e) {
      outcome.error = (e as Error).message;
      throw e;
    } finally {
      outcome.durationMs = performance.now() - t0;
      this.opts.onFetch?.(spec, outcome, rpps);
    }
  }

  private markComplete(spec: SeriesSpec): void {
    const bytes = this.store.instances({ study: spec.studyUid, series: spec.seriesUid })
      .filter((r) => spec.expected.includes(r.sop_uid)).reduce((n, r) => n + r.size, 0);
    this.db.prepare("UPDATE consumer_cache_series SET state = 'complete', bytes = ?, fetched_at = ? WHERE source = ? AND kos_uid = ? AND series_uid = ?")
      .run(bytes, this.now(), spec.source, spec.kosUid, spec.seriesUid);
  }

  /** Path of a cached instance (of this series), if present. */
  instanceFile(spec: Pick<SeriesSpec, 'studyUid' | 'seriesUid'>, sop: string): { path: string; size: number; transferSyntaxUid: string } | undefined {
    const [r] = this.store.instances({ study: spec.studyUid, series: spec.seriesUid, instance: sop });
    return r ? { path: join(this.store.root, r.path), size: r.size, transferSyntaxUid: r.transfer_syntax } : undefined;
  }

  /** Files of the KOS-referenced instances of a series, in display order, from one index query. */
  seriesFiles(spec: SeriesSpec): Map<string, { path: string; size: number; transferSyntaxUid: string }> {
    const expected = new Set(spec.expected);
    const out = new Map<string, { path: string; size: number; transferSyntaxUid: string }>();
    for (const r of this.store.instances({ study: spec.studyUid, series: spec.seriesUid })) {
      if (expected.has(r.sop_uid)) out.set(r.sop_uid, { path: join(this.store.root, r.path), size: r.size, transferSyntaxUid: r.transfer_syntax });
    }
    return out;
  }

  /** Forgets that a series is complete (a damaged file): the next access fetches what is missing. */
  invalidate(spec: { source: string; kosUid: string; seriesUid: string }): void {
    this.db.prepare("UPDATE consumer_cache_series SET state = 'partial', fetched_at = NULL WHERE source = ? AND series_uid = ?").run(spec.source, spec.seriesUid);
    this.opts.logger?.warn({ series: spec.seriesUid }, 'damaged cache file: series will be refetched');
  }

  pin(owner: string, source: string, kosUid: string): void {
    this.db.prepare('INSERT OR IGNORE INTO consumer_cache_pins (owner, source, kos_uid) VALUES (?,?,?)').run(owner, source, kosUid);
  }

  unpin(owner: string, source?: string, kosUid?: string): void {
    if (source && kosUid) this.db.prepare('DELETE FROM consumer_cache_pins WHERE owner = ? AND source = ? AND kos_uid = ?').run(owner, source, kosUid);
    else this.db.prepare('DELETE FROM consumer_cache_pins WHERE owner = ?').run(owner);
    // what the pin held may now go: an import pins past its read leases, so their release could not evict it
    if (this.totalBytes() > this.opts.maxBytes) {
      try { this.evict(); } catch (e) { this.opts.logger?.warn({ err: e }, 'cache eviction failed'); }
    }
  }

  totalBytes(): number {
    return (this.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS n FROM consumer_cache_series').get() as { n: number }).n;
  }

  /** Evicts least recently used, unpinned, idle series until under budget; also drops expired ones. Returns how many went. */
  evict(): number {
    let evicted = 0;
    const rows = this.db.prepare(`SELECT c.* FROM consumer_cache_series c
      WHERE NOT EXISTS (SELECT 1 FROM consumer_cache_pins p WHERE p.source = c.source AND p.kos_uid = c.kos_uid)
      ORDER BY c.last_access`).all() as Row[];
    let total = this.totalBytes();
    for (const r of rows) {
      if (this.busy(r)) continue;
      const expired = r.state === 'complete' && this.expired(r);
      if (!expired && total <= this.opts.maxBytes) continue;
      this.drop(r);
      total -= r.bytes;
      evicted++;
    }
    this.overBudget = total > this.opts.maxBytes;
    if (evicted) this.opts.logger?.info({ evicted, totalBytes: total, maxBytes: this.opts.maxBytes }, 'cache eviction');
    return evicted;
  }

  /** Removes a series' row and, when no other KOS names it, its files. */
  private forget(spec: SeriesSpec): void {
    const r = this.row(spec);
    if (r) this.drop(r);
    else if (!this.db.prepare('SELECT 1 FROM consumer_cache_series WHERE series_uid = ? LIMIT 1').get(spec.seriesUid)) {
      this.deleteFiles(spec.studyUid, spec.seriesUid);
    }
  }

  /** Deletes a series' files in the background, after any deletion of it still running. */
  private deleteFiles(study: string, series: string): void {
    const p = (this.deleting.get(series) ?? Promise.resolve()).then(() => this.store.delete({ study, series })).catch(() => undefined);
    this.deleting.set(series, p);
    void p.then(() => { if (this.deleting.get(series) === p) this.deleting.delete(series); });
  }

  private drop(r: Row): void {
    this.db.prepare('DELETE FROM consumer_cache_series WHERE source = ? AND kos_uid = ? AND series_uid = ?').run(r.source, r.kos_uid, r.series_uid);
    const shared = this.db.prepare('SELECT 1 FROM consumer_cache_series WHERE series_uid = ? LIMIT 1').get(r.series_uid);
    // the files are shared by every KOS naming this series: remove them only with the last one
    if (!shared) this.deleteFiles(r.study_uid, r.series_uid);
  }

  /** Drops every unpinned, idle series (operator action; benchmarks). Returns how many went. */
  clear(): number {
    const rows = this.db.prepare(`SELECT c.* FROM consumer_cache_series c
      WHERE NOT EXISTS (SELECT 1 FROM consumer_cache_pins p WHERE p.source = c.source AND p.kos_uid = c.kos_uid)`).all() as Row[];
    let n = 0;
    for (const r of rows) {
      if (this.busy(r)) continue;
      this.drop(r);
      n++;
    }
    return n;
  }

  /** Waits for running fetches (at close). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
  }

  /** internal: for SeriesHandle */
  job(spec: SeriesSpec): FetchJob | undefined {
    return this.jobs.get(keyOf(spec));
  }
}

/** A cached instance ready to stream; `size` is unknown while it still lands. */
export interface OpenedInstance {
  body: Readable;
  size?: number;
  transferSyntaxUid: string;
}

const READ_CHUNK = 1 << 20;
/** a landing reader waits for this much new data (or the end) before reading: fewer, larger reads */
const FOLLOW_MIN = 256 * 1024;

/** Reads an instance's temp file while the fetch writes it; ends at its final size, fails with the fetch. */
class LandingReader extends Readable {
  private fh?: FileHandle;
  private pos = 0;
  private pumping = false;
  constructor(private readonly job: FetchJob, private readonly l: Landing) {
    super({ highWaterMark: READ_CHUNK });
  }
  override _construct(cb: (e?: Error | null) => void): void {
    // the temp file may already have been renamed into the store: same inode, its final path
    open(this.l.tmpPath, 'r').catch((e: Error) => (this.l.path ? open(this.l.path, 'r') : Promise.reject(e)))
      .then((fh) => { this.fh = fh; cb(); }, (e: Error) => cb(this.l.error ?? e));
  }
  override _read(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.pump().then(() => { this.pumping = false; }, (e: Error) => { this.pumping = false; this.destroy(e); });
  }
  private async pump(): Promise<void> {
    for (;;) {
      if (this.l.error) throw this.l.error;
      const done = this.l.size !== undefined;
      const available = this.l.written - this.pos;
      if (available > 0 && (done || available >= FOLLOW_MIN)) {
        const len = Math.min(READ_CHUNK, available);
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await this.fh!.read(buf, 0, len, this.pos);
        if (bytesRead === 0) throw new SeriesIncompleteError('cache file shorter than what was written');
        this.pos += bytesRead;
        if (!this.push(bytesRead < len ? buf.subarray(0, bytesRead) : buf)) return;
        continue;
      }
      if (done && this.pos >= this.l.size!) { this.push(null); return; }
      await this.job.next();
    }
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) { cb(err); return; }
    fh.close().then(() => cb(err), () => cb(err));
  }
}

/** A reader's view of one series: complete in the cache, or landing from an upstream fetch. */
export class SeriesHandle {
  /** index rows of a complete series, read once per handle (no query per instance) */
  private rows?: Map<string, { path: string; size: number; transferSyntaxUid: string }>;

  constructor(private readonly cache: StudyCache, readonly spec: SeriesSpec, private readonly job: FetchJob | undefined, private readonly unlease: () => void) {}

  /** Ends this reader's lease: the series may be evicted again. Also done when `instances()` ends. */
  release(): void {
    this.unlease();
  }

  get fetching(): boolean {
    return Boolean(this.job && !this.job.settled);
  }

  /** Resolves when the series is complete; rejects with SeriesIncompleteError when it cannot be. */
  async complete(): Promise<void> {
    if (this.job) await this.job.done;
  }

  /** Resolves when one instance has landed; rejects when the fetch ends without it. */
  async instance(sop: string): Promise<void> {
    if (!this.spec.expected.includes(sop)) throw new RangeError('instance not referenced by the KOS');
    // every pass either returns, throws or awaits a change of the fetch: never a busy loop
    for (;;) {
      const landed = !this.job || this.job.landed.includes(sop);
      if (landed && this.cache.instanceFile(this.spec, sop)) return;
      if (!this.job || this.job.settled) {
        if (landed) throw new SeriesIncompleteError('the instance left the cache (evicted or damaged): ask again to fetch it');
        throw this.job?.error ?? new SeriesIncompleteError('instance not sent by the source box');
      }
      await this.job.next();
    }
  }

  /**
   * SOP UIDs as they become readable: in display order when complete; while fetching, in arrival order,
   * each as soon as its first bytes are in (read it with `open`, which follows it as it lands).
   */
  async *instances(): AsyncGenerator<string> {
    try {
      if (!this.job) {
        this.rows = this.cache.seriesFiles(this.spec);
        yield* this.rows.keys();
        return;
      }
      let i = 0;
      for (;;) {
        while (i < this.job.started.length) yield this.job.started[i++];
        if (this.job.settled) {
          if (this.job.error) throw this.job.error;
          return;
        }
        await this.job.next();
      }
    } finally {
      // the reader went through the whole series (or stopped): its lease ends
      this.release();
    }
  }

  /**
   * Opens an instance: followed while it lands, else from its cache file with large reads. A cache file
   * whose size differs from its index row (torn by a crash) is never served: the series is invalidated
   * so the next access refetches it.
   */
  async open(sop: string): Promise<OpenedInstance> {
    const l = this.job?.landing.get(sop);
    if (l && this.job) return { body: new LandingReader(this.job, l), size: l.size, transferSyntaxUid: l.transferSyntaxUid };
    const f = this.rows?.get(sop) ?? this.cache.instanceFile(this.spec, sop);
    if (!f) throw new SeriesIncompleteError('instance missing from the cache');
    const fh = await open(f.path, 'r').catch(() => undefined);
    const size = fh ? (await fh.stat()).size : -1;
    if (!fh || size !== f.size) {
      await fh?.close();
      this.cache.invalidate(this.spec);
      throw new SeriesIncompleteError('a cache file is damaged: the series will be fetched again');
    }
    return { body: fh.createReadStream({ highWaterMark: READ_CHUNK }), size: f.size, transferSyntaxUid: f.transferSyntaxUid };
  }
}
