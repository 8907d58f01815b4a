// Audit rows folded into study accesses: one line per (direction, peer, clinician, patient, study, KOS,
// kind of access) while requests keep coming within the window — what a patient asking "who looked at
// my images" wants to read, instead of one line per frame.
import type { AuditRow } from './audit.js';

export type AccessKind = 'retrieve' | 'frames' | 'metadata' | 'query' | 'other';

export interface StudyAccess {
  firstAt: string;
  lastAt: string;
  direction: string;
  peerDn: string | null;
  rpps: string | null;
  ins: string | null;
  studyUid: string | null;
  kosUid: string | null;
  kind: AccessKind;
  /** the route, for accesses that are not DICOMweb (contextual call, viewer pages) */
  route: string;
  requests: number;
  bytes: number;
  /** requests answered with an error status (>= 400) */
  refused: number;
  lastStatus: number;
  /** reason of the last refusal, if any */
  outcome: string | null;
}

/** What a route does, from its pattern (e.g. /dicom-web/studies/:study/series/:series/instances/:instance/frames/:frames). */
export function accessKind(route: string): AccessKind {
  if (/\/frames(\/|$)/.test(route)) return 'frames';
  if (/\/metadata$/.test(route)) return 'metadata';
  if (/\/(studies|series|instances)$/.test(route)) return 'query';
  if (/\/:(study|series|instance)$/.test(route)) return 'retrieve';
  return 'other';
}

/**
 * Folds rows (oldest first) into accesses; an access closes when its key sees no request for
 * `windowMs`. Newest first; at most `limit` (truncated says more matched).
 */
export async function foldAccesses(rows: Iterable<AuditRow> | AsyncIterable<AuditRow>, windowMs: number, limit: number): Promise<{ items: StudyAccess[]; truncated: boolean }> {
  const open = new Map<string, StudyAccess>();
  const done: StudyAccess[] = [];
  for await (const r of rows) {
    const kind = accessKind(r.route);
    const route = kind === 'other' ? r.route : '';
    const key = JSON.stringify([r.direction, r.actor_dn, r.actor_rpps, r.patient_id, r.study_uid, r.kos_uid, kind, route]);
    let a = open.get(key);
    if (a && Date.parse(r.at) - Date.parse(a.lastAt) > windowMs) {
      done.push(a);
      a = undefined;
    }
    if (!a) {
      a = {
        firstAt: r.at, lastAt: r.at, direction: r.direction, peerDn: r.actor_dn, rpps: r.actor_rpps, ins: r.patient_id,
        studyUid: r.study_uid, kosUid: r.kos_uid, kind, route, requests: 0, bytes: 0, refused: 0, lastStatus: r.status, outcome: null,
      };
      open.set(key, a);
    }
    a.lastAt = r.at;
    a.requests++;
    a.bytes += r.bytes;
    a.lastStatus = r.status;
    if (r.status >= 400) {
      a.refused++;
      a.outcome = r.outcome;
    }
  }
  const all = [...done, ...open.values()].sort((x, y) => (x.firstAt < y.firstAt ? 1 : x.firstAt > y.firstAt ? -1 : 0));
  return { items: all.slice(0, limit), truncated: all.length > limit };
}
