// The screening API's documents (SCREENING-API.md, shared with the viewer's worklist). Types only.

export type BatchState = 'prefetching' | 'paused' | 'psc-reconnect' | 'ready' | 'closed' | 'cancelled';
export type CaseState = 'queued' | 'fetching' | 'ready' | 'failed';

export interface Progress { done: number; total: number }

export interface Batch {
  id: string;
  name: string;
  state: BatchState;
  /** 'reconnexion PSC requise' when the creator's PSC tokens could not be renewed */
  pauseReason?: string;
  createdAt: string;
  createdBy: { rpps: string; name: string };
  dueDate?: string;
  priorsWanted: number;
  counts: { total: number; queued: number; fetching: number; ready: number; failed: number; read: number; deferred: number };
  instances: Progress;
  /** bytes.total is an estimate until every case is fetched (remaining instances × the mean size so far) */
  bytes: Progress;
}

export type DeferReason = 'missing-view' | 'views-swapped' | 'priors-awaited' | 'other';
export const DEFER_REASONS: readonly DeferReason[] = ['missing-view', 'views-swapped', 'priors-awaited', 'other'];
export type View = 'R-CC' | 'L-CC' | 'R-MLO' | 'L-MLO';
export const VIEWS: readonly View[] = ['R-CC', 'L-CC', 'R-MLO', 'L-MLO'];
export type Sign = 'mass' | 'calcifications' | 'distortion' | 'asymmetry';
export const SIGNS: readonly Sign[] = ['mass', 'calcifications', 'distortion', 'asymmetry'];
export const QUADRANTS = ['QSE', 'QSI', 'QIE', 'QII', 'central', 'rétro-aréolaire'] as const;

export interface BreastFinding { acr: 3 | 4 | 5; location: string; signs: Sign[] }

export interface VerdictInput {
  requestId: string;
  quality: 'adequate' | 'insufficient';
  viewsToRedo?: View[];
  result?: 'normal' | 'positive';
  right?: BreastFinding;
  left?: BreastFinding;
  comment?: string;
  timeSpentMs: number;
}

export interface Verdict extends Omit<VerdictInput, 'requestId'> {
  outcome: 'normal' | 'positive' | 'technical-recall';
  readerRpps: string;
  readerName: string;
  recordedAt: string;
  amendedAt?: string;
}

export interface Deferral { reason: DeferReason; comment?: string; at: string }

export interface CasePatient { ins: string; familyName?: string; givenName?: string; birthDate: string; sex: string }

export interface Case {
  id: string;
  position: number;
  state: CaseState;
  error?: string;
  instances: Progress;
  bytes: Progress;
  patient: CasePatient;
  accessionNumber?: string;
  studyUid?: string;
  priorStudyUids: string[];
  sessionId?: string;
  reportDocumentId?: string;
  verdict: Verdict | null;
  deferral: Deferral | null;
}

/** One row of a batch as uploaded (JSON or CSV), before checks. */
export interface BatchRowInput {
  ins: string;
  insOid?: string;
  birthDate: string;
  sex: string;
  familyName?: string;
  givenName?: string;
  accessionNumber?: string;
  studyUid?: string;
  readerRpps?: string;
}
