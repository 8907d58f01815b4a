// The contract between the consumer box and its viewer: the session document (GET /api/sessions/:id)
// and an import's progress. The viewer imports these types, so this file stays self-contained: types
// only, no imports, nothing that runs.

/** The patient as the viewer shows it: the INS identity traits. */
export interface SessionPatient {
  birthName: string;
  givenNames: string[];
  usedName?: string;
  birthDate: string; // YYYYMMDD
  sex: 'M' | 'F' | 'U';
  birthPlace?: string;
  ins: { value: string; oid: string };
  ipp?: string;
}

/** One of the patient's studies found in the DMP. */
export interface SessionStudyRef {
  studyUid: string;
  date: string;
  time?: string;
  modalities: string[];
  description: string;
  sourceCentre: string;
  accessionNumber?: string;
  kosUid: string;
  /** the study the contextual call or the link named */
  current: boolean;
  status: 'available' | 'withdrawn' | 'unreachable';
  report?: { url: string; mediaType: 'application/pdf' | 'text/plain' | 'text/html' };
}

export interface SessionDocument {
  patient: SessionPatient;
  clinician: { name: string; rpps: string };
  studies: SessionStudyRef[];
  /** the session's DICOMweb root (QIDO-RS, WADO-RS) */
  dicomWebRoot: string;
  importUrl: string;
  logoutUrl: string;
}

/** An import's progress (GET {importUrl}/{jobId}). */
export interface ImportProgress {
  done: boolean;
  state: 'running' | 'completed' | 'failed';
  total: number;
  stored: number;
  failed: number;
  /** why the job failed as a whole (e.g. "interrompu par un redémarrage") */
  error?: string;
}
