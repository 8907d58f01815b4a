// The screening API's documents as the viewer reads them (SCREENING-API.md, the contract shared with
// the gateway's screening routes). Types only.

export type BatchState = 'prefetching' | 'paused' | 'psc-reconnect' | 'ready' | 'closed' | 'cancelled';
export interface Progress { done: number; total: number }
export interface Batch {
  id: string; name: string; state: BatchState; pauseReason?: string;
  createdAt: string; createdBy: { rpps: string; name: string }; dueDate?: string; priorsWanted: number;
  counts: { total: number; queued: number; fetching: number; ready: number; failed: number; read: number; deferred: number };
  instances: Progress; bytes: Progress;
}
export type CaseState = 'queued' | 'fetching' | 'ready' | 'failed';
export type DeferReason = 'missing-view' | 'views-swapped' | 'priors-awaited' | 'other';
export type View = 'R-CC' | 'L-CC' | 'R-MLO' | 'L-MLO';
export type Sign = 'mass' | 'calcifications' | 'distortion' | 'asymmetry';
export interface BreastFinding { acr: 3 | 4 | 5; location: string; signs: Sign[] }
export interface VerdictInput {
  requestId: string; quality: 'adequate' | 'insufficient'; viewsToRedo?: View[];
  result?: 'normal' | 'positive'; right?: BreastFinding; left?: BreastFinding; comment?: string; timeSpentMs: number;
}
export interface Verdict extends Omit<VerdictInput, 'requestId'> {
  outcome: 'normal' | 'positive' | 'technical-recall'; readerRpps: string; readerName: string; recordedAt: string; amendedAt?: string;
}
export interface Case {
  id: string; position: number; state: CaseState; error?: string;
  instances: Progress; bytes: Progress;
  patient: { ins: string; familyName?: string; givenName?: string; birthDate: string; sex: string };
  accessionNumber?: string; studyUid?: string; priorStudyUids: string[];
  sessionId?: string; reportDocumentId?: string;
  verdict: Verdict | null; deferral: { reason: DeferReason; comment?: string; at: string } | null;
}
export type BatchWithCases = Batch & { cases: Case[] };
/** GET /auth/me: the PSC identity of the reader */
export interface Reader { rpps: string; name: string }
