// Enrolment repository: boxes ask to join, the operator approves or revokes.
import type { RegistryDb } from './db.js';

export type EnrolmentStatus = 'pending' | 'approved' | 'revoked';

export interface Enrolment {
  id: number;
  dn: string;
  certSha256: string;
  boxHost: string;
  viewerHost?: string;
  operatorName: string;
  supportContact?: string;
  status: EnrolmentStatus;
  createdAt: string;
  updatedAt: string;
  decidedBy?: string;
}

interface Row {
  id: number; dn: string; cert_sha256: string; box_host: string; viewer_host: string | null; operator_name: string;
  support_contact: string | null; status: EnrolmentStatus; created_at: string; updated_at: string; decided_by: string | null;
}

function fromRow(r: Row): Enrolment {
  return {
    id: r.id, dn: r.dn, certSha256: r.cert_sha256, boxHost: r.box_host, viewerHost: r.viewer_host ?? undefined,
    operatorName: r.operator_name, supportContact: r.support_contact ?? undefined, status: r.status,
    createdAt: r.created_at, updatedAt: r.updated_at, decidedBy: r.decided_by ?? undefined,
  };
}

/** ISO time without milliseconds, as the list writes dates. */
export function isoSeconds(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class EnrolmentRepository {
  constructor(private readonly db: RegistryDb) {}

  create(e: { dn: string; certSha256: string; boxHost: string; viewerHost?: string; operatorName: string; supportContact?: string; status: EnrolmentStatus; decidedBy?: string }): Enrolment {
    const now = isoSeconds();
    const info = this.db.prepare(`INSERT INTO enrolments (dn, cert_sha256, box_host, viewer_host, operator_name, support_contact, status, created_at, updated_at, decided_by)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(e.dn, e.certSha256, e.boxHost, e.viewerHost ?? null, e.operatorName, e.supportContact ?? null, e.status, now, now, e.decidedBy ?? null);
    return this.get(Number(info.lastInsertRowid))!;
  }

  get(id: number): Enrolment | undefined {
    const r = this.db.prepare('SELECT * FROM enrolments WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }

  list(status?: EnrolmentStatus): Enrolment[] {
    const rows = status
      ? this.db.prepare('SELECT * FROM enrolments WHERE status = ? ORDER BY id').all(status)
      : this.db.prepare('SELECT * FROM enrolments ORDER BY id').all();
    return (rows as Row[]).map(fromRow);
  }

  /** Enrolments still alive (pending or approved). */
  active(): Enrolment[] {
    return (this.db.prepare("SELECT * FROM enrolments WHERE status != 'revoked' ORDER BY id").all() as Row[]).map(fromRow);
  }

  setStatus(id: number, status: EnrolmentStatus, decidedBy: string): Enrolment | undefined {
    this.db.prepare('UPDATE enrolments SET status = ?, updated_at = ?, decided_by = ? WHERE id = ?').run(status, isoSeconds(), decidedBy, id);
    return this.get(id);
  }
}
