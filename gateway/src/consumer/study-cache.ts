// The consumer's study cache: series fetched from their source box on first need, kept in a local
// folder store, keyed by source box + KOS + series. One upstream fetch per series at a time
// (single-flight: every reader joins it), instances readable as soon as they land, a series marked
// complete only when every instance its KOS references arrived and passed its checks (the KOS's
// patient, study, series and SOP UIDs; a whole Part 10 file), LRU eviction under a byte budget (pinned
// KOS and series being read never evicted), a TTL, and an index in the database so the cache survives
// restarts. Several instances may share the folder (NFS) and the database: a lease row per series
// makes one of them the fetcher while the others follow what it lands in the shared index; a lease
// whose holder died expires and is taken over; reader rows keep another instance's eviction away from
// what this one reads (cache-index.ts).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Store } from '../store/database.js';
import { FolderPacs } from '../pacs/folder.js';
import { CacheIndex, type CacheRow, type Holder, type SeriesKey } from './cache-index.js';
import { parseContentType, readMultipart } from '../dicom/multipart.js';
import { DRIMM_ACCEPT, PeerUnavailableError, type PeerClient } from './peer-client.js';
import { dicomWebRootOf } from './dmp-search.js';
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
  /** this instance's name in the shared tables (instance-id.ts); default: a random one */
  instance?: string;
  /** a fetch lease lives this long unless renewed (its holder renews it every third of it) */
  leaseMs?: number;
  /** a reader row lives this long unless renewed */
  readerMs?: number;
  /** how often an instance following another's fetch looks at the shared index */
  followPollMs?: number;
}

/** The series could not be completed (source down mid-stream, instances missing). */
export class SeriesIncompleteError extends PeerUnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SeriesIncompleteError';
  }
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
  private readonly seen = new Set<string>();
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
  /** already offered to readers (landing here, or landed by another instance while this one followed) */
  announced(sop: string): boolean { return this.seen.has(sop) || this.landing.has(sop); }
  land(sop: string): void {
    if (this.seen.has(sop)) return; // announced once, whoever lands it (this fetch or another instance's)
    this.seen.add(sop);
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

const keyOf = (s: SeriesKey) => `${s.source}|${s.kosUid}|${s.seriesUid}`;
/** single instances fetched ahead of their series at a time, per series */
const HURRY_MAX = 4;
/** last access (LRU) is written at most this often per series: frame requests do not queue on its row */
const TOUCH_EVERY_MS = 1_000;

export class StudyCache {
  readonly store: FolderPacs;
  private readonly idx: CacheIndex;
  private readonly jobs = new Map<string, FetchJob>();
  /** read leases per series (import, viewer, screening): a leased series is never evicted */
  private readonly leases = new Map<string, number>();
  /** reader rows this instance keeps in the database, by series key; dropped after an idle round */
  private readonly published = new Map<string, { key: SeriesKey; token: string; idle: boolean }>();
  /** the last eviction pass stayed over budget because of busy series: run again when a lease ends */
  private overBudget = false;
  private evicting?: Promise<number>;
  private evictAgain = false;
  private readonly now: () => number;
  readonly instance: string;
  private readonly leaseMs: number;
  private readonly readerMs: number;
  private readonly pollMs: number;
  private readonly heartbeat: NodeJS.Timeout;
  /** upstream series fetches started by this instance (single-flight is visible here) */
  fetches = 0;
  /** single instances fetched ahead of their series (an image the viewer is about to draw) */
  instanceFetches = 0;
  /** those running, by series key and SOP UID (one fetch per SOP UID at a time) */
  private readonly hurrying = new Map<string, Promise<void>>();

  constructor(db: Store, private readonly opts: StudyCacheOptions) {
    // not durable per file: files are fsynced in a batch before their series is marked complete
    this.store = new FolderPacs(db, { kind: 'folder', path: opts.dir, name: 'consumer-cache', durable: false });
    this.idx = new CacheIndex(db);
    this.now = opts.now ?? Date.now;
    this.instance = opts.instance ?? `cache-${randomBytes(6).toString('base64url')}`;
    // short: a viewer retrying on another instance after one died waits at most this long. Two
    // fetches of one series (a holder too slow to renew) would only cost bandwidth: puts are idempotent
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.readerMs = opts.readerMs ?? 45_000;
    this.pollMs = opts.followPollMs ?? 100;
    this.heartbeat = setInterval(() => { void this.beat().catch((e: Error) => this.opts.logger?.warn({ err: e.message }, 'cache heartbeat failed')); }, this.readerMs / 3);
    this.heartbeat.unref();
  }

  /** At start: the leases and reader rows this instance held before it stopped are its own, and go. */
  async recover(): Promise<void> {
    await this.idx.releaseInstance(this.instance);
  }

  /** Renews this instance's reader rows; withdraws those idle since the last beat. */
  private async beat(): Promise<void> {
    for (const [key, p] of this.published) {
      if (this.leases.has(key)) { p.idle = false; continue; }
      if (!p.idle) { p.idle = true; continue; }
      this.published.delete(key);
      await this.idx.dropReader(this.instance, p.key, p.token);
    }
    if (this.published.size) await this.idx.renewReaders(this.instance, this.now() + this.readerMs);
  }

  /** 'complete' (servable as is), 'partial' (some instances), 'absent'. Expired entries count as absent. */
  async state(s: SeriesKey): Promise<'complete' | 'partial' | 'absent'> {
    const r = await this.idx.row(s);
    if (!r) return 'absent';
    if (r.state === 'complete' && await this.stale(r)) return 'absent';
    return r.state;
  }

  private expired(r: CacheRow): boolean {
    return r.fetchedAt !== null && r.fetchedAt + this.opts.ttlMs <= this.now();
  }

  /** Past its TTL and not pinned: a pinned copy (a screening batch still open) is kept as it is. */
  private async stale(r: CacheRow): Promise<boolean> {
    return this.expired(r) && !(await this.idx.pinned(r));
  }

  /**
   * SOP UIDs of the series present in the store whose file has the indexed size. Files of a series not
   * yet complete were not fsynced: after a crash they may be torn, and are then dropped and refetched.
   */
  private async present(spec: SeriesSpec): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of await this.store.instances({ study: spec.studyUid, series: spec.seriesUid })) {
      const size = await stat(join(this.store.root, r.path)).then((st) => st.size, () => -1);
      if (size === r.size) out.add(r.sop_uid);
      else await this.store.delete({ study: spec.studyUid, series: spec.seriesUid, instance: r.sop_uid }).catch(() => undefined);
    }
    return out;
  }

  /**
   * Makes sure the series is (or is being) fetched; returns a handle to read it. Starts one upstream
   * fetch at most, whoever asks and on whichever instance; a complete, unexpired series needs none.
   */
  async ensure(spec: SeriesSpec, token: string, rpps?: string): Promise<SeriesHandle> {
    const key = keyOf(spec);
    // the reader row first, then the row: an eviction elsewhere either sees the reader or has removed the row
    const { release: unlease, published } = await this.read(spec);
    try {
      let r = await this.idx.row(spec);
      const now = this.now();
      if (r && r.state === 'complete' && await this.stale(r)) {
        await this.idx.remove(spec);
        r = undefined;
      } else if (r && (published || r.lastAccess < now - TOUCH_EVERY_MS) && !(await this.idx.touch(spec, now))) {
        // (a reader row just published waits here for an eviction holding the row: it then finds it gone)
        r = undefined; // evicted meanwhile
      }
      if (r?.state === 'complete' && !this.jobs.has(key)) return new SeriesHandle(this, spec, undefined, unlease, token, rpps);
      let job = this.jobs.get(key);
      if (!job) {
        job = new FetchJob();
        this.jobs.set(key, job);
        const j = job;
        void this.acquire(spec, token, rpps, j).then(
          () => j.finish(),
          (e: Error) => j.finish(e),
        ).finally(() => {
          this.jobs.delete(key);
          this.evictQuietly();
        });
      }
      return new SeriesHandle(this, spec, job, unlease, token, rpps);
    } catch (e) {
      unlease();
      throw e;
    }
  }

  /**
   * The series' lease decides who fetches: the holder fetches; anyone else follows what the holder
   * lands in the shared index, until the series is complete — or the lease ends without it (the
   * holder failed, or died and its lease expired), and then tries to take it itself.
   */
  private async acquire(spec: SeriesSpec, token: string, rpps: string | undefined, job: FetchJob): Promise<void> {
    const holder: Holder = { instance: this.instance, token: randomBytes(9).toString('base64url') };
    for (let round = 0; ; round++) {
      if (await this.idx.claim(spec.seriesUid, holder, 'fetch', this.now(), this.leaseMs)) {
        const renew = setInterval(() => {
          void this.idx.renew(spec.seriesUid, holder, this.now() + this.leaseMs).catch((e: Error) => this.opts.logger?.warn({ err: e.message }, 'fetch lease renewal failed'));
        }, this.leaseMs / 3);
        renew.unref();
        try {
          return await this.fetch(spec, token, rpps, job);
        } finally {
          clearInterval(renew);
          await this.idx.release(spec.seriesUid, holder).catch((e: Error) => this.opts.logger?.warn({ err: e.message }, 'fetch lease release failed'));
        }
      }
      if (await this.follow(spec, job)) return;
      if (round >= 3) throw new SeriesIncompleteError('the series could not be completed: the fetches of it by other instances kept failing');
    }
  }

  /** Follows another holder's fetch; true once the series is complete, false when the lease ended without that. */
  private async follow(spec: SeriesSpec, job: FetchJob): Promise<boolean> {
    const expected = new Set(spec.expected);
    for (;;) {
      const r = await this.idx.row(spec);
      // what the holder has landed is readable from the shared folder at once
      for (const i of await this.store.instances({ study: spec.studyUid, series: spec.seriesUid })) if (expected.has(i.sop_uid)) job.land(i.sop_uid);
      if (r?.state === 'complete' && !(await this.stale(r))) return true;
      const l = await this.idx.lease(spec.seriesUid);
      if (!l || l.expiresAt <= this.now()) return false;
      await delay(this.pollMs);
    }
  }

  /**
   * A read lease on a series: it is not evicted until every lease is released (release is idempotent).
   * `ensure` takes one for its handle; a reader holding files past its handle takes its own. Other
   * instances learn of it from this instance's reader row.
   */
  async lease(s: SeriesKey): Promise<() => void> {
    return (await this.read(s)).release;
  }

  /** A read lease; `published`: its reader row was written now (no fresh one of this instance existed). */
  private async read(s: SeriesKey): Promise<{ release: () => void; published: boolean }> {
    const key = keyOf(s);
    this.leases.set(key, (this.leases.get(key) ?? 0) + 1);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      const n = (this.leases.get(key) ?? 1) - 1;
      if (n > 0) { this.leases.set(key, n); return; }
      this.leases.delete(key);
      // the budget was exceeded while the series was read (checked only then: a lease per frame request)
      if (this.overBudget) this.evictQuietly();
    };
    const p = this.published.get(key);
    if (p) { p.idle = false; return { release, published: false }; }
    const token = randomBytes(9).toString('base64url');
    try {
      await this.idx.publishReader(this.instance, s, token, this.now() + this.readerMs);
    } catch (e) {
      release();
      throw e;
    }
    this.published.set(key, { key: { source: s.source, kosUid: s.kosUid, seriesUid: s.seriesUid }, token, idle: false });
    return { release, published: true };
  }

  /** series being fetched or read here are not evicted (other instances': see CacheIndex.dropIfIdle) */
  private busy(r: CacheRow): boolean {
    const key = keyOf(r);
    return this.jobs.has(key) || this.leases.has(key);
  }

  private async fetch(spec: SeriesSpec, token: string, rpps: string | undefined, job: FetchJob): Promise<void> {
    await this.idx.begin(spec, this.now());
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
              if (mismatch || have.has(info.sopInstanceUid) || job.landing.has(info.sopInstanceUid) || job.announced(info.sopInstanceUid)) return;
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
          await this.idx.addBytes(spec, put.size);
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
        await this.forget(spec);
        throw new IdentityMismatchError(refused);
      }
      const lacking = spec.expected.filter((s) => !have.has(s));
      if (lacking.length) throw new SeriesIncompleteError(`the source box sent ${spec.expected.length - lacking.length} of the ${spec.expected.length} instances the KOS references`);
      // one batched fsync: a series marked complete is on disk
      await this.store.syncFiles(landedFiles);
      await this.markComplete(spec);
    } catch (e) {
      outcome.error = (e as Error).message;
      throw e;
    } finally {
      outcome.durationMs = performance.now() - t0;
      this.opts.onFetch?.(spec, outcome, rpps);
    }
  }

  /**
   * Fetches one instance alone while its series' fetch has not brought it yet: the image a viewer is
   * about to draw does not wait for the instances the source sends before it. The series fetch still
   * brings it (puts are idempotent); this one lands it for the readers waiting on it, with the same
   * checks (the KOS's instance of the KOS's patient, study and series; a whole file). At most
   * HURRY_MAX per series at a time: more waits for the series.
   */
  hurry(spec: SeriesSpec, sop: string, token: string, job: FetchJob, rpps?: string): Promise<void> | undefined {
    const key = `${keyOf(spec)}|${sop}`;
    const running = this.hurrying.get(key);
    if (running) return running;
    if (job.settled || job.announced(sop)) return undefined;
    const prefix = `${keyOf(spec)}|`;
    if ([...this.hurrying.keys()].filter((k) => k.startsWith(prefix)).length >= HURRY_MAX) return undefined;
    const p = this.fetchInstance(spec, sop, token, job, rpps).finally(() => this.hurrying.delete(key));
    p.catch(() => undefined); // its reader sees the failure
    this.hurrying.set(key, p);
    return p;
  }

  private async fetchInstance(spec: SeriesSpec, sop: string, token: string, job: FetchJob, rpps?: string): Promise<void> {
    const root = dicomWebRootOf(spec.retrieveUrl);
    if (!root) throw new SeriesIncompleteError('no retrieve root for the instance');
    const url = `${root}/studies/${spec.studyUid}/series/${spec.seriesUid}/instances/${sop}`;
    const kos: KosExpectation = { studyUid: spec.studyUid, seriesUid: spec.seriesUid, sops: new Set([sop]), patientIds: spec.patientIds ?? [] };
    this.instanceFetches++;
    const t0 = performance.now();
    const outcome: FetchOutcome = { url, status: 0, bytes: 0, instances: 0, durationMs: 0 };
    try {
      const res = await this.opts.peer.get(url, { token, kosUid: spec.kosUid, accept: DRIMM_ACCEPT });
      outcome.status = res.status;
      const boundary = parseContentType(res.headers['content-type'] ?? '').params.boundary;
      if (!boundary) { res.body.destroy(); throw new PeerUnavailableError('source box answered without a multipart boundary'); }
      try {
        for await (const part of readMultipart(res.body, boundary)) {
          let mismatch: string | undefined;
          const put = await this.store.put(part.body as Readable, undefined, { onHeader: (info) => { mismatch = identityProblem(info, kos); } });
          outcome.bytes += put.size;
          if (mismatch) {
            await this.store.delete({ study: put.studyInstanceUid, series: put.seriesInstanceUid, instance: put.sopInstanceUid }).catch(() => undefined);
            throw new IdentityMismatchError(mismatch);
          }
          const cut = await completenessProblem(put.path, put.size, put.transferSyntaxUid).catch((e: Error) => `unreadable (${e.message})`);
          if (cut) {
            await this.store.delete({ study: spec.studyUid, series: spec.seriesUid, instance: sop }).catch(() => undefined);
            throw new SeriesIncompleteError(`the source box sent a damaged instance (${sop}): ${cut}`);
          }
          outcome.instances++;
          job.land(sop);
          break;
        }
      } finally {
        res.body.destroy();
      }
    } catch (e) {
      outcome.error = (e as Error).message;
      throw e;
    } finally {
      outcome.durationMs = performance.now() - t0;
      this.opts.onFetch?.(spec, outcome, rpps);
    }
  }

  private async markComplete(spec: SeriesSpec): Promise<void> {
    const expected = new Set(spec.expected);
    const bytes = (await this.store.instances({ study: spec.studyUid, series: spec.seriesUid }))
      .filter((r) => expected.has(r.sop_uid)).reduce((n, r) => n + r.size, 0);
    await this.idx.complete(spec, bytes, this.now());
  }

  /** Path of a cached instance (of this series), if present. */
  async instanceFile(spec: Pick<SeriesSpec, 'studyUid' | 'seriesUid'>, sop: string): Promise<{ path: string; size: number; transferSyntaxUid: string } | undefined> {
    const [r] = await this.store.instances({ study: spec.studyUid, series: spec.seriesUid, instance: sop });
    return r ? { path: join(this.store.root, r.path), size: r.size, transferSyntaxUid: r.transfer_syntax } : undefined;
  }

  /** Files of the KOS-referenced instances of a series, in display order, from one index query. */
  async seriesFiles(spec: SeriesSpec): Promise<Map<string, { path: string; size: number; transferSyntaxUid: string }>> {
    const expected = new Set(spec.expected);
    const out = new Map<string, { path: string; size: number; transferSyntaxUid: string }>();
    for (const r of await this.store.instances({ study: spec.studyUid, series: spec.seriesUid })) {
      if (expected.has(r.sop_uid)) out.set(r.sop_uid, { path: join(this.store.root, r.path), size: r.size, transferSyntaxUid: r.transfer_syntax });
    }
    return out;
  }

  /** Forgets that a series is complete (a damaged file): the next access fetches what is missing. */
  async invalidate(spec: SeriesKey): Promise<void> {
    await this.idx.invalidate(spec.source, spec.seriesUid);
    this.opts.logger?.warn({ series: spec.seriesUid }, 'damaged cache file: series will be refetched');
  }

  async pin(owner: string, source: string, kosUid: string): Promise<void> {
    await this.idx.pin(owner, source, kosUid);
  }

  async unpin(owner: string, source?: string, kosUid?: string): Promise<void> {
    await this.idx.unpin(owner, source, kosUid);
    // what the pin held may now go: an import pins past its read leases, so their release could not evict it
    if (await this.totalBytes() > this.opts.maxBytes) this.evictQuietly();
  }

  totalBytes(): Promise<number> {
    return this.idx.totalBytes();
  }

  /** An eviction pass in the background (after a fetch, a lease, an unpin): failures are logged. */
  private evictQuietly(): void {
    this.evict().catch((e: Error) => this.opts.logger?.warn({ err: e.message }, 'cache eviction failed'));
  }

  /**
   * Evicts least recently used, unpinned, idle series until under budget; also drops expired ones.
   * Returns how many went. One pass at a time on this instance; other instances' reads and fetches
   * are respected through the database.
   */
  evict(): Promise<number> {
    if (this.evicting) {
      this.evictAgain = true; // what changed during the pass (a fetch ending) gets a pass of its own
      return this.evicting;
    }
    this.evicting = (async () => {
      let n = 0;
      do {
        this.evictAgain = false;
        n += await this.evictPass();
      } while (this.evictAgain);
      return n;
    })().finally(() => { this.evicting = undefined; });
    return this.evicting;
  }

  private async evictPass(): Promise<number> {
    let evicted = 0;
    await this.idx.purgeExpired(this.now() - 3600_000);
    const rows = await this.idx.unpinned();
    let total = await this.totalBytes();
    for (const r of rows) {
      if (this.busy(r)) continue;
      const expired = r.state === 'complete' && this.expired(r);
      if (!expired && total <= this.opts.maxBytes) continue;
      if (!(await this.drop(r))) continue;
      total -= r.bytes;
      evicted++;
    }
    this.overBudget = total > this.opts.maxBytes;
    if (evicted) this.opts.logger?.info({ evicted, totalBytes: total, maxBytes: this.opts.maxBytes }, 'cache eviction');
    return evicted;
  }

  /**
   * Removes an idle series' row and, when no other KOS names it, its files — under the series' lease,
   * so no instance fetches into the folder being removed. False when it is busy somewhere.
   */
  private async drop(r: CacheRow): Promise<boolean> {
    const holder: Holder = { instance: this.instance, token: randomBytes(9).toString('base64url') };
    if (!(await this.idx.claim(r.seriesUid, holder, 'evict', this.now(), this.leaseMs))) return false;
    try {
      if (!(await this.idx.dropIfIdle(r, this.instance, this.now()))) return false;
      // the files are shared by every KOS naming this series: removed only with the last one
      if (!(await this.idx.namesSeries(r.seriesUid))) await this.store.delete({ study: r.studyUid, series: r.seriesUid }).catch(() => undefined);
      return true;
    } finally {
      await this.idx.release(r.seriesUid, holder);
    }
  }

  /** Removes a series' row and, when no other KOS names it, its files (its fetch holds the lease). */
  private async forget(spec: SeriesSpec): Promise<void> {
    await this.idx.remove(spec);
    if (!(await this.idx.namesSeries(spec.seriesUid))) await this.store.delete({ study: spec.studyUid, series: spec.seriesUid }).catch(() => undefined);
  }

  /** Drops every unpinned, idle series (operator action; benchmarks). Returns how many went. */
  async clear(): Promise<number> {
    let n = 0;
    for (const r of await this.idx.unpinned()) {
      if (this.busy(r)) continue;
      if (await this.drop(r)) n++;
    }
    return n;
  }

  /** The fetch this instance runs or follows for a series, if any (tests watch it settle). */
  job(s: SeriesKey): FetchJob | undefined {
    return this.jobs.get(keyOf(s));
  }

  /** Waits for running fetches, then gives up what this instance holds in the shared tables (at close). */
  async drain(): Promise<void> {
    clearInterval(this.heartbeat);
    await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
    await this.evicting?.catch(() => undefined);
    this.published.clear();
    await this.idx.releaseInstance(this.instance).catch((e: Error) => this.opts.logger?.warn({ err: e.message }, 'cache: releasing this instance\'s rows failed'));
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

  constructor(private readonly cache: StudyCache, readonly spec: SeriesSpec, private readonly job: FetchJob | undefined, private readonly unlease: () => void, private readonly token = '', private readonly rpps?: string) {}

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

  /**
   * Resolves when one instance has landed; rejects when the fetch ends without it. `urgent`: the
   * instance is fetched alone if the series fetch has not started it yet (StudyCache.hurry).
   */
  async instance(sop: string, o: { urgent?: boolean } = {}): Promise<void> {
    if (!this.spec.expected.includes(sop)) throw new RangeError('instance not referenced by the KOS');
    let refused: Error | undefined;
    const job = this.job;
    if (o.urgent && job && this.token) {
      // a refusal (not the KOS's instance) is the answer; any other failure leaves it to the series fetch
      this.cache.hurry(this.spec, sop, this.token, job, this.rpps)?.catch((e: Error) => {
        if (e instanceof IdentityMismatchError) refused = e;
        job.progress();
      });
    }
    // every pass either returns, throws or awaits a change of the fetch: never a busy loop
    for (;;) {
      if (refused) throw refused;
      const landed = !this.job || this.job.landed.includes(sop);
      if (landed && await this.cache.instanceFile(this.spec, sop)) return;
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
        this.rows = await this.cache.seriesFiles(this.spec);
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
    const f = this.rows?.get(sop) ?? await this.cache.instanceFile(this.spec, sop);
    if (!f) throw new SeriesIncompleteError('instance missing from the cache');
    const fh = await open(f.path, 'r').catch(() => undefined);
    const size = fh ? (await fh.stat()).size : -1;
    if (!fh || size !== f.size) {
      await fh?.close();
      await this.cache.invalidate(this.spec);
      throw new SeriesIncompleteError('a cache file is damaged: the series will be fetched again');
    }
    return { body: fh.createReadStream({ highWaterMark: READ_CHUNK }), size: f.size, transferSyntaxUid: f.transferSyntaxUid };
  }
}
