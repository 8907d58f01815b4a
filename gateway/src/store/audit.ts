// Audit trail: who saw what, when, with which result. Patient data belongs here, never in logs.
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
}

export class AuditLog {
  private readonly insert;
  constructor(private readonly db: Db) {
    this.insert = db.prepare(`INSERT INTO audit
      (at, direction, actor_dn, actor_rpps, route, method, patient_id, study_uid, series_uid, instance_uid, kos_uid, status, outcome, bytes, duration_ms)
      VALUES (@at, @direction, @actorDn, @actorRpps, @route, @method, @patientId, @studyUid, @seriesUid, @instanceUid, @kosUid, @status, @outcome, @bytes, @durationMs)`);
  }

  record(e: AuditEntry): void {
    this.insert.run({
      at: new Date().toISOString(),
      direction: e.direction,
      actorDn: e.actorDn ?? null,
      actorRpps: e.actorRpps ?? null,
      route: e.route,
      method: e.method,
      patientId: e.patientId ?? null,
      studyUid: e.studyUid ?? null,
      seriesUid: e.seriesUid ?? null,
      instanceUid: e.instanceUid ?? null,
      kosUid: e.kosUid ?? null,
      status: e.status,
      outcome: e.outcome ?? null,
      bytes: e.bytes ?? 0,
      durationMs: e.durationMs ?? 0,
    });
  }

  recent(limit = 100): AuditRow[] {
    return this.db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit) as AuditRow[];
  }
}
