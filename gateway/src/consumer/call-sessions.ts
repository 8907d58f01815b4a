// Viewer sessions ("calls"): what one contextual call or report link resolved to — the patient, the
// clinician, the studies with their source boxes and KOS — and the reports. Each is private: the id
// in the viewer URL is a random 256-bit value stored only as its hash, and every read checks that
// the logged-in clinician is the one who made the call. Everything lives in the database (any
// instance answers any request): the sessions, the calls parked before login or confirmation, and
// the grants (when a source last said yes to a session's study).
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/database.js';
import { hashId } from '../trust/sessions.js';
import type { CallPatient } from './contextual-call.js';
import type { ReportDoc, SessionStudy } from './dmp-search.js';
import type { DicomJson } from '../pacs/pacs.js';

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

/** What a source last said about a session's study: when it said yes, and its QIDO series rows. */
export interface Grant { at: number; series?: DicomJson[] }

/** A parked call that only one clinician session, holding this token, may take (the confirmation page). */
export interface Confirmation { sessionHash: string; token: string }

interface Parsed { studiesJson: string; call: Omit<CallSession, 'id'> }

export class CallSessionStore {
  /**
   * by id hash, least recently used first. The row is still read on every access (another instance may
   * have changed it): only the parse of an unchanged studies document is saved.
   */
  private readonly parsed = new Map<string, Parsed>();

  constructor(private readonly store: Store, private readonly ttlMs = 12 * 3600_000, private readonly now: () => number = Date.now,
    /** a study refused or shown with identity warnings (the audit trail): at the call, and when learnt later */
    private readonly onIdentityEvent?: (c: Pick<CallSession, 'rpps' | 'patient'>, study: SessionStudy) => void) {}

  private get db() { return this.store.db; }

  async create(c: Omit<CallSession, 'id' | 'createdAt' | 'expiresAt'>, reports: ReportDoc[]): Promise<CallSession> {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const h = callKey(id);
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('consumer_calls').values({
        id_hash: h, rpps: c.rpps, patient_json: JSON.stringify(c.patient), clinician_json: JSON.stringify(c.clinician),
        studies_json: JSON.stringify(c.studies), created_at: now, expires_at: now + this.ttlMs,
      }).execute();
      for (const r of reports) {
        await trx.insertInto('consumer_call_reports').values({ call_hash: h, doc_id: r.id, media_type: r.mediaType, data: r.data })
          .onConflict((oc) => oc.columns(['call_hash', 'doc_id']).doUpdateSet({ media_type: r.mediaType, data: r.data })).execute();
      }
    });
    for (const s of c.studies) if (s.status === 'refused' || s.identityWarnings?.length) this.onIdentityEvent?.(c, s);
    return { id, ...c, createdAt: now, expiresAt: now + this.ttlMs };
  }

  /** The session for an id, when it exists, has not expired and belongs to `rpps`. */
  async get(id: string | undefined, rpps: string): Promise<CallSession | undefined> {
    if (!id || id.length > 128) return undefined;
    const c = await this.load(callKey(id));
    if (!c || c.expiresAt <= this.now() || c.rpps !== rpps) return undefined;
    return { id, ...c };
  }

  private async load(h: string): Promise<Omit<CallSession, 'id'> | undefined> {
    const row = await this.db.selectFrom('consumer_calls').selectAll().where('id_hash', '=', h).executeTakeFirst();
    if (!row) { this.parsed.delete(h); return undefined; }
    let p = this.parsed.get(h);
    this.parsed.delete(h); // most recently used: last
    if (!p || p.studiesJson !== row.studies_json) {
      p = {
        studiesJson: row.studies_json,
        call: {
          rpps: row.rpps, patient: JSON.parse(row.patient_json), clinician: JSON.parse(row.clinician_json),
          studies: JSON.parse(row.studies_json), createdAt: Number(row.created_at), expiresAt: Number(row.expires_at),
        },
      };
    }
    this.parsed.set(h, p);
    if (this.parsed.size > PARSED_SESSIONS) this.parsed.delete(this.parsed.keys().next().value!);
    return p.call;
  }

  /** Records what was learnt about a study since the call (withdrawn at the source, unreachable). */
  async updateStudy(id: string, studyUid: string, change: Partial<Pick<SessionStudy, 'status' | 'problem' | 'identityWarnings'>>): Promise<void> {
    const h = callKey(id);
    const events: { c: Pick<CallSession, 'rpps' | 'patient'>; s: SessionStudy }[] = [];
    await this.db.transaction().execute(async (trx) => {
      // the row locked until the update: two instances learning at once do not lose one another's change
      let q = trx.selectFrom('consumer_calls').select(['studies_json', 'rpps', 'patient_json']).where('id_hash', '=', h);
      if (this.store.dialect === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) return;
      const studies = JSON.parse(row.studies_json) as SessionStudy[];
      for (const s of studies) {
        if (s.studyUid !== studyUid) continue;
        const refusedNow = change.status === 'refused' && s.status !== 'refused';
        const warnedMore = (change.identityWarnings?.length ?? 0) > (s.identityWarnings?.length ?? 0);
        Object.assign(s, change);
        if (refusedNow || warnedMore) events.push({ c: { rpps: row.rpps, patient: JSON.parse(row.patient_json) }, s });
      }
      await trx.updateTable('consumer_calls').set({ studies_json: JSON.stringify(studies) }).where('id_hash', '=', h).execute();
    });
    for (const e of events) this.onIdentityEvent?.(e.c, e.s);
  }

  async report(id: string, docId: string): Promise<{ mediaType: string; data: Buffer } | undefined> {
    const r = await this.db.selectFrom('consumer_call_reports').select(['media_type', 'data'])
      .where('call_hash', '=', callKey(id)).where('doc_id', '=', docId).executeTakeFirst();
    return r ? { mediaType: r.media_type, data: Buffer.from(r.data) } : undefined;
  }

  /** When the source last confirmed access to a session's study (shared by every instance). */
  async grant(id: string, studyUid: string): Promise<Grant | undefined> {
    const r = await this.db.selectFrom('consumer_call_grants').select(['granted_at', 'series_json'])
      .where('call_hash', '=', callKey(id)).where('study_uid', '=', studyUid).executeTakeFirst();
    return r ? { at: Number(r.granted_at), ...(r.series_json !== null ? { series: JSON.parse(r.series_json) as DicomJson[] } : {}) } : undefined;
  }

  async setGrant(id: string, studyUid: string, g: Grant): Promise<void> {
    const v = { granted_at: g.at, series_json: g.series ? JSON.stringify(g.series) : null };
    await this.db.insertInto('consumer_call_grants').values({ call_hash: callKey(id), study_uid: studyUid, ...v })
      .onConflict((oc) => oc.columns(['call_hash', 'study_uid']).doUpdateSet(v)).execute();
  }

  /**
   * Keeps a call made before login (or awaiting confirmation); returns the id to resume it with.
   * `confirmFor`: only that clinician session, with the returned token, may take it back.
   */
  async park(form: Record<string, string>, o: { ttlMs?: number; confirmFor?: string } = {}): Promise<{ id: string; token?: string }> {
    const id = randomBytes(24).toString('base64url');
    const token = o.confirmFor ? randomBytes(32).toString('base64url') : undefined;
    await this.db.insertInto('consumer_pending_calls').values({
      id_hash: callKey(id), form_json: JSON.stringify(form), expires_at: this.now() + (o.ttlMs ?? 10 * 60_000),
      confirm_session_hash: o.confirmFor ?? null, confirm_token_hash: token ? hashId(token) : null,
    }).execute();
    return { id, ...(token ? { token } : {}) };
  }

  /**
   * Takes (single use) a parked call. With `confirm`, only a call parked for that session and token:
   * another session or a wrong token gets 'refused' and leaves it parked.
   */
  async unpark(id: string | undefined, confirm?: Confirmation): Promise<Record<string, string> | 'refused' | undefined> {
    if (!id || id.length > 128) return confirm ? 'refused' : undefined;
    const h = callKey(id);
    let q = this.db.deleteFrom('consumer_pending_calls').where('id_hash', '=', h);
    if (confirm) q = q.where('confirm_session_hash', '=', confirm.sessionHash).where('confirm_token_hash', '=', hashId(confirm.token));
    const r = await q.returning(['form_json', 'expires_at']).executeTakeFirst();
    if (!r) {
      if (!confirm) return undefined;
      const parked = await this.db.selectFrom('consumer_pending_calls').select('id_hash').where('id_hash', '=', h).executeTakeFirst();
      return parked ? 'refused' : undefined;
    }
    if (Number(r.expires_at) <= this.now()) return undefined;
    return JSON.parse(r.form_json) as Record<string, string>;
  }

  async purgeExpired(): Promise<void> {
    const now = this.now();
    await this.db.transaction().execute(async (trx) => {
      const expired = trx.selectFrom('consumer_calls').select('id_hash').where('expires_at', '<=', now);
      await trx.deleteFrom('consumer_call_reports').where('call_hash', 'in', expired).execute();
      await trx.deleteFrom('consumer_call_grants').where('call_hash', 'in', expired).execute();
      await trx.deleteFrom('consumer_calls').where('expires_at', '<=', now).execute();
      await trx.deleteFrom('consumer_pending_calls').where('expires_at', '<=', now).execute();
    });
    for (const [h, p] of this.parsed) if (p.call.expiresAt <= now) this.parsed.delete(h);
  }
}
