// Audit trail: who saw what, when, with which result. Patient data belongs here, never in logs.
// Tamper evidence: every row carries hash = sha256(previous row's hash, its own content), so an edited
// or removed row breaks the chain from there on (`drimbox audit verify`). Retention deletes the oldest
// rows and keeps the hash of the last one deleted as the anchor the chain starts from.
// Several instances append to one chain: on PostgreSQL the writers take a transaction-scoped
// advisory lock, so one row at a time reads the tip and adds the next (SQLite has one writer).
import { createHash } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Dialect } from './database.js';
import type { Schema } from './schema.js';

export interface AuditEntry {
  direction: 'peer-in' | 'peer-out' | 'user' | 'admin';
  actorDn?: string;
  actorRpps?: string;
  route: string;
  method: string;
  patientId?: string;
  studyUid?: string;
  seriesUid?: string;
  instanceUid?: string;
  kosUid?: string;
  status: number;
  outcome?: string;
  bytes?: number;
  durationMs?: number;
}

export interface AuditRow extends Required<Pick<AuditEntry, 'direction' | 'route' | 'method' | 'status'>> {
  id: number;
  at: string;
  actor_dn: string | null;
  actor_rpps: string | null;
  patient_id: string | null;
  study_uid: string | null;
  series_uid: string | null;
  instance_uid: string | null;
  kos_uid: string | null;
  outcome: string | null;
  bytes: number;
  duration_ms: number;
  hash: string | null;
}

export type ChainCheck =
  | { ok: true; rows: number }
  | { ok: false; rows: number; brokenAt: number; reason: string };

const GENESIS = '0'.repeat(64);
/** advisory lock key of the audit chain (any constant; "drim" in ASCII) */
const CHAIN_LOCK = 0x6472696d;
/** rows read per query when walking the trail */
const BATCH = 1000;

/** What an admin search may ask for (all given criteria must match). */
export interface AuditFilter {
  ins?: string;
  rpps?: string;
  study?: string;
  /** part of the peer certificate DN, case-insensitive */
  peer?: string;
  /** ISO-8601 bounds on `at`: from inclusive, to exclusive */
  from?: string;
  to?: string;
}

/** The row's chained hash: what an edit of any column (or of the previous row) changes. */
export function rowHash(prev: string, r: Omit<AuditRow, 'hash'>): string {
  const content = JSON.stringify([
    r.id, r.at, r.direction, r.actor_dn, r.actor_rpps, r.route, r.method, r.patient_id, r.study_uid,
    r.series_uid, r.instance_uid, r.kos_uid, r.status, r.outcome, r.bytes, r.duration_ms,
  ]);
  return createHash('sha256').update(prev).update('\n').update(content).digest('hex');
}

export class AuditLog {
  private readonly db: Kysely<Schema>;
  private readonly dialect: Dialect;
  /** this instance's writes, in order: recent() and verify() see what was recorded before them */
  private pending: Promise<void> = Promise.resolve();

  private constructor(store: { db: Kysely<Schema>; dialect: Dialect }, private readonly onError: (err: unknown) => void) {
    this.db = store.db;
    this.dialect = store.dialect;
  }

  /** The trail of a store; rows from before the chain existed get their hash first. */
  static async open(store: { db: Kysely<Schema>; dialect: Dialect }, onError: (err: unknown) => void = () => {}): Promise<AuditLog> {
    const audit = new AuditLog(store, onError);
    await audit.chainUnhashed();
    return audit;
  }

  /** Where the chain continues from: the last row, else the retention anchor, else the genesis. */
  private async tip(trx: Kysely<Schema>): Promise<{ id: number; hash: string }> {
    const last = await trx.selectFrom('audit').select(['id', 'hash']).orderBy('id', 'desc').limit(1).executeTakeFirst();
    if (last) return { id: last.id, hash: last.hash ?? GENESIS }; // an emptied hash: verify() reports that row
    const a = await trx.selectFrom('audit_anchor').select(['through_id as id', 'hash']).where('one', '=', 1).executeTakeFirst();
    return a ?? { id: 0, hash: GENESIS };
  }

  private async lockChain(trx: Transaction<Schema>): Promise<void> {
    if (this.dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(${CHAIN_LOCK})`.execute(trx);
  }

  /**
   * Appends a row. Never rejects: a request must not fail (or crash the box) because its audit row
   * could not be written; that is reported to onError (the box logs it). Awaiting it waits for the write.
   */
  record(e: AuditEntry): Promise<void> {
    const at = new Date().toISOString();
    const write = this.pending.then(() => this.db.transaction().execute(async (trx) => {
      await this.lockChain(trx);
      const tip = await this.tip(trx);
      const row: Omit<AuditRow, 'hash'> = {
        id: tip.id + 1,
        at,
        direction: e.direction,
        actor_dn: e.actorDn ?? null,
        actor_rpps: e.actorRpps ?? null,
        route: e.route,
        method: e.method,
        patient_id: e.patientId ?? null,
        study_uid: e.studyUid ?? null,
        series_uid: e.seriesUid ?? null,
        instance_uid: e.instanceUid ?? null,
        kos_uid: e.kosUid ?? null,
        status: e.status,
        outcome: e.outcome ?? null,
        bytes: e.bytes ?? 0,
        duration_ms: e.durationMs ?? 0,
      };
      await trx.insertInto('audit').values({ ...row, hash: rowHash(tip.hash, row) }).execute();
    })).catch((err) => this.onError(err));
    this.pending = write;
    return write;
  }

  /** Waits for the writes recorded so far (before closing the store). */
  async flush(): Promise<void> {
    await this.pending;
  }

  async recent(limit = 100): Promise<AuditRow[]> {
    await this.pending;
    return (await this.db.selectFrom('audit').selectAll().orderBy('id', 'desc').limit(limit).execute()) as AuditRow[];
  }

  /** Rows matching `f`, oldest first, read in batches. */
  async *rows(f: AuditFilter = {}): AsyncGenerator<AuditRow> {
    await this.pending;
    let after = -1;
    for (;;) {
      const batch = await this.db.selectFrom('audit').selectAll()
        .where('id', '>', after)
        .$if(!!f.ins, (q) => q.where('patient_id', '=', f.ins!))
        .$if(!!f.rpps, (q) => q.where('actor_rpps', '=', f.rpps!))
        .$if(!!f.study, (q) => q.where('study_uid', '=', f.study!))
        .$if(!!f.peer, (q) => q.where(sql`lower(actor_dn)`, 'like', sql`${`%${likeEscape(f.peer!.toLowerCase())}%`} ESCAPE '\\'`))
        .$if(!!f.from, (q) => q.where('at', '>=', f.from!))
        .$if(!!f.to, (q) => q.where('at', '<', f.to!))
        .orderBy('id').limit(BATCH).execute() as AuditRow[];
      yield* batch;
      if (batch.length < BATCH) return;
      after = batch[batch.length - 1].id;
    }
  }

  /** Deletes rows older than `days`, keeping the last deleted row's hash as the chain's anchor. */
  trimOlderThan(days: number, now = Date.now()): Promise<number> {
    const cutoff = new Date(now - days * 86_400_000).toISOString();
    const trim = this.pending.then(() => this.db.transaction().execute(async (trx) => {
      await this.lockChain(trx);
      const last = await trx.selectFrom('audit').select((eb) => eb.fn.max('id').as('id')).where('at', '<', cutoff).executeTakeFirst();
      if (last?.id === null || last?.id === undefined) return 0;
      const through = await trx.selectFrom('audit').select(['id', 'hash']).where('id', '<=', Number(last.id)).orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
      await trx.insertInto('audit_anchor').values({ one: 1, through_id: through.id, hash: through.hash ?? GENESIS })
        .onConflict((oc) => oc.column('one').doUpdateSet((eb) => ({ through_id: eb.ref('excluded.through_id'), hash: eb.ref('excluded.hash') }))).execute();
      const r = await trx.deleteFrom('audit').where('id', '<=', through.id).executeTakeFirst();
      return Number(r.numDeletedRows);
    }));
    this.pending = trim.then(() => undefined, () => undefined);
    return trim;
  }

  /** Walks the chain from its anchor; names the first row that does not follow. */
  async verify(): Promise<ChainCheck> {
    await this.pending;
    const a = await this.db.selectFrom('audit_anchor').select(['through_id as id', 'hash']).where('one', '=', 1).executeTakeFirst();
    let prev = a?.hash ?? GENESIS;
    let expected = (a?.id ?? 0) + 1;
    let rows = 0;
    for await (const r of this.rows()) {
      if (r.id !== expected) return { ok: false, rows, brokenAt: r.id, reason: `row${r.id - expected > 1 ? 's' : ''} ${expected}${r.id - expected > 1 ? `-${r.id - 1}` : ''} missing before it` };
      const { hash, ...content } = r;
      if (hash !== rowHash(prev, content)) return { ok: false, rows, brokenAt: r.id, reason: 'its content or the row before it was changed (hash mismatch)' };
      prev = hash;
      expected++;
      rows++;
    }
    return { ok: true, rows };
  }

  /**
   * Rows written before the chain existed (the legacy migration marked how far) get their hash once,
   * in order. Only those: a row whose hash was emptied later stays broken for verify().
   */
  private async chainUnhashed(): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await this.lockChain(trx);
      const legacy = await trx.selectFrom('audit_legacy').select('through_id as id').executeTakeFirst();
      if (!legacy) return;
      let prev = GENESIS;
      const old = await trx.selectFrom('audit').selectAll().where('id', '<=', legacy.id).orderBy('id').execute() as AuditRow[];
      for (const r of old) {
        const { hash: _unset, ...content } = r;
        prev = rowHash(prev, content);
        await trx.updateTable('audit').set({ hash: prev }).where('id', '=', r.id).execute();
      }
      await trx.deleteFrom('audit_legacy').execute();
    });
  }
}

/** A LIKE pattern matching `s` literally (escape character: backslash). */
function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}
