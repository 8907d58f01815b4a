// The consumer's study cache: series fetched from their source box on first need, kept in a local
// folder store, keyed by source box + KOS + series. One upstream fetch per series at a time
// (single-flight: every reader joins it), instances readable as soon as they land, a series marked
// complete only when every instance its KOS references arrived, LRU eviction under a byte budget
// (pinned KOS never evicted), a TTL, and an index in SQLite so the cache survives restarts.
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import { FolderPacs } from '../pacs/folder.js';
import { parseContentType, readMultipart } from '../dicom/multipart.js';
import { DRIMM_ACCEPT, PeerUnavailableError, type PeerClient } from './peer-client.js';

export interface SeriesSpec {
  source: string;
  kosUid: string;
  studyUid: string;
  seriesUid: string;
  retrieveUrl: string;
  /** SOP Instance UIDs the KOS references in this series */
  expected: string[];
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

class FetchJob extends EventEmitter {
  readonly landed: string[] = [];
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
  land(sop: string): void { this.landed.push(sop); this.emit('change'); }
  finish(err?: Error): void {
    this.settled = true;
    this.error = err;
    if (err) this.reject(err); else this.resolve();
    this.emit('change');
  }
  next(): Promise<void> { return new Promise((r) => this.once('change', r)); }
}

const keyOf = (s: { source: string; kosUid: string; seriesUid: string }) => `${s.source}|${s.kosUid}|${s.seriesUid}`;

export class StudyCache {
  readonly store: FolderPacs;
  private readonly jobs = new Map<string, FetchJob>();
  private readonly now: () => number;
  /** upstream series fetches started (single-flight is visible here) */
  fetches = 0;

  constructor(private readonly db: Db, private readonly opts: StudyCacheOptions) {
    this.store = new FolderPacs(db, { kind: 'folder', path: opts.dir, name: 'consumer-cache' });
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

  /** SOP UIDs of the series present in the store. */
  private present(spec: SeriesSpec): Set<string> {
    return new Set(this.store.instances({ study: spec.studyUid, series: spec.seriesUid }).map((r) => r.sop_uid));
  }

  /**
   * Makes sure the series is (or is being) fetched; returns a handle to read it. Starts one upstream
   * fetch at most, whoever asks; a complete, unexpired series needs none.
   */
  ensure(spec: SeriesSpec, token: string, rpps?: string): SeriesHandle {
    const key = keyOf(spec);
    const now = this.now();
    const r = this.row(spec);
    if (r && r.state === 'complete' && this.expired(r)) {
      this.db.prepare('DELETE FROM consumer_cache_series WHERE source = ? AND kos_uid = ? AND series_uid = ?').run(spec.source, spec.kosUid, spec.seriesUid);
    } else if (r) {
      this.db.prepare('UPDATE consumer_cache_series SET last_access = ? WHERE source = ? AND kos_uid = ? AND series_uid = ?').run(now, spec.source, spec.kosUid, spec.seriesUid);
    }
    const live = this.row(spec);
    if (live?.state === 'complete' && !this.jobs.has(key)) return new SeriesHandle(this, spec, undefined);
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
    return new SeriesHandle(this, spec, job);
  }

  private async fetch(spec: SeriesSpec, token: string, rpps: string | undefined, job: FetchJob): Promise<void> {
    const now = this.now();
    this.db.prepare(`INSERT INTO consumer_cache_series (source, kos_uid, study_uid, series_uid, expected_json, state, bytes, fetched_at, last_access)
      VALUES (?,?,?,?,?,'partial',0,NULL,?)
      ON CONFLICT (source, kos_uid, series_uid) DO UPDATE SET expected_json = excluded.expected_json, state = 'partial', fetched_at = NULL, last_access = excluded.last_access`)
      .run(spec.source, spec.kosUid, spec.studyUid, spec.seriesUid, JSON.stringify(spec.expected), now);
    const expected = new Set(spec.expected);
    const have = this.present(spec);
    // what an earlier, interrupted fetch left is served at once
    for (const sop of spec.expected) if (have.has(sop)) job.land(sop);
    const missing = spec.expected.filter((s) => !have.has(s));
    if (missing.length === 0) return this.markComplete(spec);

    this.fetches++;
    const t0 = performance.now();
    const outcome: FetchOutcome = { url: spec.retrieveUrl, status: 0, bytes: 0, instances: 0, durationMs: 0 };
    try {
      const res = await this.opts.peer.get(spec.retrieveUrl, { token, kosUid: spec.kosUid, accept: DRIMM_ACCEPT });
      outcome.status = res.status;
      const boundary = parseContentType(res.headers['content-type'] ?? '').params.boundary;
      if (!boundary) throw new PeerUnavailableError('source box answered without a multipart boundary');
      try {
        for await (const part of readMultipart(res.body, boundary)) {
          const put = await this.store.put(part.body as Readable);
          outcome.bytes += put.size;
          outcome.instances++;
          if (!expected.has(put.sopInstanceUid) || put.seriesInstanceUid !== spec.seriesUid) continue;
          this.db.prepare('UPDATE consumer_cache_series SET bytes = bytes + ? WHERE source = ? AND kos_uid = ? AND series_uid = ?')
            .run(put.size, spec.source, spec.kosUid, spec.seriesUid);
          if (!have.has(put.sopInstanceUid)) {
            have.add(put.sopInstanceUid);
            job.land(put.sopInstanceUid);
          }
        }
      } catch (e) {
        res.body.destroy();
        throw new SeriesIncompleteError(`the source box stopped while sending the series: ${(e as Error).message}`, { cause: e });
      }
      const lacking = spec.expected.filter((s) => !have.has(s));
      if (lacking.length) throw new SeriesIncompleteError(`the source box sent ${spec.expected.length - lacking.length} of the ${spec.expected.length} instances the KOS references`);
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
  instanceFile(spec: SeriesSpec, sop: string): { path: string; size: number; transferSyntaxUid: string } | undefined {
    const [r] = this.store.instances({ study: spec.studyUid, series: spec.seriesUid, instance: sop });
    return r ? { path: join(this.store.root, r.path), size: r.size, transferSyntaxUid: r.transfer_syntax } : undefined;
  }

  /** SOP UIDs of a complete series in display order (series then instance number). */
  orderedInstances(spec: SeriesSpec): string[] {
    const expected = new Set(spec.expected);
    return this.store.instances({ study: spec.studyUid, series: spec.seriesUid }).map((r) => r.sop_uid).filter((s) => expected.has(s));
  }

  pin(owner: string, source: string, kosUid: string): void {
    this.db.prepare('INSERT OR IGNORE INTO consumer_cache_pins (owner, source, kos_uid) VALUES (?,?,?)').run(owner, source, kosUid);
  }

  unpin(owner: string, source?: string, kosUid?: string): void {
    if (source && kosUid) this.db.prepare('DELETE FROM consumer_cache_pins WHERE owner = ? AND source = ? AND kos_uid = ?').run(owner, source, kosUid);
    else this.db.prepare('DELETE FROM consumer_cache_pins WHERE owner = ?').run(owner);
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
      if (this.jobs.has(keyOf({ source: r.source, kosUid: r.kos_uid, seriesUid: r.series_uid }))) continue;
      const expired = r.state === 'complete' && this.expired(r);
      if (!expired && total <= this.opts.maxBytes) continue;
      this.drop(r);
      total -= r.bytes;
      evicted++;
    }
    if (evicted) this.opts.logger?.info({ evicted, totalBytes: total, maxBytes: this.opts.maxBytes }, 'cache eviction');
    return evicted;
  }

  private drop(r: Row): void {
    this.db.prepare('DELETE FROM consumer_cache_series WHERE source = ? AND kos_uid = ? AND series_uid = ?').run(r.source, r.kos_uid, r.series_uid);
    const shared = this.db.prepare('SELECT 1 FROM consumer_cache_series WHERE series_uid = ? LIMIT 1').get(r.series_uid);
    // the files are shared by every KOS naming this series: remove them only with the last one
    if (!shared) void this.store.delete({ study: r.study_uid, series: r.series_uid }).catch(() => undefined);
  }

  /** Drops every unpinned, idle series (operator action; benchmarks). Returns how many went. */
  clear(): number {
    const rows = this.db.prepare(`SELECT c.* FROM consumer_cache_series c
      WHERE NOT EXISTS (SELECT 1 FROM consumer_cache_pins p WHERE p.source = c.source AND p.kos_uid = c.kos_uid)`).all() as Row[];
    let n = 0;
    for (const r of rows) {
      if (this.jobs.has(keyOf({ source: r.source, kosUid: r.kos_uid, seriesUid: r.series_uid }))) continue;
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

/** A reader's view of one series: complete in the cache, or landing from an upstream fetch. */
export class SeriesHandle {
  constructor(private readonly cache: StudyCache, readonly spec: SeriesSpec, private readonly job: FetchJob | undefined) {}

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
    for (;;) {
      if (!this.job || this.job.landed.includes(sop)) {
        if (this.cache.instanceFile(this.spec, sop)) return;
        if (!this.job) throw new SeriesIncompleteError('instance missing from the cache');
      }
      if (this.job.settled) {
        if (this.job.landed.includes(sop)) continue;
        throw this.job.error ?? new SeriesIncompleteError('instance not sent by the source box');
      }
      await this.job.next();
    }
  }

  /** SOP UIDs as they become readable: in display order when complete, in arrival order while fetching. */
  async *instances(): AsyncGenerator<string> {
    if (!this.job) {
      yield* this.cache.orderedInstances(this.spec);
      return;
    }
    let i = 0;
    for (;;) {
      while (i < this.job.landed.length) yield this.job.landed[i++];
      if (this.job.settled) {
        if (this.job.error) throw this.job.error;
        return;
      }
      await this.job.next();
    }
  }

  /** Opens a cached instance file. */
  open(sop: string): { body: Readable; size: number; transferSyntaxUid: string } {
    const f = this.cache.instanceFile(this.spec, sop);
    if (!f) throw new SeriesIncompleteError('instance missing from the cache');
    return { body: createReadStream(f.path, { highWaterMark: 1 << 20 }), size: f.size, transferSyntaxUid: f.transferSyntaxUid };
  }
}
