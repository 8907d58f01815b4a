// Study resolution: ask the PACS for every instance of each study a report documents, and check that
// the PACS agrees with the report on who the patient is and which exam it is.
import type { PublicationRecord, StudyReference } from '../../cda/types.js';
import type { KosInstance } from '../../dicom/kos.js';
import type { DicomJson, Pacs } from '../../pacs/pacs.js';
import { abortableSleep } from '../../abortable-sleep.js';

/** The study is not (yet) in the PACS, or has no instance left: retried for publication.studyWaitMinutes. */
export class StudyNotReadyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StudyNotReadyError';
  }
}

/** The study's instance count changed between two looks: it is still arriving in the PACS. */
export class StudyStillArrivingError extends StudyNotReadyError {
  constructor(message: string) {
    super(message);
    this.name = 'StudyStillArrivingError';
  }
}

/** The PACS and the report disagree: a human must look (never retried by itself). */
export class StudyMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StudyMismatchError';
  }
}

export interface PacsStudyInfo {
  patientId?: string;
  issuerOfPatientId?: string;
  patientName?: string;
  accessionNumber?: string;
  studyDate?: string;
  studyTime?: string;
  studyId?: string;
  studyDescription?: string;
  referringPhysicianName?: string;
}

export interface ResolvedStudies {
  instances: KosInstance[];
  /** per study: what the PACS says about it (the first study's goes into the KOS study module) */
  info: Map<string, PacsStudyInfo>;
  /** instances left out because the PACS rejected them (IOCM) */
  skippedRejected: number;
}

const STUDY_FIELDS = ['PatientID', 'IssuerOfPatientID', 'PatientName', 'AccessionNumber', 'StudyDate', 'StudyTime', 'StudyID', 'StudyDescription', 'ReferringPhysicianName'];

function str(ds: DicomJson | undefined, tag: string): string | undefined {
  const v = ds?.[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') {
    const a = (v as { Alphabetic?: string }).Alphabetic;
    return a === undefined ? undefined : String(a);
  }
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

function studyInfo(ds: DicomJson | undefined): PacsStudyInfo {
  return {
    patientId: str(ds, '00100020'),
    issuerOfPatientId: str(ds, '00100021'),
    patientName: str(ds, '00100010'),
    accessionNumber: str(ds, '00080050'),
    studyDate: str(ds, '00080020'),
    studyTime: str(ds, '00080030'),
    studyId: str(ds, '00200010'),
    studyDescription: str(ds, '00081030'),
    referringPhysicianName: str(ds, '00080090'),
  };
}

function checkAgreement(record: PublicationRecord, study: StudyReference, info: PacsStudyInfo): void {
  const known = [record.patient.ins.value, record.patient.ipp?.value].filter(Boolean) as string[];
  if (!info.patientId) {
    throw new StudyMismatchError(`study ${study.studyInstanceUid}: the PACS gives no PatientID; the report's patient cannot be confirmed`);
  }
  if (!known.includes(info.patientId)) {
    throw new StudyMismatchError(
      `study ${study.studyInstanceUid}: the PACS PatientID does not match the report (expected the INS or the IPP${record.patient.ipp ? '' : ', the report gives no IPP'})`,
    );
  }
  const acc = study.accessionNumber?.value;
  if (acc && info.accessionNumber && info.accessionNumber !== acc) {
    throw new StudyMismatchError(`study ${study.studyInstanceUid}: the PACS AccessionNumber (${info.accessionNumber}) is not the report's (${acc})`);
  }
}

/**
 * Every instance of every study of the report, minus the rejected ones.
 * Throws StudyNotReadyError (study absent / empty), StudyMismatchError, or the PACS's own errors.
 */
export async function resolveStudies(
  pacs: Pacs,
  record: PublicationRecord,
  rejected: (studyUid: string) => Set<string> | Promise<Set<string>>,
  opts: { allowEmpty?: boolean; signal?: AbortSignal } = {},
): Promise<ResolvedStudies> {
  const instances: KosInstance[] = [];
  const info = new Map<string, PacsStudyInfo>();
  let skippedRejected = 0;
  for (const study of record.studies) {
    const uid = study.studyInstanceUid;
    const found = await pacs.findStudies({ StudyInstanceUID: uid }, { includeField: STUDY_FIELDS, signal: opts.signal });
    const ds = found.find((d) => str(d, '0020000D') === uid);
    if (!ds) throw new StudyNotReadyError(`study ${uid} is not in the PACS (yet)`);
    const si = studyInfo(ds);
    checkAgreement(record, study, si);
    info.set(uid, si);
    const rows = await pacs.findInstances(uid, undefined, {}, { includeField: ['SOPClassUID', 'SeriesInstanceUID'], signal: opts.signal });
    const skip = await rejected(uid);
    let kept = 0;
    for (const r of rows) {
      const sop = str(r, '00080018');
      const cls = str(r, '00080016');
      const series = str(r, '0020000E');
      if (!sop || !cls || !series) continue;
      if (skip.has(sop)) { skippedRejected++; continue; }
      instances.push({ studyUid: uid, seriesUid: series, sopClassUid: cls, sopInstanceUid: sop });
      kept++;
    }
    if (kept === 0 && !opts.allowEmpty) {
      throw new StudyNotReadyError(skip.size ? `study ${uid} has no instance left after IOCM rejections` : `study ${uid} has no instance in the PACS (yet)`);
    }
  }
  return { instances, info, skippedRejected };
}

/** Instances per study of a resolution (what the stability check compares). */
export function instanceCounts(r: ResolvedStudies): Map<string, number> {
  const n = new Map<string, number>();
  for (const i of r.instances) n.set(i.studyUid, (n.get(i.studyUid) ?? 0) + 1);
  return n;
}

/**
 * Resolves twice, `stableMs` apart, and returns the second resolution only when every study has the
 * same instances in both: a PACS that is still receiving a study (modality sending, migration) must
 * not get a KOS that misses the late images. Throws StudyStillArrivingError otherwise.
 */
export async function resolveStableStudies(
  pacs: Pacs,
  record: PublicationRecord,
  rejected: (studyUid: string) => Set<string> | Promise<Set<string>>,
  opts: { stableMs: number; allowEmpty?: boolean; signal?: AbortSignal; sleep?: (ms: number, signal?: AbortSignal) => Promise<void> },
): Promise<ResolvedStudies> {
  const first = await resolveStudies(pacs, record, rejected, opts);
  if (opts.stableMs <= 0) return first;
  await (opts.sleep ?? abortableSleep)(opts.stableMs, opts.signal);
  const second = await resolveStudies(pacs, record, rejected, opts);
  const a = instanceCounts(first);
  const b = instanceCounts(second);
  const seen = new Set(first.instances.map((i) => i.sopInstanceUid));
  for (const study of record.studies) {
    const uid = study.studyInstanceUid;
    const before = a.get(uid) ?? 0;
    const after = b.get(uid) ?? 0;
    // same count but other instances (one deleted, one added) is not stable either
    const changed = before !== after || second.instances.some((i) => i.studyUid === uid && !seen.has(i.sopInstanceUid));
    if (changed) {
      throw new StudyStillArrivingError(`study ${uid} is still changing in the PACS (${before} then ${after} instances ${opts.stableMs / 1000} s later)`);
    }
  }
  return second;
}

