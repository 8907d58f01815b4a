// The study cache's shared state in the box database, for every instance that shares the cache folder:
// one row per (source box, KOS, series) with its state, size and last access; pins; a lease per
// series (the one instance fetching it, or evicting it, until the lease expires); and reader rows
// (an instance reading a series: another instance's eviction leaves it alone while the row is fresh).
import type { Store } from '../store/database.js';

export interface SeriesKey { source: string; kosUid: string; seriesUid: string }

export interface CacheRow extends SeriesKey {
  studyUid: string;
  state: 'partial' | 'complete';
  bytes: number;
  /** epoch ms when it became complete (the TTL runs from here) */
  fetchedAt: number | null;
  lastAccess: number;
}

/** who holds a lease: an instance, and which of its fetches or eviction passes */
export interface Holder { instance: string; token: string }
export interface Lease extends Holder { purpose: 'fetch' | 'evict'; expiresAt: number }

type Raw = { source: string; kos_uid: string; study_uid: string; series_uid: string; state: string; bytes: unknown; fetched_at: unknown; last_access: unknown };
const rowOf = (r: Raw): CacheRow => ({
  source: r.source, kosUid: r.kos_uid, studyUid: r.study_uid, seriesUid: r.series_uid, state: r.state as CacheRow['state'],
  bytes: Number(r.bytes), fetchedAt: r.fetched_at === null ? null : Number(r.fetched_at), lastAccess: Number(r.last_access),
});

export class CacheIndex {
  constructor(private readonly store: Store) {}

  private get db() { return this.store.db; }

  private whereKey<Q extends { where(c: 'source' | 'kos_uid' | 'series_uid', op: '=', v: string): Q }>(q: Q, k: SeriesKey): Q {
    return q.where('source', '=', k.source).where('kos_uid', '=', k.kosUid).where('series_uid', '=', k.seriesUid);
  }

  async row(k: SeriesKey): Promise<CacheRow | undefined> {
    const r = await this.whereKey(this.db.selectFrom('consumer_cache_series').selectAll(), k).executeTakeFirst();
    return r ? rowOf(r as Raw) : undefined;
  }

  /** Marks an access (LRU); false when the row is gone (evicted meanwhile). */
  async touch(k: SeriesKey, now: number): Promise<boolean> {
    const r = await this.whereKey(this.db.updateTable('consumer_cache_series').set({ last_access: now }), k).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async remove(k: SeriesKey): Promise<void> {
    await this.whereKey(this.db.deleteFrom('consumer_cache_series'), k).execute();
  }

  /** A fetch starts: the row exists, partial. */
  async begin(k: SeriesKey & { studyUid: string; expected: string[] }, now: number): Promise<void> {
    const reset = { expected_json: JSON.stringify(k.expected), state: 'partial', fetched_at: null, last_access: now };
    await this.db.insertInto('consumer_cache_series').values({
      source: k.source, kos_uid: k.kosUid, study_uid: k.studyUid, series_uid: k.seriesUid, bytes: 0, ...reset,
    }).onConflict((oc) => oc.columns(['source', 'kos_uid', 'series_uid']).doUpdateSet(reset)).execute();
  }

  async addBytes(k: SeriesKey, n: number): Promise<void> {
    await this.whereKey(this.db.updateTable('consumer_cache_series').set((eb) => ({ bytes: eb('bytes', '+', n) })), k).execute();
  }

  async complete(k: SeriesKey, bytes: number, at: number): Promise<void> {
    await this.whereKey(this.db.updateTable('consumer_cache_series').set({ state: 'complete', bytes, fetched_at: at }), k).execute();
  }

  /** Every KOS's row of a series of this source becomes partial (a damaged file): refetched on next access. */
  async invalidate(source: string, seriesUid: string): Promise<void> {
    await this.db.updateTable('consumer_cache_series').set({ state: 'partial', fetched_at: null })
      .where('source', '=', source).where('series_uid', '=', seriesUid).execute();
  }

  async pin(owner: string, source: string, kosUid: string): Promise<void> {
    await this.db.insertInto('consumer_cache_pins').values({ owner, source, kos_uid: kosUid })
      .onConflict((oc) => oc.columns(['owner', 'source', 'kos_uid']).doNothing()).execute();
  }

  async unpin(owner: string, source?: string, kosUid?: string): Promise<void> {
    let q = this.db.deleteFrom('consumer_cache_pins').where('owner', '=', owner);
    if (source && kosUid) q = q.where('source', '=', source).where('kos_uid', '=', kosUid);
    await q.execute();
  }

  /** Does a pin hold the series' KOS (a screening batch, an import)? */
  async pinned(k: SeriesKey): Promise<boolean> {
    const r = await this.db.selectFrom('consumer_cache_pins').select('owner')
      .where('source', '=', k.source).where('kos_uid', '=', k.kosUid).limit(1).executeTakeFirst();
    return Boolean(r);
  }

  async totalBytes(): Promise<number> {
    const r = await this.db.selectFrom('consumer_cache_series').select((eb) => eb.fn.coalesce(eb.fn.sum('bytes'), eb.lit(0)).as('n')).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Rows no pin holds, least recently used first (eviction candidates). */
  async unpinned(): Promise<CacheRow[]> {
    const rows = await this.db.selectFrom('consumer_cache_series as c').selectAll('c')
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('consumer_cache_pins as p').select('p.owner')
        .whereRef('p.source', '=', 'c.source').whereRef('p.kos_uid', '=', 'c.kos_uid'))))
      .orderBy('c.last_access').execute();
    return rows.map((r) => rowOf(r as Raw));
  }

  /** Does any KOS's row still name this series (its files are shared by all of them)? */
  async namesSeries(seriesUid: string): Promise<boolean> {
    return Boolean(await this.db.selectFrom('consumer_cache_series').select('series_uid').where('series_uid', '=', seriesUid).limit(1).executeTakeFirst());
  }

  /**
   * Deletes a row unless it is pinned or another instance reads its series. The row is locked first
   * (PostgreSQL) and a reader touches it after publishing its reader row, so either the reader's
   * row is seen here, or the reader finds the row gone and fetches again: never a read of files
   * being removed.
   */
  async dropIfIdle(k: SeriesKey, instance: string, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      let lock = this.whereKey(trx.selectFrom('consumer_cache_series').select('series_uid'), k);
      if (this.store.dialect === 'postgres') lock = lock.forUpdate();
      if (!(await lock.executeTakeFirst())) return false;
      const pinned = await trx.selectFrom('consumer_cache_pins').select('owner').where('source', '=', k.source).where('kos_uid', '=', k.kosUid).limit(1).executeTakeFirst();
      if (pinned) return false;
      const read = await trx.selectFrom('consumer_cache_readers').select('instance').where('series_uid', '=', k.seriesUid)
        .where('instance', '<>', instance).where('expires_at', '>', now).limit(1).executeTakeFirst();
      if (read) return false;
      await this.whereKey(trx.deleteFrom('consumer_cache_series'), k).execute();
      return true;
    });
  }

  // ---------- leases: one holder per series at a time ----------

  /** Takes the series' lease when free or expired (its holder died). True when `holder` has it now. */
  async claim(seriesUid: string, holder: Holder, purpose: Lease['purpose'], now: number, ttlMs: number): Promise<boolean> {
    const v = { instance: holder.instance, token: holder.token, purpose, expires_at: now + ttlMs };
    const ins = await this.db.insertInto('consumer_cache_leases').values({ series_uid: seriesUid, ...v })
      .onConflict((oc) => oc.column('series_uid').doNothing()).executeTakeFirst();
    if (Number(ins.numInsertedOrUpdatedRows ?? 0) > 0) return true;
    // taken over only if still expired when the update runs: of two instances racing, one wins
    const up = await this.db.updateTable('consumer_cache_leases').set(v).where('series_uid', '=', seriesUid).where('expires_at', '<=', now).executeTakeFirst();
    return Number(up.numUpdatedRows) > 0;
  }

  /** Extends a lease still held; false when it was lost (expired and taken over). */
  async renew(seriesUid: string, holder: Holder, until: number): Promise<boolean> {
    const r = await this.db.updateTable('consumer_cache_leases').set({ expires_at: until })
      .where('series_uid', '=', seriesUid).where('instance', '=', holder.instance).where('token', '=', holder.token).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async release(seriesUid: string, holder: Holder): Promise<void> {
    await this.db.deleteFrom('consumer_cache_leases')
      .where('series_uid', '=', seriesUid).where('instance', '=', holder.instance).where('token', '=', holder.token).execute();
  }

  async lease(seriesUid: string): Promise<Lease | undefined> {
    const r = await this.db.selectFrom('consumer_cache_leases').selectAll().where('series_uid', '=', seriesUid).executeTakeFirst();
    return r ? { instance: r.instance, token: r.token, purpose: r.purpose as Lease['purpose'], expiresAt: Number(r.expires_at) } : undefined;
  }

  // ---------- readers: which instance reads which series ----------

  /** Says (until `until`) that `instance` reads the series; `token` names this publication of it. */
  async publishReader(instance: string, k: SeriesKey, token: string, until: number): Promise<void> {
    await this.db.insertInto('consumer_cache_readers').values({ instance, source: k.source, kos_uid: k.kosUid, series_uid: k.seriesUid, token, expires_at: until })
      .onConflict((oc) => oc.columns(['instance', 'source', 'kos_uid', 'series_uid']).doUpdateSet({ token, expires_at: until })).execute();
  }

  async renewReaders(instance: string, until: number): Promise<void> {
    await this.db.updateTable('consumer_cache_readers').set({ expires_at: until }).where('instance', '=', instance).execute();
  }

  /** Withdraws one publication (a newer one of the same series, by another token, stays). */
  async dropReader(instance: string, k: SeriesKey, token: string): Promise<void> {
    await this.whereKey(this.db.deleteFrom('consumer_cache_readers').where('instance', '=', instance), k).where('token', '=', token).execute();
  }

  /** Rows of instances that died and never came back: expired, ignored, finally removed. */
  async purgeExpired(before: number): Promise<void> {
    await this.db.deleteFrom('consumer_cache_readers').where('expires_at', '<', before).execute();
    await this.db.deleteFrom('consumer_cache_leases').where('expires_at', '<', before).execute();
  }

  /** What an instance held before it stopped (or as it closes): its leases and reader rows go. */
  async releaseInstance(instance: string): Promise<void> {
    await this.db.deleteFrom('consumer_cache_leases').where('instance', '=', instance).execute();
    await this.db.deleteFrom('consumer_cache_readers').where('instance', '=', instance).execute();
  }
}
