// Store rows → the API's Batch and Case documents (SCREENING-API.md). Pure.
import type { BatchTotals } from './repository.js';
import type { Resolved } from './prefetch.js';
import type { CheckedRow } from './rows.js';
import type { ScreeningBatchRow, ScreeningCaseRow } from './schema.js';
import type { Batch, BatchState, Case, CaseState, Deferral, Verdict } from './types.js';

const EMPTY: BatchTotals = { batch_id: '', total: 0, queued: 0, fetching: 0, ready: 0, failed: 0, read: 0, deferred: 0, instances_done: 0, instances_total: 0, bytes_done: 0 };

export function batchView(b: ScreeningBatchRow, totals: BatchTotals | undefined): Batch {
  const t = totals ?? EMPTY;
  // bytes still to come: the instances not yet fetched, at the mean size of those that were
  const mean = t.instances_done ? t.bytes_done / t.instances_done : 0;
  return {
    id: b.id, name: b.name, state: b.state as BatchState,
    ...(b.pause_reason && (b.state === 'psc-reconnect' || b.state === 'paused') ? { pauseReason: b.pause_reason } : {}),
    createdAt: b.created_at, createdBy: { rpps: b.created_by_rpps, name: b.created_by_name },
    ...(b.due_date ? { dueDate: b.due_date } : {}), priorsWanted: b.priors_wanted,
    counts: { total: t.total, queued: t.queued, fetching: t.fetching, ready: t.ready, failed: t.failed, read: t.read, deferred: t.deferred },
    instances: { done: t.instances_done, total: t.instances_total },
    bytes: { done: t.bytes_done, total: Math.round(t.bytes_done + Math.max(0, t.instances_total - t.instances_done) * mean) },
  };
}

export function caseView(c: ScreeningCaseRow, sessionId?: string): Case {
  const row = JSON.parse(c.row_json) as CheckedRow;
  const resolved = c.resolved_json ? JSON.parse(c.resolved_json) as Resolved : undefined;
  const current = resolved?.studies[0];
  const mean = c.instances_done ? c.bytes_done / c.instances_done : 0;
  return {
    id: c.id, position: c.position, state: c.state as CaseState,
    ...(c.error && c.state === 'failed' ? { error: c.error } : {}),
    instances: { done: c.instances_done, total: c.instances_total },
    bytes: { done: c.bytes_done, total: Math.round(c.bytes_done + Math.max(0, c.instances_total - c.instances_done) * mean) },
    patient: {
      ins: row.ins, ...(row.familyName ? { familyName: row.familyName } : {}), ...(row.givenName ? { givenName: row.givenName } : {}),
      birthDate: row.birthDate, sex: row.sex,
    },
    ...(current?.accessionNumber ?? row.accessionNumber ? { accessionNumber: current?.accessionNumber ?? row.accessionNumber } : {}),
    ...(current?.studyUid ?? row.studyUid ? { studyUid: current?.studyUid ?? row.studyUid } : {}),
    priorStudyUids: resolved?.studies.slice(1).map((s) => s.studyUid) ?? [],
    ...(sessionId ? { sessionId } : {}),
    ...(current?.reportId ? { reportDocumentId: current.reportId } : {}),
    verdict: c.verdict_json ? JSON.parse(c.verdict_json) as Verdict : null,
    deferral: c.deferral_json ? JSON.parse(c.deferral_json) as Deferral : null,
  };
}
