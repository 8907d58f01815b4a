// Viewer sessions ("calls"): what one contextual call or report link resolved to — the patient, the
// clinician, the studies with their source boxes and KOS — and the reports. Each is private: the id
// in the viewer URL is a random 256-bit value stored only as its hash, and every read checks that
// the logged-in clinician is the one who made the call.
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import { hashId } from '../trust/sessions.js';
import type { CallPatient } from './contextual-call.js';
import type { ReportDoc, SessionStudy } from './dmp-search.js';

export interface CallSession {
  id: string;
  rpps: string;
  patient: CallPatient;
  clinician: { name: string; rpps: string };
  studies: SessionStudy[];
  createdAt: number;
  expiresAt: number;
}

/** A call id's stored key: hashed like a clinician session id (import jobs are keyed by it too). */
export const callKey = hashId;

/** sessions kept parsed: a viewer sends hundreds of requests per session, each needing its studies */
const PARSED_SESSIONS = 32;

export class CallSessionStore {
  /** by id hash, least recently used first */
  private readonly parsed = new Map<string, Omit<CallSession, 'id'>>();

  constructor(private readonly db: Db, private readonly ttlMs = 12 * 3600_000, private readonly now: () => number = Date.now,
    /** a study refused or shown with identity warnings (the audit trail): at the call, and when learnt later */
    private readonly onIdentityEvent?: (c: Pick<CallSession, 'rpps' | 'patient'>, study: SessionStudy) => void) {}

  create(c: Omit<CallSession, 'id' | 'createdAt' | 'expiresAt'>, reports: ReportDoc[]): CallSession {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const h = callKey(id);
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO consumer_calls (id_hash, rpps, patient_json, clinician_json, studies_json, created_at, expires_at) VALUES (?,?,?,?,?,?,?)')
        .run(h, c.rpps, JSON.stringify(c.patient), JSON.stringify(c.clinician), JSON.stringify(c.studies), now, now + this.ttlMs);
      const ins = this.db.prepare('INSERT OR REPLACE INTO consumer_call_reports (call_hash, doc_id, media_type, data) VALUES (?,?,?,?)');
      for (const r of reports) ins.run(h, r.id, r.mediaType, r.data);
    })();
    for (const s of c.studies) if (s.status === 'refused' || s.identityWarnings?.length) this.onIdentityEvent?.(c, s);
    return { id, ...c, createdAt: now, expiresAt: now + this.ttlMs };
  }

  /** The session for an id, when it exists, has not expired and belongs to `rpps`. */
  get(id: string | undefined, rpps: string): CallSession | undefined {
    if (!id || id.length > 128) return undefined;
    const c = this.load(callKey(id));
    if (!c || c.expiresAt <= this.now() || c.rpps !== rpps) return undefined;
    return { id, ...c };
  }

  private load(h: string): Omit<CallSession, 'id'> | undefined {
    let c = this.parsed.get(h);
    if (c) {
      this.parsed.delete(h); // most recently used: last
    } else {
      const row = this.db.prepare('SELECT * FROM consumer_calls WHERE id_hash = ?').get(h) as
        | { rpps: string; patient_json: string; clinician_json: string; studies_json: string; created_at: number; expires_at: number }
        | undefined;
      if (!row) return undefined;
      c = {
        rpps: row.rpps, patient: JSON.parse(row.patient_json), clinician: JSON.parse(row.clinician_json),
        studies: JSON.parse(row.studies_json), createdAt: row.created_at, expiresAt: row.expires_at,
      };
    }
    this.parsed.set(h, c);
    if (this.parsed.size > PARSED_SESSIONS) this.parsed.delete(this.parsed.keys().next().value!);
    return c;
  }

  /** Records what was learnt about a study since the call (withdrawn at the source, unreachable). */
  updateStudy(id: string, studyUid: string, change: Partial<Pick<SessionStudy, 'status' | 'problem' | 'identityWarnings'>>): void {
    const h = callKey(id);
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT studies_json, rpps, patient_json FROM consumer_calls WHERE id_hash = ?').get(h) as { studies_json: string; rpps: string; patient_json: string } | undefined;
      if (!row) return;
      const studies = JSON.parse(row.studies_json) as SessionStudy[];
      for (const s of studies) {
        if (s.studyUid !== studyUid) continue;
        const refusedNow = change.status === 'refused' && s.status !== 'refused';
        const warnedMore = (change.identityWarnings?.length ?? 0) > (s.identityWarnings?.length ?? 0);
        Object.assign(s, change);
        if (refusedNow || warnedMore) this.onIdentityEvent?.({ rpps: row.rpps, patient: JSON.parse(row.patient_json) }, s);
      }
      this.db.prepare('UPDATE consumer_calls SET studies_json = ? WHERE id_hash = ?').run(JSON.stringify(studies), h);
      const c = this.parsed.get(h);
      if (c) c.studies = studies;
    })();
  }

  report(id: string, docId: string): { mediaType: string; data: Buffer } | undefined {
    const r = this.db.prepare('SELECT media_type, data FROM consumer_call_reports WHERE call_hash = ? AND doc_id = ?').get(callKey(id), docId) as
      | { media_type: string; data: Buffer }
      | undefined;
    return r ? { mediaType: r.media_type, data: r.data } : undefined;
  }

  /** Keeps a call made before login; returns the id to resume it with. */
  park(form: Record<string, string>, ttlMs = 10 * 60_000): string {
    const id = randomBytes(24).toString('base64url');
    this.db.prepare('INSERT INTO consumer_pending_calls (id_hash, form_json, expires_at) VALUES (?,?,?)').run(callKey(id), JSON.stringify(form), this.now() + ttlMs);
    return id;
  }

  /** Takes (single use) a parked call. */
  unpark(id: string | undefined): Record<string, string> | undefined {
    if (!id || id.length > 128) return undefined;
    const r = this.db.prepare('DELETE FROM consumer_pending_calls WHERE id_hash = ? RETURNING form_json, expires_at').get(callKey(id)) as
      | { form_json: string; expires_at: number }
      | undefined;
    if (!r || r.expires_at <= this.now()) return undefined;
    return JSON.parse(r.form_json) as Record<string, string>;
  }

  purgeExpired(): void {
    const now = this.now();
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM consumer_call_reports WHERE call_hash IN (SELECT id_hash FROM consumer_calls WHERE expires_at <= ?)').run(now);
      this.db.prepare('DELETE FROM consumer_calls WHERE expires_at <= ?').run(now);
      for (const [h, c] of this.parsed) if (c.expiresAt <= now) this.parsed.delete(h);
      this.db.prepare('DELETE FROM consumer_pending_calls WHERE expires_at <= ?').run(now);
    })();
  }
}
