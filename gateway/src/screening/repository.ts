// Screening batches and cases in the store, all SQL through Kysely (SQLite and PostgreSQL alike).
// Writes that must happen once (a verdict, a claim) are conditional UPDATEs: the row count says who won.
import type { Kysely, Transaction } from 'kysely';
import type { ScreeningBatchRow, ScreeningCaseRow, ScreeningSchema, ScreeningSessionRow } from './schema.js';

type Db = Kysely<ScreeningSchema>;
export type CasePatch = Partial<Omit<ScreeningCaseRow, 'id' | 'batch_id' | 'position'>>;

export interface BatchTotals {
  batch_id: string;
  total: number; queued: number; fetching: number; ready: number; failed: number; read: number; deferred: number;
  instances_done: number; instances_total: number; bytes_done: number;
}

/** rows per INSERT (SQLite allows 32766 bound values; a case row has 19) */
const CHUNK = 500;
const now = () => new Date().toISOString();
const num = (v: unknown) => Number(v ?? 0);

export class ScreeningRepository {
  constructor(private readonly db: Db) {}

  /** The batch and all its cases, in one transaction: a file refused midway leaves nothing. */
  async createBatch(batch: ScreeningBatchRow, cases: Omit<ScreeningCaseRow, 'updated_at'>[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('screening_batches').values(batch).execute();
      const at = now();
      for (let i = 0; i < cases.length; i += CHUNK) {
        await trx.insertInto('screening_cases').values(cases.slice(i, i + CHUNK).map((c) => ({ ...c, updated_at: at }))).execute();
      }
    });
  }

  async batches(): Promise<ScreeningBatchRow[]> {
    return this.db.selectFrom('screening_batches').selectAll().orderBy('created_at', 'desc').orderBy('id').execute();
  }

  /** Ids of the batches with a case assigned to this reader (the row's readerRpps, 11 digits, as stored in row_json). */
  /** the batches with a case assigned to this reader (only `batchId`'s when given: one batch's cases scanned) */
  async batchesReadBy(rpps: string, batchId?: string): Promise<Set<string>> {
    if (!/^\d{11}$/.test(rpps)) return new Set();
    let q = this.db.selectFrom('screening_cases').select('batch_id').distinct()
      .where('row_json', 'like', `%"readerRpps":"${rpps}"%`);
    if (batchId !== undefined) q = q.where('batch_id', '=', batchId);
    const rows = await q.execute();
    return new Set(rows.map((r) => r.batch_id));
  }

  async batch(id: string): Promise<ScreeningBatchRow | undefined> {
    return this.db.selectFrom('screening_batches').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async updateBatch(id: string, patch: Partial<Omit<ScreeningBatchRow, 'id'>>, whereState?: string[]): Promise<boolean> {
    let q = this.db.updateTable('screening_batches').set(patch).where('id', '=', id);
    if (whereState) q = q.where('state', 'in', whereState);
    const r = await q.executeTakeFirst();
    return num(r.numUpdatedRows) > 0;
  }

  async deleteBatch(id: string): Promise<void> {
    await this.db.transaction().execute(async (trx: Transaction<ScreeningSchema>) => {
      await trx.deleteFrom('screening_sessions').where('case_id', 'in', trx.selectFrom('screening_cases').select('id').where('batch_id', '=', id)).execute();
      await trx.deleteFrom('screening_cases').where('batch_id', '=', id).execute();
      await trx.deleteFrom('screening_batches').where('id', '=', id).execute();
    });
  }

  /** Per batch: cases by state, read and deferred, instances and bytes. */
  async totals(batchId?: string): Promise<Map<string, BatchTotals>> {
    const { fn } = this.db;
    let q = this.db.selectFrom('screening_cases').select((eb) => [
      'batch_id',
      fn.countAll<number>().as('total'),
      fn.sum<number>(eb.case().when('state', '=', 'queued').then(1).else(0).end()).as('queued'),
      fn.sum<number>(eb.case().when('state', '=', 'fetching').then(1).else(0).end()).as('fetching'),
      fn.sum<number>(eb.case().when('state', '=', 'ready').then(1).else(0).end()).as('ready'),
      fn.sum<number>(eb.case().when('state', '=', 'failed').then(1).else(0).end()).as('failed'),
      fn.count<number>('verdict_json').as('read'),
      fn.sum<number>(eb.case().when(eb.and([eb('deferral_json', 'is not', null), eb('verdict_json', 'is', null)])).then(1).else(0).end()).as('deferred'),
      fn.sum<number>('instances_done').as('instances_done'),
      fn.sum<number>('instances_total').as('instances_total'),
      fn.sum<number>('bytes_done').as('bytes_done'),
    ]).groupBy('batch_id');
    if (batchId) q = q.where('batch_id', '=', batchId);
    const out = new Map<string, BatchTotals>();
    for (const r of await q.execute()) {
      out.set(r.batch_id, {
        batch_id: r.batch_id, total: num(r.total), queued: num(r.queued), fetching: num(r.fetching), ready: num(r.ready), failed: num(r.failed),
        read: num(r.read), deferred: num(r.deferred), instances_done: num(r.instances_done), instances_total: num(r.instances_total), bytes_done: num(r.bytes_done),
      });
    }
    return out;
  }

  async cases(batchId: string): Promise<ScreeningCaseRow[]> {
    return this.db.selectFrom('screening_cases').selectAll().where('batch_id', '=', batchId).orderBy('position').execute();
  }

  async case(batchId: string, caseId: string): Promise<ScreeningCaseRow | undefined> {
    return this.db.selectFrom('screening_cases').selectAll().where('id', '=', caseId).where('batch_id', '=', batchId).executeTakeFirst();
  }

  /** Updates a case; with `whereState`, only when it is in one of those states (returns whether it was). */
  async updateCase(id: string, patch: CasePatch, whereState?: string[]): Promise<boolean> {
    let q = this.db.updateTable('screening_cases').set({ ...patch, updated_at: now() }).where('id', '=', id);
    if (whereState) q = q.where('state', 'in', whereState);
    const r = await q.executeTakeFirst();
    return num(r.numUpdatedRows) > 0;
  }

  /** Queued cases of prefetching batches that may start now: oldest batch first, in reading order. */
  async startable(limit: number, skip: string[]): Promise<ScreeningCaseRow[]> {
    let q = this.db.selectFrom('screening_cases as c').innerJoin('screening_batches as b', 'b.id', 'c.batch_id').selectAll('c')
      .where('b.state', '=', 'prefetching').where('c.state', '=', 'queued')
      .where((eb) => eb.or([eb('c.next_attempt_at', 'is', null), eb('c.next_attempt_at', '<=', now())]))
      .orderBy('b.created_at').orderBy('c.position').limit(limit);
    if (skip.length) q = q.where('c.id', 'not in', skip);
    return q.execute();
  }

  /** When the next delayed case becomes startable (to wake the scheduler), if any. */
  async nextAttemptAt(): Promise<string | undefined> {
    const r = await this.db.selectFrom('screening_cases as c').innerJoin('screening_batches as b', 'b.id', 'c.batch_id')
      .select((eb) => eb.fn.min<string>('c.next_attempt_at').as('at'))
      .where('b.state', '=', 'prefetching').where('c.state', '=', 'queued').where('c.next_attempt_at', '>', now()).executeTakeFirst();
    return r?.at ?? undefined;
  }

  /** After a restart: what was being fetched is queued again (what landed stays in the cache). */
  async requeueInterrupted(): Promise<void> {
    await this.db.updateTable('screening_cases').set({ state: 'queued', updated_at: now() }).where('state', '=', 'fetching').execute();
  }

  /** Cases that failed for a reason that may have gone (a source box down), failed before `before`: queued again. */
  async requeueRetryable(before: string, batchId?: string): Promise<string[]> {
    let q = this.db.updateTable('screening_cases').set({ state: 'queued', attempts: 0, next_attempt_at: null, updated_at: now() })
      .where('state', '=', 'failed').where('retryable', '=', 1).where('updated_at', '<=', before)
      .where('batch_id', 'in', (eb) => eb.selectFrom('screening_batches').select('id').where('state', 'in', ['prefetching', 'ready']));
    if (batchId) q = q.where('batch_id', '=', batchId);
    const rows = await q.returning(['batch_id']).execute();
    return [...new Set(rows.map((r) => r.batch_id))];
  }

  /** Records a verdict if the case has none yet; false when another request got there first. */
  async recordVerdict(caseId: string, requestId: string, verdictJson: string): Promise<boolean> {
    const r = await this.db.updateTable('screening_cases').set({ verdict_json: verdictJson, verdict_request_id: requestId, updated_at: now() })
      .where('id', '=', caseId).where('verdict_json', 'is', null).executeTakeFirst();
    return num(r.numUpdatedRows) > 0;
  }

  async session(caseId: string, rpps: string): Promise<ScreeningSessionRow | undefined> {
    return this.db.selectFrom('screening_sessions').selectAll().where('case_id', '=', caseId).where('rpps', '=', rpps).executeTakeFirst();
  }

  async putSession(row: ScreeningSessionRow): Promise<void> {
    await this.db.insertInto('screening_sessions').values(row)
      .onConflict((oc) => oc.columns(['case_id', 'rpps']).doUpdateSet({ session_sealed: row.session_sealed, expires_at: row.expires_at })).execute();
  }

  /** Bytes the batches still open have in the cache (for the budget check of a new batch). */
  async openBatchBytes(): Promise<number> {
    const r = await this.db.selectFrom('screening_cases as c').innerJoin('screening_batches as b', 'b.id', 'c.batch_id')
      .select((eb) => eb.fn.sum<number>('c.bytes_done').as('n')).where('b.state', 'not in', ['closed', 'cancelled']).executeTakeFirst();
    return num(r?.n);
  }
}
