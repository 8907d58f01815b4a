// Audit trail: who saw what, when, with which result. Patient data belongs here, never in logs.
// Tamper evidence: every row carries hash = sha256(previous row's hash, its own content), so an edited
// or removed row breaks the chain from there on (`drimbox audit verify`). Retention deletes the oldest
// rows and keeps the hash of the last one deleted as the anchor the chain starts from.
import { createHash } from 'node:crypto';
import type { Db } from './db.js';

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

/** The row's chained hash: what an edit of any column (or of the previous row) changes. */
export function rowHash(prev: string, r: Omit<AuditRow, 'hash'>): string {
  const content = JSON.stringify([
    r.id, r.at, r.direction, r.actor_dn, r.actor_rpps, r.route, r.method, r.patient_id, r.study_uid,
    r.series_uid, r.instance_uid, r.kos_uid, r.status, r.outcome, r.bytes, r.duration_ms,
  ]);
  return createHash('sha256').update(prev).update('\n').update(content).digest('hex');
}

export class AuditLog {
  private readonly insert;
  private readonly last;
  private readonly anchor;
  constructor(private readonly db: Db) {
    this.insert = db.prepare(`INSERT INTO audit
      (id, at, direction, actor_dn, actor_rpps, route, method, patient_id, study_uid, series_uid, instance_uid, kos_uid, status, outcome, bytes, duration_ms, hash)
      VALUES (@id, @at, @direction, @actor_dn, @actor_rpps, @route, @method, @patient_id, @study_uid, @series_uid, @instance_uid, @kos_uid, @status, @outcome, @bytes, @duration_ms, @hash)`);
    this.last = db.prepare('SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1');
    this.anchor = db.prepare('SELECT through_id AS id, hash FROM audit_anchor WHERE one = 1');
    this.chainUnhashed();
  }

  /** Where the chain continues from: the last row, else the retention anchor, else the genesis. */
  private tip(): { id: number; hash: string } {
    const last = this.last.get() as { id: number; hash: string | null } | undefined;
    if (last) return { id: last.id, hash: last.hash ?? GENESIS }; // an emptied hash: verify() reports that row
    const a = this.anchor.get() as { id: number; hash: string } | undefined;
    return a ?? { id: 0, hash: GENESIS };
  }

  record(e: AuditEntry): void {
    this.db.transaction(() => {
      const tip = this.tip();
      const row: Omit<AuditRow, 'hash'> = {
        id: tip.id + 1,
        at: new Date().toISOString(),
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
      this.insert.run({ ...row, hash: rowHash(tip.hash, row) });
    })();
  }

  recent(limit = 100): AuditRow[] {
    return this.db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit) as AuditRow[];
  }

  /** Rows matching `where` (SQL over audit columns), oldest first, streamed. */
  *rows(where: string, params: Record<string, unknown>): Generator<AuditRow> {
    yield* this.db.prepare(`SELECT * FROM audit ${where ? `WHERE ${where}` : ''} ORDER BY id`).iterate(params) as Iterable<AuditRow>;
  }

  /** Deletes rows older than `days`, keeping the last deleted row's hash as the chain's anchor. */
  trimOlderThan(days: number, now = Date.now()): number {
    const cutoff = new Date(now - days * 86_400_000).toISOString();
    return this.db.transaction(() => {
      const through = this.db.prepare('SELECT id, hash FROM audit WHERE id <= (SELECT max(id) FROM audit WHERE at < ?) ORDER BY id DESC LIMIT 1')
        .get(cutoff) as { id: number; hash: string } | undefined;
      if (!through) return 0;
      this.db.prepare('INSERT INTO audit_anchor (one, through_id, hash) VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE SET through_id = excluded.through_id, hash = excluded.hash')
        .run(through.id, through.hash);
      return this.db.prepare('DELETE FROM audit WHERE id <= ?').run(through.id).changes;
    })();
  }

  /** Walks the chain from its anchor; names the first row that does not follow. */
  verify(): ChainCheck {
    const a = this.anchor.get() as { id: number; hash: string } | undefined;
    let prev = a?.hash ?? GENESIS;
    let expected = (a?.id ?? 0) + 1;
    let rows = 0;
    for (const r of this.db.prepare('SELECT * FROM audit ORDER BY id').iterate() as Iterable<AuditRow>) {
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
   * Rows written before the chain existed (the migration marked how far) get their hash once, in order.
   * Only those: a row whose hash was emptied later stays broken for verify().
   */
  private chainUnhashed(): void {
    const legacy = this.db.prepare('SELECT through_id AS id FROM audit_legacy').get() as { id: number } | undefined;
    if (!legacy) return;
    this.db.transaction(() => {
      let prev = GENESIS;
      const set = this.db.prepare('UPDATE audit SET hash = ? WHERE id = ?');
      for (const r of this.db.prepare('SELECT * FROM audit WHERE id <= ? ORDER BY id').all(legacy.id) as AuditRow[]) {
        const { hash: _unset, ...content } = r;
        prev = rowHash(prev, content);
        set.run(prev, r.id);
      }
      this.db.prepare('DELETE FROM audit_legacy').run();
    })();
  }
}
