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
  /** refused: what the DMP or the source sent does not match the patient searched (nothing is shown) */
  status: 'available' | 'withdrawn' | 'unreachable' | 'refused';
  /** why the study is refused, withdrawn or unreachable, in words the clinician reads */
  reason?: string;
  /** strict identity traits of the call that differ from those of the study's images */
  identityWarnings?: IdentityWarning[];
  report?: { url: string; mediaType: 'application/pdf' | 'text/plain' | 'text/html' };
}

/** One strict INS trait the call gives differently from the images' DICOM headers. */
export interface IdentityWarning {
  trait: 'birthName' | 'firstGivenName' | 'birthDate' | 'sex';
  /** the trait's name, in French */
  label: string;
  /** as the call gives it */
  call: string;
  /** as the images carry it */
  images: string;
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
