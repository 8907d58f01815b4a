// The contextual call (DRIM-M.md §5): the RIS/DPI POSTs a form naming the patient (INS + identity
// traits) and optional filters. Pure parsing: names are case-sensitive; a missing, empty or unknown
// field is refused with its name, so the integrator sees at once what to fix.
import type { FindDocumentsQuery } from '../dmp/xds-query.js';
import type { SessionPatient } from './session-document.js';

export const INS_OIDS = new Set(['1.2.250.1.213.1.4.8', '1.2.250.1.213.1.4.9', '1.2.250.1.213.1.4.10']);
/** value set of anatomic regions in the DMP event codes (DRIM-M.md §3) */
export const ANATOMIC_REGION_SCHEME = '1.2.250.1.213.1.1.5.695';

const REQUIRED = [
  'Patient.identifier.value', 'Patient.identifier.system', 'Patient.name.family', 'Patient.name.given',
  'Patient.gender', 'Patient.birthDate', 'Address.district', 'InformationEtOppositionConsultation',
  'PatientID', 'PatientIDIssuer',
] as const;
const OPTIONAL = ['StudyInstanceUID', 'Modality', 'AccessionNumber', 'AccessionNumberIssuer', 'StudyDate', 'AnatomicRegion', 'Situation'] as const;
const KNOWN = new Set<string>([...REQUIRED, ...OPTIONAL]);

/** The patient of a call: what the viewer shows, and the IPP's issuer for the DMP query. */
export interface CallPatient extends SessionPatient {
  ippIssuer?: string;
}

export interface CallFilters {
  studyInstanceUid?: string;
  modality?: string;
  accessionNumber?: string;
  accessionNumberIssuer?: string;
  /** YYYYMMDD or YYYYMMDD-YYYYMMDD (either side may be open) */
  studyDate?: { from?: string; to?: string };
  anatomicRegion?: string;
  situation?: string;
}

export interface ContextualCall {
  patient: CallPatient;
  filters: CallFilters;
}

export class CallFieldError extends Error {
  constructor(readonly field: string, readonly reason: string, readonly status = 400) {
    super(`${field}: ${reason}`);
    this.name = 'CallFieldError';
  }
}

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/;

/** NIR/NIA control key: 97 - (13 digits mod 97). */
export function insKeyIsValid(ins: string): boolean {
  if (!/^\d{15}$/.test(ins)) return false;
  return 97n - (BigInt(ins.slice(0, 13)) % 97n) === BigInt(ins.slice(13));
}

function date(field: string, v: string): string {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(v);
  if (!m) throw new CallFieldError(field, 'expected a date YYYY-MM-DD or YYYYMMDD');
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[3])) throw new CallFieldError(field, 'not a calendar date');
  return `${m[1]}${m[2]}${m[3]}`;
}

function sex(v: string): 'M' | 'F' | 'U' {
  const s = v.toLowerCase();
  if (s === 'male' || s === 'm') return 'M';
  if (s === 'female' || s === 'f') return 'F';
  if (s === 'other' || s === 'unknown' || s === 'u' || s === 'o') return 'U';
  throw new CallFieldError('Patient.gender', 'expected male, female, other or unknown');
}

const clean = (s: string) => s.replace(/[\u0000-\u001f]/g, '').trim();

/** Parses the form fields (as decoded by the form body parser: a value or a list of values). */
export function parseContextualCall(form: Record<string, unknown>): ContextualCall {
  const fields: Record<string, string> = {};
  for (const [name, raw] of Object.entries(form ?? {})) {
    if (!KNOWN.has(name)) throw new CallFieldError(name.slice(0, 80), 'unknown parameter (names are case-sensitive)');
    if (Array.isArray(raw)) throw new CallFieldError(name, 'given more than once');
    if (typeof raw !== 'string') throw new CallFieldError(name, 'must be a text value');
    if (raw.length > 256) throw new CallFieldError(name, 'longer than 256 characters');
    fields[name] = clean(raw);
  }
  for (const name of REQUIRED) {
    if (fields[name] === undefined) throw new CallFieldError(name, 'missing');
    if (fields[name] === '') throw new CallFieldError(name, 'empty');
  }
  for (const name of OPTIONAL) if (fields[name] === '') delete fields[name];

  const ins = fields['Patient.identifier.value'];
  if (!insKeyIsValid(ins)) throw new CallFieldError('Patient.identifier.value', 'not an INS (15 digits with a valid key)');
  let oid = fields['Patient.identifier.system'];
  if (oid.startsWith('urn:oid:')) oid = oid.slice(8);
  if (!INS_OIDS.has(oid)) throw new CallFieldError('Patient.identifier.system', 'not an INS OID (1.2.250.1.213.1.4.8, .9 or .10)');
  const consent = fields.InformationEtOppositionConsultation.toLowerCase();
  if (!['true', '1', 'oui', 'yes'].includes(consent)) {
    if (['false', '0', 'non', 'no'].includes(consent)) {
      throw new CallFieldError('InformationEtOppositionConsultation', 'the patient was not informed or objected: the record may not be consulted', 403);
    }
    throw new CallFieldError('InformationEtOppositionConsultation', 'expected true or false');
  }

  const patient: CallPatient = {
    birthName: fields['Patient.name.family'],
    givenNames: fields['Patient.name.given'].split(/\s+/).filter(Boolean),
    birthDate: date('Patient.birthDate', fields['Patient.birthDate']),
    sex: sex(fields['Patient.gender']),
    birthPlace: fields['Address.district'],
    ins: { value: ins, oid },
    ipp: fields.PatientID,
    ippIssuer: fields.PatientIDIssuer,
  };

  const filters: CallFilters = {};
  if (fields.StudyInstanceUID !== undefined) {
    if (fields.StudyInstanceUID.length > 64 || !UID.test(fields.StudyInstanceUID)) throw new CallFieldError('StudyInstanceUID', 'not a DICOM UID');
    filters.studyInstanceUid = fields.StudyInstanceUID;
  }
  if (fields.Modality !== undefined) {
    if (!/^[A-Z0-9]{1,16}$/.test(fields.Modality)) throw new CallFieldError('Modality', 'not a DICOM modality code (e.g. MG, CT)');
    filters.modality = fields.Modality;
  }
  if (fields.AccessionNumber !== undefined) filters.accessionNumber = fields.AccessionNumber;
  if (fields.AccessionNumberIssuer !== undefined) filters.accessionNumberIssuer = fields.AccessionNumberIssuer;
  if (fields.StudyDate !== undefined) {
    const v = fields.StudyDate;
    let from: string | undefined;
    let to: string | undefined;
    const range = /^(\d{8})?-(\d{8})?$/.exec(v);
    if (/^\d{8}$/.test(v) || /^\d{4}-\d{2}-\d{2}$/.test(v)) from = to = date('StudyDate', v);
    else if (range && (range[1] || range[2])) {
      from = range[1] ? date('StudyDate', range[1]) : undefined;
      to = range[2] ? date('StudyDate', range[2]) : undefined;
    } else throw new CallFieldError('StudyDate', 'expected YYYYMMDD or a range YYYYMMDD-YYYYMMDD');
    filters.studyDate = { ...(from ? { from } : {}), ...(to ? { to } : {}) };
  }
  if (fields.AnatomicRegion !== undefined) filters.anatomicRegion = fields.AnatomicRegion;
  if (fields.Situation !== undefined) filters.situation = fields.Situation;
  return { patient, filters };
}

/** XDS patient id `INS^^^&oid&ISO^NH`. */
export function xdsPatientId(ins: { value: string; oid: string }): string {
  return `${ins.value}^^^&${ins.oid}&ISO^NH`;
}

/** The ITI-18 FindDocuments query for a call: INS, modality, region and dates go to the DMP. */
export function findDocumentsQuery(call: ContextualCall): FindDocumentsQuery {
  const f = call.filters;
  const q: FindDocumentsQuery = { patientId: xdsPatientId(call.patient.ins), status: ['Approved'] };
  if (f.modality) q.modalities = [f.modality];
  if (f.anatomicRegion) q.eventCodes = [{ code: f.anatomicRegion, scheme: ANATOMIC_REGION_SCHEME }];
  if (f.studyDate?.from) q.serviceStartFrom = f.studyDate.from;
  if (f.studyDate?.to) q.serviceStartTo = nextDay(f.studyDate.to);
  return q;
}

/** The DMP compares DTM strings and the upper bound is exclusive: "to" a day means before the next. */
function nextDay(d: string): string {
  const t = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T00:00:00Z`);
  t.setUTCDate(t.getUTCDate() + 1);
  return t.toISOString().slice(0, 10).replace(/-/g, '');
}
